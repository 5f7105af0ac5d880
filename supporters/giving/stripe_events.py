"""What each Stripe event means for gifts and plans.

`process_event()` records the event id first (a second copy is refused by the
primary key) and applies the event in the caller's transaction. The record keeps
the gift and the plan the event turned out to be about (`gift_id`, `plan_id`, what
a gift's or plan's history reads): the lookups below note each one they find, for
whatever the handler then does with it. Handlers read
object fields defensively: Stripe's newer shapes and localstripe's older ones
both occur (an id or an embedded object; `parent.subscription_details` or a
top-level `subscription`).

A payment pays a gift only when it is the one we asked for: the checkout session
opened for the gift (`checkout.session.completed`), the payment intent linked to it
(`payment_intent.succeeded`), the plan's subscription (`invoice.paid`), each for the
gift's or the plan's amount and currency. A gift id in `client_reference_id` or in
metadata only says which gift an event claims to be about. Anything else, and any
event we cannot read, is kept, counted nowhere, and marked `needs_review` with the
reason (`hold()`), for staff's list of payments to review. Only a failure that a retry
can mend (the database, Stripe unreachable) raises, so Stripe retries.

Events come in any order (docs/payments.md, "The ordering rules"). What an event says is
a fact about its object (a dispute's state, a charge's refunded total, an invoice paid at
a time), and the state kept is the one the facts give, whatever their order. An event
about a Stripe object we do not know yet (a subscription no plan is linked to, an invoice
not recorded) is not ignored: it *waits* (`wait()`: `StripeEvent.waiting_for` holds the
object's id) and is applied once, when an event links that object (`apply_waiting`, run
after every event) or when reconcile runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.exc import IntegrityError

from supporters.extensions import db
from supporters.giving import lifecycle, plan_changes, plans
from supporters.lib import money
from supporters.lib.forms import whole_number
from supporters.mail import reminders
from supporters.models import Gift, GiftStatus, PlanStatus, RecurringPlan, StripeEvent, utcnow
from supporters.payments import PaymentsUnavailable, gateway

log = logging.getLogger(__name__)

Obj = dict[str, Any]


class DuplicateEvent(Exception):
    """This event id was recorded before: acknowledge it and change nothing."""


@dataclass
class _Subject:
    """The gift and the plan the event being handled is about, as the lookups find them."""

    gift: Gift | None = None
    plan: RecurringPlan | None = None
    #: why the event is kept for staff instead of counted (the first reason found)
    review: str | None = None
    #: when Stripe made the event (its `created`): the time of what it reports
    at: datetime | None = None
    #: the Stripe object the event waits for (see `wait`)
    waiting: str | None = None


_subject: ContextVar[_Subject | None] = ContextVar("stripe_event_subject", default=None)


def _about_gift(gift: Gift | None) -> Gift | None:
    """Note `gift` (if any) as what the event being handled is about; returns it."""
    subject = _subject.get()
    if subject is not None and gift is not None:
        subject.gift = gift
    return gift


def _about_plan(plan: RecurringPlan | None) -> RecurringPlan | None:
    """Note `plan` (if any) as what the event being handled is about; returns it."""
    subject = _subject.get()
    if subject is not None and plan is not None:
        subject.plan = plan
    return plan


#: what stripe_event's columns hold: longer ids and types are stored shortened (`_fitted`)
ID_LENGTH = 255
TYPE_LENGTH = 100
OUTCOME_LENGTH = 200
REASON_LENGTH = 500
#: the shapes a handler may meet in a signed event and not expect: the event is kept for review
SHAPE_ERRORS = (TypeError, AttributeError, KeyError, IndexError, ValueError)


def hold(reason: str) -> str:
    """Keep the event being handled for staff's review, counted nowhere, for `reason`
    (what was expected and what came); returns the outcome to record."""
    subject = _subject.get()
    if subject is not None and subject.review is None:
        subject.review = _printable(reason, REASON_LENGTH)
    return f"needs review: {reason}"


def wait(object_id: str, what: str, until: str = "") -> str:
    """Keep the event being handled waiting for Stripe object `object_id` (`what` it is),
    which we do not know yet (`until` says what will link it); returns the outcome to
    record. It is applied when the object appears (`apply_waiting`)."""
    subject = _subject.get()
    if subject is not None:
        subject.waiting = object_id
    return f"waiting for {what} {_shown(object_id, 60)}" + (f" ({until})" if until else "")


def _event_time() -> datetime | None:
    subject = _subject.get()
    return subject.at if subject is not None else None


def process_event(event: Obj) -> str:
    """Record `event` once and apply it; returns what happened, in a few words.

    Raises DuplicateEvent for an event seen before. Flushes; the caller commits
    (or rolls back everything, the event record included, if this raises). An event
    of a shape no handler can read is recorded for review, never raised about: it was
    signed with our secret, and no retry will change it.
    """
    event_id, problem = _stored_id(event)
    kind = event.get("type")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if problem is None and not (isinstance(kind, str) and kind and len(kind) <= TYPE_LENGTH and kind.isprintable()):
        problem = "the event's type is missing or unreadable"
    if problem is None and not isinstance(obj, dict):
        problem = "the event carries no object"
    record = _new_record(event_id, event)
    subject = _Subject(at=utc_from_timestamp(event.get("created")))
    if problem is not None:
        log.warning("Stripe event %s kept for review: %s", event_id, problem)
        subject.review = problem
        outcome = f"needs review: {problem}"
    else:
        assert isinstance(kind, str) and isinstance(obj, dict)
        outcome = _handle(kind, obj, subject)
    outcome = _conclude(record, outcome, subject)
    if record.waiting_for is None and not record.needs_review:
        # applied: what it linked or changed may be what other events wait for
        apply_waiting(_linked_ids(subject), _linked_rows(subject))
    return outcome


def _conclude(record: StripeEvent, outcome: str, subject: _Subject) -> str:
    """Write what handling the event found and did onto its record; returns the outcome."""
    if subject.review is not None and not outcome.startswith("needs review"):
        outcome = f"needs review: {subject.review}"
    record.gift_id = subject.gift.id if subject.gift is not None else None
    record.plan_id = subject.plan.id if subject.plan is not None else None
    record.needs_review = subject.review is not None
    record.review_reason = subject.review
    record.waiting_for = subject.waiting if subject.review is None else None
    record.processed_at = utcnow()
    record.outcome = _printable(outcome, OUTCOME_LENGTH)
    db.session.flush()
    return outcome


def _linked_ids(subject: _Subject) -> set[str]:
    """The Stripe ids of the gift and plan an event was about: what waiting events may wait for."""
    ids: set[str | None] = set()
    if subject.gift is not None:
        gift = subject.gift
        ids |= {
            gift.stripe_payment_intent_id,
            gift.stripe_charge_id,
            gift.stripe_invoice_id,
            gift.stripe_checkout_session_id,
        }
    if subject.plan is not None:
        ids.add(subject.plan.stripe_subscription_id)
    return {i for i in ids if i}


def _linked_rows(subject: _Subject) -> tuple[set[int], set[int]]:
    """The ids of the gift and the plan an event was about: events waiting while about
    them are tried again too (what changed may settle them, one way or the other)."""
    gifts = {subject.gift.id} if subject.gift is not None and subject.gift.id is not None else set()
    plans = {subject.plan.id} if subject.plan is not None and subject.plan.id is not None else set()
    return gifts, plans


#: how many times one event's waking may wake further events (an invoice waking a refund)
WAKE_DEPTH = 4


def apply_waiting(
    object_ids: Iterable[str] | None = None,
    rows_about: tuple[set[int], set[int]] = (set(), set()),
    *,
    _depth: int = 0,
) -> list[tuple[str, str]]:
    """Apply the events waiting for any of `object_ids` (every waiting event when None),
    or waiting while about one of the gifts or plans `rows_about` names (gift ids, plan
    ids), oldest first, each once: returns (event id, outcome) for each one tried.

    The rows are locked and their marker cleared in the caller's transaction, so two
    deliveries that link the same object cannot both apply what waited for it. An event
    whose object is still unknown keeps waiting. What an applied event links in turn
    wakes the events waiting for that (a refund waiting for an invoice that waited for
    its subscription). Flushes; the caller commits. One that cannot be applied now because
    Stripe is unreachable keeps waiting; any other error a retry can mend (the database)
    raises.
    """
    query = select(StripeEvent).where(StripeEvent.waiting_for.isnot(None))
    if object_ids is not None:
        gift_ids, plan_ids = rows_about
        clauses: list[ColumnElement[bool]] = []
        if wanted := sorted(set(object_ids)):
            clauses.append(StripeEvent.waiting_for.in_(wanted))
        if gift_ids:
            clauses.append(StripeEvent.gift_id.in_(sorted(gift_ids)))
        if plan_ids:
            clauses.append(StripeEvent.plan_id.in_(sorted(plan_ids)))
        if not clauses:
            return []
        query = query.where(or_(*clauses))
    rows = db.session.scalars(
        query.order_by(StripeEvent.received_at, StripeEvent.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    done: list[tuple[str, str]] = []
    linked: set[str] = set()
    linked_gifts: set[int] = set()
    linked_plans: set[int] = set()
    for record in rows:
        if record.waiting_for is None:
            continue  # applied by a delivery that held the lock first
        event = record.payload
        kind, obj = event.get("type"), _obj(event.get("data")).get("object")
        if not isinstance(kind, str) or not isinstance(obj, dict):
            continue
        subject = _Subject(at=utc_from_timestamp(event.get("created")))
        try:
            handled = _handle(kind, obj, subject)
        except PaymentsUnavailable as exc:
            # Its own changes rolled back with its savepoint: it keeps waiting, for the next
            # event about its object or reconcile; the event that woke it is applied all the same.
            log.warning("Stripe event %s, waiting, not applied yet: %s", record.id, exc)
            continue
        outcome = _conclude(record, handled, subject)
        log.info("Stripe event %s, waiting, applied: %s", record.id, outcome)
        done.append((record.id, outcome))
        if record.waiting_for is None:
            linked |= _linked_ids(subject)
            gifts, plans_ = _linked_rows(subject)
            linked_gifts |= gifts
            linked_plans |= plans_
    if linked and _depth < WAKE_DEPTH:
        done += apply_waiting(linked, (linked_gifts, linked_plans), _depth=_depth + 1)
    return done


def waiting_event_ids() -> list[str]:
    """The ids of every event still waiting for an object, oldest first (for reconcile)."""
    return list(
        db.session.scalars(
            select(StripeEvent.id)
            .where(StripeEvent.waiting_for.isnot(None))
            .order_by(StripeEvent.received_at, StripeEvent.id)
        )
    )


def retry_waiting(event_id: str) -> str | None:
    """Apply one waiting event again (reconcile: its object may be known by now, or Stripe
    may now tell us); returns its outcome, None when it no longer waits. Flushes."""
    record = db.session.get(StripeEvent, event_id, with_for_update=True, populate_existing=True)
    if record is None or record.waiting_for is None:
        return None
    done = apply_waiting([record.waiting_for])
    return next((outcome for done_id, outcome in done if done_id == event_id), None)


def record_unreadable(payload: bytes, reason: str) -> str:
    """Keep a body signed with our secret that is not a Stripe event at all (see
    `payments.UnreadableEvent`), once, for review; returns the outcome.

    Raises DuplicateEvent when the same body came before.
    """
    event_id = "unreadable_" + hashlib.sha256(payload).hexdigest()
    record = _new_record(event_id, {"unreadable": payload.decode("utf-8", "replace")})
    log.warning("Stripe webhook %s kept for review: %s", event_id, reason)
    record.needs_review = True
    record.review_reason = _printable(reason, REASON_LENGTH)
    record.processed_at = utcnow()
    record.outcome = _printable(f"needs review: {reason}", OUTCOME_LENGTH)
    db.session.flush()
    return record.outcome


def _new_record(event_id: str, payload: Obj) -> StripeEvent:
    """The event's row, added once: a second copy of the id raises DuplicateEvent."""
    if db.session.get(StripeEvent, event_id) is not None:
        raise DuplicateEvent(event_id)
    kind = payload.get("type")
    record = StripeEvent(
        id=event_id,
        type=_printable(kind if isinstance(kind, str) else "(unreadable)", TYPE_LENGTH),
        livemode=bool(payload.get("livemode")),
        payload=payload,
    )
    try:
        with db.session.begin_nested():
            db.session.add(record)
    except IntegrityError:
        raise DuplicateEvent(event_id) from None
    return record


