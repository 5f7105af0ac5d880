"""What each Stripe event means for gifts and plans.

`process_event()` records the event id first (a second copy is refused by the
primary key) and applies the event in the caller's transaction. The record keeps
the gift and the plan the event turned out to be about (`gift_id`, `plan_id`, what
a gift's or plan's history reads): the lookups below note each one they find, for
whatever the handler then does with it. Handlers read
object fields defensively: Stripe's newer shapes and localstripe's older ones
both occur (an id or an embedded object; `parent.subscription_details` or a
top-level `subscription`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.exc import IntegrityError

from supporters.extensions import db
from supporters.giving import lifecycle, plans
from supporters.models import Gift, PlanStatus, RecurringPlan, StripeEvent, utcnow
from supporters.payments import gateway

log = logging.getLogger(__name__)

Obj = dict[str, Any]


class DuplicateEvent(Exception):
    """This event id was recorded before: acknowledge it and change nothing."""


@dataclass
class _Subject:
    """The gift and the plan the event being handled is about, as the lookups find them."""

    gift: Gift | None = None
    plan: RecurringPlan | None = None


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


def process_event(event: Obj) -> str:
    """Record `event` once and apply it; returns what happened, in a few words.

    Raises DuplicateEvent for an event seen before. Flushes; the caller commits
    (or rolls back everything, the event record included, if this raises).
    """
    if db.session.get(StripeEvent, event["id"]) is not None:
        raise DuplicateEvent(event["id"])
    record = StripeEvent(id=event["id"], type=event["type"], livemode=bool(event.get("livemode")), payload=event)
    try:
        with db.session.begin_nested():
            db.session.add(record)
    except IntegrityError:
        raise DuplicateEvent(event["id"]) from None
    handler = HANDLERS.get(event["type"])
    if handler is None:
        log.info("Stripe event %s of type %s acknowledged, not handled", event["id"], event["type"])
        outcome = "ignored: type not handled"
    else:
        subject = _Subject()
        token = _subject.set(subject)
        try:
            outcome = handler(event["data"]["object"])
        finally:
            _subject.reset(token)
        record.gift_id = subject.gift.id if subject.gift is not None else None
        record.plan_id = subject.plan.id if subject.plan is not None else None
    record.processed_at = utcnow()
    record.outcome = outcome[:200]
    db.session.flush()
    return outcome


def utc_from_timestamp(value: Any) -> datetime | None:
    """A Stripe timestamp (seconds) as an aware datetime."""
    if isinstance(value, int | float) and value > 0:
        return datetime.fromtimestamp(int(value), UTC)
    return None


def _id(value: Any) -> str | None:
    """An object's id whether Stripe sent the id or the whole object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _gift_from_metadata(obj: Obj) -> Gift | None:
    gift_id = str((obj.get("metadata") or {}).get("gift_id") or obj.get("client_reference_id") or "")
    return _about_gift(db.session.get(Gift, int(gift_id))) if gift_id.isdigit() else None


def _plan_for_subscription(subscription_id: str | None, metadata: Obj | None) -> RecurringPlan | None:
    return _about_plan(plans.plan_for_subscription(subscription_id, metadata))


def _gift_for_charge(charge: Obj) -> Gift | None:
    """The gift a charge (or a dispute of one) paid for: by the ids we stored, else by
    asking Stripe which gift or invoice its payment intent belongs to."""
    ids = [i for i in (_id(charge.get("id")), _id(charge.get("charge"))) if i]
    intent = _id(charge.get("payment_intent"))
    clauses: list[ColumnElement[bool]] = [Gift.stripe_charge_id.in_(ids)] if ids else []
    if intent:
        clauses.append(Gift.stripe_payment_intent_id == intent)
    if not clauses:
        return None
    gift = db.session.execute(select(Gift).where(or_(*clauses)).limit(1)).scalar_one_or_none()
    if gift is not None or not intent:
        return _about_gift(gift)
    # Not linked yet (events out of order, or an instalment whose invoice event
    # carried no payment intent). A failure to ask raises: Stripe retries later.
    reference = gateway().payment_reference(intent)
    if reference.get("gift_id", "").isdigit():
        gift = db.session.get(Gift, int(reference["gift_id"]))
    elif reference.get("invoice_id"):
        gift = db.session.execute(
            select(Gift).filter_by(stripe_invoice_id=reference["invoice_id"])
        ).scalar_one_or_none()
    if gift is not None:
        lifecycle.fill_missing(gift, stripe_payment_intent_id=intent)
    return _about_gift(gift)


def _paid_by(gift: Gift, charge: Obj) -> None:
    """A refund or a dispute of a charge proves the charge was paid: record that first,
    in case the payment's own event has not arrived yet."""
    if gift.status.value in ("pending", "failed", "canceled"):
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


