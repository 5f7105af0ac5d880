"""Dashboard: staff accounts (admins only): invite, change roles, deactivate and reactivate."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import EmailField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from .. import audit, staff_admin
from ..extensions import db
from ..models import StaffRole, StaffUser
from .access import fetch, requires

bp = Blueprint("staff", __name__, url_prefix="/staff")

ROLE_LABELS = {
    StaffRole.ADMIN: _l("Admin: everything, including staff accounts"),
    StaffRole.FUNDRAISER: _l("Fundraiser: read, change and export"),
    StaffRole.VIEWER: _l("Viewer: read only"),
}


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _role_choices() -> list[SelectChoice]:
    return [SelectChoice(role.value, str(ROLE_LABELS[role])) for role in StaffRole]


class InviteForm(FlaskForm):
    """A new account: who, and what they may do."""

    email = EmailField(_l("E-mail"), filters=[_strip],
                       validators=[DataRequired(_l("Enter the person's e-mail address.")), Length(max=254)])
    role = SelectField(_l("Role"), default=StaffRole.VIEWER.value)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.role.choices = _role_choices()


class RoleForm(FlaskForm):
    """Another role for an account."""

    role = SelectField(_l("Role"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.role.choices = _role_choices()


def _me() -> StaffUser:
    user: StaffUser = current_user._get_current_object()
    return user


def _index(status: int = 200, error: str | None = None, form: InviteForm | None = None) -> ResponseReturnValue:
    return render_template("dashboard/staff/index.html", rows=staff_admin.list_staff(), error=error,
                           form=form or InviteForm(formdata=None), roles=_role_choices(), me=_me()), status


@bp.get("/")
@requires("staff")
def index() -> ResponseReturnValue:
    """Every staff account: role, whether active, last sign-in and live sessions."""
    return _index()


@bp.post("/invite")
@requires("staff")
def invite() -> ResponseReturnValue:
    """Create an account and show its temporary password, once."""
    form = InviteForm()
    if not form.validate():
        return _index(400, form=form)
    try:
        user, password = staff_admin.invite(form.email.data or "", StaffRole(form.role.data))
    except staff_admin.StaffAdminError as exc:
        form.email.errors = [*form.email.errors, str(exc.message)]
        return _index(400, form=form)
    # The password is in this response only: never in the audit log, the session or a redirect.
    audit.record("staff.invite", "staff_user", user.id, email=user.email, role=user.role.value)
    db.session.commit()
    return render_template("dashboard/staff/invited.html", user=user, password=password)


@bp.post("/<int:staff_id>/role")
@requires("staff")
def change_role(staff_id: int) -> ResponseReturnValue:
    """Give an account another role."""
    user = fetch(StaffUser, staff_id)
    form = RoleForm()
    if not form.validate():
        return _index(400, error=_("Choose one of the roles."))
    try:
        before = staff_admin.change_role(_me(), user, StaffRole(form.role.data))
    except staff_admin.StaffAdminError as exc:
        return _index(400, error=str(exc.message))
    if before is not None:
        audit.record("staff.change_role", "staff_user", user.id, email=user.email, before=before.value,
                     after=user.role.value)
        db.session.commit()
        flash(_("%(email)s is now: %(role)s.", email=user.email, role=ROLE_LABELS[user.role]), "success")
    return redirect(url_for(".index"), 303)


@bp.post("/<int:staff_id>/deactivate")
@requires("staff")
def deactivate(staff_id: int) -> ResponseReturnValue:
    """Stop an account signing in; its open sessions end at once."""
    user = fetch(StaffUser, staff_id)
    try:
        ended = staff_admin.deactivate(_me(), user)
    except staff_admin.StaffAdminError as exc:
        return _index(400, error=str(exc.message))
    if ended is not None:
        audit.record("staff.deactivate", "staff_user", user.id, email=user.email, sessions_ended=ended)
        db.session.commit()
        flash(_("%(email)s can no longer sign in; their open sessions were ended.", email=user.email), "success")
    return redirect(url_for(".index"), 303)


@bp.post("/<int:staff_id>/activate")
@requires("staff")
def activate(staff_id: int) -> ResponseReturnValue:
    """Let a deactivated account sign in again (with the password it had)."""
    user = fetch(StaffUser, staff_id)
    if staff_admin.activate(user):
        audit.record("staff.activate", "staff_user", user.id, email=user.email)
        db.session.commit()
        flash(_("%(email)s can sign in again.", email=user.email), "success")
    return redirect(url_for(".index"), 303)
