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

    id: Mapped[int] = mapped_column(primary_key=True)
    #: makes queueing idempotent, e.g. "receipt:gift:42"
    dedupe_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    #: what kind of message, e.g. "receipt"
    kind: Mapped[str] = mapped_column(sa.String(32))
    to_address: Mapped[str] = mapped_column(sa.String(320))
    subject: Mapped[str] = mapped_column(sa.String(300))
    body_text: Mapped[str] = mapped_column(sa.Text)
    body_html: Mapped[str | None] = mapped_column(sa.Text)
    #: header lines of its own, name to value (a newsletter-type e-mail's List-Unsubscribe
    #: and List-Unsubscribe-Post); None for none. Only names mail/outbox.py allows are sent
    headers: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: not before this time (backoff after a failure)
    send_after: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
