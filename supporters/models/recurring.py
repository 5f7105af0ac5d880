"""Recurring plans: a supporter's promise to give every month or year."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from supporters.models.base import (
    Base,
    Timestamps,
    UTCDateTime,
    check_transition,
    currency_check,
    enum_column,
)

if TYPE_CHECKING:
    from supporters.models.campaign import Campaign
    from supporters.models.gift import Gift
    from supporters.models.supporter import Supporter


class PlanStatus(enum.StrEnum):
    INCOMPLETE = "incomplete"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELED = "canceled"


class PlanInterval(enum.StrEnum):
    MONTH = "month"
    YEAR = "year"


P = PlanStatus
#: every allowed status change of a plan; a canceled plan stays canceled.
PLAN_TRANSITIONS: dict[enum.Enum, frozenset[enum.Enum]] = {
    P.INCOMPLETE: frozenset({P.ACTIVE, P.PAST_DUE, P.CANCELED}),
    P.ACTIVE: frozenset({P.PAST_DUE, P.CANCELED}),
    P.PAST_DUE: frozenset({P.ACTIVE, P.CANCELED}),
    P.CANCELED: frozenset(),
}
PLAN_INITIAL = frozenset({P.INCOMPLETE})


class RecurringPlan(Timestamps, Base):
    """A monthly or yearly gift, backed by a Stripe Subscription."""

    __tablename__ = "recurring_plan"
    __table_args__ = (
        sa.CheckConstraint("amount_minor > 0", name="amount_positive"),
        currency_check("currency"),
        sa.Index("ix_recurring_plan_supporter_id", "supporter_id"),
        # with what the monthly income adds up, so the overview reads the index alone
        sa.Index("ix_recurring_plan_status", "status", "currency", "interval", "amount_minor"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, info={"personal": False})
    supporter_id: Mapped[int] = mapped_column(sa.ForeignKey("supporter.id"), info={"personal": False})
    #: each instalment, in minor units of `currency`
    amount_minor: Mapped[int] = mapped_column(sa.BigInteger, info={"personal": False})
    currency: Mapped[str] = mapped_column(sa.String(3), info={"personal": False})
    interval: Mapped[PlanInterval] = mapped_column(enum_column(PlanInterval, "plan_interval"), info={"personal": False})
    status: Mapped[PlanStatus] = mapped_column(
        enum_column(PlanStatus, "plan_status"), default=P.INCOMPLETE, info={"personal": False}
    )
    campaign_id: Mapped[int | None] = mapped_column(sa.ForeignKey("campaign.id"), info={"personal": False})
    #: the Stripe Subscription; unique
    stripe_subscription_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True, info={"personal": False})
    #: Stripe's time of the fact the status was last taken from (a payment, a failure, a
    #: subscription update): an older fact arriving late never moves the status
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})
    #: when the first instalment was paid
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})
    #: end of the period already paid for
    current_period_end: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})
    #: why it ended: the donor's or staff's words, or Stripe's reason
    cancel_reason: Mapped[str | None] = mapped_column(sa.String(500), info={"personal": True})
    is_demo: Mapped[bool] = mapped_column(default=False, info={"personal": False})
    #: a pause of the collection (the donor's, for 1-3 months, or set in Stripe): from when
    #: (None: not paused), and until when (None: until resumed by hand)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})
    #: when amount, interval or pause last changed: the donor's change here, or Stripe's time of
    #: the subscription update it came from; an older update arriving late changes none of them
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})
    #: how many changes the donor made (names each change's idempotency key at Stripe)
    change_count: Mapped[int] = mapped_column(server_default="0", info={"personal": False})
    #: when the donor was offered a lower amount or a pause instead of cancelling (once)
    cancel_offer_shown_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})

    supporter: Mapped[Supporter] = relationship(back_populates="recurring_plans")
    gifts: Mapped[list[Gift]] = relationship(back_populates="recurring_plan", lazy="raise_on_sql")
    campaign: Mapped[Campaign | None] = relationship()

    def __init__(self, **kwargs: object) -> None:
        kwargs.setdefault("status", PlanStatus.INCOMPLETE)
        super().__init__(**kwargs)

    @validates("status")
    def _check_status(self, _key: str, new: PlanStatus) -> PlanStatus:
        new = PlanStatus(new)
        check_transition("recurring plan", PLAN_TRANSITIONS, PLAN_INITIAL, self.status, new)
        return new
