"""The payments' health: is money flowing, and what needs a person?

The figures the health page shows, each read from an index and bounded: the last
webhook and its lag, events kept for review, events waiting for an object we do not
know yet, gifts pending too long, plans past due, amounts held for review and
payments seen twice. Each list holds at most `LIST_LIMIT` rows and says how many
there are in all; a count that could grow with the whole history is taken over a
window (`WINDOW`), never over every row.

What Stripe holds that we do not (events that failed or never arrived) is not read
here: the page asks Stripe for it on demand, through `reconcile.reconcile(dry_run=True)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Generic, TypeVar

import sqlalchemy as sa

from supporters.extensions import db
from supporters.giving import currency, settlement, stripe_events
from supporters.lib.dates import org_today
from supporters.models import Gift, GiftMethod, GiftStatus, PlanStatus, RecurringPlan, StripeEvent, utcnow

#: how many rows each list shows
LIST_LIMIT = 20
#: how far back the lists of events and pending gifts look (Stripe lists events of 30 days)
WINDOW = timedelta(days=30)
#: a payment through Stripe pending longer than this needs a look
PENDING_TOO_LONG = timedelta(hours=1)
#: a payment Stripe said settles later (a SEPA debit: about 5 business days) needs a look after this
PROCESSING_TOO_LONG = timedelta(days=14)
#: the newest exchange-rate table older than this many days is late (a long weekend is four)
RATES_LATE_AFTER = timedelta(days=4)
#: what the reason of an event kept for a payment of the wrong amount or currency says
_MISMATCH = "%amount % expected %"
#: what the reason of an event kept for a second payment of a paid gift says
_PAID_TWICE = "%paid twice%"


T = TypeVar("T")


@dataclass(frozen=True)
class Listed(Generic[T]):
    """At most LIST_LIMIT rows of a list, and how many there are in all."""

    rows: list[T]
    total: int


@dataclass(frozen=True)
class LastWebhook:
    """The newest event recorded, and how late it is."""

    event: StripeEvent
    #: now − when we received it: how long nothing has come
    since_received: timedelta
    #: when we received it − when Stripe created it: how late Stripe's delivery was (None: unknown)
    delivery_lag: timedelta | None


@dataclass(frozen=True)
class PastDuePlan:
    """A plan past due, with its last failed payment and Stripe's next retry as that event said."""

    plan: RecurringPlan
    last_failure: StripeEvent | None
    #: when Stripe will try again (`next_payment_attempt` of the last failed invoice); None: no retry planned
    next_retry: datetime | None


@dataclass(frozen=True)
class Health:
    """Everything the health page shows."""

    now: datetime
    last_webhook: LastWebhook | None
    events_last_day: int
    to_review: Listed[StripeEvent]
    waiting: Listed[StripeEvent]
    pending: Listed[Gift]
    past_due: Listed[PastDuePlan]
    mismatches: Listed[StripeEvent]
    paid_twice: Listed[StripeEvent]
    #: gifts whose money moved but is not in the reporting currency yet (counted nowhere)
    not_converted: Listed[Gift]
    #: the newest exchange-rate table loaded (day, number), and whether it is late
    latest_rates: tuple[date, str] | None
    rates_late: bool
    #: Stripe gifts of the window without their fee and net (the worker fetches them)
    without_balance: int


def waiting_events_query() -> sa.Select[StripeEvent]:
    """The events that name an object we do not know yet and wait for it
    (`stripe_event.waiting_for`, indexed), newest first, whatever their age: a waiting
    event is never dropped, and counts nowhere until its object appears."""
    return (
        sa.select(StripeEvent)
        .where(StripeEvent.waiting_for.isnot(None))
        .order_by(StripeEvent.received_at.desc(), StripeEvent.id.desc())
    )


def _listed(query: sa.Select[T]) -> Listed[T]:
    rows = list(db.session.scalars(query.limit(LIST_LIMIT)))
    if len(rows) < LIST_LIMIT:
        return Listed(rows, len(rows))
    total = db.session.scalar(sa.select(sa.func.count()).select_from(query.order_by(None).subquery())) or 0
    return Listed(rows, total)


