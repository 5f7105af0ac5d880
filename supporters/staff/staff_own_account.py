"""Dashboard: a staff member's own account (every role): change the password, set up,
renew or turn off two-factor sign-in. Mounted under the staff pages, at /dashboard/staff/me/.

A temporary password (an invitation) and a role that requires two-factor sign-in
without it send every other dashboard page here first (dashboard/access.py).
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from supporters.dashboard.access import acting_staff, requires
from supporters.lib.bank_qr import svg_data_uri
from supporters.lib.errors import Refused
from supporters.lib.forms import Form, no_control_characters, show_refusal, strip
from supporters.lib.transactions import outside_transaction
from supporters.models.staff import password_matches
from supporters.staff import recovery, two_factor

bp = Blueprint("me", __name__, url_prefix="/me")


def _code_field() -> StringField:
    return StringField(
        _l("Code from your authenticator app"),
        filters=[strip],
        validators=[DataRequired(_l("Type the 6-digit code your app shows.")), Length(max=64), no_control_characters],
    )


class PasswordForm(Form):
    current_password = PasswordField(
        _l("Current password"), validators=[DataRequired(_l("Type your current password.")), Length(max=1000)]
    )
    password = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=1000)])
    confirm = PasswordField(_l("The new password again"), validators=[DataRequired(), Length(max=1000)])


class CodeForm(Form):
    code = _code_field()


class DisableForm(Form):
    password = PasswordField(
        _l("Your password"), validators=[DataRequired(_l("Type your current password.")), Length(max=1000)]
    )
    code = _code_field()


def _index(
    status: int = 200,
    password_form: PasswordForm | None = None,
    code_form: CodeForm | None = None,
    disable_form: DisableForm | None = None,
    renew_form: CodeForm | None = None,
    message: str | None = None,
) -> ResponseReturnValue:
    user = acting_staff()
    pending = user.totp_pending_secret
    uri = two_factor.provisioning_uri(user, pending) if pending else None
    return render_template(
        "dashboard/staff/me.html",
        user=user,
        message=message,
        password_form=password_form or PasswordForm(formdata=None),
        code_form=code_form or CodeForm(formdata=None, prefix="confirm"),
        disable_form=disable_form or DisableForm(formdata=None, prefix="disable"),
        renew_form=renew_form or CodeForm(formdata=None, prefix="renew"),
        pending_secret=pending,
        pending_qr=svg_data_uri(uri) if uri else None,
        required=two_factor.required_for(user),
        codes_left=two_factor.recovery_codes_left(user) if user.two_factor_on else 0,
    ), status


def _password_is(password: str) -> bool:
    """The signed-in member's password is `password`, checked with no transaction open."""
    stored = acting_staff().password_hash
    with outside_transaction():
        return password_matches(stored, password)


@bp.get("/")
@requires("view")
def index() -> ResponseReturnValue:
    """The password form and the state of two-factor sign-in."""
    return _index()


@bp.post("/password")
@requires("view")
def change_password() -> ResponseReturnValue:
    """A new password, for the current one; the member's other sessions end."""
    form = PasswordForm()
    if not form.validate():
        return _index(400, password_form=form)
    matches = _password_is(form.current_password.data or "")
    try:
        ended = recovery.change_password(acting_staff(), matches, form.password.data or "", form.confirm.data or "")
    except Refused as refused:
        return _index(refused.status, password_form=form, message=show_refusal(form, refused))
    flash(
        _("Your password is changed.") + (" " + _("Your other sessions were ended.") if ended else ""),
        "success",
    )
    return redirect(url_for(".index"), 303)


@bp.post("/two-factor/start")
@requires("view")
def start_two_factor() -> ResponseReturnValue:
    """Draw a secret for the authenticator app; the page shows it until a code confirms it."""
    two_factor.start_enrolment(acting_staff())
    return redirect(url_for(".index") + "#two-factor", 303)


@bp.post("/two-factor/confirm")
@requires("view")
def confirm_two_factor() -> ResponseReturnValue:
    """The code from the app: two-factor sign-in is on; the recovery codes are shown once."""
    form = CodeForm(prefix="confirm")
    if not form.validate():
        return _index(400, code_form=form)
    try:
        codes = two_factor.confirm_enrolment(acting_staff(), form.code.data or "")
    except Refused as refused:
        return _index(refused.status, code_form=form, message=show_refusal(form, refused))
    return render_template("dashboard/staff/recovery_codes.html", codes=codes, first=True)


@bp.post("/two-factor/recovery-codes")
@requires("view")
def renew_recovery_codes() -> ResponseReturnValue:
    """Ten new recovery codes for a code of the second factor; the old ones stop working."""
    form = CodeForm(prefix="renew")
    if not form.validate():
        return _index(400, renew_form=form)
    try:
        codes = two_factor.renew_recovery_codes(acting_staff(), form.code.data or "")
    except Refused as refused:
        return _index(refused.status, renew_form=form, message=show_refusal(form, refused))
    return render_template("dashboard/staff/recovery_codes.html", codes=codes, first=False)


@bp.post("/two-factor/disable")
@requires("view")
def disable_two_factor() -> ResponseReturnValue:
    """Turn two-factor sign-in off, with the password and a code."""
    form = DisableForm(prefix="disable")
    if not form.validate():
        return _index(400, disable_form=form)
    matches = _password_is(form.password.data or "")
    try:
        two_factor.disable(acting_staff(), matches, form.code.data or "")
    except Refused as refused:
        return _index(refused.status, disable_form=form, message=show_refusal(form, refused))
    flash(_("Two-factor sign-in is off."), "success")
    return redirect(url_for(".index"), 303)
