"""POST /webhooks/stripe: only a valid, signed, test-mode event is recorded, exactly once,
and each event type moves gifts and plans as Stripe says, never backwards."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from supporters.extensions import db as _db
from supporters.giving import stripe_events
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

Deliver = Callable[..., Any]


# --- Fixtures and helpers ------------------------------------------------------------


@pytest.fixture
def secret(app: Flask, db: Any) -> str:
    """The signing secret the test app's (offline) gateway checks."""
    return gateway().webhook_secret


@pytest.fixture
def deliver(client: Any, secret: str) -> Deliver:
    """Sign and POST an event; assert the status code (200 unless told); return the JSON reply."""

    def _deliver(evt: dict[str, Any], expect: int = 200) -> dict[str, Any]:
        response = se.post_event(client, evt, secret)
        assert response.status_code == expect, response.get_data(as_text=True)
        return response.get_json()

    return _deliver


def one_time_gift(**fields: Any) -> Gift:
    """A pending one-time gift of 50.00 PLN whose checkout the app opened (`se.checkout_session_id`),
    committed (so a rolled-back request cannot take it away)."""
    gift = factories.gift(**fields)
    gift.stripe_checkout_session_id = gift.stripe_checkout_session_id or se.checkout_session_id(gift.id)
    _db.session.commit()
    return gift


def monthly_plan(amount_minor: int = 3000, **plan_fields: Any) -> tuple[RecurringPlan, Gift]:
    """An incomplete monthly plan and the pending gift made on the form, as start_gift leaves them."""
    plan = factories.plan(amount_minor=amount_minor, **plan_fields)
    person = _db.session.get(Supporter, plan.supporter_id)
    gift = factories.gift(
        person,
        amount_minor=amount_minor,
        amount_base_minor=amount_minor,
        kind=GiftKind.RECURRING,
        recurring_plan_id=plan.id,
    )
    gift.stripe_checkout_session_id = se.checkout_session_id(gift.id)
    _db.session.commit()
    return plan, gift


def plan_metadata(plan: RecurringPlan, gift: Gift) -> dict[str, str]:
    return se.gift_metadata(gift.id, plan.id)


def fresh(row: Any) -> Any:
    """The row as the database has it now."""
    _db.session.expire_all()
    return _db.session.get(type(row), row.id)


def receipts(gift: Gift | None = None) -> int:
    query = select(func.count()).select_from(OutboxEmail).filter_by(kind=mail_receipts.RECEIPT)
    if gift is not None:
        query = query.filter_by(dedupe_key=mail_receipts.receipt_dedupe_key(gift))
    return _db.session.scalar(query) or 0


def event_rows() -> int:
    return _db.session.scalar(select(func.count()).select_from(StripeEvent)) or 0


def plan_gifts(plan: RecurringPlan) -> list[Gift]:
    _db.session.expire_all()
    return list(_db.session.scalars(select(Gift).filter_by(recurring_plan_id=plan.id).order_by(Gift.id)))


def supporter_of(gift: Gift) -> Any:
    _db.session.expire_all()
    return _db.session.get(Supporter, gift.supporter_id)


def ts(value: int) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def paid_one_time_gift(deliver: Deliver, charge_id: str = "ch_paid") -> Gift:
    """A one-time gift of 50.00 PLN paid through a payment_intent.succeeded of the intent
    linked to it (as the offline payment page links the intent it creates)."""
    gift = one_time_gift(stripe_payment_intent_id=f"pi_for_{charge_id}")
    deliver(
        se.event(
            "payment_intent.succeeded",
            se.payment_intent(gift.id, "succeeded", id=f"pi_for_{charge_id}", latest_charge=charge_id),
        )
    )
    assert fresh(gift).status is GiftStatus.SUCCEEDED
    return gift


# --- Only genuine events get in ------------------------------------------------------


def _forged(body: bytes, secret: str) -> tuple[bytes, str | None]:
    return body, se.sign(body, "whsec_someone_else")


def _expired(body: bytes, secret: str) -> tuple[bytes, str | None]:
    return body, se.sign(body, secret, timestamp=int(time.time()) - 6 * 60)


def _bit_flipped(body: bytes, secret: str) -> tuple[bytes, str | None]:
    header = se.sign(body, secret)
    position = body.index(b'"paid"') + 2  # still valid JSON after the flip: "paid" -> "qaid"
    return body[:position] + bytes([body[position] ^ 0x01]) + body[position + 1 :], header


def _no_header(body: bytes, secret: str) -> tuple[bytes, str | None]:
    return body, None


def _garbage_json(body: bytes, secret: str) -> tuple[bytes, str | None]:
    garbage = b'{"id": "evt_1", "type": "checkout.session.completed", "data": {'
    return garbage, se.sign(garbage, secret)


def _not_an_event(body: bytes, secret: str) -> tuple[bytes, str | None]:
    array = b'[{"id": "evt_1"}]'
    return array, se.sign(array, secret)


