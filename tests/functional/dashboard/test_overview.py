"""The overview: figures that add up, in the reporting currency, from paid gifts only,
for the period staff choose, by the organisation's days (Europe/Warsaw in the tests)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from supporters.dashboard import overview
from supporters.extensions import db as _db
from supporters.models import (
    GIFT_COUNTED,
    GIFT_NET_BASE,
    Article,
    Gift,
    GiftKind,
    GiftMethod,
    GiftStatus,
    PlanStatus,
)
from tests import factories

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def gift(paid: datetime, amount: int, **fields: Any) -> Any:
    return factories.paid_gift(paid_at=paid, **{"amount_minor": amount, "amount_base_minor": amount, **fields})


def span(key: str, first: date | None = None, last: date | None = None) -> overview.Span:
    return overview.span_of(key, NOW, first, last)


def test_the_period_compares_with_the_same_period_a_year_before(db: Any) -> None:
    gift(datetime(2026, 11, 3, tzinfo=UTC), 5000)
    gift(datetime(2026, 2, 1, tzinfo=UTC), 2000)
    gift(datetime(2025, 11, 20, tzinfo=UTC), 1000)
    gift(datetime(2025, 11, 28, tzinfo=UTC), 99_900)  # after "today" a year before: not in the same period
    refunded = gift(datetime(2026, 11, 5, tzinfo=UTC), 3000)
    refunded.refunded_minor, refunded.status = 3000, GiftStatus.REFUNDED
    factories.gift(amount_minor=7000)  # pending
    this_year = overview.overview(span("year"), now=NOW)
    assert (this_year.period.amount_minor, this_year.period.gifts) == (7000, 2)
    assert this_year.period_last_year.amount_minor == 1000
    month = overview.overview(span("custom", date(2026, 11, 1), date(2026, 11, 30)), now=NOW)
    assert (month.period.amount_minor, month.period.gifts, month.period_last_year.amount_minor) == (5000, 1, 1000)


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
    report = overview.overview(span("12m"), now=NOW)
    months = [bucket.first for bucket in report.series]
    assert len(months) == 12 and months[0] == date(2025, 12, 1) and months[-1] == date(2026, 11, 1)
    assert report.series[-1].last == date(2026, 11, 27), "the last bar ends today"
    assert overview.Bucket(date(2026, 10, 1), date(2026, 10, 31), 1000, 2500) in report.series
    assert sum(b.one_time + b.recurring for b in report.series) == 3500
    assert len(overview.overview(span("24m"), now=NOW).series) == 24


@pytest.mark.parametrize(
    ("key", "first", "unit", "bars"),
    [
        ("30d", date(2026, 10, 29), "day", 30),
        ("3m", date(2026, 9, 1), "month", 3),
        ("12m", date(2025, 12, 1), "month", 12),
        ("year", date(2026, 1, 1), "month", 11),
    ],
)
def test_each_period_ends_today_and_is_drawn_in_fitting_bars(
    db: Any, key: str, first: date, unit: str, bars: int
) -> None:
    chosen = span(key)
    assert (chosen.first, chosen.last, chosen.unit) == (first, date(2026, 11, 27), unit)
    assert chosen.end == NOW, "a period ending today ends now, so a year before ends at the same moment"
    assert len(overview.overview(chosen, now=NOW).series) == bars


def test_a_gift_just_after_midnight_in_warsaw_counts_on_warsaws_day(db: Any) -> None:
    # 23:30 UTC on 31 October is 00:30 on 1 November in Warsaw (CET, UTC+1)
    gift(datetime(2026, 10, 31, 23, 30, tzinfo=UTC), 4000)
    gift(datetime(2026, 10, 31, 22, 30, tzinfo=UTC), 100)  # 23:30 on 31 October in Warsaw
    report = overview.overview(span("12m"), now=NOW)
    by_month = {bucket.first: bucket.one_time for bucket in report.series}
    assert (by_month[date(2026, 10, 1)], by_month[date(2026, 11, 1)]) == (100, 4000)
    first_of_november = overview.overview(span("custom", date(2026, 11, 1), date(2026, 11, 1)), now=NOW)
    assert first_of_november.period.amount_minor == 4000 and first_of_november.period.gifts == 1
    days = overview.overview(span("custom", date(2026, 10, 30), date(2026, 11, 2)), now=NOW).series
    assert [(b.first.day, b.one_time) for b in days] == [(30, 0), (31, 100), (1, 4000), (2, 0)]


def test_an_offline_gift_of_today_shows_in_the_chart_at_once(db: Any) -> None:
    """Offline gifts are dated noon UTC of the day received: at 9:00 in Warsaw that is later
    than now. The chart's bar for today holds it; the period's total, ending now, not yet."""
    early = datetime(2026, 11, 27, 8, tzinfo=UTC)
    gift(datetime(2026, 11, 27, 12, tzinfo=UTC), 2500, method=GiftMethod.BANK_TRANSFER)
    report = overview.overview(overview.span_of("30d", early), now=early)
    assert report.series[-1].one_time == 2500 and report.period.amount_minor == 0


def test_any_period_sums_exactly_what_the_gifts_of_its_days_sum(db: Any) -> None:
    """The totals are kept per UTC day; the hours between Warsaw's midnight and UTC's are
    read from the gifts. Both sides of every midnight, in summer and winter time."""
    moments = [
        datetime(2026, month, day, hour, minute, tzinfo=UTC)
        for month, day in [(3, 28), (3, 29), (3, 30), (7, 1), (7, 2), (10, 24), (10, 25), (10, 26)]
        for hour, minute in [(0, 0), (0, 30), (21, 59), (22, 0), (22, 30), (23, 0), (23, 59)]
    ]
    for number, moment in enumerate(moments, 1):
        gift(moment, 100 * number, kind=GiftKind.RECURRING if number % 3 == 0 else GiftKind.ONE_TIME)
    gift(datetime(2026, 7, 1, 23, tzinfo=UTC), 5000).refunded_minor = 2000
    gift(datetime(2026, 7, 1, 23, tzinfo=UTC), 700, amount_base_minor=None)  # counts as a gift, adds no money
    _db.session.flush()
    for first, last in [
        (date(2026, 3, 29), date(2026, 3, 29)),
        (date(2026, 3, 28), date(2026, 3, 30)),
        (date(2026, 7, 2), date(2026, 7, 2)),
        (date(2026, 7, 1), date(2026, 10, 25)),
        (date(2026, 10, 25), date(2026, 10, 26)),
        (date(2026, 10, 26), date(2026, 11, 27)),
    ]:
        chosen = span("custom", first, last)
        expected = _db.session.execute(
            select(func.coalesce(func.sum(GIFT_NET_BASE), 0), func.count(Gift.id)).where(
                Gift.status.in_(GIFT_COUNTED), Gift.paid_at >= chosen.start, Gift.paid_at < chosen.end
            )
        ).one()
        report = overview.overview(chosen, now=NOW)
        assert (report.period.amount_minor, report.period.gifts) == tuple(expected), (first, last)
        assert sum(b.one_time + b.recurring for b in report.series) == expected[0], (first, last)


def test_the_period_is_read_from_the_address_with_notes_for_what_was_not_understood(app: Any, db: Any) -> None:
    read = overview.read_period
    assert read({}, NOW)[0].key == "12m" and read({"months": "24"}, NOW)[0].key == "24m"
    assert read({"period": "nonsense"}, NOW) == (span("12m"), [])
    backwards, notes = read({"period": "custom", "from": "2026-05-31", "to": "2026-05-01"}, NOW)
    assert (backwards.first, backwards.last) == (date(2026, 5, 1), date(2026, 5, 31))
    assert notes == ["The dates were the wrong way round; they were swapped."]
    unreadable, notes = read({"from": "31.05.2026", "to": "2026-06-09"}, NOW)
    assert unreadable.key == "custom" and (unreadable.first, unreadable.last) == (date(2026, 5, 11), date(2026, 6, 9))
    assert notes == ["Ignored the date “31.05.2026”: use a date like 2026-01-31."]
    far, _ = read({"period": "custom", "from": "0001-01-01", "to": "9999-12-31"}, NOW)
    assert (far.first, far.last, far.end) == (app.config["SUPPORTERS_FOUNDED_ON"], date(2026, 11, 27), NOW)
    assert far.unit == "year"


def test_top_articles_rank_by_net_amount_and_read_by_their_titles(db: Any) -> None:
    article = Article(slug="big", title="The big story", published_on=date(2026, 9, 1))
    _db.session.add(article)
    _db.session.flush()
    gift(datetime(2026, 9, 1, tzinfo=UTC), 1000, source_article="small")
    gift(datetime(2026, 9, 2, tzinfo=UTC), 5000, source_article="big")
    tops = overview.overview(span("12m"), now=NOW).top_articles
    assert tops == [
        overview.TopArticle("big", 5000, "The big story", article.id),
        overview.TopArticle("small", 1000),
    ]
    assert overview.overview(span("30d"), now=NOW).top_articles == [], "the top lists follow the period's months"


@pytest.mark.parametrize(
    ("top", "unit", "step"),
    [
        (0, 100, 100),
        (100, 100, 100),
        (501, 100, 200),
        (1_200_00, 100, 250_00),
        (7_654_321_00, 100, 2_000_000_00),
        (3, 1, 1),
    ],
)
def test_the_value_axis_goes_in_round_steps_of_whole_units(top: int, unit: int, step: int) -> None:
    assert overview.axis_step(top, unit) == step


def test_the_chart_geometry_fits_its_box(db: Any) -> None:
    series = [
        overview.Bucket(date(2026, 1, 1), date(2026, 1, 31), 10000, 5000),
        overview.Bucket(date(2026, 2, 1), date(2026, 2, 28), 0, 0),
        overview.Bucket(date(2026, 3, 1), date(2026, 3, 31), 30000, 0),
    ]
    chart = overview.bar_chart(series, "PLN")
    tallest = max(bar["h_one"] + bar["h_rec"] for bar in chart["bars"])
    assert tallest <= chart["height"] and all(bar["y_rec"] >= 0 for bar in chart["bars"])
    assert [tick["amount"] for tick in chart["ticks"]] == [0, 10000, 20000, 30000]
    assert chart["ticks"][0]["y"] == chart["height"] and chart["ticks"][-1]["y"] == 0
    assert all(0 <= bar["x"] and bar["x"] + bar["w"] <= 100 for bar in chart["bars"])


def test_the_overview_page_shows_the_figures_escaped(db: Any, client: Any) -> None:
    person = factories.supporter(name="<script>alert(1)</script>")
    factories.paid_gift(person, amount_minor=4200, amount_base_minor=4200)
    factories.sign_in(client, factories.staff("viewer"))
    page = client.get("/dashboard/").get_data(as_text=True)
    assert '<span class="money">PLN42.00</span>' in page and "<svg" in page
    assert "<td>paid</td>" in page and "succeeded" not in page, "statuses read as on the gift pages"
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    for period in overview.PERIODS:
        assert client.get(f"/dashboard/?period={period}").status_code == 200
    assert client.get("/dashboard/?months=24").status_code == 200


def test_the_page_names_months_in_the_readers_language(db: Any, client: Any) -> None:
    gift(datetime(2026, 1, 15, tzinfo=UTC), 123_456_700)
    factories.sign_in(client, factories.staff("viewer"))
    query = "period=custom&from=2025-12-01&to=2026-02-28"
    english = client.get(f"/dashboard/?{query}&lang=en").get_data(as_text=True)
    assert "<td>Jan 2026</td>" in english and ">Jan</text>" in english and "<td>2026-01" not in english
    polish = client.get(f"/dashboard/?{query}&lang=pl").get_data(as_text=True)
    assert "<td>sty 2026</td>" in polish and ">sty</text>" in polish
    assert '<span class="money">1\xa0234\xa0567,00\xa0zł</span>' in polish
    assert re.search(r">\d+(,\d+)?\xa0mln\xa0zł</text>", polish), "the value axis is labelled in round amounts"


def test_the_page_links_top_articles_by_title(db: Any, client: Any) -> None:
    article = Article(slug="baltic-2026", title="Baltic <cod>", published_on=date(2026, 1, 1))
    _db.session.add(article)
    _db.session.flush()
    factories.paid_gift(amount_minor=900, amount_base_minor=900, source_article="baltic-2026")
    factories.paid_gift(amount_minor=800, amount_base_minor=800, source_article="gone-slug")
    factories.sign_in(client, factories.staff("viewer"))
    page = client.get("/dashboard/").get_data(as_text=True)
    assert f'<a href="/dashboard/articles/{article.id}"><bdi>Baltic &lt;cod&gt;</bdi></a>' in page
    assert '<bdi class="adm-slug">gone-slug</bdi>' in page, "a slug no article has any more is shown as it is"


def test_recent_gifts_show_the_day_in_the_organisations_time_zone(db: Any, client: Any) -> None:
    yesterday_utc = datetime.now(UTC).replace(hour=23, minute=30, second=0, microsecond=0) - timedelta(days=1)
    factories.paid_gift(paid_at=yesterday_utc, amount_minor=100, amount_base_minor=100)
    factories.sign_in(client, factories.staff("viewer"))
    page = client.get("/dashboard/?lang=en").get_data(as_text=True)
    warsaw_day = (yesterday_utc + timedelta(days=1)).date()
    assert (
        f'<time datetime="{yesterday_utc.isoformat()}">{warsaw_day:%b} {warsaw_day.day}, {warsaw_day.year}</time>'
        in page
    )


def test_the_exports_page_is_for_those_who_may_export(db: Any, client: Any) -> None:
    factories.sign_in(client, factories.staff("viewer"))
    assert client.get("/dashboard/exports/").status_code == 403
    client.post("/logout")
    factories.sign_in(client, factories.staff("fundraiser"))
    assert client.get("/dashboard/exports/").status_code == 200
