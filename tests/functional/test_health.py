"""The payment-health page: is money flowing, and what needs a person? Who may see it,
each of its sections with seeded data, and its reconcile: the dry run changes nothing,
the button applies and is audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from supporters.extensions import db as _db
from supporters.giving import health
from supporters.models import (
    AuditEvent,
    Gift,
    GiftMethod,
    GiftStatus,
    OutboxEmail,
    PlanStatus,
    RecurringPlan,
    StripeEvent,
)
from tests import factories
from tests import stripe_events as se
from tests.fakes import FakeGateway

HEALTH = "/dashboard/health/"


@pytest.fixture
def finance(client: Any, db: Any) -> Any:
    """The client, signed in as a fundraiser (who may see the page)."""
    user = factories.staff("fundraiser")
    assert factories.sign_in(client, user).status_code == 303
    client.user = user
    return client


def now() -> datetime:
    return datetime.now(UTC)


def stored_event(
    type: str = "payment_intent.succeeded",
    *,
    ago: timedelta = timedelta(minutes=5),
    outcome: str = "gift 1 succeeded",
    created_before: timedelta | None = None,
    obj: dict[str, Any] | None = None,
    **fields: Any,
) -> StripeEvent:
    received = (now() - ago).replace(microsecond=0)
    payload = se.event(type, obj or {"id": "pi_x", "object": "payment_intent"})
    if created_before is not None:
        payload["created"] = int((received - created_before).timestamp())
    row = StripeEvent(
        id=se.new_id("evt"), type=type, received_at=received, processed_at=received, outcome=outcome, payload=payload
    )
    for name, value in fields.items():
        setattr(row, name, value)
    _db.session.add(row)
    _db.session.flush()
    return row


def page(client: Any, path: str = HEALTH) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def section(html: str, anchor: str) -> str:
    """The text of the page's <section id=anchor>."""
    start = html.index(f'id="{anchor}"')
    return html[start : html.index("</section>", start)]


# --- Who may see it --------------------------------------------------------------------------


@pytest.mark.parametrize("role,status", [("admin", 200), ("fundraiser", 200), ("viewer", 403)])
def test_the_page_is_for_admins_and_fundraisers(client: Any, db: Any, role: str, status: int) -> None:
    factories.sign_in(client, factories.staff(role))
    assert client.get(HEALTH).status_code == status
    assert client.get("/dashboard/health/reconcile").status_code == status
    assert client.post("/dashboard/health/reconcile").status_code == (403 if status == 403 else 303)


def test_anonymous_visitors_are_sent_to_sign_in(client: Any, db: Any) -> None:
    response = client.get(HEALTH)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("role,shown", [("admin", True), ("fundraiser", True), ("viewer", False)])
def test_the_menu_offers_health_only_to_those_who_may_open_it(client: Any, db: Any, role: str, shown: bool) -> None:
    factories.sign_in(client, factories.staff(role))
    assert (f'href="{HEALTH}"' in page(client, "/dashboard/")) is shown


# --- Is money flowing ------------------------------------------------------------------------


def test_an_empty_page_says_nothing_was_received_and_nothing_needs_a_person(finance: Any) -> None:
    html = page(finance)
    assert "No Stripe event has been received yet." in html
    assert "No event is waiting for review." in html
    assert "No event is waiting for an object." in html
    assert "No gift paid through Stripe has been pending for more than an hour." in html
    assert "No recurring plan is past due." in html
    assert "No payment of another amount or currency is held." in html
    assert "No second payment for a gift already paid has been seen." in html


def test_the_last_webhook_shows_how_long_ago_and_how_late_stripe_delivered_it(finance: Any) -> None:
    stored_event(ago=timedelta(hours=3))
    gift = factories.paid_gift()
    last = stored_event(ago=timedelta(minutes=10), created_before=timedelta(seconds=90), gift_id=gift.id)

    report = health.health()

    assert report.last_webhook is not None and report.last_webhook.event.id == last.id
    assert timedelta(minutes=10) <= report.last_webhook.since_received < timedelta(minutes=11)
    assert report.last_webhook.delivery_lag == timedelta(seconds=90)
    assert report.events_last_day == 2
    webhooks = section(page(finance), "webhooks")
    assert last.id in webhooks and f'href="/dashboard/gifts/{gift.id}"' in webhooks
    assert "10 minutes" in webhooks