def _handle(kind: str, obj: Obj, subject: _Subject) -> str:
    """Apply the event's object with its type's handler, noting what it is about in `subject`."""
    handler = HANDLERS.get(kind)
    if handler is None:
        log.info("Stripe event of type %s acknowledged, not handled", kind)
        return "ignored: type not handled"
    token = _subject.set(subject)
    try:
        # A savepoint: what a handler changed before it met a shape it cannot read is undone.
        with db.session.begin_nested():
            return handler(obj)
    except SHAPE_ERRORS as exc:
        log.exception("Stripe event of type %s could not be read; kept for review", kind)
        subject.gift = subject.plan = None  # what the handler found was rolled back with it
        subject.review = subject.waiting = None
        return hold(f"the event could not be read ({type(exc).__name__})")
    finally:
        _subject.reset(token)


def _stored_id(event: Obj) -> tuple[str, str | None]:
    """The key the event is stored under, and what is wrong with its id (None: nothing).

    Stripe's id as it is when it fits the column; a longer one shortened with its hash
    (so two long ids never meet); a missing one replaced by the hash of the event (so
    a retry of the same body is still a duplicate).
    """
    value = event.get("id")
    if isinstance(value, str) and value and value.isprintable():
        if len(value) <= ID_LENGTH:
            return value, None
        return _fitted(value), "the event's id is longer than 255 characters"
    digest = hashlib.sha256(json.dumps(event, sort_keys=True, default=str).encode()).hexdigest()
    return f"unreadable_{digest}", "the event's id is missing or unreadable"


