"""Issue 11, "Out of order": each order of events that gave the wrong money, pinned.

Stripe promises neither order nor single delivery. The state kept is the one the facts
give (a dispute's state, a charge's refunded total, a payment's time), and an event
about an object we do not know yet waits for it (`StripeEvent.waiting_for`) and is
applied once, when the object appears or when reconcile runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from supporters.extensions import db as _db
from supporters.mail import receipts as mail_receipts
from supporters.models import (
    Gift,
    GiftKind,
    GiftStatus,
    OutboxEmail,
    PlanStatus,
    RecurringPlan,
    StripeEvent,
    Supporter,
)
from supporters.payments import PaymentsUnavailable, gateway
from tests import factories
from tests import stripe_events as se
from tests.functional.test_webhook_lifecycles import active_plan_with_a_paid_first_gift, fire_concurrently, signed

Deliver = Callable[[dict[str, Any]], dict[str, Any]]


@pytest.fixture
def deliver(client: Any, app: Flask, db: Any) -> Deliver:
    secret = gateway().webhook_secret

    def _deliver(evt: dict[str, Any]) -> dict[str, Any]:
        response = se.post_event(client, evt, secret)
        assert response.status_code == 200, response.get_data(as_text=True)
        reply: dict[str, Any] = response.get_json()
        return reply

    return _deliver


@pytest.fixture
def stripe_knows(app: Flask, db: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, dict[str, str]]]:
    """What Stripe answers when asked which gift or invoice a payment intent paid for."""
    known: dict[str, dict[str, str]] = {}
    with app.app_context():
        monkeypatch.setattr(gateway(), "payment_reference", lambda intent: dict(known.get(intent, {})))
    yield known


def fresh(model: type[Any], row_id: int) -> Any:
    _db.session.expire_all()
    return _db.session.get(model, row_id)


def event_row(event_id: str) -> StripeEvent:
    _db.session.expire_all()
    row = _db.session.get(StripeEvent, event_id)
    assert row is not None
    return row


def receipts() -> int:
    return _db.session.scalar(select(func.count()).select_from(OutboxEmail).filter_by(kind=mail_receipts.RECEIPT)) or 0


def lifetime(supporter_id: int) -> tuple[int, int]:
    person = fresh(Supporter, supporter_id)
    return person.gift_count, person.lifetime_total_minor


def paid_one_time_gift() -> Gift:
    """A one-time gift of 50.00 PLN paid through pi_o / ch_o."""
    gift = factories.paid_gift(
        amount_minor=5000, amount_base_minor=5000, stripe_payment_intent_id="pi_o", stripe_charge_id="ch_o"
    )
    gift.receipt_number = f"2026-9{gift.id:05d}"
    _db.session.commit()
    return gift


def active_plan(subscription_id: str = "sub_o") -> tuple[RecurringPlan, Gift]:
    """An active monthly plan of 30.00 PLN whose first gift (invoice in_o1) is paid."""
    plan = factories.plan(amount_minor=3000, stripe_subscription_id=subscription_id)
    first = factories.paid_gift(
        _db.session.get(Supporter, plan.supporter_id),
        amount_minor=3000,
        amount_base_minor=3000,
        kind=GiftKind.RECURRING,
        recurring_plan_id=plan.id,
        stripe_invoice_id="in_o1",
    )
    first.receipt_number = f"2026-9{first.id:05d}"
    plan.status = PlanStatus.ACTIVE
    _db.session.commit()
    return plan, first


def pending_plan() -> tuple[RecurringPlan, Gift]:
    """A plan just made on the form: incomplete, no subscription yet, its first gift pending."""
    plan = factories.plan(amount_minor=3000)
    gift = factories.gift(
        _db.session.get(Supporter, plan.supporter_id),
        amount_minor=3000,
        amount_base_minor=3000,
        kind=GiftKind.RECURRING,
        recurring_plan_id=plan.id,
    )
    gift.stripe_checkout_session_id = se.checkout_session_id(gift.id)
    _db.session.commit()
    return plan, gift


# --- 1. A dispute closed before it was opened -------------------------------------------


@pytest.mark.parametrize(
    "closed,status,counted", [("won", GiftStatus.SUCCEEDED, (1, 5000)), ("lost", GiftStatus.REFUNDED, (0, 0))]
)
def test_a_dispute_closed_before_it_was_opened_ends_as_closed(
    deliver: Deliver, closed: str, status: GiftStatus, counted: tuple[int, int]
) -> None:
    gift = paid_one_time_gift()

    deliver(se.event("charge.dispute.closed", se.dispute("ch_o", "pi_o", closed, id="dp_o"), created=se.T0 + 20))
    reply = deliver(
        se.event("charge.dispute.created", se.dispute("ch_o", "pi_o", "needs_response", id="dp_o"), created=se.T0 + 10)
    )

    final = fresh(Gift, gift.id)
    assert (final.status, final.dispute_status) == (status, closed)
    assert "unchanged" in reply["outcome"]
    assert lifetime(gift.supporter_id) == counted


# --- 2. A refund while a dispute is open, then the dispute lost ---------------------------


def test_a_refund_while_a_dispute_is_open_then_the_dispute_lost_counts_nothing(deliver: Deliver) -> None:
    gift = paid_one_time_gift()

    deliver(se.event("charge.dispute.created", se.dispute("ch_o", "pi_o", "needs_response", id="dp_o")))
    deliver(se.event("charge.refunded", se.charge("ch_o", "pi_o", 5000, 1000)))
    assert fresh(Gift, gift.id).status is GiftStatus.DISPUTED  # the rest is still held by the bank
    assert lifetime(gift.supporter_id) == (0, 0)
    deliver(se.event("charge.dispute.closed", se.dispute("ch_o", "pi_o", "lost", id="dp_o")))

    final = fresh(Gift, gift.id)
    assert (final.status, final.refunded_minor, final.dispute_status) == (GiftStatus.REFUNDED, 5000, "lost")
    assert lifetime(gift.supporter_id) == (0, 0)


def test_a_refund_while_a_dispute_is_open_then_the_dispute_won_counts_the_rest(deliver: Deliver) -> None:
    gift = paid_one_time_gift()

    deliver(se.event("charge.dispute.created", se.dispute("ch_o", "pi_o", "needs_response", id="dp_o")))
    deliver(se.event("charge.refunded", se.charge("ch_o", "pi_o", 5000, 1000)))
    deliver(se.event("charge.dispute.closed", se.dispute("ch_o", "pi_o", "won", id="dp_o")))

    final = fresh(Gift, gift.id)
    assert (final.status, final.refunded_minor) == (GiftStatus.PARTIALLY_REFUNDED, 1000)
    assert lifetime(gift.supporter_id) == (1, 4000)


# --- 3. A renewal's refund before that renewal's invoice ------------------------------------


def test_a_renewals_refund_before_its_invoice_waits_and_is_applied_when_the_invoice_comes(
    deliver: Deliver, stripe_knows: dict[str, dict[str, str]]
) -> None:
    plan, first = active_plan()
    stripe_knows["pi_o2"] = {"invoice_id": "in_o2"}
    refund = se.event("charge.refunded", se.charge("ch_o2", "pi_o2", 3000, 3000))

    early = deliver(refund)

    assert early["outcome"] == "waiting for invoice in_o2 (of a refund)"
    assert event_row(refund["id"]).waiting_for == "in_o2"
    meta = se.gift_metadata(first.id, plan.id)
    deliver(se.event("invoice.paid", se.invoice("sub_o", 3000, "pln", "in_o2", meta, payment_intent="pi_o2")))

    renewal = _db.session.execute(select(Gift).filter_by(stripe_invoice_id="in_o2")).scalar_one()
    assert (renewal.status, renewal.refunded_minor, renewal.stripe_charge_id) == (GiftStatus.REFUNDED, 3000, "ch_o2")
    applied = event_row(refund["id"])
    assert applied.waiting_for is None and applied.gift_id == renewal.id
    assert "refunded 3000" in (applied.outcome or "")
    assert lifetime(plan.supporter_id) == (1, 3000)  # the first gift only: the renewal was refunded


def test_a_waiting_refund_is_applied_once_however_often_it_and_its_invoice_come(
    deliver: Deliver, stripe_knows: dict[str, dict[str, str]]
) -> None:
    plan, first = active_plan()
    stripe_knows["pi_o2"] = {"invoice_id": "in_o2"}
    meta = se.gift_metadata(first.id, plan.id)
    partial = se.event("charge.refunded", se.charge("ch_o2", "pi_o2", 3000, 1000))
    invoice = se.invoice("sub_o", 3000, "pln", "in_o2", meta, payment_intent="pi_o2")

    deliver(partial)
    deliver(partial)  # a second copy: acknowledged, nothing more
    deliver(se.event("invoice.paid", invoice))
    deliver(se.event("invoice.payment_succeeded", invoice))

    renewal = _db.session.execute(select(Gift).filter_by(stripe_invoice_id="in_o2")).scalar_one()
    assert (renewal.status, renewal.refunded_minor) == (GiftStatus.PARTIALLY_REFUNDED, 1000)
    assert lifetime(plan.supporter_id) == (2, 5000)
    assert (
        _db.session.scalar(select(func.count()).select_from(StripeEvent).where(StripeEvent.waiting_for.isnot(None)))
        == 0
    )


def test_a_refund_of_a_payment_stripe_knows_nothing_about_is_ignored_not_kept_waiting(
    deliver: Deliver, stripe_knows: dict[str, dict[str, str]]
) -> None:
    reply = deliver(se.event("charge.refunded", se.charge("ch_else", "pi_else", 3000, 3000)))

    assert reply["outcome"] == "ignored: no matching gift"


# --- 4. A plan's status going backwards -----------------------------------------------------


def test_a_late_payment_failed_for_an_invoice_since_paid_leaves_the_plan_active(deliver: Deliver) -> None:
    plan, first = active_plan()
    meta = se.gift_metadata(first.id, plan.id)
    paid = se.invoice("sub_o", 3000, "pln", "in_o2", meta, paid_at=se.T0 + se.MONTH + 3600)
    failed = se.invoice("sub_o", 3000, "pln", "in_o2", meta, status="open")

    deliver(se.event("invoice.paid", paid, created=se.T0 + se.MONTH + 3600))
    reply = deliver(se.event("invoice.payment_failed", failed, created=se.T0 + se.MONTH))

    assert fresh(RecurringPlan, plan.id).status is PlanStatus.ACTIVE
    assert "was paid since" in reply["outcome"]


def test_a_late_past_due_subscription_update_leaves_a_paid_up_plan_active(deliver: Deliver) -> None:
    plan, first = active_plan()
    meta = se.gift_metadata(first.id, plan.id)
    renewal = se.invoice("sub_o", 3000, "pln", "in_o2", meta, paid_at=se.T0 + se.MONTH + 3600)
    past_due = se.subscription("sub_o", "past_due", meta, period_end=se.T0 + 2 * se.MONTH)
    active = se.subscription("sub_o", "active", meta, period_end=se.T0 + 2 * se.MONTH)

    deliver(se.event("invoice.paid", renewal, created=se.T0 + se.MONTH + 3600))
    deliver(se.event("customer.subscription.updated", active, created=se.T0 + se.MONTH + 3600))
    deliver(se.event("customer.subscription.updated", past_due, created=se.T0 + se.MONTH))

    assert fresh(RecurringPlan, plan.id).status is PlanStatus.ACTIVE


def test_a_late_past_due_update_alone_cannot_undo_the_payment_after_it(deliver: Deliver) -> None:
    plan, first = active_plan()
    meta = se.gift_metadata(first.id, plan.id)
    renewal = se.invoice("sub_o", 3000, "pln", "in_o2", meta, paid_at=se.T0 + se.MONTH + 3600)

    deliver(se.event("invoice.paid", renewal, created=se.T0 + se.MONTH + 3600))
    deliver(
        se.event("customer.subscription.updated", se.subscription("sub_o", "past_due", meta), created=se.T0 + se.MONTH)
    )

    assert fresh(RecurringPlan, plan.id).status is PlanStatus.ACTIVE


def test_a_failure_newer_than_the_last_payment_still_makes_the_plan_past_due(deliver: Deliver) -> None:
    plan, first = active_plan()
    meta = se.gift_metadata(first.id, plan.id)
    deliver(se.event("invoice.paid", se.invoice("sub_o", 3000, "pln", "in_o2", meta), created=se.T0 + se.MONTH))
    failed = se.invoice("sub_o", 3000, "pln", "in_o3", meta, status="open")

    deliver(se.event("invoice.payment_failed", failed, created=se.T0 + 2 * se.MONTH))

    assert fresh(RecurringPlan, plan.id).status is PlanStatus.PAST_DUE


def test_a_late_payment_of_an_older_invoice_does_not_undo_a_newer_failure(deliver: Deliver) -> None:
    plan, first = active_plan()
    meta = se.gift_metadata(first.id, plan.id)
    failed = se.invoice("sub_o", 3000, "pln", "in_o3", meta, status="open")
    older = se.invoice("sub_o", 3000, "pln", "in_o2", meta, paid_at=se.T0 + se.MONTH)

    deliver(se.event("invoice.payment_failed", failed, created=se.T0 + 2 * se.MONTH))
    deliver(se.event("invoice.paid", older, created=se.T0 + se.MONTH))

    assert fresh(RecurringPlan, plan.id).status is PlanStatus.PAST_DUE
    assert lifetime(plan.supporter_id) == (2, 6000)  # the older payment itself counts


# --- 5. The first monthly payment before its subscription is known --------------------------


def first_invoice_without_metadata(subscription_id: str) -> dict[str, Any]:
    """What localstripe sends for a new subscription, in the same second as creating it:
    the first invoice, without the plan's metadata."""
    return se.event(
        "invoice.payment_succeeded",
        se.legacy_invoice(subscription_id, 3000, "pln", "in_first", {}, "subscription_create", payment_intent="pi_f"),
    )


