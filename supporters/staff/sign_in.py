"""/login and /logout for staff."""

from __future__ import annotations

import re
from typing import Any

from flask import (
    Blueprint,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user, logout_user
from sqlalchemy import select
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from supporters.extensions import db, limiter
from supporters.lib import limits
from supporters.lib.forms import Form, no_control_characters
from supporters.lib.transactions import outside_transaction
from supporters.models import StaffUser, normalise_email
from supporters.models.staff import check_unknown_password, password_matches
from supporters.staff import sessions

bp = Blueprint("dashboard_auth", __name__)


class LoginForm(Form):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=320), no_control_characters])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1000)])


def _login_limit() -> str:
    return str(current_app.config["LOGIN_LIMIT"])


def _account_key() -> str:
    return "login:" + normalise_email(request.form.get("email", ""))[:320]


def _no_email() -> bool:
    """A form without an e-mail is sent back (and the per-address limit still counts it)."""
    return not normalise_email(request.form.get("email", ""))


def _signed_in(response: Any) -> bool:
    """A successful sign-in gives its hits back: only failed tries use up the allowance."""
    return bool(response.status_code == 303)


def _too_many() -> str:
    return _("Too many failed sign-in attempts. Please wait 15 minutes and try again.")


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


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"], error_message=_too_many)
@limiter.limit(_login_limit, methods=["POST"], key_func=_account_key, exempt_when=_no_email, error_message=_too_many)
@limits.give_back_when(_signed_in)
def login() -> ResponseReturnValue:
    """Sign in with e-mail and password; a new session each time.

    Every try is counted before the password is checked (a successful one is given
    back), and the check runs outside any transaction: on SQLite a POST holds the
    write lock, and a login flood would otherwise stall every write.
    """
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.overview"))
    form = LoginForm()
    if not form.validate_on_submit():
        return render_template("dashboard/login.html", form=form), 400 if request.method == "POST" else 200
    user = db.session.execute(
        select(StaffUser).filter_by(email=normalise_email(form.email.data or ""))
    ).scalar_one_or_none()
    password = form.password.data or ""
    stored_hash = user.password_hash if user else None
    with outside_transaction():
        valid = password_matches(stored_hash, password) if stored_hash else check_unknown_password(password)
    if not valid or user is None or not user.active:  # `active` read afresh, after the check
        form.password.errors = [_("The e-mail or password is not right.")]
        return render_template("dashboard/login.html", form=form), 401
    session.clear()  # nothing from before the login survives into the new session
    sessions.start_session(user)
    login_user(user)
    return redirect(_safe_next(request.args.get("next")), 303)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """End this session for good, not just forget the cookie."""
    if current_user.is_authenticated:
        sessions.end_session(current_user._get_current_object())
    logout_user()
    session.clear()
    return redirect(url_for("dashboard_auth.login"), 303)
