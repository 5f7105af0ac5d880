"""Staff in a real browser: find the supporter who just gave, refund the gift, see it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from supporters.extensions import db
from supporters.models import Campaign, Frequency, Gift, GiftStatus, Supporter
from tests import factories
from tests.conftest import LiveServer

pytestmark = pytest.mark.browser


@pytest.fixture
def site(live_app: LiveServer) -> LiveServer:
    with live_app.app.app_context():
        db.session.add(
            Campaign(
                slug="general",
                name="General",
                goal_currency="PLN",
                preset_amounts={"PLN": [2000, 5000]},
                default_frequency=Frequency.ONE_TIME,
            )
        )
        factories.staff("fundraiser", email="ola@example.org")
        db.session.commit()
    return live_app


def test_staff_find_the_new_donor_refund_the_gift_and_see_the_totals_change(site: LiveServer, page: Any) -> None:
    # A donor gives PLN 50 through the offline payment stack.
    page.goto(f"{site.url}/donate/?amount=50")
    page.get_by_role("textbox", name="E-mail").fill("zofia.lis@example.org")
    page.get_by_role("textbox", name="Full name").fill("Zofia Liś")
    page.locator(".donate-button").click()
    page.wait_for_url("**/pay/test/**")
    page.get_by_label("payment succeeds", exact=False).check()
    page.get_by_role("button", name="Pay").click()
    page.locator("[data-gift-status=succeeded]").wait_for()

    # Staff sign in and find her by the start of her name, without the accent.
    page.goto(f"{site.url}/login")
    page.get_by_role("textbox", name="E-mail").fill("ola@example.org")
    page.get_by_label("Password").fill(factories.STAFF_PASSWORD)
    page.locator("main").get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard/")
    page.goto(f"{site.url}/dashboard/supporters/")
    page.get_by_role("searchbox", name="Search").fill("zofia l")
    page.get_by_role("searchbox", name="Search").press("Enter")
    page.get_by_role("link", name="Zofia Liś").click()
    page.wait_for_url("**/dashboard/supporters/*")
    assert "PLN50.00" in page.inner_text("main")

    # Open the gift and refund it, with the confirmation step.
    with site.app.app_context():
        gift_id = db.session.scalars(select(Gift.id)).one()
    page.goto(f"{site.url}/dashboard/gifts/{gift_id}")
    page.get_by_role("link", name="Refund").click()
    page.get_by_role("button", name="Continue").click()
    assert "This cannot be undone" in page.inner_text("main")
    page.get_by_role("button", name="Yes, refund PLN50.00").click()
    page.wait_for_url(f"**/dashboard/gifts/{gift_id}")
    assert "Refunded PLN50.00 to Zofia Liś." in page.inner_text("main")

    with site.app.app_context():
        gift = db.session.get(Gift, gift_id)
        supporter = db.session.get(Supporter, gift.supporter_id)
        assert gift.status is GiftStatus.REFUNDED and gift.refunded_minor == 5000
        assert (supporter.lifetime_total_minor, supporter.gift_count) == (0, 0)

    page.goto(f"{site.url}/dashboard/supporters/{supporter.id}")
    assert "refunded" in page.inner_text("main").lower()
