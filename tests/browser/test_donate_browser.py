"""A donor gives in a real browser, through the offline payment stack."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from supporters.extensions import db
from supporters.models import (
    Campaign,
    Frequency,
    Gift,
    GiftStatus,
    PlanStatus,
    RecurringPlan,
)
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
                preset_amounts={"PLN": [2000, 5000, 10000]},
                default_frequency=Frequency.ONE_TIME,
                appeal_heading="Support independent analysis",
            )
        )
        db.session.commit()
    return live_app


def fill_donor(page: Any) -> None:
    page.get_by_role("textbox", name="E-mail").fill("marta@example.org")
    page.get_by_role("textbox", name="Full name").fill("Marta Wiśniewska")


def test_donor_gives_50_pln_monthly_and_sees_the_thank_you_page(site: LiveServer, page: Any) -> None:
    page.goto(f"{site.url}/donate/")
    page.get_by_label("Monthly").check()
    page.get_by_label("PLN50.00").check()
    fill_donor(page)
    page.locator(".donate-button").click()

    page.wait_for_url("**/pay/test/**")
    assert "Local test-payment page" in page.content()
    page.get_by_label("4242 4242 4242 4242", exact=False).check()
    page.get_by_role("button", name="Pay").click()

    page.wait_for_url("**/donate/thanks?session_id=*")
    page.locator("[data-gift-status=succeeded]").wait_for()  # the page refreshes until the webhook lands
    text = page.inner_text("main")
    assert "Thank you!" in text and "every month" in text

    with site.app.app_context():
        gift = db.session.scalars(select(Gift)).one()
        plan = db.session.scalars(select(RecurringPlan)).one()
        assert gift.status is GiftStatus.SUCCEEDED and gift.amount_minor == 5000 and gift.currency == "PLN"
        assert plan.status is PlanStatus.ACTIVE and plan.interval.value == "month"


def test_declined_card_shows_a_clear_message_and_the_donor_can_retry(site: LiveServer, page: Any) -> None:
    page.goto(f"{site.url}/donate/?amount=25")
    fill_donor(page)
    page.locator(".donate-button").click()
    page.wait_for_url("**/pay/test/**")

    page.get_by_label("card is declined", exact=False).check()
    page.get_by_role("button", name="Pay").click()
    alert = page.get_by_role("alert")
    assert "Your card was declined" in alert.inner_text()

    page.get_by_label("payment succeeds", exact=False).check()
    page.get_by_role("button", name="Pay").click()
    page.wait_for_url("**/donate/thanks?session_id=*")
    page.locator("[data-gift-status=succeeded]").wait_for()
    assert "Thank you!" in page.inner_text("main")


def test_form_errors_are_announced_and_tied_to_their_fields(site: LiveServer, page: Any) -> None:
    page.goto(f"{site.url}/donate/")
    page.get_by_role("textbox", name="Your own amount").fill("0,50")
    page.locator(".donate-button").click()
    summary = page.get_by_role("alert")
    assert "Please check the form" in summary.inner_text()
    email = page.get_by_role("textbox", name="E-mail")
    assert email.get_attribute("aria-invalid") == "true"
    described = email.get_attribute("aria-describedby") or ""
    assert "email-error" in described
    assert "Enter your e-mail address" in page.locator("#email-error").inner_text()
    assert "smallest gift" in page.locator("#custom_amount-error").inner_text()


def test_the_form_works_with_the_keyboard_alone(site: LiveServer, page: Any) -> None:
    page.goto(f"{site.url}/donate/?amount=20")
    page.get_by_role("textbox", name="E-mail").focus()
    page.keyboard.type("kasia@example.org")
    page.keyboard.press("Tab")
    page.keyboard.type("Kasia Mazur")
    page.get_by_role("textbox", name="Full name").press("Enter")
    page.wait_for_url("**/pay/test/**")