def checkout_session_completed(session: Obj) -> str:
    gift = _gift_from_metadata(session)
    if gift is None:
        return "ignored: no matching gift"
    lifecycle.fill_missing(gift, stripe_checkout_session_id=_id(session.get("id")))
    plan_id = _id(session.get("subscription"))
    if plan_id and gift.recurring_plan_id:
        _plan_for_subscription(plan_id, session.get("metadata"))
    if session.get("payment_status") not in ("paid", "no_payment_required"):
        return f"gift {gift.id} waits for its payment"
    if session.get("mode") == "subscription":
        # The invoice events record the instalment; this fills in what they need.
        invoice_id = _id(session.get("invoice"))
        if invoice_id and gift.status.value in ("pending", "failed"):
            changed = lifecycle.mark_paid(gift, invoice_id=invoice_id, customer_id=_id(session.get("customer")))
            return _said(changed, gift, "succeeded")
        return _said(False, gift, "")
    changed = lifecycle.mark_paid(
        gift,
        payment_intent_id=_id(session.get("payment_intent")),
        customer_id=_id(session.get("customer")),
    )
    return _said(changed, gift, "succeeded")


def checkout_session_async_failed(session: Obj) -> str:
    return _apply(_gift_from_metadata(session), lifecycle.mark_failed, "failed")


def checkout_session_expired(session: Obj) -> str:
    return _apply(_gift_from_metadata(session), lifecycle.mark_canceled, "canceled")


def payment_intent_succeeded(intent: Obj) -> str:
    gift = _gift_from_metadata(intent)
    if gift is None:
        return "ignored: not a gift's own payment (subscriptions are recorded by invoice)"
    changed = lifecycle.mark_paid(
        gift,
        payment_intent_id=_id(intent.get("id")),
        charge_id=_id(intent.get("latest_charge")),
        customer_id=_id(intent.get("customer")),
    )
    return _said(changed, gift, "succeeded")


def payment_intent_failed(intent: Obj) -> str:
    gift = _gift_from_metadata(intent)
    if gift is None:
        return "ignored: no matching gift"
    return _said(lifecycle.mark_failed(gift, _id(intent.get("id"))), gift, "failed")


# --- Recurring gifts -------------------------------------------------------------


def _subscription_of(invoice: Obj) -> tuple[str | None, Obj]:
    details = ((invoice.get("parent") or {}).get("subscription_details")) or invoice.get("subscription_details") or {}
    subscription = _id(invoice.get("subscription")) or _id(details.get("subscription"))
    metadata = dict(details.get("metadata") or {})
    for line in ((invoice.get("lines") or {}).get("data") or [])[:1]:
        metadata = {**(line.get("metadata") or {}), **metadata}
    return subscription, metadata


def _invoice_payment_intent(invoice: Obj) -> str | None:
    intent = _id(invoice.get("payment_intent"))
    if intent:
        return intent
    for payment in (invoice.get("payments") or {}).get("data") or []:
        intent = _id((payment.get("payment") or {}).get("payment_intent"))
        if intent:
            return intent
    return None


def invoice_paid(invoice: Obj) -> str:
    invoice_id = _id(invoice.get("id"))
    subscription_id, metadata = _subscription_of(invoice)
    if not invoice_id or (not subscription_id and not metadata):
        return "ignored: not a subscription invoice"
    plan = _plan_for_subscription(subscription_id, metadata)
    if plan is None:
        return "ignored: no matching recurring plan"
    amount = invoice.get("amount_paid")
    if not isinstance(amount, int) or amount <= 0:
        return "ignored: nothing was paid"
    transitions = invoice.get("status_transitions") or {}
    period_end = None
    for line in ((invoice.get("lines") or {}).get("data") or [])[:1]:
        period_end = utc_from_timestamp((line.get("period") or {}).get("end"))
    gift = _about_gift(
        plans.record_instalment(
            plan,
            invoice_id=invoice_id,
            amount_minor=amount,
            currency=str(invoice.get("currency", "")).upper(),
            paid_at=utc_from_timestamp(transitions.get("paid_at")) or utcnow(),
            payment_intent_id=_invoice_payment_intent(invoice),
            charge_id=_id(invoice.get("charge")),
            period_end=period_end,
            renewal=invoice.get("billing_reason") not in (None, "subscription_create"),
        )
    )
    if gift is None:
        return f"invoice {invoice_id} already recorded"
    return f"gift {gift.id} succeeded (plan {plan.id})"


def invoice_payment_failed(invoice: Obj) -> str:
    subscription_id, metadata = _subscription_of(invoice)
    plan = _plan_for_subscription(subscription_id, metadata)
    if plan is None:
        return "ignored: no matching recurring plan"
    if plan.status is PlanStatus.INCOMPLETE:
        first = _about_gift(
            db.session.execute(
                select(Gift).filter_by(recurring_plan_id=plan.id).order_by(Gift.id).limit(1)
            ).scalar_one_or_none()
        )
        if first is not None:
            return _said(lifecycle.mark_failed(first), first, "failed")
        return f"plan {plan.id} unchanged"
    moved = lifecycle.move_plan(plan, PlanStatus.PAST_DUE)
    return f"plan {plan.id} past due" if moved else f"plan {plan.id} unchanged ({plan.status.value})"


