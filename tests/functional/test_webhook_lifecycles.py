"""Stripe promises neither order nor single delivery: whatever order a gift's events
arrive in, and however many copies arrive at once, the gift ends in the same state."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from datetime import UTC, datetime
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
from supporters.payments import gateway
from tests import factories
from tests import stripe_events as se

# An event description: a name, and how to build the event for (gift, plan).
Build = Callable[[Gift, RecurringPlan | None], dict[str, Any]]


@pytest.fixture
def deliver(client: Any, app: Flask, db: Any) -> Callable[[dict[str, Any]], None]:
    secret = gateway().webhook_secret

    def _deliver(evt: dict[str, Any]) -> None:
        response = se.post_event(client, evt, secret)
        assert response.status_code == 200, response.get_data(as_text=True)

    return _deliver


def receipts() -> int:
    return _db.session.scalar(select(func.count()).select_from(OutboxEmail).filter_by(kind=mail_receipts.RECEIPT)) or 0


def row(model: type[Any], row_id: int) -> Any:
    """The row as the database has it now."""
    _db.session.expire_all()
    return _db.session.get(model, row_id)


def ts(value: int) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def permutations(names: list[str]) -> list[Any]:
    """Every order of `names` as pytest params, id'd like "a>b>c"."""
    return [pytest.param(order, id=">".join(order)) for order in itertools.permutations(names)]


# --- A one-time gift ------------------------------------------------------------------

ONE_TIME_PAID_THEN_REFUNDED: dict[str, Build] = {
    "checkout_completed": lambda gift, _: se.event(
        "checkout.session.completed", se.checkout_session(gift.id, payment_intent="pi_cur", customer="cus_1")
    ),
    "intent_succeeded": lambda gift, _: se.event(
        "payment_intent.succeeded",
        se.payment_intent(gift.id, "succeeded", id="pi_cur", latest_charge="ch_cur", customer="cus_1"),
    ),
    "charge_refunded": lambda gift, _: se.event("charge.refunded", se.charge("ch_cur", "pi_cur", 5000, 1000)),
}


def one_time_gift() -> Gift:
    """A pending gift whose checkout the app opened and whose current payment attempt (pi_cur)
    it knows, as begin_checkout and record_payment_attempt leave it."""
    gift = factories.gift(amount_minor=5000, amount_base_minor=5000, stripe_payment_intent_id="pi_cur")
    gift.stripe_checkout_session_id = se.checkout_session_id(gift.id)
    _db.session.commit()
    return gift


@pytest.mark.parametrize("order", permutations(list(ONE_TIME_PAID_THEN_REFUNDED)))
def test_one_time_gift_paid_and_partly_refunded_ends_partially_refunded_in_any_order(
    deliver: Callable[..., None], order: tuple[str, ...]
) -> None:
    gift = one_time_gift()

    for name in order:
        deliver(ONE_TIME_PAID_THEN_REFUNDED[name](gift, None))

    final = row(Gift, gift.id)
    assert (final.status, final.refunded_minor) == (GiftStatus.PARTIALLY_REFUNDED, 1000)
    assert final.receipt_number and receipts() == 1
    assert (final.stripe_payment_intent_id, final.stripe_charge_id) == ("pi_cur", "ch_cur")
    person = row(Supporter, gift.supporter_id)
    assert (person.gift_count, person.lifetime_total_minor) == (1, 4000)
    assert _db.session.scalar(select(func.count()).select_from(StripeEvent)) == 3


ONE_TIME_RETRIED: dict[str, Build] = {
    "old_intent_failed": lambda gift, _: se.event(
        "payment_intent.payment_failed", se.payment_intent(gift.id, "requires_payment_method", id="pi_old")
    ),
    "intent_succeeded": lambda gift, _: se.event(
        "payment_intent.succeeded", se.payment_intent(gift.id, "succeeded", id="pi_cur", latest_charge="ch_cur")
    ),
    "checkout_completed": lambda gift, _: se.event(
        "checkout.session.completed", se.checkout_session(gift.id, payment_intent="pi_cur")
    ),
}


@pytest.mark.parametrize("order", permutations(list(ONE_TIME_RETRIED)))
def test_one_time_gift_with_an_earlier_failed_attempt_ends_succeeded_in_any_order(
    deliver: Callable[..., None], order: tuple[str, ...]
) -> None:
    gift = one_time_gift()

    for name in order:
        deliver(ONE_TIME_RETRIED[name](gift, None))

    final = row(Gift, gift.id)
    assert final.status is GiftStatus.SUCCEEDED
    assert final.stripe_payment_intent_id == "pi_cur"
    assert final.paid_at is not None and final.receipt_number and receipts() == 1
    person = row(Supporter, gift.supporter_id)
    assert (person.gift_count, person.lifetime_total_minor) == (1, 5000)


