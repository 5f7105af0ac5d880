"""A donor pays with each method the local test-payment page offers, in a real browser."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from supporters.extensions import db
from supporters.giving import lifecycle
from supporters.models import Gift, GiftStatus
from tests.browser.test_donate_browser import fill_donor, site  # noqa: F401 (the fixture)
from tests.conftest import LiveServer

pytestmark = pytest.mark.browser


def to_payment_page(page: Any, url: str) -> None:
    page.goto(url)
    fill_donor(page)
    page.locator(".donate-button").click()
    page.wait_for_url("**/pay/test/**")


def pay(page: Any) -> None:
    page.get_by_role("button", name="Pay").click()


def the_gift(site: LiveServer) -> Gift:  # noqa: F811
    with site.app.app_context():
        gift = db.session.scalars(select(Gift)).one()
        db.session.expunge(gift)
        return gift


def test_a_donor_pays_by_blik_after_a_refused_code(site: LiveServer, page: Any) -> None:  # noqa: F811
    to_payment_page(page, f"{site.url}/donate/?amount=25")
    page.get_by_label("BLIK", exact=True).check()
    code = page.get_by_label("BLIK code", exact=False)
    code.fill("500500")
    pay(page)
    assert "The BLIK code was refused" in page.get_by_role("alert").inner_text()

    page.get_by_label("BLIK code", exact=False).fill("777123")
    pay(page)
    page.wait_for_url("**/donate/thanks?session_id=*")
    page.locator("[data-gift-status=succeeded]").wait_for()
    assert "Thank you!" in page.inner_text("main") and the_gift(site).status is GiftStatus.SUCCEEDED


def test_a_blik_code_that_times_out_says_so(site: LiveServer, page: Any) -> None:  # noqa: F811
    to_payment_page(page, f"{site.url}/donate/?amount=25")
    page.get_by_label("BLIK", exact=True).check()
    page.get_by_label("BLIK code", exact=False).fill("700700")
    pay(page)
    assert "not confirmed in your banking app in time" in page.get_by_role("alert").inner_text()


def test_a_donor_pays_by_przelewy24_after_the_failing_bank(site: LiveServer, page: Any) -> None:  # noqa: F811
    to_payment_page(page, f"{site.url}/donate/?amount=25")
    page.get_by_label("Przelewy24").check()
    page.get_by_label("Noble Pay", exact=False).check()
    pay(page)
    assert "Your bank refused the payment" in page.get_by_role("alert").inner_text()

    page.get_by_label("ING Bank Śląski").check()
    pay(page)
    page.wait_for_url("**/donate/thanks?session_id=*")
    page.locator("[data-gift-status=succeeded]").wait_for()
    assert the_gift(site).status is GiftStatus.SUCCEEDED


@pytest.mark.parametrize(
    "iban,outcome",
    [("DE89 3704 0044 0532 0130 00", "succeeded"), ("DE62370400440532013001", "failed")],
)
def test_a_monthly_euro_gift_by_sepa_direct_debit_settles_by_an_async_event(
    site: LiveServer,  # noqa: F811
    page: Any,
    iban: str,
    outcome: str,
) -> None:
    to_payment_page(page, f"{site.url}/donate/?currency=EUR&frequency=monthly&amount=10")
    assert page.get_by_label("BLIK", exact=True).count() == 0  # not offered for a monthly EUR gift
    page.get_by_label("SEPA Direct Debit").check()
    page.get_by_label("IBAN", exact=True).fill(iban)
    pay(page)

    page.wait_for_url("**/donate/thanks?session_id=*")
    page.locator(f"[data-gift-status={outcome}]").wait_for()
    gift = the_gift(site)
    assert gift.status is GiftStatus(outcome) and gift.currency == "EUR"
    assert gift.processing_at is not None  # localstripe reported the debit as processing first


def test_the_thank_you_page_says_a_processing_payment_is_on_its_way(site: LiveServer, page: Any) -> None:  # noqa: F811
    to_payment_page(page, f"{site.url}/donate/?currency=EUR&frequency=monthly&amount=10")
    with site.app.app_context():
        gift = db.session.scalars(select(Gift)).one()
        lifecycle.mark_processing(gift)  # as a real debit is, for days
        db.session.commit()
        session_id = gift.stripe_checkout_session_id

    page.goto(f"{site.url}/donate/thanks?session_id={session_id}")

    page.locator("[data-gift-status=processing]").wait_for()
    assert "Your payment is on its way" in page.inner_text("main")