def _event_without_object(body: bytes, secret: str) -> tuple[bytes, str | None]:
    hollow = json.dumps({"id": "evt_hollow", "type": "checkout.session.completed", "data": {}}).encode()
    return hollow, se.sign(hollow, secret)


def _from_the_future(body: bytes, secret: str) -> tuple[bytes, str | None]:
    return body, se.sign(body, secret, timestamp=int(time.time()) + 6 * 60)


REJECTED = {
    "forged_signature": _forged,
    "expired_signature": _expired,
    "signature_from_the_future": _from_the_future,
    "bit_flipped_body": _bit_flipped,
    "missing_signature": _no_header,
}
#: signed with our secret, so from Stripe (or whoever holds the secret): a retry cannot mend them
KEPT_FOR_REVIEW = {
    "garbage_json_validly_signed": _garbage_json,
    "json_that_is_not_an_event": _not_an_event,
    "event_without_object": _event_without_object,
}


@pytest.mark.parametrize("tamper", REJECTED.values(), ids=REJECTED.keys())
def test_rejected_delivery_is_400_and_writes_nothing(client: Any, secret: str, tamper: Callable[..., Any]) -> None:
    gift = one_time_gift()
    body = se.encode(se.event("checkout.session.completed", se.checkout_session(gift.id)))

    response = se.post_raw(client, *tamper(body, secret))

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid event"
    assert event_rows() == 0
    assert fresh(gift).status is GiftStatus.PENDING
    assert receipts() == 0


@pytest.mark.parametrize("tamper", KEPT_FOR_REVIEW.values(), ids=KEPT_FOR_REVIEW.keys())
def test_validly_signed_body_that_is_no_event_is_acknowledged_and_kept_for_review(
    client: Any, secret: str, tamper: Callable[..., Any]
) -> None:
    gift = one_time_gift()
    body, signature = tamper(b"", secret)

    response = se.post_raw(client, body, signature)
    again = se.post_raw(client, body, signature)

    assert response.status_code == 200 and response.get_json()["outcome"].startswith("needs review")
    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    [row] = _db.session.scalars(select(StripeEvent)).all()
    assert row.needs_review and row.review_reason and row.gift_id is None
    assert fresh(gift).status is GiftStatus.PENDING
    assert receipts() == 0


def test_live_mode_event_is_refused_by_a_test_mode_app(client: Any, secret: str) -> None:
    gift = one_time_gift()
    evt = se.event("checkout.session.completed", se.checkout_session(gift.id), livemode=True)

    response = se.post_event(client, evt, secret)

    assert response.status_code == 400
    assert "mode" in response.get_json()["message"]
    assert event_rows() == 0
    assert fresh(gift).status is GiftStatus.PENDING


def test_signature_just_inside_the_tolerance_is_accepted(client: Any, secret: str) -> None:
    gift = one_time_gift()
    evt = se.event("checkout.session.completed", se.checkout_session(gift.id))

    response = se.post_event(client, evt, secret, timestamp=int(time.time()) - 4 * 60)

    assert response.status_code == 200
    assert fresh(gift).status is GiftStatus.SUCCEEDED


def test_signature_a_little_ahead_of_our_clock_is_accepted(client: Any, secret: str) -> None:
    gift = one_time_gift()
    evt = se.event("checkout.session.completed", se.checkout_session(gift.id))

    response = se.post_event(client, evt, secret, timestamp=int(time.time()) + 4 * 60)

    assert response.status_code == 200
    assert fresh(gift).status is GiftStatus.SUCCEEDED


def test_signature_far_in_the_future_is_refused_with_a_clear_message(client: Any, secret: str) -> None:
    gift = one_time_gift()
    evt = se.event("checkout.session.completed", se.checkout_session(gift.id))

    response = se.post_event(client, evt, secret, timestamp=int(time.time()) + 24 * 3600)

    assert response.status_code == 400
    assert "future" in response.get_json()["message"]
    assert event_rows() == 0 and fresh(gift).status is GiftStatus.PENDING


# --- Once and only once --------------------------------------------------------------


def test_duplicate_webhook_records_one_gift(deliver: Deliver) -> None:
    gift = one_time_gift()
    evt = se.event("checkout.session.completed", se.checkout_session(gift.id))

    first = deliver(evt)
    total_after_first = supporter_of(gift).lifetime_total_minor
    second = deliver(evt)

    assert first.get("duplicate") is None and first["outcome"] == f"gift {gift.id} succeeded"
    assert second == {"received": True, "duplicate": True}
    assert event_rows() == 1
    assert receipts(gift) == 1
    assert supporter_of(gift).lifetime_total_minor == total_after_first == 5000
    assert supporter_of(gift).gift_count == 1


