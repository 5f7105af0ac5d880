"""Pay pressed five times at once on the local test-payment page charges the donor once.

Five real HTTP requests, from five threads with the donor's cookies, reach the app
served over HTTP, which talks to a real localstripe; localstripe's own webhooks
then record the payment. What counts is what localstripe charged.
"""

from __future__ import annotations

import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from supporters.extensions import db
from supporters.models import Campaign, Frequency, Gift, GiftStatus, OutboxEmail, StripeEvent
from supporters.payments import gateway
from tests.conftest import LiveServer, wait_for

SUCCEEDS, DECLINED, THREE_D_SECURE = "4242424242424242", "4000000000000341", "4000002500003155"
PRESSES = 5


def csrf_token(page: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page
    )
    assert match, "the page has a CSRF token"
    return match.group(1)


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


def start_gift(server: LiveServer, email: str, frequency: str = "one_time") -> tuple[requests.Session, str]:
    """Fill in the donation form over HTTP; the donor's browser session and the payment page's address."""
    browser = requests.Session()
    page = browser.get(f"{server.url}/donate/?frequency={frequency}", timeout=30).text
    fields = dict(re.findall(r'<input[^>]*name="([a-z_]+)"[^>]*type="hidden"[^>]*value="([^"]*)"', page))
    fields.update(re.findall(r'<input[^>]*type="hidden"[^>]*name="([a-z_]+)"[^>]*value="([^"]*)"', page))
    fields.update(
        {
            "csrf_token": csrf_token(page),
            "frequency": frequency,
            "amount_choice": "other",
            "custom_amount": "73",
            "currency": "PLN",
            "email": email,
            "name": "Ewa Zielińska",
        }
    )
    response = browser.post(f"{server.url}/donate/", data=fields, allow_redirects=False, timeout=30)
    assert response.status_code == 303, response.text[:2000]
    location = response.headers["Location"]
    assert "/pay/test/cs_offline_" in location
    return browser, location if location.startswith("http") else f"{server.url}{location}"


def press_together(browser: requests.Session, payment_page: str, card: str, presses: int = PRESSES) -> list[int]:
    """Press Pay `presses` times at the same moment, as an impatient donor does."""
    token = csrf_token(browser.get(payment_page, timeout=30).text)
    barrier = threading.Barrier(presses)

    def press(_: int) -> int:
        tab = requests.Session()
        tab.cookies.update(browser.cookies)
        barrier.wait(timeout=60)
        response = tab.post(payment_page, data={"csrf_token": token, "card": card}, allow_redirects=False, timeout=60)
        return response.status_code

    with ThreadPoolExecutor(max_workers=presses) as pool:
        return list(pool.map(press, range(presses)))


def charges_of(server: LiveServer, email: str) -> list[dict[str, Any]]:
    """Every charge localstripe made to the donor with this e-mail, whatever customer it was made under."""
    with server.app.app_context():
        client = gateway().client  # type: ignore[attr-defined]
        customers = client.v1.customers.list({"email": email, "limit": 100}).to_dict()["data"]
        charges = []
        for customer in customers:
            listed = client.v1.charges.list({"customer": customer["id"], "limit": 100}).to_dict()["data"]
            charges.extend(charge for charge in listed if charge.get("status") == "succeeded")
        return charges


def the_gift(server: LiveServer) -> Gift:
    with server.app.app_context():
        gift = db.session.scalars(select(Gift).order_by(Gift.id.desc())).first()
        assert gift is not None
        return gift


def test_five_presses_at_once_charge_once_and_pay_the_gift_once(site: LiveServer) -> None:
    email = f"impatient-{uuid.uuid4().hex[:8]}@example.org"
    browser, page = start_gift(site, email)

    answers = press_together(browser, page, SUCCEEDS)

    assert set(answers) == {303}
    wait_for(lambda: the_gift(site).status is GiftStatus.SUCCEEDED)
    charges = charges_of(site, email)
    assert len(charges) == 1, f"localstripe charged {len(charges)} times"
    gift = the_gift(site)
    assert charges[0]["payment_intent"] == gift.stripe_payment_intent_id
    assert charges[0]["amount"] == gift.amount_minor == 7300
    with site.app.app_context():
        assert db.session.scalar(select(func.count()).select_from(OutboxEmail).filter_by(kind="receipt")) == 1
        assert db.session.scalar(select(func.count()).select_from(StripeEvent).filter_by(needs_review=True)) == 0