def test_an_event_without_a_creation_time_has_an_unknown_delivery_lag(finance: Any) -> None:
    row = stored_event()
    row.payload = {"unreadable": "x"}
    _db.session.flush()
    assert health.health().last_webhook.delivery_lag is None  # type: ignore[union-attr]
    assert "unknown: the event carries no creation time" in page(finance)


# --- What needs a person -----------------------------------------------------------------------


def test_events_kept_for_review_are_listed_with_their_reason_and_gift(finance: Any) -> None:
    gift = factories.gift()
    kept = stored_event(
        outcome="needs review: x",
        needs_review=True,
        review_reason="its metadata is list, not an object",
        gift_id=gift.id,
    )
    stored_event(outcome="needs review: y", needs_review=False, review_reason="reviewed already")

    listed = section(page(finance), "to-review")

    assert kept.id in listed and "its metadata is list, not an object" in listed
    assert f'href="/dashboard/gifts/{gift.id}"' in listed and "reviewed already" not in listed
    assert 'href="/dashboard/payments-to-review/"' in listed
    assert "(1)" in listed


def test_events_waiting_for_an_object_are_listed_whatever_their_age_and_applied_ones_are_not(finance: Any) -> None:
    plan = factories.plan()
    waiting = stored_event("charge.refunded", outcome="waiting for invoice in_1 (of a refund)", waiting_for="in_1")
    checkout = stored_event(
        outcome="waiting for payment intent pi_1 (its checkout session links it)", plan_id=plan.id, waiting_for="pi_1"
    )
    old = stored_event(outcome="waiting for subscription sub_1", ago=timedelta(days=40), waiting_for="sub_1")
    applied = stored_event(outcome="gift 7 succeeded")
    ignored = stored_event("charge.refunded", outcome="ignored: no matching gift")

    rows = list(_db.session.scalars(health.waiting_events_query()))
    listed = section(page(finance), "waiting")

    assert {row.id for row in rows} == {checkout.id, waiting.id, old.id}
    assert waiting.id in listed and checkout.id in listed and old.id in listed
    assert "waiting for invoice in_1 (of a refund)" in listed
    assert applied.id not in listed and ignored.id not in listed
    assert f'href="/dashboard/plans/{plan.id}"' in listed


def test_gifts_pending_through_stripe_for_more_than_an_hour_are_listed(finance: Any) -> None:
    late = factories.gift(created_at=now() - timedelta(hours=2), stripe_payment_intent_id="pi_late")
    recent = factories.gift(created_at=now() - timedelta(minutes=10))
    pledge = factories.gift(created_at=now() - timedelta(hours=5), method=GiftMethod.BANK_TRANSFER)
    paid = factories.paid_gift(created_at=now() - timedelta(hours=3))

    listed = section(page(finance), "pending")

    assert f'href="/dashboard/gifts/{late.id}"' in listed and "pi_late" in listed
    for other in (recent, pledge, paid):
        assert f'href="/dashboard/gifts/{other.id}"' not in listed


def test_a_debit_processing_at_the_bank_is_not_pending_too_long_until_two_weeks_pass(finance: Any) -> None:
    debit = factories.gift(created_at=now() - timedelta(days=3), processing_at=now() - timedelta(days=3))
    forgotten = factories.gift(created_at=now() - timedelta(days=20), processing_at=now() - timedelta(days=20))

    listed = section(page(finance), "pending")

    assert f'href="/dashboard/gifts/{debit.id}"' not in listed
    assert f'href="/dashboard/gifts/{forgotten.id}"' in listed


def plan_in(status: PlanStatus, **fields: Any) -> RecurringPlan:
    """A plan that started and then moved to `status`, as the transition table allows."""
    plan = factories.plan(**fields)
    plan.status = PlanStatus.ACTIVE
    if status is not PlanStatus.ACTIVE:
        plan.status = status
    _db.session.flush()
    return plan