def _fitted(value: str) -> str:
    """A text too long for its column as a prefix plus the hash of the whole."""
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{value[: ID_LENGTH - len(digest) - 1]}~{digest}"


def _printable(text: str, limit: int) -> str:
    """`text` without control characters, at most `limit` characters: for a text column."""
    return "".join(c if c.isprintable() else "?" for c in text[:limit])


def _shown(value: Any, limit: int = 40) -> str:
    """A value from an event as it may appear in an outcome: printable, short."""
    text = value if isinstance(value, str) else repr(value)
    text = _printable(text, limit + 1)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def utc_from_timestamp(value: Any) -> datetime | None:
    """A Stripe timestamp (seconds) as an aware datetime; None for anything else."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 253402300800:
        return datetime.fromtimestamp(int(value), UTC)
    return None


def _id(value: Any) -> str | None:
    """An object's id whether Stripe sent the id or the whole object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value and len(value) <= ID_LENGTH and value.isprintable() else None


def _obj(value: Any) -> Obj:
    """`value` if it is an object, else an empty one (a field Stripe sent as null, or oddly)."""
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[Obj]:
    """The objects of a Stripe list (`{"data": [...]}`), ignoring what is not an object."""
    data = _obj(value).get("data")
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


def number(value: Any) -> int | None:
    """A gift's or plan's id as an event names it (the ASCII digits we sent, or such an
    int), read by the one rule for ids (`lib.forms.whole_number`: "１２" and "፩" are no ids)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or value != value.strip():
        return None  # " 12" is not what we sent
    return whole_number(value) or None


def amount_minor(value: Any) -> int | None:
    """An amount as Stripe sends it: a whole number of minor units, not negative; else None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= money.MAX_AMOUNT_MINOR:
        return value
    return None