def test_the_first_monthly_payment_before_its_subscription_is_known_pays_the_first_gift(deliver: Deliver) -> None:
    plan, gift = pending_plan()
    meta = se.gift_metadata(gift.id, plan.id)
    invoice = first_invoice_without_metadata("sub_new")

    early = deliver(invoice)
    assert early["outcome"] == "waiting for subscription sub_new"
    assert event_row(invoice["id"]).waiting_for == "sub_new"
    deliver(se.event("customer.subscription.created", se.subscription("sub_new", "active", meta)))

    final = fresh(Gift, gift.id)
    assert (final.status, final.stripe_invoice_id, final.stripe_payment_intent_id) == (
        GiftStatus.SUCCEEDED,
        "in_first",
        "pi_f",
    )
    assert final.receipt_number and receipts() == 1
    assert fresh(RecurringPlan, plan.id).status is PlanStatus.ACTIVE
    applied = event_row(invoice["id"])
    assert applied.waiting_for is None and (applied.gift_id, applied.plan_id) == (gift.id, plan.id)
    assert lifetime(plan.supporter_id) == (1, 3000)


def test_the_first_monthly_payment_is_applied_when_the_checkout_links_the_subscription(deliver: Deliver) -> None:
    plan, gift = pending_plan()
    deliver(first_invoice_without_metadata("sub_new"))

    deliver(
        se.event(
            "checkout.session.completed",
            se.checkout_session(
                gift.id,
                mode="subscription",
                subscription="sub_new",
                invoice="in_first",
                plan_id=plan.id,
                amount_total=3000,
            ),
        )
    )

    final = fresh(Gift, gift.id)
    assert (final.status, final.stripe_payment_intent_id) == (GiftStatus.SUCCEEDED, "pi_f")
    assert receipts() == 1
    assert _db.session.scalar(select(func.count()).select_from(Gift).filter_by(recurring_plan_id=plan.id)) == 1