def test_unknown_event_type_is_acknowledged_and_recorded_as_ignored(deliver: Deliver) -> None:
    evt = se.event("customer.created", {"id": "cus_new", "object": "customer", "metadata": {}})

    reply = deliver(evt)

    assert reply["outcome"].startswith("ignored")
    row: Any = _db.session.get(StripeEvent, evt["id"])
    assert row is not None and row.type == "customer.created" and row.outcome.startswith("ignored")
    assert row.processed_at is not None and row.livemode is False


def test_event_for_an_unknown_gift_is_acknowledged_and_changes_nothing(deliver: Deliver) -> None:
    gift = one_time_gift()
    reply = deliver(se.event("checkout.session.completed", se.checkout_session(gift.id + 1000)))
    assert reply["outcome"] == "ignored: no matching gift"
    assert fresh(gift).status is GiftStatus.PENDING


# --- One-time gifts ------------------------------------------------------------------


def test_completed_checkout_pays_the_gift(deliver: Deliver) -> None:
    gift = one_time_gift()
    session = se.checkout_session(gift.id, payment_intent="pi_checkout", customer="cus_donor_1")
    evt = se.event("checkout.session.completed", session)

    deliver(evt)

    paid = fresh(gift)
    assert paid.status is GiftStatus.SUCCEEDED
    assert paid.paid_at is not None
    assert paid.receipt_number == f"{paid.paid_at.year}-000001", "the first receipt of the year"
    assert paid.stripe_payment_intent_id == "pi_checkout"
    assert paid.stripe_checkout_session_id == session["id"]
    assert receipts(gift) == 1 and receipts() == 1
    person = supporter_of(gift)
    assert (person.gift_count, person.lifetime_total_minor) == (1, 5000)
    assert person.first_gift_at == person.last_gift_at == paid.paid_at
    assert person.stripe_customer_id == "cus_donor_1"
    row: Any = _db.session.get(StripeEvent, evt["id"])
    assert row.outcome == f"gift {gift.id} succeeded" and row.processed_at is not None
    assert row.payload["data"]["object"]["id"] == session["id"]


def test_checkout_completed_unpaid_waits_until_the_async_payment_succeeds(deliver: Deliver) -> None:
    gift = one_time_gift()
    session = se.checkout_session(gift.id, payment_status="unpaid", status="complete")

    evt = se.event("checkout.session.completed", session)
    reply = deliver(evt)
    assert reply["outcome"] == f"gift {gift.id} processing"
    assert fresh(gift).status is GiftStatus.PENDING and receipts() == 0
    assert fresh(gift).processing and fresh(gift).processing_at == ts(evt["created"])

    deliver(se.event("checkout.session.async_payment_succeeded", {**session, "payment_status": "paid"}))
    assert fresh(gift).status is GiftStatus.SUCCEEDED and receipts(gift) == 1


def test_payment_intent_succeeded_pays_the_gift_it_is_linked_to(deliver: Deliver) -> None:
    gift = one_time_gift(stripe_payment_intent_id="pi_direct")

    deliver(
        se.event(
            "payment_intent.succeeded",
            se.payment_intent(gift.id, "succeeded", id="pi_direct", latest_charge="ch_direct"),
        )
    )

    paid = fresh(gift)
    assert paid.status is GiftStatus.SUCCEEDED and paid.receipt_number
    assert (paid.stripe_payment_intent_id, paid.stripe_charge_id) == ("pi_direct", "ch_direct")
    assert receipts(gift) == 1


def test_payment_intent_without_a_gift_is_acknowledged_and_ignored(deliver: Deliver) -> None:
    reply = deliver(se.event("payment_intent.succeeded", se.payment_intent(None, "succeeded")))
    assert reply["outcome"].startswith("ignored")


def test_failed_payment_marks_the_gift_failed(deliver: Deliver) -> None:
    gift = one_time_gift()

    deliver(
        se.event(
            "payment_intent.payment_failed", se.payment_intent(gift.id, "requires_payment_method", id="pi_declined")
        )
    )

    failed = fresh(gift)
    assert failed.status is GiftStatus.FAILED
    assert failed.stripe_payment_intent_id == "pi_declined"
    assert failed.paid_at is None and receipts() == 0


def test_late_failure_of_an_earlier_payment_intent_is_ignored(deliver: Deliver) -> None:
    gift = one_time_gift(stripe_payment_intent_id="pi_current")

    reply = deliver(
        se.event("payment_intent.payment_failed", se.payment_intent(gift.id, "requires_payment_method", id="pi_old"))
    )

    assert reply["outcome"] == f"gift {gift.id} unchanged (pending)"
    assert fresh(gift).status is GiftStatus.PENDING
    assert fresh(gift).stripe_payment_intent_id == "pi_current"


def test_failure_arriving_after_success_leaves_the_gift_paid(deliver: Deliver) -> None:
    gift = one_time_gift(stripe_payment_intent_id="pi_1")
    deliver(se.event("payment_intent.succeeded", se.payment_intent(gift.id, "succeeded", id="pi_1")))
    deliver(se.event("payment_intent.payment_failed", se.payment_intent(gift.id, "requires_payment_method", id="pi_1")))
    assert fresh(gift).status is GiftStatus.SUCCEEDED


