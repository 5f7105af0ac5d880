"""The donation form follows the donor in a real browser (issue 12): the suggested amounts
follow the currency, the fee hint and the pay button follow the amount and how often, a
language change keeps every choice, and a bank transfer leads to its instructions."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from supporters.extensions import db
from supporters.giving import checkout
from supporters.models import Campaign, Frequency, Gift, GiftMethod, GiftStatus
from tests.conftest import LiveServer

pytestmark = pytest.mark.browser


@pytest.fixture
def site(live_app: LiveServer) -> LiveServer:
    with live_app.app.app_context():
        db.session.add(
            Campaign(
                slug="general",
                name="Keep our research free",
                goal_currency="PLN",
                goal_minor=100000,
                preset_amounts={"PLN": [2000, 5000, 10000], "EUR": [500, 1000, 2500]},
                default_frequency=Frequency.MONTHLY,
            )
        )
        db.session.commit()
    return live_app


def spaced(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\u00a0", " ").replace("\u202f", " ")).strip()


def button(page: Any) -> str:
    return spaced(page.locator(".donate-button").inner_text())


def test_the_amounts_follow_the_currency_and_one_submit_is_enough(site: LiveServer, page: Any) -> None:
    page.goto(f"{site.url}/donate/?frequency=one_time")
    page.get_by_label("PLN100.00").check()
    page.select_option("#currency", "EUR")
    labels = [spaced(t) for t in page.locator("fieldset#amount_choice label").all_inner_texts()]
    assert labels[:3] == ["€5.00", "€10.00", "€25.00"] and "PLN" not in " ".join(labels)
    assert page.get_by_label("€25.00").is_checked()  # the same place as the PLN amount chosen
    assert button(page) == "Give €25.00"
    page.get_by_role("textbox", name="E-mail").fill("marta@example.org")
    page.get_by_role("textbox", name="Full name").fill("Marta Wiśniewska")
    page.locator(".donate-button").click()
    page.wait_for_url("**/pay/test/**")
    with site.app.app_context():
        gift = db.session.scalars(select(Gift)).one()
        assert (gift.amount_minor, gift.currency) == (2500, "EUR")


def test_the_fee_hint_and_the_button_follow_the_amount_and_how_often(site: LiveServer, page: Any) -> None:
    page.goto(f"{site.url}/donate/")
    assert button(page) == "Give PLN50.00 every month" or button(page) == "Give PLN 50.00 every month"
    page.get_by_role("textbox", name="Your own amount").fill("100")
    with site.app.test_request_context():
        fee = checkout.estimate_fee(10000, "PLN")
    hint = spaced(page.locator("#covers_fee-hint").inner_text())
    assert f"{fee // 100}.{fee % 100:02d}" in hint and "100.00" in hint
    assert re.fullmatch(r"Give PLN ?100\.00 every month", button(page))
    page.get_by_label("I'll cover the processing fee").check()
    total = 10000 + fee
    assert re.fullmatch(rf"Give PLN ?{total // 100}\.{total % 100:02d} every month", button(page))
    page.get_by_label("Once").check()
    assert re.fullmatch(rf"Give PLN ?{total // 100}\.{total % 100:02d}", button(page))


def test_a_language_change_keeps_every_choice(site: LiveServer, page: Any) -> None:
    page.goto(f"{site.url}/donate/?article=baltic-grid&lang=en")
    page.get_by_label("Once").check()
    page.get_by_label("PLN100.00").check()
    page.get_by_role("textbox", name="E-mail").fill("marta@example.org")
    page.get_by_role("textbox", name="Full name").fill("Marta Wiśniewska")
    page.get_by_label("Make my gift anonymous").check()
    page.select_option("#lang-select", "pl")
    page.locator("form.lang button").click()
    page.wait_for_url("**lang=pl**")
    assert page.locator("html").get_attribute("lang") == "pl"
    assert page.locator(".donate-form input[name=frequency][value=one_time]").is_checked()
    assert page.locator(".donate-form input[name=amount_choice][value='10000']").is_checked()
    assert page.locator(".donate-form input[name=article]").input_value() == "baltic-grid"
    assert page.locator("#email").input_value() == "marta@example.org"
    assert page.locator("#name").input_value() == "Marta Wiśniewska"
    assert page.locator("#anonymous").is_checked()


def test_a_bank_transfer_leads_to_its_details_and_qr_code(site: LiveServer, page: Any) -> None:
    page.goto(f"{site.url}/donate/?frequency=one_time")
    page.get_by_label("Bank transfer").check()
    assert not page.locator("#covers_fee").is_visible()
    assert re.fullmatch(r"Get the transfer details for PLN ?50\.00", button(page))
    page.get_by_role("textbox", name="E-mail").fill("marta@example.org")
    page.get_by_role("textbox", name="Full name").fill("Marta Wiśniewska")
    page.locator(".donate-button").click()
    page.wait_for_url("**/donate/transfer/**")
    text = spaced(page.inner_text("main"))
    assert "PL61 1090 1014 0000 0712 1981 2874" in text and re.search(r"DAR 20\d\d \d{6} \d", text)
    image = page.locator(".transfer-qr img")
    assert image.evaluate("img => img.complete && img.naturalWidth > 100")  # the CSP lets the data: image show
    with site.app.app_context():
        gift = db.session.scalars(select(Gift)).one()
        assert (gift.method, gift.status) == (GiftMethod.BANK_TRANSFER, GiftStatus.PENDING)
