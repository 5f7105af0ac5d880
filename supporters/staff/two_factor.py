"""Two-factor sign-in for staff: a TOTP authenticator app (RFC 6238, pyotp) and ten
one-time recovery codes.

Enrolment: a secret is drawn and kept as *pending* (`totp_pending_secret`) while the
page shows it (QR code and text); it is on only once a code from the app is typed
back. The ten recovery codes are shown then, once; only their sha256 is stored (each
has 80 random bits), and a code used is spent. A TOTP code is accepted for the current
30-second step or the one either side, and never twice (`totp_last_step`). Turning it
off takes the password and a code; an admin can reset another member's (they enrol
again). `SUPPORTERS_STAFF_2FA_REQUIRED_FOR` names the roles that must have it: they are
sent to enrol before any other dashboard page (dashboard/access.py). Every change is
audited; functions flush, the request commits.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime

import pyotp
import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l

from supporters.extensions import db
from supporters.lib import audit
from supporters.lib.errors import Refused
from supporters.models import StaffRecoveryCode, StaffUser, utcnow

RECOVERY_CODES = 10
#: a recovery code: 16 characters of the base32 alphabet (80 bits), shown in groups of four
RECOVERY_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
RECOVERY_LENGTH = 16
STEP_SECONDS = 30
TOTP_CODE = re.compile(r"[0-9]{6}")

WRONG_CODE = _l(
    "This code is not right. Type the 6 digits your authenticator app shows now, or one of your recovery codes."
)
NOT_STARTED = _l("Start setting up two-factor sign-in again: the page you used is out of date.")
WRONG_PASSWORD = _l("This is not your current password.")
REQUIRED = _l(
    "Two-factor sign-in is required for your role, so it cannot be turned off. "
    "To move it to a new phone, set it up again."
)
NOT_YOURS = _l("Reset your own two-factor sign-in from your own account page.")


def required_for(user: StaffUser) -> bool:
    """True when `user`'s role must sign in with a second factor."""
    return user.role.value in current_app.config.get("SUPPORTERS_STAFF_2FA_REQUIRED_FOR", [])


def needs_enrolment(user: StaffUser) -> bool:
    """The role requires two-factor sign-in and the account has none yet."""
    return required_for(user) and not user.two_factor_on


def start_enrolment(user: StaffUser) -> str:
    """Draw a new secret for `user`'s authenticator app, pending until a code confirms it
    (flushes). An enrolled account keeps its current secret until then."""
    user.totp_pending_secret = pyotp.random_base32()
    db.session.flush()
    return user.totp_pending_secret


def provisioning_uri(user: StaffUser, secret: str) -> str:
    """The otpauth:// address the QR code holds."""
    issuer = str(current_app.config.get("SUPPORTERS_ORG_NAME") or "Supporters")
    return str(pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=issuer))


def _matching_step(secret: str, code: str, now: datetime, after: int | None) -> int | None:
    """The 30-second step (now, or one either side) whose code is `code`, later than
    `after`; None when there is none."""
    if not TOTP_CODE.fullmatch(code):
        return None
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // STEP_SECONDS
    for step in (current, current - 1, current + 1):
        if after is not None and step <= after:
            continue
        if hmac.compare_digest(str(totp.at(step * STEP_SECONDS)), code):
            return step
    return None


def _recovery_hash(code: str) -> str:
    return hashlib.sha256(normalise_recovery(code).encode()).hexdigest()


def normalise_recovery(code: str) -> str:
    """A recovery code as typed, without spaces or dashes, in lower case."""
    return re.sub(r"[\s-]+", "", code or "").lower()


def _new_recovery_codes(user: StaffUser, now: datetime) -> list[str]:
    """Replace `user`'s recovery codes with ten new ones; returns them, for showing once."""
    db.session.execute(sa.delete(StaffRecoveryCode).where(StaffRecoveryCode.staff_user_id == user.id))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))
        codes.append("-".join(raw[i : i + 4] for i in range(0, RECOVERY_LENGTH, 4)))
        db.session.add(StaffRecoveryCode(staff_user_id=user.id, code_hash=_recovery_hash(raw), created_at=now))
    db.session.flush()
    return codes


