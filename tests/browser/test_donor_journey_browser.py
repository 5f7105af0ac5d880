"""A donor's year on a phone, in a real browser, through the offline payment stack: they
give monthly, open the link in their receipt, lower the amount, pause, resume, decline
the offer and cancel, and download the statement for their tax return."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from supporters.extensions import db
from supporters.models import Campaign, Frequency, OutboxEmail, PlanStatus, RecurringPlan
from tests.browser.conftest import SCREENSHOTS
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

    # Lower the amount, from the next payment.
    page.get_by_role("link", name=re.compile("PLN50.00 a month")).click()
    page.wait_for_url("**/my/plans/*")
    page.get_by_label("New amount").fill("30")
    page.get_by_role("button", name="Change the amount").click()
    page.get_by_text("Amount changed from PLN50.00 to PLN30.00").first.wait_for()
    snap(page, "plan")
    plan = the_plan(site)
    assert plan.amount_minor == 3000 and plan.status is PlanStatus.ACTIVE

    # Pause for two months, then resume early.
    page.get_by_label("Pause for").select_option("2")
    page.get_by_role("button", name="Pause my gift").click()
    page.get_by_role("button", name="Resume now").wait_for()
    assert the_plan(site).paused_until is not None
    page.get_by_role("button", name="Resume now").click()
    page.get_by_role("button", name="Pause my gift").wait_for()
    assert the_plan(site).paused_until is None

    # Cancel: the offer comes once; the donor declines it with one click.
    page.get_by_role("link", name="Cancel my regular gift").click()
    snap(page, "cancel-offer")
    page.get_by_role("button", name="No thanks, cancel my gift").click()
    page.get_by_text("This gift has ended").wait_for()
    assert the_plan(site).status is PlanStatus.CANCELED

    # The statement of this year, for the tax return, with the address added.
    page.get_by_role("link", name="Your gifts").first.click()
    snap(page, "gifts")
    page.get_by_role("link", name="Get a statement").click()
    page.get_by_label("A calendar year").check()
    page.get_by_label("Year", exact=True).select_option(str(date.today().year))
    page.get_by_label("Address").first.fill("ul. Polna 3")
    page.get_by_label("Postal code").fill("00-950")
    page.get_by_label("City").fill("Łódź")
    with page.expect_download() as download:
        page.get_by_role("button", name="Save and download the statement (PDF)").click()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pdf = SCREENSHOTS / "donor-journey-statement.pdf"
    download.value.save_as(pdf)
    text = pdf_text(pdf)
    assert "Marta Wiśniewska" in text and "Łódź" in text and "PLN50.00" in text, text

    # E-mails confirmed every change, each with the link back to the plan.
    with site.app.app_context():
        kinds = [e.kind for e in db.session.scalars(select(OutboxEmail).order_by(OutboxEmail.id))]
    assert kinds.count("plan_changed") >= 4, kinds


def snap(page: Any, name: str) -> None:
    """A screenshot of a step (for a person to look at; the assertions are the test)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"donor-journey-{name}.png"), full_page=True)


def pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)


def test_a_polish_donor_reads_their_page_and_gets_the_pit_o_statement_in_polish(site: LiveServer, page: Any) -> None:
    from supporters.donors import links
    from tests import factories

    with site.app.test_request_context():
        marta = factories.supporter(email="marta@example.org", name="Marta Wiśniewska", language="pl")
        factories.paid_gift(marta, amount_minor=12000, receipt_number=f"{date.today().year}-000321")
        db.session.commit()
        path = urlsplit(links.manage_url(marta, "/my/gifts", "pl"))
    page.goto(f"{site.url}{path.path}?{path.query}")
    page.get_by_role("button", name="Dalej").click()
    page.wait_for_url("**/my/gifts")
    assert "Twoje darowizny" in page.inner_text("main") and "120,00" in page.inner_text("main")
    snap(page, "gifts-pl")

    page.get_by_role("link", name="Pobierz zaświadczenie").click()
    page.locator("select[name=year]").select_option(str(date.today().year))
    with page.expect_download() as download:
        page.get_by_role("button", name="Zapisz i pobierz zaświadczenie (PDF)").click()
    pdf = SCREENSHOTS / "donor-journey-statement-pl.pdf"
    download.value.save_as(pdf)
    text = " ".join(pdf_text(pdf).split())  # the amount's space is a no-break one
    assert "Zaświadczenie o darowiznach" in text and "od darczyńcy: Marta Wiśniewska" in text, text
    assert re.search(r"Razem \(PLN\) 120,00\s*zł", text), text
