"""Gifts: one payment (or offline donation) from a supporter, and its status machine."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

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
    from supporters.models.recurring import RecurringPlan
    from supporters.models.supporter import Supporter


class GiftStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    DISPUTED = "disputed"
    #: an offline gift staff recorded by mistake: kept, with its receipt number, but never counted
    VOIDED = "voided"


class GiftKind(enum.StrEnum):
    ONE_TIME = "one_time"
    RECURRING = "recurring"


class GiftMethod(enum.StrEnum):
    STRIPE = "stripe"
    BANK_TRANSFER = "bank_transfer"
    CHEQUE = "cheque"
    CASH = "cash"


S = GiftStatus
#: every allowed status change of a gift; anything else raises InvalidTransition.
#: A failed attempt may still succeed (the donor retries in the same checkout), and
#: proof of payment for a canceled gift is recorded rather than lost; nothing ever
#: goes back to pending, and nothing is paid twice. Only staff void a gift (an offline
#: gift recorded by mistake, giving/offline_gifts.py), and a voided gift stays voided.
GIFT_TRANSITIONS: dict[enum.Enum, frozenset[enum.Enum]] = {
    S.PENDING: frozenset({S.SUCCEEDED, S.FAILED, S.CANCELED}),
    S.FAILED: frozenset({S.SUCCEEDED, S.CANCELED}),
    S.CANCELED: frozenset({S.SUCCEEDED}),
    S.SUCCEEDED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED, S.DISPUTED, S.VOIDED}),
    S.PARTIALLY_REFUNDED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED, S.DISPUTED}),
    S.DISPUTED: frozenset({S.SUCCEEDED, S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.REFUNDED: frozenset(),
    S.VOIDED: frozenset(),
}
#: a Stripe gift starts pending; an offline gift is recorded when the money is in
GIFT_INITIAL = frozenset({S.PENDING, S.SUCCEEDED})
#: statuses of a gift whose money arrived, whatever happened after (refunds, a dispute):
#: it earned its receipt, and it has something to convert and a fee to know
GIFT_PAID = frozenset({S.SUCCEEDED, S.PARTIALLY_REFUNDED, S.REFUNDED, S.DISPUTED})
#: statuses whose money counts towards totals (net of refunded_minor); a disputed
#: gift's money is held by the bank and counts again only if the dispute is won
GIFT_COUNTED = frozenset({S.SUCCEEDED, S.PARTIALLY_REFUNDED})


def net_base(amount_base_minor: Any, amount_minor: Any, refunded_minor: Any) -> Any:
    """A gift's money net of refunds, in the reporting currency: its converted amount
    scaled by the part not refunded, rounded down, in integers.

    The one rule for it. Given a gift's numbers it is a number (the totals listener);
    given the columns it is the SQL expression (`GIFT_NET_BASE`, every sum of giving).
    """
    return amount_base_minor * (amount_minor - refunded_minor) // amount_minor


def net_base_numeric(amount_base_minor: Any, amount_minor: Any, refunded_minor: Any) -> sa.ColumnElement[Any]:
    """`net_base` as SQL exact for any amounts stored, as Python's integers are: in
    numeric (the product of two large amounts overflows a bigint), `div` truncating,
    which for these amounts (none negative) is the floor `net_base` takes. PostgreSQL's
    (SQLite has no numeric), for the export it writes."""
    return sa.func.div(sa.cast(amount_base_minor, sa.Numeric()) * (amount_minor - refunded_minor), amount_minor)


class Gift(Timestamps, Base):
    """One gift: an amount in one currency, its status, where it came from and its Stripe ids."""

    __tablename__ = "gift"
    __table_args__ = (
        sa.CheckConstraint("amount_minor > 0", name="amount_positive"),
        currency_check("currency"),
        sa.CheckConstraint("amount_base_minor IS NULL OR amount_base_minor > 0", name="amount_base_positive"),
        sa.CheckConstraint("fee_minor IS NULL OR fee_minor >= 0", name="fee_not_negative"),
        # a balance transaction belongs to one charge: one gift
        sa.Index("ix_gift_stripe_balance_transaction_id", "stripe_balance_transaction_id", unique=True),
        sa.Index("ix_gift_transfer_reference", "transfer_reference", unique=True),
        # the few paid gifts not converted yet, found without reading the others (overview,
        # health); by status first, so abandoned checkouts in another currency are passed by
        sa.Index(
            "ix_gift_not_converted",
            "status",
            "currency",
            postgresql_where=sa.text("amount_base_minor IS NULL"),
            sqlite_where=sa.text("amount_base_minor IS NULL"),
        ),
        # the recent Stripe gifts still without their fee and net (the worker, every minute)
        sa.Index(
            "ix_gift_without_balance",
            "paid_at",
            postgresql_where=sa.text("stripe_balance_transaction_id IS NULL"),
            sqlite_where=sa.text("stripe_balance_transaction_id IS NULL"),
        ),
        sa.CheckConstraint("refunded_minor >= 0 AND refunded_minor <= amount_minor", name="refunded_within_amount"),
        sa.CheckConstraint("comment IS NULL OR length(comment) <= 500", name="comment_length"),
        sa.Index("ix_gift_supporter_id_created_at", "supporter_id", "created_at"),
        # status and paid_at find counted gifts in a period; supporter_id makes "who gave
        # then" an index-only read
        sa.Index("ix_gift_status_paid_at", "status", "paid_at", "supporter_id"),
        sa.Index("ix_gift_paid_at", "paid_at"),
        sa.Index("ix_gift_campaign_id", "campaign_id"),
        sa.Index("ix_gift_recurring_plan_id", "recurring_plan_id"),
        sa.Index("ix_gift_source_article", "source_article"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, info={"personal": False})
    supporter_id: Mapped[int] = mapped_column(sa.ForeignKey("supporter.id"), info={"personal": False})
    #: the gift in the currency the donor chose, in minor units (grosze, cents)
    amount_minor: Mapped[int] = mapped_column(sa.BigInteger, info={"personal": False})
    #: ISO 4217 code of amount_minor
    currency: Mapped[str] = mapped_column(sa.String(3), info={"personal": False})
    #: the same gift in the reporting currency: Stripe's balance transaction, or the central
    #: bank's rate (giving/currency.py); None until converted ("not converted yet", never 0)
    amount_base_minor: Mapped[int | None] = mapped_column(sa.BigInteger, info={"personal": False})
    status: Mapped[GiftStatus] = mapped_column(
        enum_column(GiftStatus, "gift_status"), default=S.PENDING, info={"personal": False}
    )
    kind: Mapped[GiftKind] = mapped_column(
        enum_column(GiftKind, "gift_kind"), default=GiftKind.ONE_TIME, info={"personal": False}
    )
    method: Mapped[GiftMethod] = mapped_column(
        enum_column(GiftMethod, "gift_method"), default=GiftMethod.STRIPE, info={"personal": False}
    )
    #: the plan this gift is an instalment of
    recurring_plan_id: Mapped[int | None] = mapped_column(sa.ForeignKey("recurring_plan.id"), info={"personal": False})
    campaign_id: Mapped[int | None] = mapped_column(sa.ForeignKey("campaign.id"), info={"personal": False})
    #: attribution: the article (slug) and page that led to the gift, the widget variant, UTM tags
    source_article: Mapped[str | None] = mapped_column(sa.String(200), info={"personal": False})
    source_url: Mapped[str | None] = mapped_column(sa.String(2000), info={"personal": False})
    source_variant: Mapped[str | None] = mapped_column(sa.String(64), info={"personal": False})
    utm_source: Mapped[str | None] = mapped_column(sa.String(100), info={"personal": False})
    utm_medium: Mapped[str | None] = mapped_column(sa.String(100), info={"personal": False})
    utm_campaign: Mapped[str | None] = mapped_column(sa.String(100), info={"personal": False})
    #: fingerprint of the form submission that created the gift: a resubmitted form finds it again
    submission_key: Mapped[str | None] = mapped_column(sa.String(64), unique=True, info={"personal": False})
    #: where the donor pays (Stripe Checkout, or the local test-payment page offline)
    checkout_url: Mapped[str | None] = mapped_column(sa.String(2000), info={"personal": False})
    #: Stripe's ids for this gift; each is unique
    stripe_checkout_session_id: Mapped[str | None] = mapped_column(
        sa.String(255), unique=True, info={"personal": False}
    )
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True, info={"personal": False})
    stripe_charge_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True, info={"personal": False})
    stripe_invoice_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True, info={"personal": False})
    #: Stripe's processing fee and what reached the account, from the charge's balance
    #: transaction, in its currency (balance_currency: the account's, usually the reporting one)
    fee_minor: Mapped[int | None] = mapped_column(sa.BigInteger, info={"personal": False})
    net_minor: Mapped[int | None] = mapped_column(sa.BigInteger, info={"personal": False})
    balance_currency: Mapped[str | None] = mapped_column(sa.String(3), info={"personal": False})
    stripe_balance_transaction_id: Mapped[str | None] = mapped_column(sa.String(255), info={"personal": False})
    #: when we last asked Stripe for the balance transaction (and it had none yet)
    balance_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})
    #: the exchange-rate table amount_base_minor was converted by ("232/A/NBP/2026");
    #: None when no rate was needed (same currency, or Stripe's own conversion)
    base_rate_table: Mapped[str | None] = mapped_column(sa.String(32), info={"personal": False})
    #: how much has been refunded so far
    refunded_minor: Mapped[int] = mapped_column(sa.BigInteger, default=0, info={"personal": False})
    #: the donor chose to add the estimated fee to the gift
    covers_fee: Mapped[bool] = mapped_column(default=False, info={"personal": False})
    #: hide the donor's name wherever gifts are shown publicly
    anonymous: Mapped[bool] = mapped_column(default=False, info={"personal": False})
    #: "in honour of" / "in memory of" someone
    dedication_kind: Mapped[str | None] = mapped_column(sa.String(16), info={"personal": False})
    dedication: Mapped[str | None] = mapped_column(sa.String(200), info={"personal": True})
    comment: Mapped[str | None] = mapped_column(sa.String(500), info={"personal": True})
    #: the gift's dispute as Stripe last reported it: "open", then "won" or "lost" (final);
    #: None: never disputed. The gift's status follows from it and refunded_minor
    dispute_status: Mapped[str | None] = mapped_column(sa.String(16), info={"personal": False})
    #: receipt number, given when the gift succeeds
    receipt_number: Mapped[str | None] = mapped_column(sa.String(32), unique=True, info={"personal": False})
    #: the transfer title a bank-transfer pledge asks the donor to use ("DAR 2026 000153 0"),
    #: unique: a statement line that quotes it pays this gift (giving/transfers.py)
    transfer_reference: Mapped[str | None] = mapped_column(sa.String(32), info={"personal": False})
    #: bank transfer title, cheque number… for offline gifts
    offline_reference: Mapped[str | None] = mapped_column(sa.String(200), info={"personal": True})
    #: when Stripe first said the gift's payment was submitted but settles later (SEPA Direct
    #: Debit, some Przelewy24 payments): Stripe's time. A pending gift with it is "processing"
    processing_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})
    #: when the money arrived (for offline gifts: the date staff entered)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})
    #: when staff voided the gift (recorded by mistake), and why
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})
    void_reason: Mapped[str | None] = mapped_column(sa.String(500), info={"personal": True})
    is_demo: Mapped[bool] = mapped_column(default=False, info={"personal": False})

    supporter: Mapped[Supporter] = relationship(back_populates="gifts")
    recurring_plan: Mapped[RecurringPlan | None] = relationship(back_populates="gifts")
    campaign: Mapped[Campaign | None] = relationship()

    def __init__(self, **kwargs: object) -> None:
        kwargs.setdefault("status", GiftStatus.PENDING)
        super().__init__(**kwargs)

    @validates("status")
    def _check_status(self, _key: str, new: GiftStatus) -> GiftStatus:
        new = GiftStatus(new)
        check_transition("gift", GIFT_TRANSITIONS, GIFT_INITIAL, self.status, new)
        return new

    @property
    def processing(self) -> bool:
        """True while the payment is on its way: submitted, not settled (nor failed) yet."""
        return self.status is GiftStatus.PENDING and self.processing_at is not None

    @property
    def counts(self) -> bool:
        """True when this gift's money counts towards totals."""
        return self.status in GIFT_COUNTED


#: when a gift happened, as staff lists order gifts: when it was paid, or made if never paid
HAPPENED_AT = sa.func.coalesce(Gift.paid_at, Gift.created_at)
#: a gift's net of refunds in the reporting currency, as SQL (NULL when not converted)
GIFT_NET_BASE = net_base(Gift.amount_base_minor, Gift.amount_minor, Gift.refunded_minor)
# The gift list's order, newest first: read from this index rather than sorting every gift.
sa.Index("ix_gift_happened_at", HAPPENED_AT, Gift.id)