def test_failed_payment_retried_successfully_ends_succeeded(deliver: Deliver) -> None:
    gift = one_time_gift()

    deliver(
        se.event("payment_intent.payment_failed", se.payment_intent(gift.id, "requires_payment_method", id="pi_retry"))
    )
    assert fresh(gift).status is GiftStatus.FAILED
    deliver(se.event("payment_intent.succeeded", se.payment_intent(gift.id, "succeeded", id="pi_retry")))

    paid = fresh(gift)
    assert paid.status is GiftStatus.SUCCEEDED and paid.receipt_number
    assert receipts(gift) == 1
    assert supporter_of(gift).lifetime_total_minor == 5000


def test_expired_checkout_cancels_the_gift(deliver: Deliver) -> None:
    gift = one_time_gift()

    deliver(se.event("checkout.session.expired", se.checkout_session(gift.id, payment_status="unpaid")))

    assert fresh(gift).status is GiftStatus.CANCELED
    assert receipts() == 0 and supporter_of(gift).gift_count == 0


def test_expiry_arriving_after_payment_leaves_the_gift_paid(deliver: Deliver) -> None:
    gift = one_time_gift()
    deliver(se.event("checkout.session.completed", se.checkout_session(gift.id)))
    deliver(se.event("checkout.session.expired", se.checkout_session(gift.id, payment_status="unpaid")))
    assert fresh(gift).status is GiftStatus.SUCCEEDED


def test_async_payment_failure_fails_the_gift(deliver: Deliver) -> None:
    gift = one_time_gift()
    deliver(se.event("checkout.session.async_payment_failed", se.checkout_session(gift.id, payment_status="unpaid")))
    assert fresh(gift).status is GiftStatus.FAILED


# --- Payments that settle later (SEPA Direct Debit, some Przelewy24) -------------------


def test_a_payment_that_settles_later_leaves_the_gift_processing_and_counted_nowhere(deliver: Deliver) -> None:
    gift = one_time_gift()
    session = se.checkout_session(gift.id, payment_status="unpaid", status="complete", payment_intent="pi_p24_late")

    deliver(se.event("checkout.session.completed", session))

    processing = fresh(gift)
    assert processing.status is GiftStatus.PENDING and processing.processing
    assert processing.stripe_payment_intent_id == "pi_p24_late"  # its own events find the gift now
    assert processing.receipt_number is None and receipts() == 0
    assert supporter_of(gift).lifetime_total_minor == 0


def test_the_async_failure_of_a_processing_payment_fails_the_gift(deliver: Deliver) -> None:
    gift = one_time_gift()
    session = se.checkout_session(gift.id, payment_status="unpaid", status="complete")
    deliver(se.event("checkout.session.completed", session))

    deliver(se.event("checkout.session.async_payment_failed", session))

    failed = fresh(gift)
    assert failed.status is GiftStatus.FAILED and not failed.processing and receipts() == 0


def test_the_payment_intent_of_a_processing_checkout_pays_the_gift_before_the_async_event(deliver: Deliver) -> None:
    gift = one_time_gift()
    session = se.checkout_session(gift.id, payment_status="unpaid", status="complete", payment_intent="pi_sepa")
    deliver(se.event("checkout.session.completed", session))

    deliver(se.event("payment_intent.succeeded", se.payment_intent(gift.id, "succeeded", id="pi_sepa")))
    assert fresh(gift).status is GiftStatus.SUCCEEDED and receipts(gift) == 1

    deliver(se.event("checkout.session.async_payment_succeeded", {**session, "payment_status": "paid"}))
    assert fresh(gift).status is GiftStatus.SUCCEEDED and receipts(gift) == 1


def test_processing_reported_after_the_payment_succeeded_changes_nothing(deliver: Deliver) -> None:
    gift = one_time_gift()
    session = se.checkout_session(gift.id, payment_status="unpaid", status="complete")
    deliver(se.event("checkout.session.async_payment_succeeded", {**session, "payment_status": "paid"}))

    reply = deliver(se.event("checkout.session.completed", session))

    assert reply["outcome"] == f"gift {gift.id} unchanged (succeeded)"
    assert fresh(gift).status is GiftStatus.SUCCEEDED and not fresh(gift).processing


def test_a_processing_checkout_for_another_amount_is_held_for_review(deliver: Deliver) -> None:
    gift = one_time_gift()
    session = se.checkout_session(gift.id, payment_status="unpaid", status="complete", amount_total=100)

    reply = deliver(se.event("checkout.session.completed", session))

    assert reply["outcome"].startswith("needs review")
    assert not fresh(gift).processing


