"""Dashboard: staff accounts (admins only): invite (or re-invite), change roles, deactivate
(after a confirmation) and reactivate, reset another member's two-factor sign-in.

A member's own account (password, two-factor sign-in) is `staff_own_account`, mounted here."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import EmailField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from supporters.dashboard.access import acting_staff, fetch, requires
from supporters.lib.errors import Refused
from supporters.lib.forms import Form, strip
from supporters.models import StaffRole, StaffUser
from supporters.staff import accounts, staff_own_account, two_factor

bp = Blueprint("staff", __name__, url_prefix="/staff")
bp.register_blueprint(staff_own_account.bp)

ROLE_LABELS = {
    StaffRole.ADMIN: _l("Admin: everything, including staff accounts"),
    StaffRole.FUNDRAISER: _l("Fundraiser: read, change and export"),
    StaffRole.VIEWER: _l("Viewer: read only"),
}


def _role_choices() -> list[SelectChoice]:
    return [SelectChoice(role.value, str(ROLE_LABELS[role])) for role in StaffRole]


class InviteForm(Form):
    """A new account: who, and what they may do."""

    email = EmailField(
        _l("E-mail"),
        filters=[strip],
        validators=[DataRequired(_l("Enter the person's e-mail address.")), Length(max=254)],
    )
    role = SelectField(_l("Role"), default=StaffRole.VIEWER.value)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.role.choices = _role_choices()


class RoleForm(Form):
    """Another role for an account."""

    role = SelectField(_l("Role"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.role.choices = _role_choices()


def _index(status: int = 200, error: str | None = None, form: InviteForm | None = None) -> ResponseReturnValue:
    return render_template(
        "dashboard/staff/index.html",
        rows=accounts.list_staff(),
        error=error,
        form=form or InviteForm(formdata=None),
        roles=_role_choices(),
        me=acting_staff(),
    ), status


@bp.get("/")
@requires("staff")
def index() -> ResponseReturnValue:
    """Every staff account: role, whether active, last sign-in and live sessions."""
    return _index()


@bp.post("/invite")
@requires("staff")
def invite() -> ResponseReturnValue:
    """Create an account (or reactivate a deactivated one) and show its temporary password, once."""
    form = InviteForm()
    if not form.validate():
        return _index(400, form=form)
    email = form.email.data or ""
    try:
        user, password, reactivated = accounts.invite(acting_staff(), email, StaffRole(form.role.data))
    except Refused as refused:
        form.email.errors = [*form.email.errors, refused.message()]
        return _index(400, form=form)
    # The password is in this response only: never in the audit log, the session or a redirect.
    return render_template("dashboard/staff/invited.html", user=user, password=password, reactivated=reactivated)


@bp.post("/<int:staff_id>/role")
@requires("staff")
def change_role(staff_id: int) -> ResponseReturnValue:
    """Give an account another role."""
    user = fetch(StaffUser, staff_id)
    form = RoleForm()
    if not form.validate():
        return _index(400, error=_("Choose one of the roles."))
    try:
        before = accounts.change_role(acting_staff(), user, StaffRole(form.role.data))
    except Refused as refused:
        return _index(400, error=refused.message())
    if before is not None:
        flash(_("%(email)s is now: %(role)s.", email=user.email, role=ROLE_LABELS[user.role]), "success")
    return redirect(url_for(".index"), 303)


@bp.post("/<int:staff_id>/deactivate")
@requires("staff")
def deactivate(staff_id: int) -> ResponseReturnValue:
    """Stop an account signing in; its open sessions end at once. Without `confirm=yes`
    the page only asks to confirm, and nothing changes."""
    user = fetch(StaffUser, staff_id)
    try:
        if request.form.get("confirm") != "yes":
            if not accounts.may_deactivate(acting_staff(), user):
                return redirect(url_for(".index"), 303)
            return render_template("dashboard/staff/deactivate.html", user=user)
        ended = accounts.deactivate(acting_staff(), user)
    except Refused as refused:
        return _index(400, error=refused.message())
    if ended is not None:
        flash(_("%(email)s can no longer sign in; their open sessions were ended.", email=user.email), "success")
    return redirect(url_for(".index"), 303)


@bp.post("/<int:staff_id>/activate")
@requires("staff")
def activate(staff_id: int) -> ResponseReturnValue:
    """Let a deactivated account sign in again (with the password it had)."""
    user = fetch(StaffUser, staff_id)
    if accounts.activate(acting_staff(), user):
        flash(_("%(email)s can sign in again.", email=user.email), "success")
    return redirect(url_for(".index"), 303)


@bp.post("/<int:staff_id>/reset-two-factor")
@requires("staff")
def reset_two_factor(staff_id: int) -> ResponseReturnValue:
    """Clear another member's two-factor sign-in (a lost phone); audited."""
    user = fetch(StaffUser, staff_id)
    try:
        done = two_factor.reset_for(acting_staff(), user)
    except Refused as refused:
        return _index(400, error=refused.message())
    if done:
        flash(
            _(
                "%(email)s's two-factor sign-in is cleared: they set it up again at their next sign-in.",
                email=user.email,
            ),
            "success",
        )
    return redirect(url_for(".index"), 303)