# --- A monthly plan -------------------------------------------------------------------

CANCELED_AT = se.T0 + 40 * 24 * 3600


def _meta(gift: Gift, plan: RecurringPlan | None) -> dict[str, str]:
    assert plan is not None
    return se.gift_metadata(gift.id, plan.id)


MONTHLY_PLAN_LIFECYCLE: dict[str, Build] = {
    "subscription_created": lambda gift, plan: se.event(
        "customer.subscription.created", se.subscription("sub_m", "active", _meta(gift, plan))
    ),
    "first_invoice_paid": lambda gift, plan: se.event(
        "invoice.paid",
        se.invoice(
            "sub_m",
            3000,
            "pln",
            "in_m1",
            _meta(gift, plan),
            "subscription_create",
            payment_intent="pi_m1",
            paid_at=se.T0,
            period_end=se.T0 + se.MONTH,
        ),
    ),
    "checkout_completed": lambda gift, plan: se.event(
        "checkout.session.completed",
        se.checkout_session(
            gift.id,
            mode="subscription",
            payment_intent=None,
            subscription="sub_m",
            invoice="in_m1",
            customer="cus_m",
            plan_id=plan.id if plan else None,
            amount_total=3000,
        ),
    ),
    "renewal_invoice_paid": lambda gift, plan: se.event(
        "invoice.paid",
        se.invoice(
            "sub_m",
            3000,
            "pln",
            "in_m2",
            _meta(gift, plan),
            "subscription_cycle",
            payment_intent="pi_m2",
            paid_at=se.T0 + se.MONTH,
            period_end=se.T0 + 2 * se.MONTH,
        ),
    ),
    "subscription_deleted": lambda gift, plan: se.event(
        "customer.subscription.deleted",
        se.subscription(
            "sub_m",
            "canceled",
            _meta(gift, plan),
            canceled_at=CANCELED_AT,
            cancellation_details={"reason": "cancellation_requested", "feedback": None, "comment": "No longer needed"},
        ),
    ),
}


@pytest.mark.parametrize("order", permutations(list(MONTHLY_PLAN_LIFECYCLE)))
def test_monthly_plan_paid_twice_then_canceled_ends_the_same_in_any_order(
    deliver: Callable[..., None], order: tuple[str, ...]
) -> None:
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

    for name in order:
        deliver(MONTHLY_PLAN_LIFECYCLE[name](gift, plan))

    final = row(RecurringPlan, plan.id)
    assert final.status is PlanStatus.CANCELED
    assert final.canceled_at == ts(CANCELED_AT)
    assert final.cancel_reason == "No longer needed"
    assert final.stripe_subscription_id == "sub_m"
    assert final.started_at is not None
    assert final.current_period_end == ts(se.T0 + 2 * se.MONTH)
    gifts = list(_db.session.scalars(select(Gift).filter_by(recurring_plan_id=plan.id).order_by(Gift.id)))
    assert [g.status for g in gifts] == [GiftStatus.SUCCEEDED, GiftStatus.SUCCEEDED]
    assert {g.stripe_invoice_id for g in gifts} == {"in_m1", "in_m2"}
    assert gifts[0].id == gift.id
    assert len({g.receipt_number for g in gifts if g.receipt_number}) == 2 and receipts() == 2
    person = row(Supporter, plan.supporter_id)
    assert (person.gift_count, person.lifetime_total_minor) == (2, 6000)
    assert person.stripe_customer_id in (None, "cus_m")


# --- The same event, many copies at once ------------------------------------------------