def test_the_gifts_own_payment_intent_reported_processing_marks_it_processing(deliver: Deliver) -> None:
    gift = one_time_gift(stripe_payment_intent_id="pi_debit")

    other = deliver(se.event("payment_intent.processing", se.payment_intent(gift.id, "processing", id="pi_older")))
    assert other["outcome"] == f"gift {gift.id} unchanged: payment intent pi_older is not its current payment"
    assert not fresh(gift).processing

    reply = deliver(se.event("payment_intent.processing", se.payment_intent(gift.id, "processing", id="pi_debit")))
    assert reply["outcome"] == f"gift {gift.id} processing" and fresh(gift).processing

    deliver(
        se.event("payment_intent.payment_failed", se.payment_intent(gift.id, "requires_payment_method", id="pi_debit"))
    )
    assert fresh(gift).status is GiftStatus.FAILED and not fresh(gift).processing


def test_a_subscriptions_first_debit_reported_processing_finds_the_gift_by_its_payment_intent(
    deliver: Deliver,
) -> None:
    _plan, gift = monthly_plan()
    gift.stripe_payment_intent_id = "pi_first_debit"  # the offline page links the first invoice's intent
    _db.session.commit()

    reply = deliver(
        se.event("payment_intent.processing", se.payment_intent(None, "processing", id="pi_first_debit", amount=3000))
    )

    assert reply["outcome"] == f"gift {gift.id} processing" and fresh(gift).processing


def test_a_first_debit_that_fails_after_the_plan_went_active_fails_the_form_gift(deliver: Deliver) -> None:
    """A SEPA subscription is active while its first debit is processing; the debit may fail days later."""
    plan, gift = monthly_plan()
    meta = plan_metadata(plan, gift)
    deliver(se.event("customer.subscription.created", se.subscription("sub_sepa", "active", meta)))
    assert fresh(plan).status is PlanStatus.ACTIVE

    deliver(
        se.event(
            "invoice.payment_failed",
            se.invoice("sub_sepa", 3000, "eur", "in_sepa", meta, "subscription_create", status="open"),
        )
    )

    assert fresh(gift).status is GiftStatus.FAILED and receipts() == 0


def test_localstripes_failed_first_debit_fails_the_form_gift_by_its_payment_intent(deliver: Deliver) -> None:
    plan, gift = monthly_plan()
    meta = plan_metadata(plan, gift)
    gift.stripe_payment_intent_id = "pi_ls_debit"
    _db.session.commit()
    deliver(se.event("customer.subscription.created", se.subscription("sub_ls", "active", meta)))

    failed = se.legacy_invoice("sub_ls", 3000, "eur", "in_ls", meta, None, payment_intent="pi_ls_debit", status="open")  # type: ignore[arg-type]
    deliver(se.event("invoice.payment_failed", failed))

    assert fresh(gift).status is GiftStatus.FAILED


# --- Recurring gifts -------------------------------------------------------------------

INVOICE_SHAPES = {"current_shape": se.invoice, "legacy_localstripe_shape": se.legacy_invoice}


@pytest.mark.parametrize("shape", INVOICE_SHAPES.values(), ids=INVOICE_SHAPES.keys())
def test_first_invoice_pays_the_form_gift_and_activates_the_plan(deliver: Deliver, shape: Callable[..., Any]) -> None:
    plan, gift = monthly_plan()
    paid_at, period_end = se.T0 + 60, se.T0 + se.MONTH
    inv = shape(
        "sub_first",
        3000,
        "pln",
        "in_first",
        plan_metadata(plan, gift),
        "subscription_create",
        payment_intent="pi_first",
        paid_at=paid_at,
        period_end=period_end,
    )

    reply = deliver(se.event("invoice.paid", inv))

    assert reply["outcome"] == f"gift {gift.id} succeeded (plan {plan.id})"
    paid = fresh(gift)
    assert paid.status is GiftStatus.SUCCEEDED
    assert (paid.stripe_invoice_id, paid.stripe_payment_intent_id) == ("in_first", "pi_first")
    assert paid.paid_at == ts(paid_at) and paid.receipt_number
    active = fresh(plan)
    assert active.status is PlanStatus.ACTIVE
    assert active.stripe_subscription_id == "sub_first"
    assert active.started_at == ts(paid_at)
    assert active.current_period_end == ts(period_end)
    assert receipts(gift) == 1 and len(plan_gifts(plan)) == 1


def test_legacy_invoice_charge_id_is_kept_for_refunds(deliver: Deliver) -> None:
    plan, gift = monthly_plan()
    deliver(
        se.event(
            "invoice.paid",
            se.legacy_invoice(
                "sub_l",
                3000,
                "pln",
                "in_l",
                plan_metadata(plan, gift),
                "subscription_create",
                payment_intent="pi_l",
                charge="ch_l",
            ),
        )
    )
    assert fresh(gift).stripe_charge_id == "ch_l"


