"""Staff accounts and the audit log of what they did."""

from __future__ import annotations

import enum
import secrets
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, Timestamps, UTCDateTime, enum_column, utcnow

_hasher = PasswordHasher()  # argon2id with the library's current parameters


class StaffRole(enum.StrEnum):
    ADMIN = "admin"
    FUNDRAISER = "fundraiser"
    VIEWER = "viewer"


class StaffUser(Timestamps, Base):
    """A person who works in the dashboard."""

    __tablename__ = "staff_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: login e-mail, stored normalised (lower case)
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    #: argon2id hash; never the password
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[StaffRole] = mapped_column(enum_column(StaffRole, "staff_role"))
    active: Mapped[bool] = mapped_column(default=True)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: changes whenever every session of this person must end (deactivation, new password)
    session_token: Mapped[str] = mapped_column(sa.String(64), default=lambda: secrets.token_hex(16))

    def set_password(self, password: str) -> None:
        """Store an argon2id hash of `password` and end every existing session."""
        self.password_hash = _hasher.hash(password)
        self.session_token = secrets.token_hex(16)

    def check_password(self, password: str) -> bool:
        """True when `password` matches; a malformed stored hash never matches."""
        try:
            return _hasher.verify(self.password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


class AuditEvent(Base):
    """Who did what to which record, and when: one row per staff write or export."""

    __tablename__ = "audit_event"
    __table_args__ = (
        sa.Index("ix_audit_event_created_at", "created_at"),
        sa.Index("ix_audit_event_staff_user_id", "staff_user_id"),
        sa.Index("ix_audit_event_action", "action"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: the staff member; None for the system or a command-line action
    staff_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_user.id"))
    #: who, in words, kept even if the account goes: an e-mail or "cli"
    actor: Mapped[str] = mapped_column(sa.String(320))
    #: what, e.g. "gift.refund", "supporters.export"
    action: Mapped[str] = mapped_column(sa.String(64))
    #: which record, e.g. ("gift", "123")
    target_type: Mapped[str | None] = mapped_column(sa.String(32))
    target_id: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
