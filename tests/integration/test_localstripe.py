"""The whole giving path against a real localstripe process: the form, the local
test-payment page, localstripe's own signed webhooks, and the recorded gift."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from supporters.extensions import db
from supporters.models import (
    AuditEvent,
    Campaign,
    Frequency,
    Gift,
    GiftStatus,
    OutboxEmail,
    PlanStatus,
    RecurringPlan,
    StripeEvent,
    Supporter,
)
from supporters.payments import gateway
from tests import factories
from tests.conftest import LiveServer, wait_for

SUCCEEDS, DECLINED, THREE_D_SECURE = "4242424242424242", "4000000000000341", "4000002500003155"


def csrf_token(page: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page
    )
    assert match, "the page has a CSRF token"
    return match.group(1)


def start_gift(
    client: FlaskClient,
    frequency: str = "one_time",
    amount: str = "50",
    email: str = "ewa@example.org",
    currency: str = "PLN",
) -> str:
    """Fill in the donation form and return the local payment page it leads to."""
    page = client.get(f"/donate/?amount={amount}&frequency={frequency}&article=baltic-grid").get_data(as_text=True)
    fields = dict(re.findall(r'<input[^>]*name="([a-z_]+)"[^>]*type="hidden"[^>]*value="([^"]*)"', page))
    fields.update(re.findall(r'<input[^>]*type="hidden"[^>]*name="([a-z_]+)"[^>]*value="([^"]*)"', page))
    fields.update(
        {
            "csrf_token": csrf_token(page),
            "frequency": frequency,
            "amount_choice": "other",
            "custom_amount": amount,
            "currency": currency,
            "email": email,
            "name": "Ewa Zielińska",
        }
    )
    response = client.post("/donate/", data=fields)
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    location = response.headers["Location"]
    assert location.startswith("/pay/test/cs_offline_")
    return location


def pay(client: FlaskClient, payment_page: str, card: str) -> Any:
    token = csrf_token(client.get(payment_page).get_data(as_text=True))
    return client.post(payment_page, data={"csrf_token": token, "card": card})


def gift_status(app: Any) -> GiftStatus:
    with app.app_context():
        return db.session.scalars(select(Gift).order_by(Gift.id.desc())).first().status


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


def test_one_time_gift_succeeds_through_localstripe_webhooks(site: LiveServer) -> None:
    client = site.app.test_client()
    page = start_gift(client)
    response = pay(client, page, SUCCEEDS)
    assert response.status_code == 303 and "/donate/thanks?session_id=cs_offline_" in response.headers["Location"]
    wait_for(lambda: gift_status(site.app) is GiftStatus.SUCCEEDED)
    with site.app.app_context():
        gift = db.session.scalars(select(Gift)).one()
        assert gift.amount_minor == 5000 and gift.currency == "PLN" and gift.source_article == "baltic-grid"
        assert gift.stripe_payment_intent_id and gift.receipt_number and gift.paid_at
        supporter = db.session.get(Supporter, gift.supporter_id)
        assert supporter.stripe_customer_id and supporter.lifetime_total_minor == 5000 and supporter.gift_count == 1
        assert db.session.scalar(select(func.count()).select_from(OutboxEmail).filter_by(kind="receipt")) == 1
        assert db.session.scalar(select(StripeEvent).filter_by(type="payment_intent.succeeded")).outcome.endswith(
            "succeeded"
        )
    thanks = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Thank you!" in thanks


def test_the_worker_records_the_fee_and_net_of_localstripe_s_balance_transactions(site: LiveServer) -> None:
    client = site.app.test_client()
    assert pay(client, start_gift(client, amount="50"), SUCCEEDS).status_code == 303
    assert pay(client, start_gift(client, amount="30", frequency="monthly"), SUCCEEDS).status_code == 303
    assert pay(client, start_gift(client, amount="20", currency="EUR"), SUCCEEDS).status_code == 303

    def all_paid() -> bool:
        with site.app.app_context():
            return set(db.session.scalars(select(Gift.status))) == {GiftStatus.SUCCEEDED}

    wait_for(all_paid)
    with site.app.app_context():
        assert db.session.scalars(select(Gift).filter_by(currency="EUR")).one().amount_base_minor is None
    result = site.app.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 0 and "Fees recorded for 3 payment(s)" in result.output, result.output
    with site.app.app_context():
        gifts = {g.amount_minor: g for g in db.session.scalars(select(Gift))}
        # localstripe's balance transactions, with the fee this app's wrapper gives them (1.5 % + fixed)
        one_time, monthly, in_eur = gifts[5000], gifts[3000], gifts[2000]
        assert (one_time.fee_minor, one_time.net_minor, one_time.balance_currency) == (175, 4825, "PLN")
        assert one_time.stripe_balance_transaction_id.startswith("txn_") and one_time.amount_base_minor == 5000
        assert (monthly.fee_minor, monthly.net_minor, monthly.recurring_plan_id is not None) == (145, 2855, True)
        # localstripe settles in the charge's currency: EUR, converted at the bank's rate once one is loaded
        assert (in_eur.fee_minor, in_eur.net_minor, in_eur.balance_currency) == (55, 1945, "EUR")
        assert in_eur.amount_base_minor is None


def test_declined_card_fails_the_gift_and_a_retry_succeeds(site: LiveServer) -> None:
    client = site.app.test_client()
    page = start_gift(client)
    declined = pay(client, page, DECLINED)
    assert declined.status_code == 402
    assert "Your card was declined" in declined.get_data(as_text=True)
    wait_for(lambda: gift_status(site.app) is GiftStatus.FAILED)
    retried = pay(client, page, SUCCEEDS)
    assert retried.status_code == 303
    wait_for(lambda: gift_status(site.app) is GiftStatus.SUCCEEDED)
    with site.app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Gift)) == 1


def test_three_d_secure_approved_by_the_donor_succeeds(site: LiveServer) -> None:
    client = site.app.test_client()
    page = start_gift(client)
    challenge = pay(client, page, THREE_D_SECURE)
    assert challenge.status_code == 303 and challenge.headers["Location"].endswith("/authenticate")
    form = client.get(challenge.headers["Location"]).get_data(as_text=True)
    assert "Approve" in form
    approved = client.post(challenge.headers["Location"], data={"csrf_token": csrf_token(form), "decision": "approve"})
    assert approved.status_code == 303 and "/donate/thanks" in approved.headers["Location"]
    wait_for(lambda: gift_status(site.app) is GiftStatus.SUCCEEDED)


def test_three_d_secure_failed_by_the_donor_charges_nothing(site: LiveServer) -> None:
    client = site.app.test_client()
    page = start_gift(client)
    challenge = pay(client, page, THREE_D_SECURE)
    form = client.get(challenge.headers["Location"]).get_data(as_text=True)
    failed = client.post(challenge.headers["Location"], data={"csrf_token": csrf_token(form), "decision": "fail"})
    assert failed.status_code == 402
    assert "could not confirm it was you" in failed.get_data(as_text=True)
    with site.app.app_context():
        intent = gateway().retrieve_payment_intent(db.session.scalars(select(Gift)).one().stripe_payment_intent_id)
    assert intent["status"] == "requires_payment_method"
    assert gift_status(site.app) is GiftStatus.PENDING


def test_monthly_gift_starts_a_subscription_and_records_its_first_invoice(site: LiveServer) -> None:
    client = site.app.test_client()
    page = start_gift(client, frequency="monthly")
    assert pay(client, page, SUCCEEDS).status_code == 303
    wait_for(lambda: gift_status(site.app) is GiftStatus.SUCCEEDED)
    with site.app.app_context():
        plan = db.session.scalars(select(RecurringPlan)).one()
        assert plan.status is PlanStatus.ACTIVE and plan.stripe_subscription_id.startswith("sub_")
        assert plan.interval.value == "month" and plan.amount_minor == 5000 and plan.started_at
        gift = db.session.scalars(select(Gift)).one()
        assert gift.recurring_plan_id == plan.id and gift.stripe_invoice_id.startswith("in_")

    def events_seen() -> bool:
        with site.app.app_context():
            types = set(db.session.scalars(select(StripeEvent.type)))
        return {"invoice.payment_succeeded", "customer.subscription.created"} <= types

    wait_for(events_seen)


def test_reconcile_repairs_a_gift_whose_webhook_never_arrived(site: LiveServer) -> None:
    app = site.app
    with app.app_context():
        gateway().register_webhook("http://127.0.0.1:9/nowhere")  # type: ignore[attr-defined]
    client = app.test_client()
    page = start_gift(client)
    assert pay(client, page, SUCCEEDS).status_code == 303
    with app.app_context():
        start = db.session.scalars(select(Gift)).one().created_at.strftime("%Y-%m-%d")
    assert gift_status(app) is GiftStatus.PENDING
    result = app.test_cli_runner().invoke(args=["stripe", "reconcile", "--since", start])
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.output
    assert gift_status(app) is GiftStatus.SUCCEEDED
    again = app.test_cli_runner().invoke(args=["stripe", "reconcile", "--since", start])
    assert "0 applied" in again.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(OutboxEmail)) == 1


def test_the_health_page_checks_with_localstripe_and_applies_reconcile(site: LiveServer) -> None:
    app = site.app
    with app.app_context():
        gateway().register_webhook("http://127.0.0.1:9/nowhere")  # type: ignore[attr-defined]
        user = factories.staff("fundraiser")
        db.session.commit()
        email, user_id = user.email, user.id
    client = app.test_client()
    assert pay(client, start_gift(client), SUCCEEDS).status_code == 303
    assert gift_status(app) is GiftStatus.PENDING

    dry = app.test_cli_runner().invoke(args=["stripe", "reconcile", "--since", "1h", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "Dry run, nothing was changed." in dry.output and "succeeded" in dry.output
    assert gift_status(app) is GiftStatus.PENDING

    staff = app.test_client()
    login = {"email": email, "password": factories.STAFF_PASSWORD, "csrf_token": csrf_token(staff.get("/login").text)}
    assert staff.post("/login", data=login).status_code == 303
    preview = staff.get("/dashboard/health/reconcile")
    assert preview.status_code == 200 and "succeeded" in preview.text
    assert gift_status(app) is GiftStatus.PENDING
    assert staff.post("/dashboard/health/reconcile").status_code == 400  # no CSRF token: refused
    assert gift_status(app) is GiftStatus.PENDING
    applied = staff.post("/dashboard/health/reconcile", data={"csrf_token": csrf_token(preview.text)})
    assert applied.status_code == 303
    assert gift_status(app) is GiftStatus.SUCCEEDED
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(OutboxEmail)) == 1
        assert db.session.scalar(select(AuditEvent).filter_by(action="stripe.reconcile")).staff_user_id == user_id
