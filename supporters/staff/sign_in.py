"""/login and /logout for staff, the second step of a two-factor sign-in, "Forgot
password?" and the pages of the links e-mailed to a staff member.

Sign-in is two steps for an account with two-factor sign-in: the password, then a code.
Between them the browser holds only a *half-signed* state (`session[PENDING]`: the
account, until when, a stamp of its password hash) for PENDING_MINUTES; it opens no
page: Flask-Login knows nobody until the code is right.

Limits, counted before the work (lib/limits.py): LOGIN_LIMIT per client address, and
LOGIN_LIMIT per account (wrong passwords and wrong codes together). Past the account's,
the password is not even checked: the answer is a 429, and the account's owner is
e-mailed an unlock link (once per lockout). Opening it in their browser gives that
browser an allowance of its own for the account (`session[UNLOCKED]`), which the
attacker's tries do not use up: 10 wrong passwords from anywhere never lock the
owner out, and the password alone is still not enough when they use a second factor.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_limiter import RequestLimit
from flask_login import current_user, login_user, logout_user
from sqlalchemy import select
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from supporters.extensions import db, limiter
from supporters.lib import limits, transactions
from supporters.lib.errors import Refused
from supporters.lib.forms import MAX_ID, Form, no_control_characters, show_refusal, strip
from supporters.lib.transactions import outside_transaction
from supporters.mail.account_links import queue_reset, queue_unlock
from supporters.models import StaffUser, normalise_email, utcnow
from supporters.models.staff import check_unknown_password, password_matches
from supporters.staff import recovery, sessions, two_factor

bp = Blueprint("dashboard_auth", __name__)

#: the half-signed state between the password and the code
PENDING = "staff_pending"
PENDING_MINUTES = 5
#: this browser opened an unlock link for an account: its own allowance for that account
UNLOCKED = "staff_unlocked"


class LoginForm(Form):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=320), no_control_characters])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1000)])


class CodeForm(Form):
    code = StringField(
        _l("Code"),
        filters=[strip],
        validators=[
            DataRequired(_l("Type the code from your authenticator app, or one of your recovery codes.")),
            Length(max=64),
            no_control_characters,
        ],
    )


class ForgotForm(Form):
    email = EmailField(
        _l("E-mail"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter the e-mail address you sign in with.")),
            Length(max=320),
            no_control_characters,
        ],
    )


class NewPasswordForm(Form):
    password = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=1000)])
    confirm = PasswordField(_l("The new password again"), validators=[DataRequired(), Length(max=1000)])


def _login_limit() -> str:
    return str(current_app.config["LOGIN_LIMIT"])


def _reset_ip_limit() -> str:
    return str(current_app.config["STAFF_RESET_LIMIT_PER_IP"])


def _reset_email_limit() -> str:
    return str(current_app.config["STAFF_RESET_LIMIT_PER_EMAIL"])


def _form_email() -> str:
    return normalise_email(request.form.get("email", ""))[:320]


def _until(minutes: int) -> str:
    return (utcnow() + timedelta(minutes=minutes)).isoformat()


def _still(kept: Any) -> dict[str, Any] | None:
    """A dict kept in the session whose "until" is still to come, or None."""
    if not isinstance(kept, dict):
        return None
    try:
        until = datetime.fromisoformat(str(kept.get("until")))
    except ValueError:
        return None
    if until.tzinfo is None or until <= utcnow():
        return None
    return kept


def _unlocked_for(email: str) -> int | None:
    """The unlock link this browser opened for the account `email`, while it lasts."""
    kept = _still(session.get(UNLOCKED))
    token_id = kept.get("token") if kept else None
    if kept and kept.get("email") == email and type(token_id) is int and 0 < token_id <= MAX_ID:
        return token_id
    return None


def _account_key() -> str:
    email = _form_email()
    unlocked = _unlocked_for(email)
    return f"login-unlocked:{unlocked}" if unlocked else "login:" + email


def _no_email() -> bool:
    """A form without an e-mail is sent back (and the per-address limit still counts it)."""
    return not _form_email()


def _pending() -> dict[str, Any] | None:
    """The half-signed state of this browser, while it lasts."""
    kept = _still(session.get(PENDING))
    if kept is None or type(kept.get("id")) is not int or not isinstance(kept.get("email"), str):
        return None
    return kept


def _pending_key() -> str:
    kept = _pending() or {}
    unlocked = kept.get("unlocked")
    return f"login-unlocked:{unlocked}" if unlocked else "login:" + str(kept.get("email", ""))


def _code_step() -> bool:
    return request.endpoint == "dashboard_auth.enter_code"


def _sign_in_account_key() -> str:
    """The account a sign-in step counts against (one counter for the password and the
    code steps): the e-mail typed, or the half-signed state's account."""
    return _pending_key() if _code_step() else _account_key()