def _money_shown(amount: Any, currency: Any) -> str:
    """An amount from an event as staff read it: "25.00 PLN", or what came when it is no amount."""
    code = currency.upper() if isinstance(currency, str) else None
    minor = amount_minor(amount)
    if minor is not None and code is not None:
        try:
            return f"{money.plain(minor, code)} {code}"
        except money.MoneyError:
            pass
    return f"{_shown(amount, 20)} {_shown(currency if currency is not None else 'no currency', 20)}"


def not_as_asked(amount: Any, currency: Any, expected_minor: int, expected_currency: str) -> str | None:
    """What is wrong when a payment of `amount` `currency` (as an event says) is not the
    `expected_minor` `expected_currency` we asked for; None when it is exactly that."""
    code = currency.upper() if isinstance(currency, str) else None
    if amount_minor(amount) == expected_minor and code == expected_currency:
        return None
    expected = f"{money.plain(expected_minor, expected_currency)} {expected_currency}"
    return f"amount {_money_shown(amount, currency)}, expected {expected}"


def _gift_named(obj: Obj, *, reference: bool = True) -> Gift | None:
    """The gift an object says it is about: `metadata.gift_id` (or `client_reference_id`).

    This only says which gift the event claims: whether it pays it is for the handler
    to check. An id that is no gift number is kept for review.
    """
    metadata = obj.get("metadata")
    raw = _obj(metadata).get("gift_id")
    if raw in (None, "") and reference:
        raw = obj.get("client_reference_id")
    if raw in (None, ""):
        if metadata is not None and not isinstance(metadata, dict):
            hold(f"its metadata is {type(metadata).__name__}, not an object")
        return None
    gift_id = number(raw)
    if gift_id is None:
        hold(f"gift id {_shown(raw)} is not a gift number")
        return None
    return _about_gift(db.session.get(Gift, gift_id))


def _plan_named(metadata: Obj) -> int | None:
    """The plan id our metadata names (`recurring_plan_id`); an unreadable one is held."""
    raw = metadata.get("recurring_plan_id")
    if raw in (None, ""):
        return None
    plan_id = number(raw)
    if plan_id is None:
        hold(f"plan id {_shown(raw)} is not a plan number")
    return plan_id


def _plan_for_subscription(subscription_id: str | None, metadata: Obj, *, link: bool = True) -> RecurringPlan | None:
    return _about_plan(plans.plan_for_subscription(subscription_id, _plan_named(metadata), link=link))


def _gift_for_charge(charge: Obj, what: str) -> tuple[Gift | None, str | None]:
    """The gift a charge (or a dispute of one) paid for: by the ids we stored, else by
    asking Stripe which gift or invoice its payment intent belongs to. With no gift, also
    the outcome when the event is to wait (`what` it is): for an invoice Stripe names
    that we have not recorded yet (a renewal's refund before the renewal's invoice)."""
    gift, invoice_id = _find_gift_for_charge(charge)
    if gift is None and invoice_id:
        return None, wait(invoice_id, "invoice", f"of {what}")
    intent = _id(charge.get("payment_intent"))
    if gift is not None and intent and gift.paid_at is not None and gift.stripe_payment_intent_id not in (None, intent):
        # A second payment that names the same gift (Pay pressed twice, two tabs; the first
        # is held as "paid twice"): its refund or dispute is not one of the gift's own payment.
        return None, hold(
            f"{what} of payment intent {_shown(intent)}, which is not the payment of gift {gift.id} "
            f"({_shown(gift.stripe_payment_intent_id)})"
        )
    return gift, None


def _find_gift_for_charge(charge: Obj) -> tuple[Gift | None, str | None]:
    ids = [i for i in (_id(charge.get("id")), _id(charge.get("charge"))) if i]
    intent = _id(charge.get("payment_intent"))
    clauses: list[ColumnElement[bool]] = [Gift.stripe_charge_id.in_(ids)] if ids else []
    if intent:
        clauses.append(Gift.stripe_payment_intent_id == intent)
    if not clauses:
        return None, None
    gift = db.session.execute(select(Gift).where(or_(*clauses)).limit(1)).scalar_one_or_none()
    if gift is not None or not intent:
        return _about_gift(gift), None
    # Not linked yet (events out of order, or an instalment whose invoice event
    # carried no payment intent). A failure to ask raises: Stripe retries later.
    reference = gateway().payment_reference(intent)
    gift_id = number(reference.get("gift_id"))
    if gift_id is not None:
        gift = db.session.get(Gift, gift_id)
    elif _id(reference.get("invoice_id")):
        gift = db.session.execute(
            select(Gift).filter_by(stripe_invoice_id=reference["invoice_id"])
        ).scalar_one_or_none()
    if gift is not None:
        lifecycle.fill_missing(gift, stripe_payment_intent_id=intent)
        return _about_gift(gift), None
    return None, _id(reference.get("invoice_id"))


def _paid_by(gift: Gift, charge: Obj) -> None:
    """A refund or a dispute of a charge proves the charge was paid: record that first,
    in case the payment's own event has not arrived yet (for a paid gift: its charge id,
    and the charge's time if that is earlier than the one the gift has)."""
    lifecycle.mark_paid(
        gift,
        paid_at=utc_from_timestamp(charge.get("created")),
        payment_intent_id=_id(charge.get("payment_intent")),
        charge_id=_id(charge.get("id")) if charge.get("object") == "charge" else _id(charge.get("charge")),
    )