@pytest.mark.parametrize("shape", INVOICE_SHAPES.values(), ids=INVOICE_SHAPES.keys())
def test_renewal_invoice_records_a_new_gift_with_its_own_receipt(deliver: Deliver, shape: Callable[..., Any]) -> None:
    plan, gift = monthly_plan()
    meta = plan_metadata(plan, gift)
    deliver(se.event("invoice.paid", shape("sub_r", 3000, "pln", "in_r1", meta, "subscription_create")))

    deliver(
        se.event(
            "invoice.paid",
            shape(
                "sub_r",
                3000,
                "pln",
                "in_r2",
                meta,
                "subscription_cycle",
                payment_intent="pi_r2",
                paid_at=se.T0 + se.MONTH,
                period_end=se.T0 + 2 * se.MONTH,
            ),
        )
    )

    first, renewal = plan_gifts(plan)
    assert first.id == gift.id and first.stripe_invoice_id == "in_r1"
    assert renewal.status is GiftStatus.SUCCEEDED and renewal.kind is GiftKind.RECURRING
    assert (renewal.stripe_invoice_id, renewal.stripe_payment_intent_id) == ("in_r2", "pi_r2")
    assert (renewal.amount_minor, renewal.currency) == (3000, "PLN")
    assert renewal.paid_at == ts(se.T0 + se.MONTH)
    assert renewal.receipt_number and renewal.receipt_number != first.receipt_number
    assert receipts(first) == 1 and receipts(renewal) == 1
    assert fresh(plan).current_period_end == ts(se.T0 + 2 * se.MONTH)
    person = supporter_of(gift)
    assert (person.gift_count, person.lifetime_total_minor) == (2, 6000)


def test_invoice_paid_and_payment_succeeded_for_the_same_invoice_record_one_gift(deliver: Deliver) -> None:
    plan, gift = monthly_plan()
    meta = plan_metadata(plan, gift)
    deliver(se.event("invoice.paid", se.invoice("sub_d", 3000, "pln", "in_d1", meta, "subscription_create")))
    renewal = se.invoice("sub_d", 3000, "pln", "in_d2", meta)

    deliver(se.event("invoice.paid", renewal))
    reply = deliver(se.event("invoice.payment_succeeded", renewal))

    assert reply["outcome"] == "invoice in_d2 already recorded"
    assert len(plan_gifts(plan)) == 2
    assert receipts() == 2 and event_rows() == 3


def test_both_invoice_shapes_of_one_invoice_record_one_gift(deliver: Deliver) -> None:
    plan, gift = monthly_plan()
    meta = plan_metadata(plan, gift)
    deliver(se.event("invoice.paid", se.invoice("sub_s", 3000, "pln", "in_s1", meta, "subscription_create")))
    deliver(se.event("invoice.payment_succeeded", se.legacy_invoice("sub_s", 3000, "pln", "in_s1", meta)))
    assert len(plan_gifts(plan)) == 1 and receipts() == 1


def test_renewal_arriving_before_the_first_invoice_does_not_pay_the_form_gift(deliver: Deliver) -> None:
    plan, gift = monthly_plan()
    meta = plan_metadata(plan, gift)

    deliver(
        se.event(
            "invoice.paid",
            se.invoice("sub_o", 3000, "pln", "in_o2", meta, "subscription_cycle", paid_at=se.T0 + se.MONTH),
        )
    )
    deliver(
        se.event("invoice.paid", se.invoice("sub_o", 3000, "pln", "in_o1", meta, "subscription_create", paid_at=se.T0))
    )

    assert fresh(gift).stripe_invoice_id == "in_o1"
    assert fresh(gift).paid_at == ts(se.T0)


def test_failed_first_invoice_fails_the_form_gift(deliver: Deliver) -> None:
    plan, gift = monthly_plan()
    deliver(
        se.event(
            "invoice.payment_failed",
            se.invoice("sub_f", 3000, "pln", "in_f", plan_metadata(plan, gift), "subscription_create", status="open"),
        )
    )
    assert fresh(gift).status is GiftStatus.FAILED
    assert fresh(plan).status is PlanStatus.INCOMPLETE


def test_failed_renewal_makes_the_plan_past_due_and_a_later_payment_reactivates_it(deliver: Deliver) -> None:
    plan, gift = monthly_plan()
    meta = plan_metadata(plan, gift)
    deliver(se.event("invoice.paid", se.invoice("sub_p", 3000, "pln", "in_p1", meta, "subscription_create")))
    assert fresh(plan).status is PlanStatus.ACTIVE

    deliver(se.event("invoice.payment_failed", se.invoice("sub_p", 3000, "pln", "in_p2", meta, status="open")))
    assert fresh(plan).status is PlanStatus.PAST_DUE
    assert len(plan_gifts(plan)) == 1

    deliver(se.event("invoice.paid", se.invoice("sub_p", 3000, "pln", "in_p2", meta)))
    assert fresh(plan).status is PlanStatus.ACTIVE
    assert [g.status for g in plan_gifts(plan)] == [GiftStatus.SUCCEEDED, GiftStatus.SUCCEEDED]


