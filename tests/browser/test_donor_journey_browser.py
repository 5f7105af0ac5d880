"""A donor's year on a phone, in a real browser, through the offline payment stack: they
give monthly, open the link in their receipt, lower the amount, pause, resume, decline
the offer and cancel, and download the statement for their tax return."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from supporters.extensions import db
from supporters.models import Campaign, Frequency, OutboxEmail, RecurringPlan
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
                default_frequency=Frequency.MONTHLY,
                appeal_heading="Support independent analysis",
            )
        )
        db.session.commit()
    return live_app


def give_monthly(site: LiveServer, page: Any) -> None:
    page.goto(f"{site.url}/donate/")
    page.get_by_label("Monthly").check()
    page.get_by_label("PLN50.00").check()
    page.get_by_role("textbox", name="E-mail").fill("marta@example.org")
    page.get_by_role("textbox", name="Full name").fill("Marta Wiśniewska")
    page.locator(".donate-button").click()
    page.wait_for_url("**/pay/test/**")
    page.get_by_label("4242 4242 4242 4242", exact=False).check()
    page.get_by_role("button", name="Pay").click()
    page.wait_for_url("**/donate/thanks?session_id=*")
    page.locator("[data-gift-status=succeeded]").wait_for()


def receipt_link(site: LiveServer) -> str:
    with site.app.app_context():
        email = db.session.scalars(select(OutboxEmail).filter_by(kind="receipt")).one()
        found = re.search(r"https?://\S+/my/open/\S+", email.body_text)
        assert found, email.body_text
        return urlsplit(found.group(0)).path


def the_plan(site: LiveServer) -> RecurringPlan:
    with site.app.app_context():
        plan = db.session.scalars(select(RecurringPlan)).one()
        db.session.expunge(plan)
        return plan


def test_a_donor_manages_their_monthly_gift_from_the_receipt_alone(site: LiveServer, page: Any) -> None:
    give_monthly(site, page)
    page.context.clear_cookies()  # days later, the donor has only the e-mail

    page.goto(site.url + receipt_link(site))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/my/gifts")
    assert "50.00" in page.inner_text("main")