SUBSCRIPTION_STATUSES = {
    "active": PlanStatus.ACTIVE,
    "trialing": PlanStatus.ACTIVE,
    "past_due": PlanStatus.PAST_DUE,
    "unpaid": PlanStatus.PAST_DUE,
    "canceled": PlanStatus.CANCELED,
    "incomplete_expired": PlanStatus.CANCELED,
}


def subscription_changed(subscription: Obj) -> str:
    plan = _plan_for_subscription(_id(subscription.get("id")), subscription.get("metadata"))
    if plan is None:
        return "ignored: no matching recurring plan"
    target = SUBSCRIPTION_STATUSES.get(str(subscription.get("status")))
    # Stripe keeps the period on each item now; older shapes have it on the subscription.
    ends = [subscription.get("current_period_end")]
    ends += [item.get("current_period_end") for item in ((subscription.get("items") or {}).get("data") or [])]
    for end in ends:
        plans.extend_period(plan, utc_from_timestamp(end))
    if target is None:
        return f"plan {plan.id} unchanged ({plan.status.value})"
    if target is PlanStatus.CANCELED:
        _note_cancellation(plan, subscription)
    moved = lifecycle.move_plan(plan, target)
    return f"plan {plan.id} {target.value}" if moved else f"plan {plan.id} unchanged ({plan.status.value})"


def subscription_deleted(subscription: Obj) -> str:
    plan = _plan_for_subscription(_id(subscription.get("id")), subscription.get("metadata"))
    if plan is None:
        return "ignored: no matching recurring plan"
    _note_cancellation(plan, subscription)
    moved = lifecycle.move_plan(plan, PlanStatus.CANCELED)
    return f"plan {plan.id} canceled" if moved else f"plan {plan.id} unchanged ({plan.status.value})"


def _note_cancellation(plan: Any, subscription: Obj) -> None:
    details = subscription.get("cancellation_details") or {}
    reason = details.get("comment") or details.get("feedback") or details.get("reason")
    if reason and not plan.cancel_reason:
        plan.cancel_reason = str(reason)[:500]
    plan.canceled_at = plan.canceled_at or utc_from_timestamp(subscription.get("canceled_at"))


# --- Refunds and disputes ------------------------------------------------------


def charge_refunded(charge: Obj) -> str:
    gift = _gift_for_charge(charge)
    if gift is None:
        return "ignored: no matching gift"
    refunded = charge.get("amount_refunded")
    if not isinstance(refunded, int):
        return "ignored: no refunded amount"
    _paid_by(gift, charge)
    lifecycle.fill_missing(gift, stripe_charge_id=_id(charge.get("id")))
    return _said(lifecycle.apply_refund_total(gift, refunded), gift, f"refunded {refunded} in all")


def dispute_created(dispute: Obj) -> str:
    gift = _gift_for_charge(dispute)
    if gift is not None:
        _paid_by(gift, dispute)
    return _apply(gift, lifecycle.mark_disputed, "disputed")


def invoice_payment_paid(invoice_payment: Obj) -> str:
    """Links an instalment to its payment intent: current invoices no longer carry it."""
    invoice_id = _id(invoice_payment.get("invoice"))
    intent = _id((invoice_payment.get("payment") or {}).get("payment_intent"))
    if not invoice_id or not intent:
        return "ignored: not a payment intent"
    gift = _about_gift(db.session.execute(select(Gift).filter_by(stripe_invoice_id=invoice_id)).scalar_one_or_none())
    if gift is None:
        return "ignored: invoice not recorded (its payment is looked up when needed)"
    changed = not gift.stripe_payment_intent_id
    lifecycle.fill_missing(gift, stripe_payment_intent_id=intent)
    return _said(changed, gift, f"linked to {intent}")


def dispute_closed(dispute: Obj) -> str:
    won = dispute.get("status") == "won"
    return _apply(
        _gift_for_charge(dispute),
        lambda gift: lifecycle.close_dispute(gift, won),
        "dispute won" if won else "dispute lost",
    )


HANDLERS: dict[str, Callable[[Obj], str]] = {
    "checkout.session.completed": checkout_session_completed,
    "checkout.session.async_payment_succeeded": checkout_session_completed,
    "checkout.session.async_payment_failed": checkout_session_async_failed,
    "checkout.session.expired": checkout_session_expired,
    "payment_intent.succeeded": payment_intent_succeeded,
    "payment_intent.payment_failed": payment_intent_failed,
    "invoice.paid": invoice_paid,
    "invoice.payment_succeeded": invoice_paid,
    "invoice.payment_failed": invoice_payment_failed,
    "invoice_payment.paid": invoice_payment_paid,
    "customer.subscription.created": subscription_changed,
    "customer.subscription.updated": subscription_changed,
    "customer.subscription.deleted": subscription_deleted,
    "charge.refunded": charge_refunded,
    "charge.dispute.created": dispute_created,
    "charge.dispute.closed": dispute_closed,
}