def test_reconcile_applies_an_event_still_waiting_once_its_object_is_linked(
    deliver: Deliver, cli: Any, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan, gift = pending_plan()
    invoice = first_invoice_without_metadata("sub_new")
    deliver(invoice)
    # The offline payment page links the subscription itself (no event does).
    fresh(RecurringPlan, plan.id).stripe_subscription_id = "sub_new"
    _db.session.commit()
    monkeypatch.setattr(gateway(), "events_since", lambda since: iter([]))
    # reconcile then asks for the paid gift's fee and net: Stripe has not settled it yet
    monkeypatch.setattr(gateway(), "balance_of_payment", lambda payment_intent_id: None)

    first = cli.invoke(args=["stripe", "reconcile", "--since", "2020-01-01"])
    again = cli.invoke(args=["stripe", "reconcile", "--since", "2020-01-01"])

    assert first.exit_code == 0, first.output
    assert "Waiting events applied: 1, still waiting: 0" in first.output
    assert "Waiting events applied: 0, still waiting: 0" in again.output
    assert fresh(Gift, gift.id).status is GiftStatus.SUCCEEDED and receipts() == 1
    assert event_row(invoice["id"]).waiting_for is None


def test_reconcile_leaves_an_event_whose_object_is_still_unknown_waiting(
    deliver: Deliver, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoice = first_invoice_without_metadata("sub_nobody_yet")
    deliver(invoice)
    monkeypatch.setattr(gateway(), "events_since", lambda since: iter([]))

    result = cli.invoke(args=["stripe", "reconcile", "--since", "2020-01-01"])

    assert "Waiting events applied: 0, still waiting: 1" in result.output
    assert event_row(invoice["id"]).waiting_for == "sub_nobody_yet"


def test_a_checkout_intent_before_its_session_waits_and_brings_its_charge_when_linked(deliver: Deliver) -> None:
    gift = factories.gift(amount_minor=5000, amount_base_minor=5000)
    gift.stripe_checkout_session_id = se.checkout_session_id(gift.id)
    _db.session.commit()
    intent = se.event(
        "payment_intent.succeeded", se.payment_intent(gift.id, "succeeded", id="pi_c", latest_charge="ch_c")
    )

    deliver(intent)
    assert event_row(intent["id"]).waiting_for == "pi_c"
    deliver(se.event("checkout.session.completed", se.checkout_session(gift.id, payment_intent="pi_c")))

    final = fresh(Gift, gift.id)
    assert (final.status, final.stripe_charge_id) == (GiftStatus.SUCCEEDED, "ch_c")
    assert event_row(intent["id"]).waiting_for is None and receipts() == 1


def test_a_waiting_refund_is_applied_once_when_both_events_of_its_invoice_come_at_once(
    committed_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stripe sends invoice.paid and invoice.payment_succeeded for one invoice within
    milliseconds; both may link it. The refund waiting for it is applied by one of them."""
    monkeypatch.setattr(
        committed_app.extensions["payments"],
        "payment_reference",
        lambda intent: {"invoice_id": "in_cc2"} if intent == "pi_cc2" else {},
    )
    plan_id, first_id, supporter_id = active_plan_with_a_paid_first_gift(committed_app)
    client = committed_app.test_client()
    refund = se.event("charge.refunded", se.charge("ch_cc2", "pi_cc2", 3000, 1000))
    assert se.post_raw(client, *signed(committed_app, refund)).status_code == 200
    renewal = se.invoice("sub_cc", 3000, "pln", "in_cc2", se.gift_metadata(first_id, plan_id), payment_intent="pi_cc2")
    deliveries = [
        signed(committed_app, se.event(kind, renewal))
        for kind in ("invoice.paid", "invoice.payment_succeeded")
        for _ in range(2)
    ]

    statuses = fire_concurrently(committed_app, deliveries)

    assert set(statuses) <= {200, 500}
    retried = [delivery for delivery, status in zip(deliveries, statuses, strict=True) if status != 200]
    assert all(se.post_raw(client, *delivery).status_code == 200 for delivery in retried)
    with committed_app.app_context():
        gift = _db.session.execute(select(Gift).filter_by(stripe_invoice_id="in_cc2")).scalar_one()
        assert (gift.status, gift.refunded_minor) == (GiftStatus.PARTIALLY_REFUNDED, 1000)
        assert lifetime(supporter_id) == (2, 5000)
        row = _db.session.get(StripeEvent, refund["id"])
        assert row is not None and row.waiting_for is None and row.gift_id == gift.id


def test_stripe_unreachable_while_a_waiting_refund_wakes_keeps_it_waiting_for_reconcile(
    deliver: Deliver, cli: Any, stripe_knows: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    plan, first = active_plan()
    stripe_knows["pi_o2"] = {"invoice_id": "in_o2"}
    refund = se.event("charge.refunded", se.charge("ch_o2", "pi_o2", 3000, 3000))
    deliver(refund)
    real = gateway().payment_reference

    def down(intent: str) -> dict[str, str]:
        raise PaymentsUnavailable("Stripe is not answering")

    monkeypatch.setattr(gateway(), "payment_reference", down)
    # an invoice that does not carry its payment intent: the refund must ask Stripe which gift it is
    invoice = se.invoice("sub_o", 3000, "pln", "in_o2", se.gift_metadata(first.id, plan.id), payment_intent=None)

    deliver(se.event("invoice.paid", invoice))  # recorded all the same: 200

    renewal = _db.session.execute(select(Gift).filter_by(stripe_invoice_id="in_o2")).scalar_one()
    assert renewal.status is GiftStatus.SUCCEEDED
    assert event_row(refund["id"]).waiting_for == "in_o2"
    monkeypatch.setattr(gateway(), "payment_reference", real)
    monkeypatch.setattr(gateway(), "events_since", lambda since: iter([]))

    result = cli.invoke(args=["stripe", "reconcile", "--since", "2020-01-01"])

    assert "Waiting events applied: 1, still waiting: 0" in result.output, result.output
    assert fresh(Gift, renewal.id).status is GiftStatus.REFUNDED
    assert lifetime(plan.supporter_id) == (1, 3000)


# --- A refund or dispute of a second payment of a gift already paid -------------------------


@pytest.mark.parametrize("kind", ["refund", "dispute"])
def test_a_refund_or_dispute_of_a_second_payment_leaves_the_gifts_own_payment_counted(
    deliver: Deliver, stripe_knows: dict[str, dict[str, str]], kind: str
) -> None:
    """Pay pressed twice, two tabs: a second payment names the same gift, and staff refund it
    (or the bank disputes it). That is not a refund of the gift's own payment (pi_o)."""
    gift = paid_one_time_gift()
    before = lifetime(gift.supporter_id)
    stripe_knows["pi_second"] = {"gift_id": str(gift.id)}
    if kind == "refund":
        evt = se.event("charge.refunded", se.charge("ch_second", "pi_second", 5000, 5000))
    else:
        evt = se.event("charge.dispute.created", se.dispute("ch_second", "pi_second", "needs_response", id="dp_2"))

    reply = deliver(evt)

    final = fresh(Gift, gift.id)
    assert (final.status, final.refunded_minor, final.stripe_payment_intent_id) == (GiftStatus.SUCCEEDED, 0, "pi_o")
    assert lifetime(gift.supporter_id) == before
    assert reply["outcome"].startswith("needs review:") and "pi_second" in reply["outcome"]
    row = event_row(evt["id"])
    assert row.needs_review and row.gift_id == gift.id
