"""The overview: figures that add up, in the reporting currency, from paid gifts only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from supporters.dashboard import overview
from supporters.models import GiftKind, GiftStatus, PlanStatus
from tests import factories

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def gift(paid: datetime, amount: int, **fields: Any) -> Any:
    return factories.paid_gift(paid_at=paid, amount_minor=amount, amount_base_minor=amount, **fields)


def test_month_and_year_compare_with_the_same_period_last_year(db: Any) -> None:
    gift(datetime(2026, 11, 3, tzinfo=UTC), 5000)
    gift(datetime(2026, 2, 1, tzinfo=UTC), 2000)
    gift(datetime(2025, 11, 20, tzinfo=UTC), 1000)
    gift(datetime(2025, 11, 28, tzinfo=UTC), 99_900)  # after "today" last year: not in the same period
    refunded = gift(datetime(2026, 11, 5, tzinfo=UTC), 3000)
    refunded.refunded_minor, refunded.status = 3000, GiftStatus.REFUNDED
    factories.gift(amount_minor=7000)  # pending
    report = overview.overview(now=NOW)
    assert (report.month.amount_minor, report.month.gifts) == (5000, 1)
    assert report.month_last_year.amount_minor == 1000
    assert report.year.amount_minor == 7000 and report.year_last_year.amount_minor == 1000


def test_recurring_income_counts_yearly_plans_as_a_twelfth_per_currency(db: Any) -> None:
    for amount, interval, currency in [(3000, "month", "PLN"), (12000, "year", "PLN"), (500, "month", "EUR")]:
        plan = factories.plan(amount_minor=amount, interval=interval, currency=currency)
        plan.status = PlanStatus.ACTIVE
    canceled = factories.plan(amount_minor=9999)
    canceled.status = PlanStatus.CANCELED
    report = overview.overview(now=NOW)
    assert report.active_plans == 3
    assert report.monthly_income == {"PLN": 4000, "EUR": 500}


def test_giving_per_month_is_split_one_time_and_recurring(db: Any) -> None:
    gift(datetime(2026, 10, 2, tzinfo=UTC), 1000)
    gift(datetime(2026, 10, 9, tzinfo=UTC), 2500, kind=GiftKind.RECURRING)
    gift(datetime(2024, 1, 1, tzinfo=UTC), 777)  # too old for a 12-month chart
    report = overview.overview(now=NOW, months=12)
    assert len(report.by_month) == 12 and report.by_month[-1][0] == "2026-11" and report.by_month[0][0] == "2025-12"
    assert ("2026-10", 1000, 2500) in report.by_month
    assert sum(one + rec for _, one, rec in report.by_month) == 3500
    assert len(overview.overview(now=NOW, months=24).by_month) == 24


def test_top_articles_rank_by_net_amount(db: Any) -> None:
    gift(datetime(2026, 9, 1, tzinfo=UTC), 1000, source_article="small")
    gift(datetime(2026, 9, 2, tzinfo=UTC), 5000, source_article="big")
    assert [slug for slug, _ in overview.overview(now=NOW).top_articles] == ["big", "small"]


def test_the_chart_geometry_fits_its_box() -> None:
    chart = overview.bar_chart([("2026-01", 100, 50), ("2026-02", 0, 0), ("2026-03", 300, 0)])
    tallest = max(bar["h_one"] + bar["h_rec"] for bar in chart["bars"])
    assert tallest == chart["baseline"]
    assert all(bar["y_rec"] >= 0 for bar in chart["bars"])


def test_the_overview_page_shows_the_figures_escaped(db: Any, client: Any) -> None:
    person = factories.supporter(name="<script>alert(1)</script>")
    factories.paid_gift(person, amount_minor=4200, amount_base_minor=4200)
    factories.sign_in(client, factories.staff("viewer"))
    page = client.get("/dashboard/").get_data(as_text=True)
    assert "PLN42.00" in page and "<svg" in page
    assert "<td>paid</td>" in page and "succeeded" not in page, "statuses read as on the gift pages"
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert client.get("/dashboard/?months=24").status_code == 200


def test_the_exports_page_is_for_those_who_may_export(db: Any, client: Any) -> None:
    factories.sign_in(client, factories.staff("viewer"))
    assert client.get("/dashboard/exports/").status_code == 403
    client.post("/logout")
    factories.sign_in(client, factories.staff("fundraiser"))
    assert client.get("/dashboard/exports/").status_code == 200
