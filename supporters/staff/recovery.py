"""A staff member's password: the rules a new one meets, changing it, and the two
single-use links e-mailed to an account: a password reset, and an unlock link after
many failed sign-ins.

Both links are random tokens of which only the HMAC (keyed with SECRET_KEY) is stored
(`StaffToken`), as for the donor's sign-in (donors/signin.py); they work once, for
LINK_VALID_MINUTES, and only for an active account. A reset sets a new password and
ends every session of the account; it never signs in, so the next sign-in still asks
for the second factor. An unlock link signs nobody in either: it gives the browser
that opens it an allowance of its own for this account's sign-in, which the failed
tries of others do not use up (see sign_in.py). Functions flush and audit; the request
commits.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from supporters.cli import MIN_PASSWORD_LENGTH
from supporters.extensions import db
from supporters.lib import audit
from supporters.lib.errors import Refused
from supporters.lib.tokens import keyed_hash
from supporters.models import StaffToken, StaffUser, normalise_email, utcnow
from supporters.staff import sessions

LINK_VALID_MINUTES = 30
#: the longest password accepted (argon2 hashes any length; this bounds the work)
MAX_PASSWORD_LENGTH = 1000
#: a token as `_new_token` makes it (secrets.token_urlsafe(32)); anything else is not looked up
TOKEN = re.compile(r"[A-Za-z0-9_-]{40,50}")
#: who the audit log names for what is done from the sign-in pages, before anyone signed in
ANONYMOUS = sessions.ANONYMOUS

NOT_FOUND = _l("This link is not valid. Please open the link exactly as it is in the e-mail.")
USED = _l("This link has already been used. Ask for a new one if you still need it.")
EXPIRED = _l("This link has expired: links work for %(minutes)s minutes. Ask for a new one.")
TOO_SHORT = _l("Choose a password of at least %(length)s characters.")
TOO_LONG = _l("Choose a password of at most %(length)s characters.")
HAS_EMAIL = _l("Choose a password that does not contain your e-mail address.")
NOT_THE_SAME = _l("The two passwords are not the same.")
WRONG_CURRENT = _l("This is not your current password.")


_hash = keyed_hash


def active_account(email: str) -> StaffUser | None:
    """The active account with this address, or None."""
    address = normalise_email(email or "")
    if not address:
        return None
    user = db.session.scalars(select(StaffUser).filter_by(email=address)).first()
    return user if user is not None and user.active else None


# --- The password rules -----------------------------------------------------------------------


def password_problem(email: str, password: str) -> Refused | None:
    """Why `password` cannot be the password of the account `email`, or None.

    ASVS level 2 (2.1): at least 12 characters, long ones allowed, any character; no
    composition rules. It may not contain the account's e-mail address or its part
    before the @ (when that has 3 characters or more)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return Refused(TOO_SHORT, field="password", length=MIN_PASSWORD_LENGTH)
    if len(password) > MAX_PASSWORD_LENGTH:
        return Refused(TOO_LONG, field="password", length=MAX_PASSWORD_LENGTH)
    address = normalise_email(email)
    local = address.split("@", 1)[0]
    folded = password.casefold()
    if address and (address in folded or (len(local) >= 3 and local in folded)):
        return Refused(HAS_EMAIL, field="password")
    return None


def _set_password(user: StaffUser, password: str, confirm: str) -> None:
    if password != confirm:
        raise Refused(NOT_THE_SAME, field="confirm")
    problem = password_problem(user.email, password)
    if problem is not None:
        raise problem
    user.set_password(password)
    user.must_change_password = False


def change_password(user: StaffUser, current_matches: bool, password: str, confirm: str) -> int:
    """The signed-in `user` chooses a new password (flushes, audits). `current_matches`:
    the current password they typed is right (checked by the page outside the
    transaction). Their other sessions end; returns how many."""
    if not current_matches:
        raise Refused(WRONG_CURRENT, field="current_password")
    was_temporary = user.must_change_password
    _set_password(user, password, confirm)
    db.session.flush()
    ended = sessions.end_all_sessions(user, keep=user.session_token)
    audit.record(
        user, "staff.password_change", "staff_user", user.id, was_temporary=was_temporary, other_sessions_ended=ended
    )
    return ended


# --- The e-mailed links -----------------------------------------------------------------------


def _new_token(user: StaffUser, purpose: str, now: datetime) -> tuple[StaffToken, str]:
    token = secrets.token_urlsafe(32)
    row = StaffToken(
        staff_user_id=user.id,
        purpose=purpose,
        token_hash=_hash(token),
        created_at=now,
        expires_at=now + timedelta(minutes=LINK_VALID_MINUTES),
        attempts=0,
    )
    db.session.add(row)
    db.session.flush()
    return row, token