def confirm_enrolment(user: StaffUser, code: str, now: datetime | None = None) -> list[str]:
    """The code typed from the app matches the pending secret: two-factor sign-in is on
    (or moved to the new secret), with ten new recovery codes, returned to be shown once."""
    now = now or utcnow()
    secret = user.totp_pending_secret
    if not secret:
        raise Refused(NOT_STARTED)
    step = _matching_step(secret, (code or "").strip(), now, None)
    if step is None:
        raise Refused(WRONG_CODE, field="code")
    replaced = user.two_factor_on
    user.totp_secret, user.totp_pending_secret = secret, None
    user.totp_enabled_at, user.totp_last_step = now, step
    codes = _new_recovery_codes(user, now)
    audit.record(user, "staff.2fa_enabled", "staff_user", user.id, replaced=replaced, recovery_codes=len(codes))
    return codes


def check_code(user: StaffUser, code: str, now: datetime | None = None) -> str:
    """Accept a code of `user`'s second factor and spend it: a TOTP code ("totp") or a
    recovery code ("recovery"). Refuses (400) anything else, the same way whatever is wrong.
    Each is spent by one conditional UPDATE, so two requests with one code accept it once."""
    now = now or utcnow()
    typed = (code or "").strip()
    if not user.two_factor_on or not typed or len(typed) > 64:
        raise Refused(WRONG_CODE, field="code")
    if TOTP_CODE.fullmatch(typed):
        step = _matching_step(user.totp_secret or "", typed, now, user.totp_last_step)
        if step is not None:
            spent = db.session.execute(
                sa.update(StaffUser)
                .where(
                    StaffUser.id == user.id,
                    sa.or_(StaffUser.totp_last_step.is_(None), StaffUser.totp_last_step < step),
                )
                .values(totp_last_step=step)
            )
            if spent.rowcount == 1:  # type: ignore[attr-defined]
                user.totp_last_step = step
                return "totp"
        raise Refused(WRONG_CODE, field="code")
    spent = db.session.execute(
        sa.update(StaffRecoveryCode)
        .where(
            StaffRecoveryCode.staff_user_id == user.id,
            StaffRecoveryCode.code_hash == _recovery_hash(typed),
            StaffRecoveryCode.used_at.is_(None),
        )
        .values(used_at=now)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        raise Refused(WRONG_CODE, field="code")
    audit.record(
        user, "staff.2fa_recovery_code_used", "staff_user", user.id, recovery_codes_left=recovery_codes_left(user)
    )
    return "recovery"


def recovery_codes_left(user: StaffUser) -> int:
    """How many of `user`'s recovery codes are not spent."""
    return int(
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(StaffRecoveryCode)
            .where(StaffRecoveryCode.staff_user_id == user.id, StaffRecoveryCode.used_at.is_(None))
        )
        or 0
    )


def renew_recovery_codes(user: StaffUser, code: str, now: datetime | None = None) -> list[str]:
    """Ten new recovery codes (the old ones stop working), for a code of the second factor."""
    now = now or utcnow()
    check_code(user, code, now)
    codes = _new_recovery_codes(user, now)
    audit.record(user, "staff.2fa_recovery_codes_renewed", "staff_user", user.id, recovery_codes=len(codes))
    return codes


def _clear(user: StaffUser) -> None:
    user.totp_secret = user.totp_pending_secret = None
    user.totp_enabled_at = user.totp_last_step = None
    db.session.execute(sa.delete(StaffRecoveryCode).where(StaffRecoveryCode.staff_user_id == user.id))
    db.session.flush()


def disable(user: StaffUser, password_matches: bool, code: str, now: datetime | None = None) -> None:
    """`user` turns their two-factor sign-in off, with their password and a code."""
    if required_for(user):
        raise Refused(REQUIRED)
    if not password_matches:
        raise Refused(WRONG_PASSWORD, field="password")
    check_code(user, code, now)
    _clear(user)
    audit.record(user, "staff.2fa_disabled", "staff_user", user.id)


def reset_for(actor: StaffUser, user: StaffUser) -> bool:
    """An admin clears another member's two-factor sign-in (a lost phone): they set it up
    again at their next sign-in if their role requires it. False when it was off."""
    if actor.id == user.id:
        raise Refused(NOT_YOURS)
    if not user.two_factor_on and not user.totp_pending_secret:
        return False
    _clear(user)
    audit.record(actor, "staff.2fa_reset", "staff_user", user.id, email=user.email)
    return True


def clear_on_reinvite(user: StaffUser) -> bool:
    """A re-invited person starts afresh: their old second factor is cleared (the caller
    audits the re-invitation). True when there was one."""
    had = user.two_factor_on or bool(user.totp_pending_secret)
    _clear(user)
    return had