def _said(changed: bool, gift: Gift | None, what: str) -> str:
    if gift is None:
        return "ignored: no matching gift"
    return f"gift {gift.id} {what}" if changed else f"gift {gift.id} unchanged ({gift.status.value})"


def _apply(gift: Gift | None, change: Callable[[Gift], bool], what: str) -> str:
    """Apply `change` to the gift, if there is one, and say what happened."""
    return _said(gift is not None and change(gift), gift, what)


# --- One-time payments ---------------------------------------------------------


def _own_session(session: Obj) -> Gift | None:
    """The gift whose checkout this session is: the one it names, if the app opened this
    very session for it. A session it names but we did not open (a Payment Link with the
    gift's number as `client_reference_id`, an abandoned session) is held for review."""
    gift = _gift_named(session)
    if gift is None:
        return None
    lifecycle.lock(gift)  # begin_checkout writes the session id under the same lock
    session_id = _id(session.get("id"))
    if session_id is None or session_id != gift.stripe_checkout_session_id:
        hold(
            f"checkout session {_shown(session_id)} is not the one opened for gift {gift.id} "
            f"({_shown(gift.stripe_checkout_session_id or 'none')})"
        )
        return None
    return gift


def checkout_session_completed(session: Obj) -> str:
    """A checkout finished: pays the gift when it is the session we opened for it, paid
    in full in the gift's amount and currency."""
    gift = _own_session(session)
    if gift is None:
        return "ignored: no matching gift"
    plan_id = _id(session.get("subscription"))
    if plan_id and gift.recurring_plan_id:
        _plan_for_subscription(plan_id, _obj(session.get("metadata")))
    wrong = not_as_asked(session.get("amount_total"), session.get("currency"), gift.amount_minor, gift.currency)
    if wrong is not None:
        return hold(f"checkout session for gift {gift.id}: {wrong}")
    if session.get("payment_status") not in ("paid", "no_payment_required"):
        return _checkout_processing(gift, session)
    if session.get("mode") == "subscription":
        # The invoice events record the instalment; this fills in what they need.
        invoice_id = _id(session.get("invoice"))
        if invoice_id and gift.status.value in ("pending", "failed"):
            changed = lifecycle.mark_paid(
                gift, paid_at=_event_time(), invoice_id=invoice_id, customer_id=_id(session.get("customer"))
            )
            return _said(changed, gift, "succeeded")
        return _said(False, gift, "")
    changed = lifecycle.mark_paid(
        gift,
        paid_at=_event_time(),
        payment_intent_id=_id(session.get("payment_intent")),
        customer_id=_id(session.get("customer")),
    )
    return _said(changed, gift, "succeeded")


def _checkout_processing(gift: Gift, session: Obj) -> str:
    """The donor finished Checkout with a method that settles later (SEPA Direct Debit, some
    Przelewy24 payments): `checkout.session.async_payment_succeeded` or `_failed` follows. The
    gift is processing; its payment intent is linked now, so the intent's own events (a
    success, a failure) find it whichever comes first."""
    if session.get("mode") != "subscription":
        lifecycle.fill_missing(gift, stripe_payment_intent_id=_id(session.get("payment_intent")))
    lifecycle.fill_missing(gift.supporter, stripe_customer_id=_id(session.get("customer")))
    return _said(lifecycle.mark_processing(gift, _event_time()), gift, "processing")


def checkout_session_async_failed(session: Obj) -> str:
    return _apply(_own_session(session), lifecycle.mark_failed, "failed")


def checkout_session_expired(session: Obj) -> str:
    return _apply(_own_session(session), lifecycle.mark_canceled, "canceled")


def payment_intent_succeeded(intent: Obj) -> str:
    """A payment intent succeeded: pays the gift it names when it is the intent linked to
    the gift (the offline page links it; Checkout's is linked by its session's event), for
    the gift's amount and currency."""
    gift = _gift_named(intent, reference=False)
    if gift is None:
        return "ignored: not a gift's own payment (subscriptions are recorded by invoice)"
    lifecycle.lock(gift)  # the test-payment page links its intent under the same lock
    received = intent.get("amount_received", intent.get("amount"))
    wrong = not_as_asked(received, intent.get("currency"), gift.amount_minor, gift.currency)
    if wrong is not None:
        return hold(f"payment intent for gift {gift.id}: {wrong}")
    intent_id = _id(intent.get("id"))
    if intent_id is None or intent_id != gift.stripe_payment_intent_id:
        if (
            intent_id is not None
            and gift.stripe_payment_intent_id is None
            and gift.stripe_checkout_session_id is not None
            and gift.status in (GiftStatus.PENDING, GiftStatus.FAILED)
        ):
            # Checkout's own intent, before its session's event: that event links and pays it,
            # and this one is applied then (it brings the charge). If the session links another
            # intent, this one is held for review then.
            return wait(intent_id, "payment intent", "its checkout session links it")
        if gift.paid_at is not None and gift.stripe_payment_intent_id:
            # The donor's money arrived a second time (Pay pressed twice, two tabs): staff refund one.
            return hold(
                f"paid twice: payment intent {_shown(intent_id)} succeeded for gift {gift.id}, "
                f"already paid by {_shown(gift.stripe_payment_intent_id)}"
            )
        return hold(
            f"payment intent {_shown(intent_id)} is not the one linked to gift {gift.id} "
            f"({_shown(gift.stripe_payment_intent_id or 'none')})"
        )
    changed = lifecycle.mark_paid(
        gift,
        paid_at=_event_time(),
        payment_intent_id=intent_id,
        charge_id=_id(intent.get("latest_charge")),
        customer_id=_id(intent.get("customer")),
    )
    return _said(changed, gift, "succeeded")