def test_five_presses_at_once_of_a_declined_card_charge_nothing_and_a_retry_charges_once(site: LiveServer) -> None:
    email = f"declined-{uuid.uuid4().hex[:8]}@example.org"
    browser, page = start_gift(site, email)

    declined = press_together(browser, page, DECLINED)

    assert 402 in declined and set(declined) <= {303, 402}
    wait_for(lambda: the_gift(site).status is GiftStatus.FAILED)
    assert charges_of(site, email) == []
    retried = press_together(browser, page, SUCCEEDS)
    assert set(retried) == {303}
    wait_for(lambda: the_gift(site).status is GiftStatus.SUCCEEDED)
    assert len(charges_of(site, email)) == 1


def test_five_presses_at_once_of_a_three_d_secure_card_open_one_challenge(site: LiveServer) -> None:
    email = f"challenged-{uuid.uuid4().hex[:8]}@example.org"
    browser, page = start_gift(site, email)

    answers = press_together(browser, page, THREE_D_SECURE)

    assert set(answers) == {303}
    gift = the_gift(site)
    challenge = browser.get(f"{page}/authenticate", timeout=30).text
    approved = browser.post(
        f"{page}/authenticate", data={"csrf_token": csrf_token(challenge), "decision": "approve"}, allow_redirects=False
    )
    assert approved.status_code == 303
    wait_for(lambda: the_gift(site).status is GiftStatus.SUCCEEDED)
    charges = charges_of(site, email)
    assert len(charges) == 1 and charges[0]["payment_intent"] == gift.stripe_payment_intent_id


def test_five_presses_at_once_for_a_monthly_gift_subscribe_once(site: LiveServer) -> None:
    email = f"monthly-{uuid.uuid4().hex[:8]}@example.org"
    browser, page = start_gift(site, email, frequency="monthly")

    answers = press_together(browser, page, SUCCEEDS)

    assert set(answers) == {303}
    wait_for(lambda: the_gift(site).status is GiftStatus.SUCCEEDED)
    assert len(charges_of(site, email)) == 1
    with site.app.app_context():
        client = gateway().client  # type: ignore[attr-defined]
        customers = client.v1.customers.list({"email": email, "limit": 100}).to_dict()["data"]
        subscriptions = [
            s
            for customer in customers
            for s in client.v1.subscriptions.list({"customer": customer["id"]}).to_dict()["data"]
        ]
        assert len(subscriptions) == 1


# --- A second payment for a gift already paid ------------------------------------------


def test_a_second_successful_payment_for_a_paid_gift_is_held_as_paid_twice(client: Any, db: Any) -> None:
    from tests import factories
    from tests import stripe_events as se

    secret = gateway().webhook_secret
    gift = factories.gift(amount_minor=5000, amount_base_minor=5000, stripe_payment_intent_id="pi_first")
    gift.stripe_checkout_session_id = se.checkout_session_id(gift.id)
    db.session.commit()
    first = se.event("payment_intent.succeeded", se.payment_intent(gift.id, "succeeded", id="pi_first"))
    assert se.post_event(client, first, secret).status_code == 200

    second = se.event("payment_intent.succeeded", se.payment_intent(gift.id, "succeeded", id="pi_second"))
    response = se.post_event(client, second, secret)

    assert response.status_code == 200
    db.session.expire_all()
    held = db.session.get(StripeEvent, second["id"])
    assert held.needs_review and held.gift_id == gift.id
    assert held.review_reason.startswith(f"paid twice: payment intent pi_second succeeded for gift {gift.id}")
    assert "pi_first" in held.review_reason
    paid = db.session.get(Gift, gift.id)
    assert (paid.status, paid.stripe_payment_intent_id) == (GiftStatus.SUCCEEDED, "pi_first")
    assert paid.supporter.lifetime_total_minor == 5000
    assert db.session.scalar(select(func.count()).select_from(OutboxEmail).filter_by(kind="receipt")) == 1
