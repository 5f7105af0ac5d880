"""Managing staff accounts: invite, change roles, deactivate and reactivate.

The rules: an admin cannot demote or deactivate themselves, and the last active
admin is never demoted or deactivated, so someone can always manage the staff.
Deactivating ends every session of the account at once. An invitation's password is
temporary: it must be changed at the first sign-in. Inviting the address of a
deactivated account reactivates it with a new temporary password (and no second
factor: the person sets it up again). Functions here flush and write their own audit
rows; the request commits once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from supporters.cli import MIN_PASSWORD_LENGTH
from supporters.extensions import db
from supporters.lib import audit
from supporters.lib.audit import Actor
from supporters.lib.errors import Refused
from supporters.models import (
    StaffRole,
    StaffSession,
    StaffUser,
    normalise_email,
    utcnow,
)
from supporters.staff import recovery, sessions, two_factor

#: bytes of randomness in a temporary password (24 URL-safe characters)
TEMPORARY_PASSWORD_BYTES = 18


@dataclass(frozen=True)
class StaffRow:
    """One account as the staff page lists it."""

    user: StaffUser
    open_sessions: int


def list_staff() -> list[StaffRow]:
    """Every account, with how many of its sessions are still live (not ended, not timed out)."""
    now = utcnow()
    idle = timedelta(minutes=current_app.config["STAFF_IDLE_MINUTES"])
    absolute = timedelta(hours=current_app.config["STAFF_ABSOLUTE_HOURS"])
    live: dict[int, int] = {
        staff_id: int(count)
        for staff_id, count in db.session.execute(
            select(StaffSession.staff_user_id, func.count())
            .where(
                StaffSession.ended_at.is_(None),
                StaffSession.last_seen_at > now - idle,
                StaffSession.created_at > now - absolute,
            )
            .group_by(StaffSession.staff_user_id)
        )
    }
    users = db.session.scalars(select(StaffUser).order_by(StaffUser.active.desc(), StaffUser.email))
    return [StaffRow(user, int(live.get(user.id, 0))) for user in users]


def temporary_password() -> str:
    """A random password for a new account, long enough for the sign-in rules."""
    password = secrets.token_urlsafe(TEMPORARY_PASSWORD_BYTES)
    assert len(password) >= MIN_PASSWORD_LENGTH
    return password


def invite(actor: Actor | None, email: str, role: StaffRole) -> tuple[StaffUser, str, bool]:
    """Create an account with a random temporary password (flushes), or reactivate the
    deactivated account of that address with a new one (`reinvite`).

    Returns the account, the password, which is stored only as its hash (the caller
    shows it once and never logs it), and whether the account was a deactivated one
    reactivated. Refuses for an address
    that is not one or that has an active account.
    """
    try:
        address = normalise_email(validate_email(email, check_deliverability=False).normalized)
    except EmailNotValidError:
        raise Refused(_l("Enter a valid e-mail address.")) from None
    existing = db.session.scalars(select(StaffUser).filter_by(email=address)).first()
    if existing is not None:
        if existing.active:
            raise Refused(_l("There is already an account for %(email)s."), email=address)
        return existing, reinvite(actor, existing, role), True
    password = temporary_password()
    user = StaffUser(email=address, role=role, active=True, must_change_password=True)
    user.set_password(password)
    try:
        with db.session.begin_nested():  # another admin may invite the same person at the same moment
            db.session.add(user)
    except IntegrityError:
        raise Refused(_l("There is already an account for %(email)s."), email=address) from None
    audit.record(actor, "staff.invite", "staff_user", user.id, email=user.email, role=user.role.value)
    return user, password, False


def reinvite(actor: Actor | None, user: StaffUser, role: StaffRole) -> str:
    """Reactivate the deactivated `user` with `role` and a new temporary password, which
    it returns (flushes, audits). Their second factor and any session are cleared: the
    person starts as a newcomer would."""
    password = temporary_password()
    before = user.role
    user.active, user.role = True, role
    had_two_factor = two_factor.clear_on_reinvite(user)
    recovery.set_temporary(user, password)
    audit.record(
        actor,
        "staff.reinvite",
        "staff_user",
        user.id,
        email=user.email,
        role=role.value,
        role_before=before.value,
        two_factor_cleared=had_two_factor,
    )
    return password


def _active_admin_ids() -> set[int]:
    """The active admins, their rows locked until the commit (PostgreSQL), so that two
    admins demoting each other at the same moment cannot leave no admin at all."""
    return set(db.session.scalars(select(StaffUser.id).filter_by(role=StaffRole.ADMIN, active=True).with_for_update()))


def _keep_an_admin(user: StaffUser) -> None:
    if user.role == StaffRole.ADMIN and user.active and _active_admin_ids() <= {user.id}:
        raise Refused(_l("%(email)s is the last active admin: make someone else an admin first."), email=user.email)


def change_role(actor: StaffUser, user: StaffUser, role: StaffRole) -> StaffRole | None:
    """Give `user` another role (flushes); return the old role, or None when it was already that."""
    if user.role == role:
        return None
    if user.id == actor.id:
        raise Refused(_l("You cannot change your own role: ask another admin."))
    if role != StaffRole.ADMIN:
        _keep_an_admin(user)
    before = user.role
    user.role = role
    db.session.flush()
    audit.record(
        actor, "staff.change_role", "staff_user", user.id, email=user.email, before=before.value, after=user.role.value
    )
    return before


def may_deactivate(actor: StaffUser, user: StaffUser) -> bool:
    """Refuses what `deactivate` would refuse (the confirmation page asks only what may be
    done); False when the account is inactive already."""
    if user.id == actor.id:
        raise Refused(_l("You cannot deactivate your own account: ask another admin."))
    if not user.active:
        return False
    _keep_an_admin(user)
    return True


def deactivate(actor: StaffUser, user: StaffUser) -> int | None:
    """Stop `user` signing in and end all their sessions now (flushes).

    Returns how many sessions were ended, or None when the account was already inactive.
    """
    if not may_deactivate(actor, user):
        return None
    user.active = False
    db.session.flush()
    ended = sessions.end_all_sessions(user)
    audit.record(actor, "staff.deactivate", "staff_user", user.id, email=user.email, sessions_ended=ended)
    return ended


def activate(actor: Actor | None, user: StaffUser) -> bool:
    """Let `user` sign in again (flushes, audits); False when the account was already active."""
    if user.active:
        return False
    user.active = True
    db.session.flush()
    audit.record(actor, "staff.activate", "staff_user", user.id, email=user.email)
    return True
