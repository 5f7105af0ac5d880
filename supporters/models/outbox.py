"""The e-mail outbox: messages written in the same transaction as what caused them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from supporters.models.base import Base, UTCDateTime, utcnow


class OutboxEmail(Base):
    """An e-mail waiting to be sent (or sent); the worker retries it with backoff."""

    __tablename__ = "outbox_email"
    __table_args__ = (
        sa.CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        sa.Index("ix_outbox_email_pending", "sent_at", "send_after"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, info={"personal": False})
    #: makes queueing idempotent, e.g. "receipt:gift:42"
    dedupe_key: Mapped[str] = mapped_column(sa.String(200), unique=True, info={"personal": False})
    #: what kind of message, e.g. "receipt"
    kind: Mapped[str] = mapped_column(sa.String(32), info={"personal": False})
    to_address: Mapped[str] = mapped_column(sa.String(320), info={"personal": True})
    subject: Mapped[str] = mapped_column(sa.String(300), info={"personal": True})
    body_text: Mapped[str] = mapped_column(sa.Text, info={"personal": True})
    body_html: Mapped[str | None] = mapped_column(sa.Text, info={"personal": True})
    #: header lines of its own, name to value (a newsletter-type e-mail's List-Unsubscribe
    #: and List-Unsubscribe-Post); None for none. Only names mail/outbox.py allows are sent
    headers: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, info={"personal": True})
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, info={"personal": False})
    #: not before this time (backoff after a failure)
    send_after: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, info={"personal": False})
    attempts: Mapped[int] = mapped_column(default=0, info={"personal": False})
    last_error: Mapped[str | None] = mapped_column(sa.Text, info={"personal": True})
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})