def _to_review(reason: str | None = None) -> sa.Select[StripeEvent]:
    query = sa.select(StripeEvent).where(StripeEvent.needs_review.is_(True))
    if reason is not None:
        query = query.where(StripeEvent.review_reason.like(reason))
    return query.order_by(StripeEvent.received_at.desc(), StripeEvent.id.desc())


def last_webhook(now: datetime) -> LastWebhook | None:
    """The newest event received, how long ago, and how late Stripe delivered it."""
    event = db.session.scalars(
        sa.select(StripeEvent).order_by(StripeEvent.received_at.desc(), StripeEvent.id.desc()).limit(1)
    ).first()
    if event is None:
        return None
    created = (
        stripe_events.utc_from_timestamp(event.payload.get("created")) if isinstance(event.payload, dict) else None
    )
    return LastWebhook(event, now - event.received_at, event.received_at - created if created is not None else None)


def pending_too_long(now: datetime) -> sa.Select[Gift]:
    """Gifts paid through Stripe, pending for more than an hour (within the window), oldest first;
    a payment processing at the bank (SEPA Direct Debit) only once it has been for two weeks."""
    return (
        sa.select(Gift)
        .where(
            Gift.status == GiftStatus.PENDING,
            Gift.method == GiftMethod.STRIPE,
            Gift.created_at < now - PENDING_TOO_LONG,
            sa.or_(Gift.processing_at.is_(None), Gift.processing_at < now - PROCESSING_TOO_LONG),
            Gift.created_at >= now - WINDOW,
        )
        .order_by(Gift.created_at, Gift.id)
    )


def _last_failure(plan: RecurringPlan) -> StripeEvent | None:
    return db.session.scalars(
        sa.select(StripeEvent)
        .where(StripeEvent.plan_id == plan.id, StripeEvent.type == "invoice.payment_failed")
        .order_by(StripeEvent.received_at.desc(), StripeEvent.id.desc())
        .limit(1)
    ).first()


def _next_retry(event: StripeEvent | None) -> datetime | None:
    data = event.payload.get("data") if event is not None and isinstance(event.payload, dict) else None
    invoice: Any = data.get("object") if isinstance(data, dict) else None
    return stripe_events.utc_from_timestamp(invoice.get("next_payment_attempt")) if isinstance(invoice, dict) else None


def past_due_plans() -> Listed[PastDuePlan]:
    """Plans past due, the oldest plan first, each with its last failed payment and next retry."""
    listed = _listed(
        sa.select(RecurringPlan).where(RecurringPlan.status == PlanStatus.PAST_DUE).order_by(RecurringPlan.id)
    )
    rows = []
    for plan in listed.rows:
        failure = _last_failure(plan)
        rows.append(PastDuePlan(plan, failure, _next_retry(failure)))
    return Listed(rows, listed.total)


def events_since(since: datetime) -> int:
    """How many events were received since `since` (from the index on received_at)."""
    query = sa.select(sa.func.count()).select_from(StripeEvent).where(StripeEvent.received_at >= since)
    return db.session.scalar(query) or 0


def health(now: datetime | None = None) -> Health:
    """The payments' health as the page shows it."""
    now = now or utcnow()
    latest = currency.latest_table()
    return Health(
        now=now,
        last_webhook=last_webhook(now),
        events_last_day=db.session.scalar(
            sa.select(sa.func.count())
            .select_from(StripeEvent)
            .where(StripeEvent.received_at >= now - timedelta(days=1))
        )
        or 0,
        to_review=_listed(_to_review()),
        waiting=_listed(waiting_events_query()),
        pending=_listed(pending_too_long(now)),
        past_due=past_due_plans(),
        mismatches=_listed(_to_review(_MISMATCH)),
        paid_twice=_listed(_to_review(_PAID_TWICE)),
        not_converted=_listed(currency.waiting_gifts()),
        latest_rates=latest,
        rates_late=latest is None or org_today() - latest[0] > RATES_LATE_AFTER,
        without_balance=db.session.scalar(
            sa.select(sa.func.count()).select_from(
                settlement.without_balance(now - WINDOW, now, due_only=False).order_by(None).subquery()
            )
        )
        or 0,
    )