def payment_intent_processing(intent: Obj) -> str:
    """A payment was submitted and settles later (SEPA Direct Debit; localstripe sends this for
    the offline page's debits): the gift whose current payment it is shows as processing. One
    of Checkout's intents is not linked before its session completes, and that session's
    event says the same, so an intent that is not the gift's current one changes nothing."""
    intent_id = _id(intent.get("id"))
    gift = _gift_named(intent, reference=False)
    if gift is None and intent_id is not None:
        # a subscription's first invoice carries no gift id: the offline page linked its intent
        gift = _about_gift(
            db.session.execute(select(Gift).filter_by(stripe_payment_intent_id=intent_id)).scalar_one_or_none()
        )
    if gift is None:
        return "ignored: no matching gift"
    lifecycle.lock(gift)
    if intent_id is None or intent_id != gift.stripe_payment_intent_id:
        return f"gift {gift.id} unchanged: payment intent {_shown(intent_id)} is not its current payment"
    wrong = not_as_asked(intent.get("amount"), intent.get("currency"), gift.amount_minor, gift.currency)
    if wrong is not None:
        return f"gift {gift.id} unchanged: {wrong}"  # its success, if it comes, is held for review
    return _said(lifecycle.mark_processing(gift, _event_time()), gift, "processing")


def payment_intent_failed(intent: Obj) -> str:
    gift = _gift_named(intent, reference=False)
    if gift is None:
        return "ignored: no matching gift"
    return _said(lifecycle.mark_failed(gift, _id(intent.get("id"))), gift, "failed")


# --- Recurring gifts -------------------------------------------------------------


def _subscription_of(invoice: Obj) -> tuple[str | None, Obj]:
    details = _obj(_obj(invoice.get("parent")).get("subscription_details")) or _obj(invoice.get("subscription_details"))
    subscription = _id(invoice.get("subscription")) or _id(details.get("subscription"))
    metadata = dict(_obj(details.get("metadata")))
    for line in _items(invoice.get("lines"))[:1]:
        metadata = {**_obj(line.get("metadata")), **metadata}
    return subscription, metadata


def _invoice_payment_intent(invoice: Obj) -> str | None:
    intent = _id(invoice.get("payment_intent"))
    if intent:
        return intent
    for payment in _items(invoice.get("payments")):
        intent = _id(_obj(payment.get("payment")).get("payment_intent"))
        if intent:
            return intent
    return None


def invoice_paid(invoice: Obj) -> str:
    """A plan's invoice was paid: records the instalment when the invoice is the plan's
    subscription's, for the plan's amount and currency (the first and every renewal)."""
    invoice_id = _id(invoice.get("id"))
    subscription_id, metadata = _subscription_of(invoice)
    if not invoice_id or (not subscription_id and not metadata):
        return "ignored: not a subscription invoice"
    # Linked to the subscription only once the invoice proves to be the plan's (below): an
    # invoice of another amount must not tie the plan to a subscription that is not its own.
    plan = _plan_for_subscription(subscription_id, metadata, link=False)
    if plan is None:
        named = number(metadata.get("recurring_plan_id"))
        other = db.session.get(RecurringPlan, named) if named is not None else None
        if other is not None:
            _about_plan(other)
            return hold(
                f"invoice {invoice_id} of subscription {_shown(subscription_id or 'none')} names plan {other.id}, "
                f"whose subscription is {_shown(other.stripe_subscription_id or 'none')}"
            )
        if subscription_id:
            return wait(subscription_id, "subscription")
        return "ignored: no matching recurring plan"
    amount = invoice.get("amount_paid")
    if amount_minor(amount) == 0:
        return "ignored: nothing was paid"
    wrong = not_as_asked(amount, invoice.get("currency"), plan.amount_minor, plan.currency)
    if wrong is not None:
        return hold(f"invoice {invoice_id} of plan {plan.id}: {wrong}")
    assert isinstance(amount, int)
    lifecycle.fill_missing(plan, stripe_subscription_id=subscription_id)
    transitions = _obj(invoice.get("status_transitions"))
    period_end = None
    for line in _items(invoice.get("lines"))[:1]:
        period_end = utc_from_timestamp(_obj(line.get("period")).get("end"))
    gift = _about_gift(
        plans.record_instalment(
            plan,
            invoice_id=invoice_id,
            amount_minor=amount,
            currency=plan.currency,
            paid_at=utc_from_timestamp(transitions.get("paid_at")) or utcnow(),
            payment_intent_id=_invoice_payment_intent(invoice),
            charge_id=_id(invoice.get("charge")),
            period_end=period_end,
            renewal=invoice.get("billing_reason") not in (None, "subscription_create"),
            reported_at=_event_time(),
        )
    )
    if gift is None:
        return f"invoice {invoice_id} already recorded"
    return f"gift {gift.id} succeeded (plan {plan.id})"