def _no_account() -> bool:
    """No account named: a form without an e-mail, a code without a half-signed state."""
    return _pending() is None if _code_step() else _no_email()


def _on_account_breach(limit: RequestLimit) -> None:
    """The account's allowance is used up: its owner gets an unlock link (once per
    lockout; nobody for an address without an account, or for a browser that already
    has its own allowance)."""
    if "login-unlocked:" in str(limit.key):
        return
    email = str((_pending() or {}).get("email", "")) if _code_step() else _form_email()
    made = recovery.issue_unlock(email)
    if made is not None:
        user, row, token = made
        queue_unlock(user, row, token, recovery.LINK_VALID_MINUTES)
        transactions.keep_changes()  # the 429 still sends the e-mail and keeps the lockout's audit row


def _signed_in(response: Any) -> bool:
    """A successful step gives its hits back: only failed tries use up the allowance."""
    return bool(response.status_code == 303)


def _too_many() -> str:
    return _("Too many failed sign-in attempts. Please wait 15 minutes and try again.")


def _too_many_for_account() -> str:
    return _(
        "Too many failed sign-in attempts for this account. If the account is yours, we have e-mailed you "
        "a link that lets you sign in from your browser now; otherwise please wait 15 minutes and try again."
    )


def _too_many_resets() -> str:
    return _("Several password resets were asked for in a short time. Please wait a while before trying again.")


#: a dashboard address to go back to after signing in: /dashboard or a path under it, in
#: printable ASCII (a browser escapes the rest), no "//", "\\" or ".." that could lead elsewhere
SAFE_NEXT = re.compile(r"/dashboard(?:[/?#][!-~]*)?")


def _safe_next(target: str | None) -> str:
    """The dashboard page the sign-in was asked from, or the overview: never another site,
    and never a line break or control character, which cannot go into a Location header."""
    if (
        target
        and SAFE_NEXT.fullmatch(target)
        and "//" not in target
        and "\\" not in target
        and ".." not in target.split("?", 1)[0]
    ):
        return target
    return url_for("dashboard.overview")


