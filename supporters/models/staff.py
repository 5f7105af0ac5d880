"""Staff accounts and the audit log of what they did."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Mapped, mapped_column

from supporters.models.base import Base, Timestamps, UTCDateTime, enum_column, utcnow

_hasher = PasswordHasher()  # argon2id with the library's current parameters


class StaffRole(enum.StrEnum):
    ADMIN = "admin"
    FUNDRAISER = "fundraiser"
    VIEWER = "viewer"


class StaffUser(Timestamps, Base):
    """A person who works in the dashboard."""

    __tablename__ = "staff_user"

    id: Mapped[int] = mapped_column(primary_key=True, info={"personal": False})
    #: login e-mail, stored normalised (lower case)
    email: Mapped[str] = mapped_column(sa.String(320), unique=True, info={"personal": True})
    #: argon2id hash; never the password
    password_hash: Mapped[str] = mapped_column(sa.String(255), info={"personal": True})
    role: Mapped[StaffRole] = mapped_column(enum_column(StaffRole, "staff_role"), info={"personal": False})
    active: Mapped[bool] = mapped_column(default=True, info={"personal": False})
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": True})
    #: the password is a temporary one (an invitation): every dashboard page asks for a new one first
    must_change_password: Mapped[bool] = mapped_column(default=False, info={"personal": False})
    #: the TOTP secret (base32) of the authenticator app, once confirmed with a code
    totp_secret: Mapped[str | None] = mapped_column(sa.String(64), info={"personal": True})
    #: a secret shown for enrolment and not yet confirmed with a code
    totp_pending_secret: Mapped[str | None] = mapped_column(sa.String(64), info={"personal": True})
    #: when two-factor sign-in was turned on (None: off)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})
    #: the 30-second step of the last code accepted: a code is never accepted twice
    totp_last_step: Mapped[int | None] = mapped_column(sa.BigInteger(), info={"personal": False})

    #: the token of the session this request runs in (set when the session is loaded; not a column)
    session_token = None  # type: str | None

    @property
    def two_factor_on(self) -> bool:
        return self.totp_enabled_at is not None and bool(self.totp_secret)

    def set_password(self, password: str) -> None:
        """Store an argon2id hash of `password` (callers end the person's other sessions)."""
        self.password_hash = _hasher.hash(password)

    def get_id(self) -> str:
        """What Flask-Login keeps in the cookie: the account and this session's token."""
        return f"{self.id}:{self.session_token}"

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def check_password(self, password: str) -> bool:
        """True when `password` matches; a malformed stored hash never matches."""
        return password_matches(self.password_hash, password)


def password_matches(password_hash: str, password: str) -> bool:
    """True when `password` matches the stored argon2 hash; a malformed hash never matches.
    Needs no database: the sign-in page runs it outside any transaction."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def check_unknown_password(password: str) -> bool:
    """Spend the same time as checking a real password, for an account that does not
    exist, so timing does not tell which e-mails have accounts. Always False."""
    try:
        _hasher.verify(_DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        pass
    return False


_DUMMY_HASH = _hasher.hash("not a password anyone has")


class StaffSession(Base):
    """One login: what the session cookie points at, so logging out, timeouts and
    deactivation really end it. Only a hash of the cookie's token is stored."""

    __tablename__ = "staff_session"
    __table_args__ = (sa.Index("ix_staff_session_staff_user_id", "staff_user_id"),)

    #: sha256 of the random token in the session cookie
    token_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True, info={"personal": False})
    staff_user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("staff_user.id", ondelete="CASCADE"), info={"personal": False}
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, info={"personal": False})
    #: last request seen (updated at most once a minute)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, info={"personal": True})
    #: set by logout, deactivation or a password change
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})
    #: the browser that logged in, for the staff page (no IP address is kept)
    user_agent: Mapped[str] = mapped_column(sa.String(300), default="", info={"personal": True})


class StaffRecoveryCode(Base):
    """One of the ten one-time recovery codes of an account's two-factor sign-in: only
    its sha256 is stored (the code has 80 random bits); `used_at` once spent."""

    __tablename__ = "staff_recovery_code"
    __table_args__ = (sa.Index("ix_staff_recovery_code_staff_user_id", "staff_user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, info={"personal": False})
    staff_user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("staff_user.id", ondelete="CASCADE"), info={"personal": False}
    )
    code_hash: Mapped[str] = mapped_column(sa.String(64), info={"personal": False})
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, info={"personal": False})
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})


class StaffToken(Base):
    """A single-use link e-mailed to a staff member: a password reset ("reset") or, after
    many failed sign-ins, a way in that the attacker's tries do not block ("unlock").
    Only the HMAC of the link's token is stored."""

    __tablename__ = "staff_token"
    __table_args__ = (
        sa.CheckConstraint("purpose IN ('reset', 'unlock')", name="purpose_known"),
        sa.CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        sa.Index("ix_staff_token_staff_user_id_created_at", "staff_user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, info={"personal": False})
    staff_user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("staff_user.id", ondelete="CASCADE"), info={"personal": False}
    )
    purpose: Mapped[str] = mapped_column(sa.String(16), info={"personal": False})
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True, info={"personal": False})
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, info={"personal": False})
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), info={"personal": False})
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})
    #: wrong passwords typed on an unlock link's page
    attempts: Mapped[int] = mapped_column(default=0, info={"personal": False})


class AuditEvent(Base):
    """Who did what to which record, and when: one row per staff write or export."""

    __tablename__ = "audit_event"
    __table_args__ = (
        sa.Index("ix_audit_event_created_at", "created_at"),
        sa.Index("ix_audit_event_staff_user_id", "staff_user_id"),
        sa.Index("ix_audit_event_action", "action"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, info={"personal": False})
    #: the staff member; None for the system or a command-line action
    staff_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_user.id"), info={"personal": False})
    #: who, in words, kept even if the account goes: an e-mail or "cli"
    actor: Mapped[str] = mapped_column(sa.String(320), info={"personal": True})
    #: what, e.g. "gift.refund", "supporters.export"
    action: Mapped[str] = mapped_column(sa.String(64), info={"personal": False})
    #: which record, e.g. ("gift", "123")
    target_type: Mapped[str | None] = mapped_column(sa.String(32), info={"personal": False})
    target_id: Mapped[str | None] = mapped_column(sa.String(64), info={"personal": False})
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, info={"personal": False})
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict, info={"personal": True})
