"""The quiet ask in a real browser: "I've given" on a page of ours hides the Support Us card
on our own pages (no card, no count) until the time chosen, or until "Show it again";
a page on another origin that embeds the card is not affected."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser import test_widget_browser as widget_browser
from tests.browser.test_widget_browser import card, counters
from tests.conftest import LiveServer, wait_for

# the widget tests' fixtures: our site with a campaign and an article, and pages of another origin
site = widget_browser.site
other_site = widget_browser.other_site

pytestmark = pytest.mark.browser

KEY = "supporters:quiet-until"


def quiet_for(page: Any, site: LiveServer, label: str) -> None:
    page.goto(f"{site.url}/my/quiet")
    page.get_by_role("button", name=label).click()
    wait_for(lambda: page.evaluate(f"() => localStorage.getItem('{KEY}')") is not None)


def no_card(page: Any, site: LiveServer) -> None:
    """Our article page shows no card: nothing rendered, no space kept, nothing fetched."""
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    page.goto(f"{site.url}/articles/grid-story")
    page.wait_for_load_state("networkidle")
    host = page.locator("[data-supporters-widget]")
    assert host.evaluate("h => h.shadowRoot === null && !h.dataset.supportersReady")
    assert host.evaluate("h => h.getBoundingClientRect().height") == 0, "the space kept for the card is given back"
    assert page.locator("[data-supporters-widget] section.c").count() == 0
    assert not [url for url in fetched if "/widget/config/" in url or "/widget/event" in url]


def test_ive_given_hides_the_card_on_our_pages_until_shown_again(site: LiveServer, page: Any) -> None:
    quiet_for(page, site, "For 90 days")
    status = page.locator("[data-quiet-status]").inner_text()
    assert "hidden" in status

    no_card(page, site)
    assert counters(site.app)["impressions"] == 0  # a card not shown counts nothing

    page.goto(f"{site.url}/my/quiet")
    page.get_by_role("button", name="Show it again").click()
    assert page.evaluate(f"() => localStorage.getItem('{KEY}')") is None
    page.goto(f"{site.url}/articles/grid-story")
    card(page)
    wait_for(lambda: counters(site.app)["impressions"] == 1)


def test_the_card_comes_back_when_the_time_chosen_is_over(site: LiveServer, page: Any) -> None:
    quiet_for(page, site, "For 30 days")
    until = page.evaluate(f"() => Number(localStorage.getItem('{KEY}'))")
    now = page.evaluate("() => Date.now()")
    assert 29.9 * 864e5 < until - now <= 30 * 864e5
    no_card(page, site)

    page.evaluate(f"() => localStorage.setItem('{KEY}', String(Date.now() - 1000))")  # 30 days later
    page.goto(f"{site.url}/articles/grid-story")
    card(page)


def test_a_page_on_another_origin_still_shows_the_card(site: LiveServer, other_site: Any, page: Any) -> None:
    quiet_for(page, site, "For a year")
    embed = other_site("")
    page.goto(embed.url)
    # even a flag of the same name on that site's own storage is not ours
    page.evaluate(f"() => localStorage.setItem('{KEY}', String(Date.now() + 864e5))")
    page.reload()
    card(page)
    wait_for(lambda: counters(site.app)["impressions"] >= 1)
