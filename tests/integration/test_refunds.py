"""Refunds and cancellations from the dashboard against a real localstripe: the donor
pays on the local test-payment page, staff refund or cancel, and localstripe holds
the refund or ends the subscription while the dashboard shows the change at once."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from supporters.extensions import db
from supporters.models import (
    AuditEvent,
    Campaign,
    Frequency,
    Gift,
    GiftStatus,
    PlanStatus,
    RecurringPlan,
    StripeEvent,
    Supporter,
)
from supporters.payments import gateway
from tests import factories
from tests.conftest import LiveServer, wait_for
from tests.integration.test_localstripe import (
    SUCCEEDS,
    csrf_token,
    gift_status,
    pay,
    start_gift,
)


@pytest.fixture
def site(live_app: LiveServer) -> LiveServer:
    with live_app.app.app_context():
        db.session.add(
            Campaign(
                slug="general",
                name="General",
                goal_currency="PLN",
                goal_minor=100000,
                preset_amounts={"PLN": [2000, 5000]},
                default_frequency=Frequency.ONE_TIME,
            )
        )
        db.session.commit()
    return live_app


def staff_client(site: LiveServer) -> FlaskClient:
    """A client signed in as an admin through the real login form (CSRF on)."""
    with site.app.app_context():
        user = factories.staff("admin")
        email = user.email
        db.session.commit()
    client = site.app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"csrf_token": token, "email": email, "password": factories.STAFF_PASSWORD})
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    return client


def refund_from_dashboard(client: FlaskClient, gift_id: int, amount: str, seen: int) -> Any:
    """Fill in the refund form, then confirm it, as staff would."""
    form = client.get(f"/dashboard/gifts/{gift_id}/refund").get_data(as_text=True)
    data = {
        "csrf_token": csrf_token(form),
        "amount": amount,
        "reason": "requested_by_customer",
        "note": "",
        "seen_refunded": str(seen),
    }
    confirm = client.post(f"/dashboard/gifts/{gift_id}/refund", data=data)
    assert confirm.status_code == 200 and "This cannot be undone." in confirm.get_data(as_text=True)
    data["csrf_token"] = csrf_token(confirm.get_data(as_text=True))
    return client.post(f"/dashboard/gifts/{gift_id}/refund", data={**data, "confirm": "yes"})


def paid_gift(site: LiveServer, frequency: str = "one_time") -> int:
    donor = site.app.test_client()
    assert pay(donor, start_gift(donor, frequency=frequency), SUCCEEDS).status_code == 303
    wait_for(lambda: gift_status(site.app) is GiftStatus.SUCCEEDED)
    with site.app.app_context():
        return db.session.scalars(select(Gift.id)).one()


def test_a_paid_gift_is_refunded_in_part_then_in_full_from_the_dashboard(site: LiveServer) -> None:
    gift_id = paid_gift(site)
    staff = staff_client(site)

    response = refund_from_dashboard(staff, gift_id, "20", seen=0)
    assert response.status_code == 303, response.get_data(as_text=True)[:1000]
    with site.app.app_context():
        gift = db.session.get(Gift, gift_id)
        supporter = db.session.get(Supporter, gift.supporter_id)
        assert gift.status is GiftStatus.PARTIALLY_REFUNDED and gift.refunded_minor == 2000
        assert supporter.lifetime_total_minor == 3000 and supporter.gift_count == 1

    response = refund_from_dashboard(staff, gift_id, "30", seen=2000)
    assert response.status_code == 303
    with site.app.app_context():
        gift = db.session.get(Gift, gift_id)
        supporter = db.session.get(Supporter, gift.supporter_id)
        assert gift.status is GiftStatus.REFUNDED and gift.refunded_minor == 5000 and gift.refunded_at
        assert supporter.lifetime_total_minor == 0 and supporter.gift_count == 0
        # localstripe really holds the two refunds of the payment.
        refunds = gateway().client.v1.refunds.list({"payment_intent": gift.stripe_payment_intent_id}).data
        assert sorted(refund.amount for refund in refunds) == [2000, 3000]
        actions = db.session.scalars(select(AuditEvent.action).filter_by(target_type="gift")).all()
        assert actions == ["gift.refund", "gift.refund"]

    page = staff.get(f"/dashboard/gifts/{gift_id}").get_data(as_text=True)
    assert "refunded" in page and f"/dashboard/gifts/{gift_id}/refund" not in page


def test_a_monthly_plan_is_canceled_from_the_dashboard_and_stripe_confirms(site: LiveServer) -> None:
    paid_gift(site, frequency="monthly")
    with site.app.app_context():
        plan = db.session.scalars(select(RecurringPlan)).one()
        plan_id, subscription_id = plan.id, plan.stripe_subscription_id
        assert plan.status is PlanStatus.ACTIVE and subscription_id
    staff = staff_client(site)
    detail = staff.get(f"/dashboard/plans/{plan_id}").get_data(as_text=True)
    response = staff.post(
        f"/dashboard/plans/{plan_id}/cancel",
        data={"csrf_token": csrf_token(detail), "reason": "The donor asked us by e-mail"},
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:1000]
    with site.app.app_context():
        plan = db.session.get(RecurringPlan, plan_id)
        assert plan.status is PlanStatus.CANCELED and plan.cancel_reason == "The donor asked us by e-mail"
        assert gateway().client.v1.subscriptions.retrieve(subscription_id).status == "canceled"

    def confirmed() -> str | None:
        with site.app.app_context():
            return db.session.scalar(select(StripeEvent.outcome).filter_by(type="customer.subscription.deleted"))

    assert wait_for(confirmed) == f"plan {plan_id} unchanged (canceled)"
    with site.app.app_context():
        assert db.session.get(RecurringPlan, plan_id).cancel_reason == "The donor asked us by e-mail"