def test_plans_past_due_show_their_last_failed_payment_and_stripes_next_retry(finance: Any) -> None:
    retrying = plan_in(PlanStatus.PAST_DUE, stripe_subscription_id="sub_retry")
    silent = plan_in(PlanStatus.PAST_DUE)
    active = plan_in(PlanStatus.ACTIVE)
    retry_at = int((now() + timedelta(days=3)).timestamp())
    invoice = {**se.invoice("sub_retry", 0, "pln", status="open"), "next_payment_attempt": retry_at}
    failure = stored_event(
        "invoice.payment_failed", outcome=f"plan {retrying.id} past due", obj=invoice, plan_id=retrying.id
    )

    report = health.past_due_plans()
    listed = section(page(finance), "past-due")

    by_plan = {due.plan.id: due for due in report.rows}
    assert set(by_plan) == {retrying.id, silent.id} and report.total == 2
    assert by_plan[retrying.id].last_failure.id == failure.id  # type: ignore[union-attr]
    assert by_plan[retrying.id].next_retry == datetime.fromtimestamp(retry_at, UTC)
    assert by_plan[silent.id].last_failure is None and by_plan[silent.id].next_retry is None
    assert f'href="/dashboard/plans/{retrying.id}"' in listed and failure.id in listed
    assert "no failed payment recorded" in listed and f'href="/dashboard/plans/{active.id}"' not in listed


def test_amount_mismatches_held_for_review_are_listed_and_link_to_the_review_list(finance: Any) -> None:
    gift = factories.gift()
    reason = f"payment intent for gift {gift.id}: amount 1.00 PLN, expected 25.00 PLN"
    mismatch = stored_event(outcome="needs review", needs_review=True, review_reason=reason, gift_id=gift.id)
    unreadable = stored_event(outcome="needs review", needs_review=True, review_reason="the event carries no object")

    listed = section(page(finance), "mismatches")

    assert mismatch.id in listed and reason in listed and f'href="/dashboard/gifts/{gift.id}"' in listed
    assert unreadable.id not in listed
    assert 'href="/dashboard/payments-to-review/"' in listed


def test_payments_seen_twice_are_listed(finance: Any) -> None:
    gift = factories.paid_gift()
    twice = stored_event(
        outcome="needs review",
        needs_review=True,
        review_reason=f"gift {gift.id} was paid twice (pi_second)",
        gift_id=gift.id,
    )

    listed = section(page(finance), "paid-twice")

    assert twice.id in listed and f'href="/dashboard/gifts/{gift.id}"' in listed


def test_a_long_list_shows_its_first_rows_and_how_many_there_are(finance: Any) -> None:
    for number in range(health.LIST_LIMIT + 3):
        stored_event(outcome=f"waiting for subscription sub_{number}", waiting_for=f"sub_{number}")

    report = health.health()

    assert len(report.waiting.rows) == health.LIST_LIMIT and report.waiting.total == health.LIST_LIMIT + 3
    assert f"Showing {health.LIST_LIMIT} of {health.LIST_LIMIT + 3}." in section(page(finance), "waiting")


# --- Reconcile from the page ---------------------------------------------------------------------


def unrecorded_payment(fake: FakeGateway, *, days_ago: float = 1) -> tuple[Gift, dict[str, Any]]:
    """A pending gift whose payment Stripe completed, and the event we never received."""
    gift = factories.gift(stripe_payment_intent_id=se.new_id("pi"))
    _db.session.commit()
    created = int((now() - timedelta(days=days_ago)).timestamp())
    event = se.event(
        "payment_intent.succeeded",
        se.payment_intent(gift.id, "succeeded", id=gift.stripe_payment_intent_id),
        created=created,
    )
    fake.events.append(event)
    return gift, event


def rows_of_everything() -> tuple[int, int, int, int]:
    return (
        _db.session.scalar(select(func.count()).select_from(StripeEvent)) or 0,
        _db.session.scalar(select(func.count()).select_from(AuditEvent)) or 0,
        _db.session.scalar(select(func.count()).select_from(OutboxEmail)) or 0,
        _db.session.scalar(select(func.count()).select_from(Gift).filter_by(status=GiftStatus.SUCCEEDED)) or 0,
    )


def test_the_page_does_not_ask_stripe_when_it_opens(finance: Any, fake_stripe: FakeGateway) -> None:
    fake_stripe.fail = True
    html = page(finance)
    assert "Check with Stripe" in html and "Stripe could not be reached" not in html