def test_invoice_of_an_unknown_subscription_waits_for_it(deliver: Deliver) -> None:
    """Not ignored: the subscription may be linked to its plan a moment later (issue 11)."""
    reply = deliver(se.event("invoice.paid", se.invoice("sub_unknown", 3000, "pln", "in_x", {})))
    assert reply["outcome"] == "waiting for subscription sub_unknown"


CANCELLATIONS = {
    "updated_to_canceled": "customer.subscription.updated",
    "deleted": "customer.subscription.deleted",
}


@pytest.mark.parametrize("event_type", CANCELLATIONS.values(), ids=CANCELLATIONS.keys())
def test_canceled_subscription_ends_the_plan_with_date_and_reason(deliver: Deliver, event_type: str) -> None:
    plan, gift = monthly_plan()
    meta = plan_metadata(plan, gift)
    deliver(se.event("invoice.paid", se.invoice("sub_c", 3000, "pln", "in_c1", meta, "subscription_create")))
    canceled_at = se.T0 + 10 * 24 * 3600

    deliver(
        se.event(
            event_type,
            se.subscription(
                "sub_c",
                "canceled",
                meta,
                canceled_at=canceled_at,
                cancellation_details={
                    "reason": "cancellation_requested",
                    "feedback": "too_expensive",
                    "comment": "Moving abroad",
                },
            ),
        )
    )

    ended = fresh(plan)
    assert ended.status is PlanStatus.CANCELED
    assert ended.canceled_at == ts(canceled_at)
    assert ended.cancel_reason == "Moving abroad"
    assert fresh(gift).status is GiftStatus.SUCCEEDED


def test_cancellation_reason_falls_back_to_stripes_reason(deliver: Deliver) -> None:
    plan, gift = monthly_plan()
    deliver(
        se.event(
            "customer.subscription.deleted",
            se.subscription(
                "sub_c2",
                "canceled",
                plan_metadata(plan, gift),
                cancellation_details={"reason": "payment_failed", "feedback": None, "comment": None},
            ),
        )
    )
    assert fresh(plan).cancel_reason == "payment_failed"
    assert fresh(plan).canceled_at is not None


def test_canceled_plan_is_not_reactivated_by_a_late_active_update(deliver: Deliver) -> None:
    plan, gift = monthly_plan()
    meta = plan_metadata(plan, gift)
    deliver(se.event("customer.subscription.deleted", se.subscription("sub_z", "canceled", meta)))
    reply = deliver(se.event("customer.subscription.updated", se.subscription("sub_z", "active", meta)))
    assert reply["outcome"] == f"plan {plan.id} unchanged (canceled)"
    assert fresh(plan).status is PlanStatus.CANCELED


def test_subscription_period_end_is_recorded_from_the_legacy_top_level_field(deliver: Deliver) -> None:
    plan, gift = monthly_plan()
    end = se.T0 + 3 * se.MONTH
    deliver(
        se.event(
            "customer.subscription.updated",
            se.subscription("sub_pe", "active", plan_metadata(plan, gift), period_end=end, legacy=True),
        )
    )
    assert fresh(plan).current_period_end == ts(end)


# --- Refunds and disputes ------------------------------------------------------------


def test_partial_then_full_refund(deliver: Deliver) -> None:
    gift = paid_one_time_gift(deliver, "ch_refund")

    deliver(se.event("charge.refunded", se.charge("ch_refund", "pi_for_ch_refund", 5000, 1000)))
    part = fresh(gift)
    assert (part.status, part.refunded_minor) == (GiftStatus.PARTIALLY_REFUNDED, 1000)
    assert part.refunded_at is not None
    assert supporter_of(gift).lifetime_total_minor == 4000

    deliver(se.event("charge.refunded", se.charge("ch_refund", "pi_for_ch_refund", 5000, 5000)))
    full = fresh(gift)
    assert (full.status, full.refunded_minor) == (GiftStatus.REFUNDED, 5000)
    person = supporter_of(gift)
    assert (person.lifetime_total_minor, person.gift_count) == (0, 0)


def test_refund_found_by_payment_intent_when_the_charge_is_new_to_us(deliver: Deliver) -> None:
    gift = one_time_gift()
    deliver(se.event("checkout.session.completed", se.checkout_session(gift.id, payment_intent="pi_only")))
    deliver(se.event("charge.refunded", se.charge("ch_unseen", "pi_only", 5000, 2000)))
    refunded = fresh(gift)
    assert (refunded.status, refunded.refunded_minor) == (GiftStatus.PARTIALLY_REFUNDED, 2000)
    assert refunded.stripe_charge_id == "ch_unseen"


