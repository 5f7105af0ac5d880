"""Staff sessions: one row per login, so that logging out, idle and absolute
timeouts and deactivation really end a session (a signed cookie alone cannot be
taken back). The cookie holds a random token; the database only its hash."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import current_app, request
from sqlalchemy import update

from supporters.extensions import db
from supporters.lib import audit, transactions
from supporters.lib.forms import whole_number
from supporters.models import StaffSession, StaffUser, utcnow

#: how often last_seen_at is written: not on every request
TOUCH_EVERY = timedelta(minutes=1)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(user: StaffUser) -> str:
    """Open a new session for `user`, audit the sign-in, and return its token (flushes)."""
    token = secrets.token_urlsafe(32)
    db.session.add(
        StaffSession(
            token_hash=_hash(token), staff_user_id=user.id, user_agent=request.headers.get("User-Agent", "")[:300]
        )
    )
    user.session_token = token
    user.last_login_at = utcnow()
    db.session.flush()
    audit.record(user, "staff.login", "staff_user", user.id)
    return token


def end_session(user: StaffUser) -> None:
    """End the session this request runs in and audit the sign-out (flushes)."""
    audit.record(user, "staff.logout", "staff_user", user.id)
    if user.session_token:
        db.session.execute(
            update(StaffSession)
            .where(StaffSession.token_hash == _hash(user.session_token), StaffSession.ended_at.is_(None))
            .values(ended_at=utcnow())
        )
        db.session.flush()


def end_all_sessions(user: StaffUser, keep: str | None = None) -> int:
    """End every session of `user` (deactivation, new password), but the one whose token
    is `keep` (the person changing their own password stays signed in); returns how many."""
    where = [StaffSession.staff_user_id == user.id, StaffSession.ended_at.is_(None)]
    if keep:
        where.append(StaffSession.token_hash != _hash(keep))
    result = db.session.execute(update(StaffSession).where(*where).values(ended_at=utcnow()))
    db.session.flush()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def load_staff(user_id: str) -> StaffUser | None:
    """Flask-Login's user loader: the account of a live session, or None.

    A session is live when it was not ended, the account is active, it was used
    within STAFF_IDLE_MINUTES, and it began within STAFF_ABSOLUTE_HOURS.
    """
    raw_id, _, token = user_id.partition(":")
    staff_id = whole_number(raw_id)
    if staff_id is None or not token:
        return None
    record = db.session.get(StaffSession, _hash(token))
    if record is None or record.ended_at is not None or record.staff_user_id != staff_id:
        return None
    now = utcnow()
    idle = timedelta(minutes=current_app.config["STAFF_IDLE_MINUTES"])
    absolute = timedelta(hours=current_app.config["STAFF_ABSOLUTE_HOURS"])
    this_session = update(StaffSession).where(StaffSession.token_hash == record.token_hash)
    if now - record.last_seen_at > idle or now - record.created_at > absolute:
        transactions.write_after_commit(this_session.values(ended_at=now))  # else found expired again
        return None
    user = db.session.get(StaffUser, record.staff_user_id)
    if user is None or not user.active:
        return None
    if now - record.last_seen_at > TOUCH_EVERY:  # not written if the answer is an error: the window only shortens
        transactions.write_after_commit(this_session.values(last_seen_at=now))
    user.session_token = token
    return user


#: who the audit log names for tries made on the sign-in pages, before anyone signed in
ANONYMOUS = "sign-in page"


def failed_sign_in(user: StaffUser, stage: str) -> None:
    """Audit a failed sign-in to `user`'s account: a wrong password, or a wrong code
    ("password" or "code"); never what was typed (flushes)."""
    audit.record(None, "staff.login_failed", "staff_user", user.id, actor_name=ANONYMOUS, stage=stage)