def test_the_dry_run_shows_what_reconcile_would_change_and_changes_nothing(
    finance: Any, fake_stripe: FakeGateway
) -> None:
    gift, event = unrecorded_payment(fake_stripe)
    known = stored_event("customer.created", outcome="ignored: type not handled")
    fake_stripe.events.append({**known.payload, "id": known.id})
    before = rows_of_everything()

    listed = section(page(finance, "/dashboard/health/reconcile"), "reconcile")

    assert event["id"] in listed and f"gift {gift.id} succeeded" in listed
    assert f'href="/dashboard/gifts/{gift.id}"' in listed
    assert "Events to apply: 1;" in listed and "events recorded already: 1." in listed
    assert rows_of_everything() == before
    _db.session.expire_all()
    assert _db.session.get(Gift, gift.id).status is GiftStatus.PENDING  # type: ignore[union-attr]
    assert _db.session.get(StripeEvent, event["id"]) is None


def test_the_dry_run_lists_a_pending_gift_stripe_completed_once(finance: Any, fake_stripe: FakeGateway) -> None:
    gift, event = unrecorded_payment(fake_stripe)
    fake_stripe.intents[str(gift.stripe_payment_intent_id)] = event["data"]["object"]

    listed = section(page(finance, "/dashboard/health/reconcile"), "reconcile")

    assert listed.count(f"gift {gift.id} succeeded") == 1


def test_the_dry_run_says_when_stripe_cannot_be_reached(finance: Any, fake_stripe: FakeGateway) -> None:
    fake_stripe.fail = True
    listed = section(page(finance, "/dashboard/health/reconcile"), "reconcile")
    assert "Stripe could not be reached (Stripe is not answering)" in listed


def test_the_button_applies_reconcile_and_audits_who_pressed_it(finance: Any, fake_stripe: FakeGateway) -> None:
    gift, event = unrecorded_payment(fake_stripe)
    old_gift, old_event = unrecorded_payment(fake_stripe, days_ago=10)  # older than the page's 7 days

    response = finance.post("/dashboard/health/reconcile")

    assert response.status_code == 303 and response.headers["Location"].endswith(HEALTH)
    _db.session.expire_all()
    assert _db.session.get(Gift, gift.id).status is GiftStatus.SUCCEEDED  # type: ignore[union-attr]
    assert _db.session.get(StripeEvent, event["id"]).gift_id == gift.id  # type: ignore[union-attr]
    assert _db.session.get(Gift, old_gift.id).status is GiftStatus.PENDING  # type: ignore[union-attr]
    assert _db.session.get(StripeEvent, old_event["id"]) is None
    audit = _db.session.scalars(select(AuditEvent).filter_by(action="stripe.reconcile")).one()
    assert audit.staff_user_id == finance.user.id
    assert audit.details["applied"] == 1 and audit.details["failed"] == 0
    assert "Events applied: 1;" in page(finance)


def test_pressing_the_button_twice_applies_once(finance: Any, fake_stripe: FakeGateway) -> None:
    unrecorded_payment(fake_stripe)
    finance.post("/dashboard/health/reconcile")
    finance.post("/dashboard/health/reconcile")

    audits = list(_db.session.scalars(select(AuditEvent).filter_by(action="stripe.reconcile").order_by(AuditEvent.id)))
    assert [row.details["applied"] for row in audits] == [1, 0]
    assert [row.details["already_recorded"] for row in audits] == [0, 1]
    assert _db.session.scalar(select(func.count()).select_from(OutboxEmail)) == 1


def test_the_button_says_when_stripe_cannot_be_reached_and_changes_no_gift(
    finance: Any, fake_stripe: FakeGateway
) -> None:
    gift, _event = unrecorded_payment(fake_stripe)
    fake_stripe.fail = True

    response = finance.post("/dashboard/health/reconcile")

    assert response.status_code == 303
    assert "Stripe could not be reached (Stripe is not answering)" in page(finance)
    _db.session.expire_all()
    assert _db.session.get(Gift, gift.id).status is GiftStatus.PENDING  # type: ignore[union-attr]
    audit = _db.session.scalars(select(AuditEvent).filter_by(action="stripe.reconcile")).one()
    assert audit.details["stripe_error"] == "Stripe is not answering"
