"""The overview in a real browser, on a phone (375 px) and a desktop: seven-digit sums fit
their cards, no amount breaks across lines, the chart's value axis and month labels
can be read, and the page never scrolls sideways."""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from supporters.extensions import db
from supporters.models import Article, GiftKind
from tests import factories
from tests.conftest import LiveServer

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", "/tmp/supporters-screenshots"))

#: what the page must be, measured in the browser: every number is a count of failures
MEASURE = """() => {
  const root = document.documentElement;
  const inside = (inner, outer) => {
    const a = inner.getBoundingClientRect(), b = outer.getBoundingClientRect();
    return a.left >= b.left - 0.5 && a.right <= b.right + 0.5;
  };
  const labels = [...document.querySelectorAll("svg.bars text:not(.chart-year)")]
    .map(t => t.getBoundingClientRect()).filter(r => r.width > 0);
  return {
    sideways: root.scrollWidth - root.clientWidth,
    figures_outside_their_card: [...document.querySelectorAll(".tile .figure")]
      .filter(f => !inside(f.firstElementChild || f, f.closest(".tile"))).length,
    money_on_two_lines: [...document.querySelectorAll(".money")].filter(m => m.getClientRects().length > 1).length,
    axis_labels: [...document.querySelectorAll("svg.chart-axis text")].map(t => t.textContent),
    axis_labels_cut: [...document.querySelectorAll("svg.chart-axis text")]
      .filter(t => t.getBoundingClientRect().left < 0).length,
    month_labels: labels.length,
    month_labels_overlapping: labels.filter((r, i) => i > 0 && r.left < labels[i - 1].right).length,
    big_figure: document.querySelector(".tile .figure").textContent,
  };
}"""


@pytest.fixture
def site(live_app: LiveServer) -> LiveServer:
    with live_app.app.app_context():
        now = datetime.now(UTC)
        donor = factories.supporter(name="Wielki Darczyńca")
        factories.paid_gift(
            donor, paid_at=now - timedelta(hours=1), amount_minor=123_456_700, amount_base_minor=123_456_700
        )
        db.session.add(Article(slug="baltic-2026", title="Bałtyk: dorsz wraca", published_on=date(2026, 1, 1)))
        for months_ago in range(1, 12):
            factories.paid_gift(
                paid_at=now - timedelta(days=30 * months_ago),
                amount_minor=14_000 * months_ago,
                amount_base_minor=14_000 * months_ago,
                kind=GiftKind.RECURRING if months_ago % 2 else GiftKind.ONE_TIME,
                source_article="baltic-2026",
            )
        factories.staff("viewer", email="wiola@example.org")
        db.session.commit()
    return live_app


def sign_in(site: LiveServer, page: Any) -> None:
    page.goto(f"{site.url}/login?lang=pl")
    page.get_by_role("textbox", name="E-mail").fill("wiola@example.org")
    page.locator("input[type=password]").fill(factories.STAFF_PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url("**/dashboard/")


@pytest.mark.parametrize("width", [375, 1280])
@pytest.mark.parametrize("period", ["12m", "30d"])
def test_the_overview_fits_a_phone_and_a_desktop(site: LiveServer, browser: Any, width: int, period: str) -> None:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        sign_in(site, page)
        page.goto(f"{site.url}/dashboard/?lang=pl&period={period}")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"overview-{period}-{width}.png"), full_page=True)
        seen = page.evaluate(MEASURE)
        assert re.fullmatch(r"\d\xa0\d{3}\xa0\d{3},\d\d\xa0zł", seen["big_figure"]), "a seven-digit sum"
        assert seen["sideways"] <= 0, seen
        assert seen["figures_outside_their_card"] == 0, seen
        assert seen["money_on_two_lines"] == 0, seen
        assert len(seen["axis_labels"]) >= 2 and seen["axis_labels_cut"] == 0, seen
        assert any("zł" in label for label in seen["axis_labels"]), seen
        assert seen["month_labels"] >= 5 and seen["month_labels_overlapping"] == 0, seen
        if period == "12m":
            assert page.get_by_role("link", name="Bałtyk: dorsz wraca").is_visible()
    finally:
        context.close()
