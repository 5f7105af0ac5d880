"""The privacy request log: who asked for what under the GDPR, by when it is due,
and what staff did about it (docs/privacy.md)."""

from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from supporters.models.base import Base, UTCDateTime, enum_column, utcnow
from supporters.models.supporter import Supporter


class RequestKind(enum.Enum):
    """What the person asked for (GDPR Art. 15/20, 17, 16, 21)."""

    ACCESS = "access"
    ERASURE = "erasure"
    RECTIFICATION = "rectification"
    OBJECTION = "objection"


class RequestStatus(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


class PrivacyRequest(Base):
    """One request a person made about their data, from its arrival to its answer."""

    __tablename__ = "privacy_request"
    __table_args__ = (
        sa.Index("ix_privacy_request_status_due_on", "status", "due_on"),
        sa.Index("ix_privacy_request_supporter_id", "supporter_id"),
        sa.CheckConstraint("due_on >= received_on", name="due_after_received"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, info={"personal": False})
    kind: Mapped[RequestKind] = mapped_column(
        enum_column(RequestKind, "privacy_request_kind"), info={"personal": False}
    )
    status: Mapped[RequestStatus] = mapped_column(
        enum_column(RequestStatus, "privacy_request_status"), default=RequestStatus.OPEN, info={"personal": False}
    )
    #: who asked, as they gave it (name, e-mail): cleared once an erasure is done, and by
    #: `flask privacy purge` a year after any other request was closed
    requester_name: Mapped[str | None] = mapped_column(sa.String(200), info={"personal": True})
    requester_email: Mapped[str | None] = mapped_column(sa.String(320), info={"personal": True})
    #: the supporter it is about, once staff found them (None: not found, or purged since)
    supporter_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("supporter.id", ondelete="SET NULL"), info={"personal": False}
    )
    #: the day the request arrived, and the day the answer is due (one month later, Art. 12(3))
    received_on: Mapped[date] = mapped_column(sa.Date, info={"personal": False})
    due_on: Mapped[date] = mapped_column(sa.Date, info={"personal": False})
    #: staff's notes on what was asked and what was done (may quote the person)
    notes: Mapped[str] = mapped_column(sa.Text, default="", info={"personal": True})
    #: when it was logged, and by whom (a staff e-mail, or "cli")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, info={"personal": False})
    created_by: Mapped[str] = mapped_column(sa.String(320), info={"personal": True})
    #: when the access export was last downloaded for it
    exported_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})
    #: when the supporter's data was erased for it
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})
    #: when `flask privacy purge` removed what the erasure had kept for the books
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})
    #: when it was answered, by whom, and what the answer was
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})
    closed_by: Mapped[str | None] = mapped_column(sa.String(320), info={"personal": True})
    outcome: Mapped[str | None] = mapped_column(sa.Text, info={"personal": True})

    supporter: Mapped[Supporter | None] = relationship()

    @property
    def is_open(self) -> bool:
        return self.status is RequestStatus.OPEN