def fire_concurrently(app: Flask, bodies_and_headers: list[tuple[bytes, str]]) -> list[int]:
    """POST each (body, signature) from its own thread and client, all released together."""
    barrier = threading.Barrier(len(bodies_and_headers))
    statuses: list[int | BaseException] = [0] * len(bodies_and_headers)

    def worker(index: int, body: bytes, header: str) -> None:
        client = app.test_client()
        barrier.wait(timeout=10)
        try:
            statuses[index] = se.post_raw(client, body, header).status_code
        except BaseException as exc:
            statuses[index] = exc

    threads = [
        threading.Thread(target=worker, args=(i, body, header)) for i, (body, header) in enumerate(bodies_and_headers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a delivery hung"
    assert all(isinstance(status, int) for status in statuses), statuses
    return statuses  # type: ignore[return-value]


def signed(app: Flask, evt: dict[str, Any]) -> tuple[bytes, str]:
    with app.app_context():
        secret = gateway().webhook_secret
    body = se.encode(evt)
    return body, se.sign(body, secret)


def active_plan_with_a_paid_first_gift(app: Flask) -> tuple[int, int, int]:
    """A committed active plan (sub_cc) whose first gift (invoice in_cc1) is paid: (plan, gift, supporter) ids."""
    with app.app_context():
        plan = factories.plan(amount_minor=3000, stripe_subscription_id="sub_cc")
        first = factories.paid_gift(
            _db.session.get(Supporter, plan.supporter_id),
            amount_minor=3000,
            amount_base_minor=3000,
            kind=GiftKind.RECURRING,
            recurring_plan_id=plan.id,
            stripe_invoice_id="in_cc1",
        )
        first.receipt_number = "2026-900001"
        plan.status = PlanStatus.ACTIVE
        _db.session.commit()
        return plan.id, first.id, plan.supporter_id


def test_the_same_renewal_event_delivered_5_times_at_once_records_one_gift(committed_app: Flask) -> None:
    plan_id, first_id, _ = active_plan_with_a_paid_first_gift(committed_app)
    evt = se.event(
        "invoice.paid",
        se.invoice("sub_cc", 3000, "pln", "in_cc2", se.gift_metadata(first_id, plan_id), payment_intent="pi_cc2"),
    )

    statuses = fire_concurrently(committed_app, [signed(committed_app, evt)] * 5)

    assert statuses == [200] * 5
    with committed_app.app_context():
        renewals = _db.session.scalars(select(Gift).filter_by(stripe_invoice_id="in_cc2")).all()
        assert len(renewals) == 1 and renewals[0].status is GiftStatus.SUCCEEDED
        assert _db.session.scalar(select(func.count()).select_from(Gift).filter_by(recurring_plan_id=plan_id)) == 2
        assert _db.session.scalar(select(func.count()).select_from(StripeEvent)) == 1
        assert receipts() == 1
        assert _db.session.scalar(select(OutboxEmail.dedupe_key)) == mail_receipts.receipt_dedupe_key(renewals[0])


def test_the_same_checkout_event_delivered_5_times_at_once_pays_the_gift_once(committed_app: Flask) -> None:
    with committed_app.app_context():
        gift = factories.gift(amount_minor=5000, amount_base_minor=5000)
        gift.stripe_checkout_session_id = se.checkout_session_id(gift.id)
        _db.session.commit()
        gift_id, supporter_id = gift.id, gift.supporter_id
    evt = se.event(
        "checkout.session.completed", se.checkout_session(gift_id, payment_intent="pi_cc", customer="cus_cc")
    )

    statuses = fire_concurrently(committed_app, [signed(committed_app, evt)] * 5)

    assert statuses == [200] * 5
    with committed_app.app_context():
        paid = row(Gift, gift_id)
        assert paid.status is GiftStatus.SUCCEEDED and paid.receipt_number
        assert receipts() == 1
        assert _db.session.scalar(select(func.count()).select_from(StripeEvent)) == 1
        person = row(Supporter, supporter_id)
        assert (person.gift_count, person.lifetime_total_minor) == (1, 5000)


def test_invoice_paid_and_payment_succeeded_racing_for_one_invoice_record_one_gift(committed_app: Flask) -> None:
    """Stripe sends both events for every paid invoice, usually within milliseconds. A delivery
    that loses the race may answer 500 (Stripe then retries it), but only one gift is ever recorded."""
    plan_id, first_id, _ = active_plan_with_a_paid_first_gift(committed_app)
    renewal = se.invoice("sub_cc", 3000, "pln", "in_cc3", se.gift_metadata(first_id, plan_id))
    deliveries = [
        signed(committed_app, se.event(kind, renewal))
        for kind in ("invoice.paid", "invoice.payment_succeeded")
        for _ in range(2)
    ]

    statuses = fire_concurrently(committed_app, deliveries)

    assert set(statuses) <= {200, 500}
    retried = [delivery for delivery, status in zip(deliveries, statuses, strict=True) if status != 200]
    client = committed_app.test_client()
    assert all(se.post_raw(client, *delivery).status_code == 200 for delivery in retried)
    with committed_app.app_context():
        assert _db.session.scalar(select(func.count()).select_from(Gift).filter_by(stripe_invoice_id="in_cc3")) == 1
        assert _db.session.scalar(select(func.count()).select_from(Gift).filter_by(recurring_plan_id=plan_id)) == 2
        assert receipts() == 1