def _no_plan(subscription_id: str | None) -> str:
    """The outcome for an event about a subscription no plan is linked to (yet)."""
    if subscription_id:
        return wait(subscription_id, "subscription")
    return "ignored: no matching recurring plan"


def invoice_payment_failed(invoice: Obj) -> str:
    """A plan's invoice could not be paid: the first one fails the form's gift, a later one
    puts the plan past due, unless that invoice, or a later payment, was paid since."""
    subscription_id, metadata = _subscription_of(invoice)
    plan = _plan_for_subscription(subscription_id, metadata)
    if plan is None:
        return _no_plan(subscription_id)
    invoice_id = _id(invoice.get("id"))
    if invoice_id:
        paid = db.session.execute(select(Gift).filter_by(stripe_invoice_id=invoice_id)).scalar_one_or_none()
        if paid is not None and paid.status is not GiftStatus.PENDING:
            _about_gift(paid)
            return f"plan {plan.id} unchanged: invoice {_shown(invoice_id)} was paid since"
    if plan.status is PlanStatus.INCOMPLETE and invoice.get("billing_reason") in (None, "subscription_create"):
        # the first invoice: the donor's first payment failed (a renewal's failure that
        # comes before the first payment's events still puts the plan past due, below)
        first = _about_gift(
            db.session.execute(
                select(Gift).filter_by(recurring_plan_id=plan.id).order_by(Gift.id).limit(1)
            ).scalar_one_or_none()
        )
        if first is not None:
            return _said(lifecycle.mark_failed(first), first, "failed")
        return f"plan {plan.id} unchanged"
    _first_payment_failed(plan, invoice)
    moved = lifecycle.move_plan(plan, PlanStatus.PAST_DUE, at=_event_time())
    if invoice.get("billing_reason") != "subscription_create":
        # a renewal: the donor is asked to update the card, once per invoice, while past due
        reminders.queue_failed_renewal(plan, invoice_id, utc_from_timestamp(invoice.get("next_payment_attempt")))
    return f"plan {plan.id} past due" if moved else f"plan {plan.id} unchanged ({plan.status.value})"


def _first_payment_failed(plan: RecurringPlan, invoice: Obj) -> None:
    """A first payment that fails once the plan is active fails the form's gift: a SEPA
    Direct Debit's subscription is active while the debit is processing, and the debit may
    fail days later. The first invoice is Stripe's `subscription_create`, or (localstripe's
    shape names no reason) the one whose payment intent the offline page linked to the gift."""
    first = db.session.execute(
        select(Gift).filter_by(recurring_plan_id=plan.id).order_by(Gift.id).limit(1)
    ).scalar_one_or_none()
    if first is None or first.status is not GiftStatus.PENDING:
        return
    intent = _invoice_payment_intent(invoice)
    if invoice.get("billing_reason") == "subscription_create" or (intent and intent == first.stripe_payment_intent_id):
        _about_gift(first)
        lifecycle.mark_failed(first, intent)


SUBSCRIPTION_STATUSES = {
    "active": PlanStatus.ACTIVE,
    "trialing": PlanStatus.ACTIVE,
    "past_due": PlanStatus.PAST_DUE,
    "unpaid": PlanStatus.PAST_DUE,
    "canceled": PlanStatus.CANCELED,
    "incomplete_expired": PlanStatus.CANCELED,
}


def subscription_updated(subscription: Obj) -> str:
    """An update may also change the plan's terms elsewhere (Stripe's dashboard, the portal):
    the amount, interval and pause come onto the plan (`plan_changes.take_from_stripe`)."""
    return subscription_changed(subscription, terms=True)


def subscription_changed(subscription: Obj, *, terms: bool = False) -> str:
    """The subscription's status and period (created, updated), and with `terms` its terms."""
    plan = _plan_for_subscription(_id(subscription.get("id")), _obj(subscription.get("metadata")))
    if plan is None:
        return _no_plan(_id(subscription.get("id")))
    target = SUBSCRIPTION_STATUSES.get(str(subscription.get("status")))
    # Stripe keeps the period on each item now; older shapes have it on the subscription.
    ends = [subscription.get("current_period_end")]
    ends += [item.get("current_period_end") for item in _items(subscription.get("items"))]
    for end in ends:
        plans.extend_period(plan, utc_from_timestamp(end))
    taken = plan_changes.take_from_stripe(plan, subscription_terms(subscription), _event_time()) if terms else ""
    if target is None:
        return f"plan {plan.id} unchanged ({plan.status.value})" + (f"; terms: {taken}" if taken else "")
    if target is PlanStatus.CANCELED:
        _note_cancellation(plan, subscription)
    if taken:
        moved = lifecycle.move_plan(plan, target, at=_event_time())
        return f"plan {plan.id} {target.value if moved else 'unchanged'}; terms: {taken}"
    moved = lifecycle.move_plan(plan, target, at=_event_time())
    return f"plan {plan.id} {target.value}" if moved else f"plan {plan.id} unchanged ({plan.status.value})"


