"""Each payment method on the local test-payment page, against a real localstripe: what the
page offers a gift, and what each test value does, by localstripe's own signed events."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from supporters.extensions import db
from supporters.models import Gift, GiftStatus, PlanStatus, RecurringPlan, StripeEvent
from tests.conftest import LiveServer, wait_for
from tests.integration.test_localstripe import csrf_token, site  # noqa: F401 (the fixture)

SEPA_SUCCEEDS, SEPA_FAILS_LATER = "DE89370400440532013000", "DE62370400440532013001"


def start(client: FlaskClient, currency: str = "PLN", frequency: str = "one_time", amount: str = "50") -> str:
    """Fill in the donation form; return the local payment page it leads to."""
    page = client.get(f"/donate/?currency={currency}&frequency={frequency}").get_data(as_text=True)
    fields = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([a-z_]+)"[^>]*value="([^"]*)"', page))
    fields.update(re.findall(r'<input[^>]*name="([a-z_]+)"[^>]*type="hidden"[^>]*value="([^"]*)"', page))
    fields.update(
        csrf_token=csrf_token(page),
        frequency=frequency,
        amount_choice="other",
        custom_amount=amount,
        currency=currency,
        email="jan@example.org",
        name="Jan Kowalski",
    )
    response = client.post("/donate/", data=fields)
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    return response.headers["Location"]


def offered(client: FlaskClient, page: str) -> list[str]:
    return re.findall(r'name="method"[^>]*value="([a-z_0-9]+)"', client.get(page).get_data(as_text=True))


def pay(client: FlaskClient, page: str, **fields: str) -> Any:
    token = csrf_token(client.get(page).get_data(as_text=True))
    return client.post(page, data={"csrf_token": token, **fields})


def latest_gift(app: Any) -> Gift:
    with app.app_context():
        gift = db.session.scalars(select(Gift).order_by(Gift.id.desc())).first()
        assert gift is not None
        db.session.expunge(gift)
        return gift


def test_the_page_offers_what_checkout_would_for_the_gift(site: LiveServer) -> None:  # noqa: F811
    client = site.app.test_client()
    assert offered(client, start(client, "PLN")) == ["card", "blik", "p24"]
    assert offered(client, start(client, "EUR", amount="20")) == ["card", "p24"]
    assert offered(client, start(client, "EUR", "monthly", amount="10")) == ["card", "sepa_debit"]
    assert offered(client, start(client, "PLN", "monthly", amount="30")) == ["card"]
    site.app.config["SUPPORTERS_PAYMENT_METHODS"] = ["card", "p24"]
    try:
        assert offered(client, start(client, "PLN", amount="40")) == ["card", "p24"]
    finally:
        site.app.config["SUPPORTERS_PAYMENT_METHODS"] = ["card", "blik", "p24", "sepa_debit"]


def test_a_blik_code_that_succeeds_pays_the_gift(site: LiveServer) -> None:  # noqa: F811
    client = site.app.test_client()
    response = pay(client, start(client), method="blik", blik_code="777123")
    assert response.status_code == 303 and "/donate/thanks" in response.headers["Location"]
    wait_for(lambda: latest_gift(site.app).status is GiftStatus.SUCCEEDED)


@pytest.mark.parametrize(
    "code,says",
    [("500500", "The BLIK code was refused"), ("123456", "The BLIK code was refused"), ("700700", "not confirmed")],
)
def test_a_refused_or_timed_out_blik_code_charges_nothing_and_a_new_code_may_be_tried(
    site: LiveServer,  # noqa: F811
    code: str,
    says: str,
) -> None:
    client = site.app.test_client()
    page = start(client)
    response = pay(client, page, method="blik", blik_code=code)
    assert response.status_code == 402 and says in response.get_data(as_text=True)
    wait_for(lambda: latest_gift(site.app).status is GiftStatus.FAILED)

    assert pay(client, page, method="blik", blik_code="777123").status_code == 303
    wait_for(lambda: latest_gift(site.app).status is GiftStatus.SUCCEEDED)


def test_a_blik_code_must_be_six_digits(site: LiveServer) -> None:  # noqa: F811
    client = site.app.test_client()
    page = start(client)
    for code in ("12345", "1234567", "12a456", "١٢٣٤٥٦", ""):
        response = pay(client, page, method="blik", blik_code=code)
        assert response.status_code == 400 and "6-digit BLIK code" in response.get_data(as_text=True)
    assert latest_gift(site.app).status is GiftStatus.PENDING and not latest_gift(site.app).stripe_payment_intent_id


def test_przelewy24_pays_through_a_bank_and_the_failing_bank_charges_nothing(site: LiveServer) -> None:  # noqa: F811
    client = site.app.test_client()
    page = start(client, "EUR", amount="20")
    refused = pay(client, page, method="p24", p24_bank="noble_pay")
    assert refused.status_code == 402 and "Your bank refused the payment" in refused.get_data(as_text=True)
    assert pay(client, page, method="p24", p24_bank="nobody").status_code == 400

    assert pay(client, page, method="p24", p24_bank="ing").status_code == 303
    wait_for(lambda: latest_gift(site.app).status is GiftStatus.SUCCEEDED)
    assert latest_gift(site.app).currency == "EUR"


def test_a_method_the_gift_is_not_offered_is_refused(site: LiveServer) -> None:  # noqa: F811
    client = site.app.test_client()
    response = pay(client, start(client), method="sepa_debit", iban=SEPA_SUCCEEDS)
    assert response.status_code == 400 and "Choose one of the ways to pay" in response.get_data(as_text=True)


def test_a_sepa_debit_is_processing_first_then_pays_the_monthly_gift(site: LiveServer) -> None:  # noqa: F811
    client = site.app.test_client()
    page = start(client, "EUR", "monthly", amount="10")
    assert pay(client, page, method="sepa_debit", iban="DE12 3456").status_code == 400

    response = pay(client, page, method="sepa_debit", iban="de89 3704 0044 0532 0130 00")

    assert response.status_code == 303 and "/donate/thanks" in response.headers["Location"]
    wait_for(lambda: latest_gift(site.app).processing_at is not None)  # localstripe's payment_intent.processing
    wait_for(lambda: latest_gift(site.app).status is GiftStatus.SUCCEEDED)
    gift = latest_gift(site.app)
    with site.app.app_context():
        assert gift.receipt_number and db.session.get(type(gift), gift.id).recurring_plan.status is PlanStatus.ACTIVE
        processing = db.session.scalar(select(StripeEvent).filter_by(type="payment_intent.processing"))
        assert processing is not None and processing.outcome == f"gift {gift.id} processing"


def test_a_sepa_debit_that_fails_later_fails_the_gift_by_an_async_event(site: LiveServer) -> None:  # noqa: F811
    client = site.app.test_client()
    page = start(client, "EUR", "monthly", amount="10")

    response = pay(client, page, method="sepa_debit", iban=SEPA_FAILS_LATER)

    assert response.status_code == 303  # accepted now: the debit fails a moment later
    wait_for(lambda: latest_gift(site.app).status is GiftStatus.FAILED)
    gift = latest_gift(site.app)
    assert gift.receipt_number is None and gift.paid_at is None
    assert gift.recurring_plan_id is not None

    def plan_status() -> PlanStatus:
        # a context (and a transaction) per look: one held open across the wait would keep
        # SQLite's lock from the webhook that cancels the plan
        with site.app.app_context():
            return db.session.get(RecurringPlan, gift.recurring_plan_id).status

    wait_for(lambda: plan_status() is PlanStatus.CANCELED)