def request_reset(email: str, now: datetime | None = None) -> tuple[StaffUser, StaffToken, str] | None:
    """A new reset link for the active account `email`: (account, row, token), or None
    when there is no such account (the page answers the same). Audited."""
    now = now or utcnow()
    user = active_account(email)
    if user is None:
        return None
    row, token = _new_token(user, "reset", now)
    audit.record(None, "staff.password_reset_requested", "staff_user", user.id, actor_name=ANONYMOUS)
    return user, row, token


def issue_unlock(email: str, now: datetime | None = None) -> tuple[StaffUser, StaffToken, str] | None:
    """The account `email` had too many failed sign-ins: a new unlock link for its owner,
    unless one sent in the last LINK_VALID_MINUTES is still unused (one e-mail per
    lockout, however many tries follow). None for no such account. Audited as the lockout."""
    now = now or utcnow()
    user = active_account(email)
    if user is None:
        return None
    # Sign-ins failing at once each reach here: the account's row, locked until the
    # request ends, makes the second wait for the first's link and find it.
    db.session.get(StaffUser, user.id, with_for_update=True, populate_existing=True)
    waiting = db.session.scalar(
        select(StaffToken.id)
        .where(
            StaffToken.staff_user_id == user.id,
            StaffToken.purpose == "unlock",
            StaffToken.used_at.is_(None),
            StaffToken.expires_at > now,
        )
        .limit(1)
    )
    if waiting is not None:
        return None
    row, token = _new_token(user, "unlock", now)
    audit.record(None, "staff.lockout", "staff_user", user.id, actor_name=ANONYMOUS, unlock_link_sent=True)
    return user, row, token


def open_token(token: str, purpose: str, now: datetime | None = None) -> tuple[StaffToken, StaffUser]:
    """The link `token` of `purpose` and its account, while it may be used (reads only).

    Refuses (404) a token that is not ours or whose account is deactivated, (410) one
    used or expired."""
    now = now or utcnow()
    row = None
    if TOKEN.fullmatch(token or ""):
        row = db.session.scalars(select(StaffToken).filter_by(token_hash=_hash(token), purpose=purpose)).first()
    user = db.session.get(StaffUser, row.staff_user_id) if row is not None else None
    if row is None or user is None or not user.active:
        raise Refused(NOT_FOUND, status=404)
    if row.used_at is not None:
        raise Refused(USED, status=410)
    if row.expires_at <= now:
        raise Refused(EXPIRED, status=410, minutes=LINK_VALID_MINUTES)
    return row, user


def _close(row: StaffToken, now: datetime) -> None:
    """Mark the link used: one conditional UPDATE, so two uses at once count once."""
    closed = db.session.connection().execute(
        sa.update(StaffToken).where(StaffToken.id == row.id, StaffToken.used_at.is_(None)).values(used_at=now)
    )
    if closed.rowcount != 1:
        raise Refused(USED, status=410)
    db.session.refresh(row)


def use_reset(token: str, password: str, confirm: str, now: datetime | None = None) -> StaffUser:
    """The reset link's form: the account gets `password`, the link and every other reset
    link of the account are used up, and every session of the account ends (flushes,
    audits). Signs nobody in."""
    now = now or utcnow()
    row, user = open_token(token, "reset", now)
    _set_password(user, password, confirm)
    _close(row, now)
    db.session.execute(
        sa.update(StaffToken)
        .where(StaffToken.staff_user_id == user.id, StaffToken.purpose == "reset", StaffToken.used_at.is_(None))
        .values(used_at=now)
    )
    db.session.flush()
    ended = sessions.end_all_sessions(user)
    audit.record(None, "staff.password_reset", "staff_user", user.id, actor_name=ANONYMOUS, sessions_ended=ended)
    return user


def use_unlock(token: str, now: datetime | None = None) -> tuple[StaffToken, StaffUser]:
    """The unlock link's button: the link is used up (flushes, audits); the page then lets
    this browser sign in to the account with an allowance of its own."""
    now = now or utcnow()
    row, user = open_token(token, "unlock", now)
    _close(row, now)
    audit.record(None, "staff.unlock_link_used", "staff_user", user.id, actor_name=ANONYMOUS)
    return row, user


def set_temporary(user: StaffUser, password: str) -> int:
    """An admin gives `user` a temporary password (re-invitation): it must be changed at
    the next sign-in; every session of the account ends. The caller audits."""
    user.set_password(password)
    user.must_change_password = True
    db.session.flush()
    return sessions.end_all_sessions(user)
