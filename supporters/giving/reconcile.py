"""Reconcile: what a missed webhook left behind, repaired from Stripe.

Stripe keeps every event for 30 days and retries a failed delivery for 3. An event
that never reached us (the endpoint was down, handling failed every time) and a
gift still pending whose payment Stripe completed are found by asking Stripe, and
applied with the same rules as the webhook (`stripe_events.process_event`,
`lifecycle.mark_paid`), so a second run changes nothing.

`reconcile()` is the one service behind `flask stripe reconcile` and the health
page's button. A dry run applies each event inside a savepoint and rolls it back:
it reports what the run would do, word for word, and leaves no row behind. Each
event and each gift is its own savepoint, so one that fails leaves the others.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from supporters.extensions import db
from supporters.giving import lifecycle, settlement, stripe_events
from supporters.giving.stripe_events import DuplicateEvent, process_event
from supporters.lib import audit
from supporters.lib.audit import Actor
from supporters.models import Gift, GiftStatus, StripeEvent, utcnow
from supporters.payments import PaymentsUnavailable, gateway

#: how far back a relative --since may reach (Stripe lists events of the last 30 days only)
LONGEST_LOOK_BACK = timedelta(days=366)
#: the health page's window and how many events and gifts one run from the page looks at
PAGE_WINDOW = timedelta(days=7)
PAGE_LIMIT = 500

_RELATIVE = re.compile(r"([0-9]{1,4})([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
_DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S")


def since_from(text: str, now: datetime | None = None) -> datetime:
    """The moment (UTC) `text` names: a date or date and time (UTC), or a span back from
    now ("2d", "12h", "30m"). Raises ValueError, with what is wrong, for anything else."""
    now = now or utcnow()
    value = text.strip()
    relative = _RELATIVE.fullmatch(value)
    if relative is not None:
        span = timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
        if span > LONGEST_LOOK_BACK:
            raise ValueError(f"{value} reaches back more than {LONGEST_LOOK_BACK.days} days")
        return now - span
    for pattern in _DATE_FORMATS:
        try:
            moment = datetime.strptime(value, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
        if moment > now:
            raise ValueError(f"{value} is in the future")
        return moment
    raise ValueError(f"{value[:40]!r} is neither a date (2026-01-31) nor a span back from now (2d, 12h, 30m)")


@dataclass(frozen=True)
class Change:
    """One thing a run did (or, in a dry run, would do)."""

    #: "event" (a Stripe event not recorded here), "waiting" (one recorded that waited for an
    #: object, applied now) or "gift" (a pending gift Stripe completed)
    kind: str
    #: the event id, or the gift's payment intent
    reference: str
    #: the event's type, or "payment_intent"
    what: str
    #: what applying it said ("gift 12 succeeded"), or why it failed
    outcome: str
    gift_id: int | None = None
    plan_id: int | None = None
    failed: bool = False


@dataclass
class Report:
    """What a run of reconcile found: the changes, and how many events were known already."""

    since: datetime
    dry_run: bool
    changes: list[Change] = field(default_factory=list)
    already_recorded: int = 0
    #: True when the run stopped at its limit: more may be left for the next run
    stopped_at_limit: bool = False
    #: why Stripe could not be reached (None: it answered); the run stopped there
    stripe_error: str | None = None
    #: events that waited for an object and still do after the run (never dropped)
    still_waiting: int = 0
    #: paid Stripe gifts of the period without their fee and net: filled in by a real run
    #: (balances_filled), counted by a dry run; balances_unsettled: Stripe has none yet
    balances_missing: int = 0
    balances_filled: int = 0
    balances_unsettled: int = 0

    @property
    def applied(self) -> int:
        return sum(1 for change in self.changes if change.kind == "event" and not change.failed)

    @property
    def settled(self) -> int:
        return sum(1 for change in self.changes if change.kind == "gift" and not change.failed)

    @property
    def woken(self) -> int:
        """Events that had been waiting for an object and were applied by this run."""
        return sum(1 for change in self.changes if change.kind == "waiting" and not change.failed)

    @property
    def failed(self) -> int:
        """Events that could not be applied (a gift left unsettled is shown, not counted here)."""
        return sum(1 for change in self.changes if change.kind in ("event", "waiting") and change.failed)


def reconcile(
    since: datetime,
    *,
    dry_run: bool,
    actor: Actor | None,
    actor_name: str | None = None,
    limit: int | None = None,
    after_each: Callable[[], None] | None = None,
) -> Report:
    """Replay Stripe's events since `since` that are not recorded here, then settle the
    gifts still pending whose payment Stripe completed; returns what was (or would be) done.

    A dry run changes nothing and is not audited. A real run flushes each change and
    writes one audit row for the run; `after_each` (the CLI: a commit) runs after every
    change, so a long run keeps what it did. At most `limit` events and `limit` gifts are
    looked at. When Stripe cannot be reached, the run stops there and says why
    (`stripe_error`); what it did before is kept.
    """
    report = Report(since=since, dry_run=dry_run)
    try:
        for count, event in enumerate(gateway().events_since(since)):
            if limit is not None and count >= limit:
                report.stopped_at_limit = True
                break
            change = _replay(event, dry_run)
            if change is None:
                report.already_recorded += 1
                continue
            report.changes.append(change)
            if after_each is not None and not dry_run:
                after_each()
    except PaymentsUnavailable as exc:
        report.stripe_error = str(exc)[:300]
    if report.stripe_error is None:
        _retry_waiting(report, after_each)
        _settle_pending(report, limit, after_each)
        _fill_balances(report, limit, after_each)
    if not dry_run:
        audit.record(
            actor,
            "stripe.reconcile",
            actor_name=actor_name,
            since=since.isoformat(),
            applied=report.applied,
            woken=report.woken,
            still_waiting=report.still_waiting,
            settled=report.settled,
            balances_filled=report.balances_filled,
            failed=report.failed,
            already_recorded=report.already_recorded,
            stopped_at_limit=report.stopped_at_limit,
            stripe_error=report.stripe_error,
        )
    return report


def _retry_waiting(report: Report, after_each: Callable[[], None] | None) -> None:
    """Try every event still waiting for an object again (its object may be linked by now,
    or Stripe may now tell us), each once and in a savepoint of its own, whatever its age:
    a waiting event is never dropped. A dry run undoes each."""
    for event_id in stripe_events.waiting_event_ids():
        savepoint = db.session.begin_nested()
        try:
            outcome = stripe_events.retry_waiting(event_id)
            record = db.session.get(StripeEvent, event_id)
            still = record is not None and record.waiting_for is not None
            gift_id, plan_id = (record.gift_id, record.plan_id) if record is not None else (None, None)
        except Exception as exc:  # one broken event must not stop the rest
            savepoint.rollback()
            report.changes.append(Change("waiting", event_id, "waiting event", f"failed: {exc}"[:200], failed=True))
            continue
        if report.dry_run:
            savepoint.rollback()
        else:
            savepoint.commit()
        if still:
            report.still_waiting += 1
        elif outcome is not None:  # None: applied already, woken by an event tried before it
            report.changes.append(Change("waiting", event_id, "waiting event", outcome, gift_id, plan_id))
            if after_each is not None and not report.dry_run:
                after_each()


def _settle_pending(report: Report, limit: int | None, after_each: Callable[[], None] | None) -> None:
    # In a dry run the events above were undone: a gift one of them pays is not listed twice.
    named = {change.gift_id for change in report.changes if report.dry_run and not change.failed}
    for gift in _pending_with_payment(report.since, limit):
        if gift.id in named:
            continue
        change = _settle(gift, report.dry_run)
        if change is not None:
            report.changes.append(change)
            if after_each is not None and not report.dry_run:
                after_each()


def _fill_balances(report: Report, limit: int | None, after_each: Callable[[], None] | None) -> None:
    """Fetch the balance transactions (fee, net) the worker has not recorded yet, for
    the whole period; a dry run only counts them."""
    missing = settlement.without_balance(report.since, due_only=False)
    report.balances_missing = db.session.scalar(sa.select(sa.func.count()).select_from(missing.subquery())) or 0
    if report.dry_run or not report.balances_missing:
        return
    settled = settlement.settle_due(
        since=report.since, limit=limit or report.balances_missing, due_only=False, after_each=after_each
    )
    report.balances_filled, report.balances_unsettled = settled.settled, settled.waiting
    if settled.error is not None:
        report.stripe_error = settled.error[:300]


def _replay(event: dict[str, Any], dry_run: bool) -> Change | None:
    """Apply one of Stripe's events as the webhook would (a dry run: and undo it);
    None when it was recorded before."""
    reference = str(event.get("id"))[:255]
    kind = str(event.get("type"))[:100]
    savepoint = db.session.begin_nested()
    try:
        outcome = process_event(event)
        record = db.session.get(StripeEvent, event.get("id")) if isinstance(event.get("id"), str) else None
        gift_id, plan_id = (record.gift_id, record.plan_id) if record is not None else (None, None)
    except DuplicateEvent:
        savepoint.rollback()
        return None
    except Exception as exc:  # one broken event must not stop the rest
        savepoint.rollback()
        return Change("event", reference, kind, f"failed: {exc}"[:200], failed=True)
    if dry_run:
        savepoint.rollback()
    else:
        savepoint.commit()
    return Change("event", reference, kind, outcome, gift_id, plan_id)


def _pending_with_payment(since: datetime, limit: int | None) -> list[Gift]:
    """Gifts created since `since`, still pending (or failed), that name a payment intent."""
    query = (
        sa.select(Gift)
        .where(
            Gift.status.in_([GiftStatus.PENDING, GiftStatus.FAILED]),
            Gift.stripe_payment_intent_id.isnot(None),
            Gift.created_at >= since,
        )
        .order_by(Gift.id)
    )
    if limit is not None:
        query = query.limit(limit)
    return list(db.session.scalars(query))


def _settle(gift: Gift, dry_run: bool) -> Change | None:
    """Mark `gift` paid when Stripe says its payment succeeded, for the amount asked;
    None when there is nothing to settle."""
    intent_id = str(gift.stripe_payment_intent_id)
    try:
        intent = gateway().retrieve_payment_intent(intent_id)
    except PaymentsUnavailable as exc:
        return Change("gift", intent_id, "payment_intent", f"could not ask Stripe ({exc})"[:200], gift.id, failed=True)
    if intent.get("status") != "succeeded" or (intent.get("metadata") or {}).get("gift_id") != str(gift.id):
        return None
    wrong = stripe_events.not_as_asked(
        intent.get("amount_received"), intent.get("currency"), gift.amount_minor, gift.currency
    )
    if wrong is not None:
        return Change(
            "gift", intent_id, "payment_intent", f"not settled: the payment has {wrong}", gift.id, failed=True
        )
    charge = intent.get("latest_charge")
    if not dry_run:
        with db.session.begin_nested():
            lifecycle.mark_paid(
                gift, payment_intent_id=intent_id, charge_id=charge.get("id") if isinstance(charge, dict) else charge
            )
    return Change("gift", intent_id, "payment_intent", f"gift {gift.id} succeeded", gift.id, gift.recurring_plan_id)