def subscription_terms(subscription: Obj) -> plan_changes.StripeTerms:
    """The amount, interval and pause a subscription object states: its one item's price
    (Stripe) or plan (localstripe's older shape), and `pause_collection` (absent: unsaid)."""
    items = _items(subscription.get("items"))
    price = (_obj(items[0].get("price")) or _obj(items[0].get("plan"))) if len(items) == 1 else {}
    amount = amount_minor(price.get("unit_amount", price.get("amount")))
    recurring = _obj(price.get("recurring"))
    interval = recurring.get("interval") or price.get("interval")
    paused: bool | None = None
    resumes_at = None
    if "pause_collection" in subscription:
        pause = _obj(subscription.get("pause_collection"))
        paused = bool(pause)
        resumes_at = utc_from_timestamp(pause.get("resumes_at")) if pause else None
    return plan_changes.StripeTerms(
        amount_minor=amount,
        currency=str(price.get("currency") or "") or None,
        interval=interval if interval in ("month", "year") else None,
        paused=paused,
        resumes_at=resumes_at,
    )


def subscription_deleted(subscription: Obj) -> str:
    plan = _plan_for_subscription(_id(subscription.get("id")), _obj(subscription.get("metadata")))
    if plan is None:
        return _no_plan(_id(subscription.get("id")))
    _note_cancellation(plan, subscription)
    moved = lifecycle.move_plan(plan, PlanStatus.CANCELED)
    return f"plan {plan.id} canceled" if moved else f"plan {plan.id} unchanged ({plan.status.value})"


def _note_cancellation(plan: Any, subscription: Obj) -> None:
    details = _obj(subscription.get("cancellation_details"))
    reason = details.get("comment") or details.get("feedback") or details.get("reason")
    if isinstance(reason, str) and reason and not plan.cancel_reason:
        plan.cancel_reason = _printable(reason, 500)
    plan.canceled_at = plan.canceled_at or utc_from_timestamp(subscription.get("canceled_at"))


# --- Refunds and disputes ------------------------------------------------------


def charge_refunded(charge: Obj) -> str:
    gift, waiting = _gift_for_charge(charge, "a refund")
    if gift is None:
        return waiting or "ignored: no matching gift"
    refunded = amount_minor(charge.get("amount_refunded"))
    if refunded is None:
        return hold(f"refund of gift {gift.id}: refunded amount {_shown(charge.get('amount_refunded'))} is no amount")
    _paid_by(gift, charge)
    lifecycle.fill_missing(gift, stripe_charge_id=_id(charge.get("id")))
    return _said(lifecycle.apply_refund_total(gift, refunded), gift, f"refunded {refunded} in all")


def dispute_created(dispute: Obj) -> str:
    gift, waiting = _gift_for_charge(dispute, "a dispute")
    if gift is None:
        return waiting or "ignored: no matching gift"
    _paid_by(gift, dispute)
    if dispute.get("status") in ("won", "lost"):
        # the dispute as it is now (a late copy, or one replayed by reconcile): closed
        return dispute_closed_for(gift, dispute)
    return _apply(gift, lifecycle.mark_disputed, "disputed")


def invoice_payment_paid(invoice_payment: Obj) -> str:
    """Links an instalment to its payment intent: current invoices no longer carry it."""
    invoice_id = _id(invoice_payment.get("invoice"))
    intent = _id(_obj(invoice_payment.get("payment")).get("payment_intent"))
    if not invoice_id or not intent:
        return "ignored: not a payment intent"
    gift = _about_gift(db.session.execute(select(Gift).filter_by(stripe_invoice_id=invoice_id)).scalar_one_or_none())
    if gift is None:
        return wait(invoice_id, "invoice")
    changed = not gift.stripe_payment_intent_id
    lifecycle.fill_missing(gift, stripe_payment_intent_id=intent)
    return _said(changed, gift, f"linked to {intent}")


def dispute_closed(dispute: Obj) -> str:
    """A dispute ended, won or lost: applies whether or not its opening was seen first."""
    gift, waiting = _gift_for_charge(dispute, "a dispute")
    if gift is None:
        return waiting or "ignored: no matching gift"
    _paid_by(gift, dispute)
    return dispute_closed_for(gift, dispute)


def dispute_closed_for(gift: Gift, dispute: Obj) -> str:
    status = dispute.get("status")
    if status not in ("won", "lost"):
        # "warning_closed": an inquiry closed without a chargeback; the money stays counted
        return _apply(gift, lambda g: lifecycle.close_dispute(g, True), "dispute closed")
    won = status == "won"
    return _apply(gift, lambda g: lifecycle.close_dispute(g, won), "dispute won" if won else "dispute lost")


HANDLERS: dict[str, Callable[[Obj], str]] = {
    "checkout.session.completed": checkout_session_completed,
    "checkout.session.async_payment_succeeded": checkout_session_completed,
    "checkout.session.async_payment_failed": checkout_session_async_failed,
    "checkout.session.expired": checkout_session_expired,
    "payment_intent.succeeded": payment_intent_succeeded,
    "payment_intent.processing": payment_intent_processing,
    "payment_intent.payment_failed": payment_intent_failed,
    "invoice.paid": invoice_paid,
    "invoice.payment_succeeded": invoice_paid,
    "invoice.payment_failed": invoice_payment_failed,
    "invoice_payment.paid": invoice_payment_paid,
    "customer.subscription.created": subscription_changed,
    "customer.subscription.updated": subscription_updated,
    "customer.subscription.deleted": subscription_deleted,
    "charge.refunded": charge_refunded,
    "charge.dispute.created": dispute_created,
    "charge.dispute.closed": dispute_closed,
}
