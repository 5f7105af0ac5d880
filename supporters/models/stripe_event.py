"""Stripe events as received: the record that makes webhook handling idempotent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from supporters.models.base import Base, UTCDateTime, utcnow


class StripeEvent(Base):
    """One Stripe event, stored once by its id before it is applied."""

    __tablename__ = "stripe_event"
    __table_args__ = (
        sa.Index("ix_stripe_event_received_at", "received_at"),
        # a gift's or plan's history: its events, oldest first, from the index
        sa.Index("ix_stripe_event_gift_id", "gift_id", "received_at"),
        sa.Index("ix_stripe_event_plan_id", "plan_id", "received_at"),
        # the list of payments to review: the open ones, newest first, from the index
        sa.Index("ix_stripe_event_needs_review", "needs_review", "received_at"),
        # the events waiting for an object: found when it appears, listed on the health page
        sa.Index("ix_stripe_event_waiting_for", "waiting_for"),
    )

    #: Stripe's event id (evt_…); the primary key makes a second copy impossible
    id: Mapped[str] = mapped_column(sa.String(255), primary_key=True, info={"personal": False})
    type: Mapped[str] = mapped_column(sa.String(100), info={"personal": False})
    livemode: Mapped[bool] = mapped_column(default=False, info={"personal": False})
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, info={"personal": False})
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})
    #: what handling did: "applied", "ignored", or a short reason
    outcome: Mapped[str | None] = mapped_column(sa.String(200), info={"personal": False})
    #: the gift handling found the event to be about (None: no gift, or it was deleted)
    gift_id: Mapped[int | None] = mapped_column(sa.ForeignKey("gift.id", ondelete="SET NULL"), info={"personal": False})
    #: the recurring plan it was about; an instalment's event names its gift and its plan
    plan_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("recurring_plan.id", ondelete="SET NULL"), info={"personal": False}
    )
    #: the event as Stripe signed it (what could not be read is kept as {"unreadable": text})
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON, info={"personal": True})
    #: True while staff have not looked at an event that was kept but not counted
    #: (a payment that is not the one we asked for, or an event we cannot read)
    needs_review: Mapped[bool] = mapped_column(default=False, server_default=sa.false(), info={"personal": False})
    #: why it was not counted, with what was expected and what came ("amount 1 PLN, expected 25.00 PLN")
    review_reason: Mapped[str | None] = mapped_column(sa.String(500), info={"personal": False})
    #: the Stripe object (subscription, invoice or payment intent id) the event names but
    #: we did not know when it came: it waits, and is applied once when that object
    #: appears (an event links it) or when reconcile runs; None: nothing to wait for
    waiting_for: Mapped[str | None] = mapped_column(sa.String(255), info={"personal": False})
    #: when and by whom it was marked reviewed, and what they noted
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})
    reviewed_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("staff_user.id", ondelete="SET NULL"), info={"personal": False}
    )
    review_note: Mapped[str | None] = mapped_column(sa.String(500), info={"personal": True})