def _page(template: str, status: int = 200, **context: Any) -> ResponseReturnValue:
    """A sign-in page: never cached, never sent on as a referrer (its address may hold a token)."""
    response = make_response(render_template(template, **context), status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _login_page(form: LoginForm, status: int) -> ResponseReturnValue:
    return _page("dashboard/login.html", status, form=form, unlocked=_still(session.get(UNLOCKED)) is not None)


@bp.route("/login", methods=["GET", "POST"])
@limiter.shared_limit(_login_limit, scope="staff-sign-in-address", methods=["POST"], error_message=_too_many)
@limiter.shared_limit(
    _login_limit,
    scope="staff-sign-in-account",
    methods=["POST"],
    key_func=_sign_in_account_key,
    exempt_when=_no_account,
    error_message=_too_many_for_account,
    on_breach=_on_account_breach,
)
@limits.give_back_when(_signed_in)
def login() -> ResponseReturnValue:
    """Sign in with e-mail and password; a new session each time (or, with two-factor
    sign-in, the code's page).

    Every try is counted before the password is checked (a successful one is given
    back), and the check runs outside any transaction: on SQLite a POST holds the
    write lock, and a login flood would otherwise stall every write.
    """
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.overview"))
    form = LoginForm()
    if not form.validate_on_submit():
        return _login_page(form, 400 if request.method == "POST" else 200)
    email = normalise_email(form.email.data or "")
    user = db.session.execute(select(StaffUser).filter_by(email=email)).scalar_one_or_none()
    password = form.password.data or ""
    stored_hash = user.password_hash if user else None
    unlocked = _unlocked_for(email)
    with outside_transaction():
        valid = password_matches(stored_hash, password) if stored_hash else check_unknown_password(password)
    if not valid or user is None or not user.active:  # `active` read afresh, after the check
        if user is not None:
            sessions.failed_sign_in(user, "password")
            transactions.keep_changes()  # the refusal is a 401, the audit row stays
        form.password.errors = [_("The e-mail or password is not right.")]
        return _login_page(form, 401)
    next_page = _safe_next(request.args.get("next"))
    if user.two_factor_on:
        session.clear()  # nothing from before survives; the half-signed state opens no page
        session[PENDING] = {
            "id": user.id,
            "email": user.email,
            "until": _until(PENDING_MINUTES),
            "stamp": user.password_hash[-16:],
            "unlocked": unlocked,
            "next": next_page,
        }
        return redirect(url_for(".code_page"), 303)
    return _complete(user, next_page)


def _complete(user: StaffUser, next_page: str) -> ResponseReturnValue:
    session.clear()  # nothing from before the login survives into the new session
    sessions.start_session(user)
    login_user(user)
    return redirect(next_page, 303)


def _pending_user() -> tuple[StaffUser, dict[str, Any]] | None:
    """The account of this browser's half-signed state, while the state lasts and the
    account is active, has the same password and still uses a second factor."""
    kept = _pending()
    if kept is None or not 0 < kept["id"] <= MAX_ID:
        return None
    user = db.session.get(StaffUser, kept["id"])
    if user is None or not user.active or not user.two_factor_on or user.password_hash[-16:] != kept.get("stamp"):
        return None
    return user, kept


def _code_page(form: CodeForm, status: int, message: str | None = None) -> ResponseReturnValue:
    pending = _pending_user() is not None
    return _page("dashboard/login_code.html", status, form=form, pending=pending, message=message)


@bp.get("/login/code")
def code_page() -> ResponseReturnValue:
    """The second step: the code from the authenticator app, or a recovery code."""
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.overview"))
    return _code_page(CodeForm(formdata=None), 200)


@bp.post("/login/code")
@limiter.shared_limit(_login_limit, scope="staff-sign-in-address", error_message=_too_many)
@limiter.shared_limit(
    _login_limit,
    scope="staff-sign-in-account",
    key_func=_sign_in_account_key,
    exempt_when=_no_account,
    error_message=_too_many_for_account,
    on_breach=_on_account_breach,
)
@limits.give_back_when(_signed_in)
def enter_code() -> ResponseReturnValue:
    """Finish signing in with a code; a wrong one counts against the account's allowance."""
    form = CodeForm()
    found = _pending_user()
    if found is None:
        session.pop(PENDING, None)
        return _code_page(
            form, 400, _("This sign-in has expired or was not started. Sign in with your password again.")
        )
    if not form.validate():
        return _code_page(form, 400)
    user, kept = found
    try:
        two_factor.check_code(user, form.code.data or "")
    except Refused as refused:
        sessions.failed_sign_in(user, "code")
        transactions.keep_changes()  # the refusal is a 401, the audit row stays
        return _code_page(form, 401, show_refusal(form, refused))
    return _complete(user, _safe_next(str(kept.get("next") or "")))


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """End this session for good, not just forget the cookie."""
    if current_user.is_authenticated:
        sessions.end_session(current_user._get_current_object())
    logout_user()
    session.clear()
    return redirect(url_for("dashboard_auth.login"), 303)


# --- Forgot password? ----------------------------------------------------------------------------


def _reset_email_key() -> str:
    return "staff-reset:" + _form_email()


@bp.get("/login/forgot")
def forgot_page() -> ResponseReturnValue:
    return _page("dashboard/login_forgot.html", form=ForgotForm(formdata=None))


@bp.post("/login/forgot")
@limiter.limit(_reset_ip_limit, error_message=_too_many_resets)
@limiter.limit(_reset_email_limit, key_func=_reset_email_key, exempt_when=_no_email, error_message=_too_many_resets)
def forgot() -> ResponseReturnValue:
    """E-mail a reset link to an active account; the same answer whether there is one."""
    form = ForgotForm()
    if not form.validate():
        return _page("dashboard/login_forgot.html", 400, form=form)
    made = recovery.request_reset(form.email.data or "")
    if made is not None:
        user, row, token = made
        queue_reset(user, row, token, recovery.LINK_VALID_MINUTES)
    return _page("dashboard/login_forgot_sent.html", minutes=recovery.LINK_VALID_MINUTES)


def _link_refused(refused: Refused) -> ResponseReturnValue:
    return _page("dashboard/login_link.html", refused.status, message=refused.message())


@bp.get("/login/reset/<staff_token>")
def reset_page(staff_token: str) -> ResponseReturnValue:
    """What the reset link opens: the new password's form; uses nothing."""
    try:
        recovery.open_token(staff_token, "reset")
    except Refused as refused:
        return _link_refused(refused)
    return _page("dashboard/login_reset.html", form=NewPasswordForm(formdata=None), token=staff_token)


@bp.post("/login/reset/<staff_token>")
@limiter.limit(_login_limit, error_message=_too_many)
def reset(staff_token: str) -> ResponseReturnValue:
    """Set the new password: the link is used up and every session of the account ends."""
    try:
        recovery.open_token(staff_token, "reset")
    except Refused as refused:
        return _link_refused(refused)
    form = NewPasswordForm()
    if not form.validate():
        return _page("dashboard/login_reset.html", 400, form=form, token=staff_token)
    try:
        recovery.use_reset(staff_token, form.password.data or "", form.confirm.data or "")
    except Refused as refused:
        if refused.field is None:
            return _link_refused(refused)
        show_refusal(form, refused)
        return _page("dashboard/login_reset.html", refused.status, form=form, token=staff_token)
    session.clear()
    flash(_("Your password is changed, and you were signed out everywhere. Sign in with the new one."), "success")
    return redirect(url_for(".login"), 303)


# --- The unlock link -------------------------------------------------------------------------------


@bp.get("/login/unlock/<unlock_token>")
def unlock_page(unlock_token: str) -> ResponseReturnValue:
    """What the unlock link opens: a button (mail scanners open links by themselves)."""
    try:
        recovery.open_token(unlock_token, "unlock")
    except Refused as refused:
        return _link_refused(refused)
    return _page("dashboard/login_unlock.html", token=unlock_token)


@bp.post("/login/unlock/<unlock_token>")
@limiter.limit(_login_limit, error_message=_too_many)
def unlock(unlock_token: str) -> ResponseReturnValue:
    """The button: this browser may sign in to the account with an allowance of its own."""
    try:
        row, user = recovery.use_unlock(unlock_token)
    except Refused as refused:
        return _link_refused(refused)
    session[UNLOCKED] = {"email": user.email, "token": row.id, "until": _until(recovery.LINK_VALID_MINUTES)}
    flash(_("You can sign in from this browser now, whatever others try."), "success")
    return redirect(url_for(".login"), 303)