def test_older_smaller_refund_total_arriving_late_changes_nothing(deliver: Deliver) -> None:
    gift = paid_one_time_gift(deliver, "ch_late")
    deliver(se.event("charge.refunded", se.charge("ch_late", "pi_for_ch_late", 5000, 3000)))

    reply = deliver(se.event("charge.refunded", se.charge("ch_late", "pi_for_ch_late", 5000, 1000)))

    assert reply["outcome"] == f"gift {gift.id} unchanged (partially_refunded)"
    assert fresh(gift).refunded_minor == 3000
    assert supporter_of(gift).lifetime_total_minor == 2000


def test_dispute_marks_the_gift_disputed(deliver: Deliver) -> None:
    gift = paid_one_time_gift(deliver, "ch_disp")
    deliver(se.event("charge.dispute.created", se.dispute("ch_disp", "pi_for_ch_disp", "needs_response")))
    assert fresh(gift).status is GiftStatus.DISPUTED


def test_disputed_gift_no_longer_counts_in_the_supporters_totals(deliver: Deliver) -> None:
    gift = paid_one_time_gift(deliver, "ch_disp_total")
    deliver(se.event("charge.dispute.created", se.dispute("ch_disp_total", "pi_for_ch_disp_total", "needs_response")))
    person = supporter_of(gift)
    assert (person.lifetime_total_minor, person.gift_count) == (0, 0)


def test_won_dispute_makes_the_gift_count_again(deliver: Deliver) -> None:
    gift = paid_one_time_gift(deliver, "ch_won")
    deliver(se.event("charge.dispute.created", se.dispute("ch_won", "pi_for_ch_won", "needs_response")))

    deliver(se.event("charge.dispute.closed", se.dispute("ch_won", "pi_for_ch_won", "won")))

    assert fresh(gift).status is GiftStatus.SUCCEEDED
    assert supporter_of(gift).lifetime_total_minor == 5000
    assert receipts(gift) == 1  # winning a dispute is not a second payment


def test_lost_dispute_counts_as_fully_refunded(deliver: Deliver) -> None:
    gift = paid_one_time_gift(deliver, "ch_lost")
    deliver(se.event("charge.dispute.created", se.dispute("ch_lost", "pi_for_ch_lost", "needs_response")))
    deliver(se.event("charge.dispute.closed", se.dispute("ch_lost", "pi_for_ch_lost", "lost")))
    lost = fresh(gift)
    assert (lost.status, lost.refunded_minor) == (GiftStatus.REFUNDED, 5000)
    assert supporter_of(gift).lifetime_total_minor == 0


def test_payment_event_during_a_dispute_does_not_undo_it(deliver: Deliver) -> None:
    gift = paid_one_time_gift(deliver, "ch_hold")
    deliver(se.event("charge.dispute.created", se.dispute("ch_hold", "pi_for_ch_hold", "needs_response")))
    deliver(se.event("checkout.session.completed", se.checkout_session(gift.id, payment_intent="pi_for_ch_hold")))
    assert fresh(gift).status is GiftStatus.DISPUTED
    assert receipts(gift) == 1


# --- A failure leaves no trace, so Stripe's retry can succeed -------------------------


def test_handler_exception_is_500_and_records_nothing(deliver: Deliver, monkeypatch: pytest.MonkeyPatch) -> None:
    gift = one_time_gift()

    def broken(obj: dict[str, Any]) -> str:
        raise RuntimeError("handler broke")

    monkeypatch.setitem(stripe_events.HANDLERS, "checkout.session.completed", broken)
    reply = deliver(se.event("checkout.session.completed", se.checkout_session(gift.id)), expect=500)

    assert "retry" in reply["error"]
    assert event_rows() == 0
    assert fresh(gift).status is GiftStatus.PENDING


def test_failure_after_the_status_changed_rolls_everything_back_and_the_retry_succeeds(
    deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    gift = one_time_gift()
    evt = se.event(
        "checkout.session.completed", se.checkout_session(gift.id, payment_intent="pi_rb", customer="cus_rb")
    )

    def mail_down(paid: Gift) -> None:
        assert paid.status is GiftStatus.SUCCEEDED  # the gift was already changed in this transaction
        raise ConnectionError("outbox unavailable")

    monkeypatch.setattr(mail_receipts, "queue_receipt", mail_down)
    deliver(evt, expect=500)

    untouched = fresh(gift)
    assert untouched.status is GiftStatus.PENDING
    assert (untouched.paid_at, untouched.receipt_number, untouched.stripe_payment_intent_id) == (None, None, None)
    assert untouched.stripe_checkout_session_id == se.checkout_session_id(gift.id)  # as the app opened it
    assert supporter_of(gift).stripe_customer_id is None
    assert (supporter_of(gift).gift_count, supporter_of(gift).lifetime_total_minor) == (0, 0)
    assert event_rows() == 0 and receipts() == 0

    monkeypatch.undo()
    deliver(evt)  # Stripe delivers the same event again
    assert fresh(gift).status is GiftStatus.SUCCEEDED and receipts(gift) == 1
