"""Figures for the staff overview, for a period staff choose: giving in it against the
same period a year before, new supporters, recurring income, giving per day, month or
year, top campaigns and articles.

All money is in the reporting currency (amount_base_minor), net of refunds;
gifts not yet converted are left out rather than guessed. Days, months and years are
the organisation's (its time zone, `lib.dates.org_timezone`), as on every other list.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from supporters.extensions import db
from supporters.giving import currency, totals
from supporters.lib import dates
from supporters.lib.money import minor_unit_exponent
from supporters.models import (
    GIFT_COUNTED,
    GIFT_NET_BASE,
    Article,
    Campaign,
    Gift,
    GiftKind,
    GivingTotal,
    PlanStatus,
    RecurringPlan,
    Supporter,
)

#: the periods offered, by their key in the address (?period=), and how they read
PERIODS = {
    "30d": _l("Last 30 days"),
    "3m": _l("3 months"),
    "12m": _l("12 months"),
    "24m": _l("24 months"),
    "year": _l("This year"),
    "custom": _l("From – to"),
}
DEFAULT_PERIOD = "12m"
#: a period up to this many days is drawn per day; up to MONTHLY_UP_TO months, per month; longer, per year
DAILY_UP_TO = 62
MONTHLY_UP_TO = 60


@dataclass(frozen=True)
class Span:
    """The period the overview shows: the organisation's days `first` to `last` (both
    included), as the moments [start, end) in UTC; `end` is now when `last` is today."""

    key: str
    first: date
    last: date
    start: datetime
    end: datetime

    @property
    def unit(self) -> str:
        """How the chart groups it: "day", "month" or "year"."""
        if (self.last - self.first).days < DAILY_UP_TO:
            return "day"
        months = (self.last.year - self.first.year) * 12 + self.last.month - self.first.month + 1
        return "month" if months <= MONTHLY_UP_TO else "year"

    def as_args(self) -> dict[str, str]:
        """The address of this period (for links that keep it)."""
        if self.key == "custom":
            return {"period": "custom", "from": self.first.isoformat(), "to": self.last.isoformat()}
        return {"period": self.key}


@dataclass
class Period:
    """Money and gift count over one stretch of time."""

    amount_minor: int = 0
    gifts: int = 0


@dataclass(frozen=True)
class Bucket:
    """One bar of the chart: the organisation's days `first` to `last`, one-time and recurring."""

    first: date
    last: date
    one_time: int
    recurring: int


@dataclass(frozen=True)
class TopArticle:
    """An article that raised money: its title and dashboard page, or only the slug the
    gifts carry when no article has it (any more)."""

    slug: str
    amount_minor: int
    title: str | None = None
    article_id: int | None = None


@dataclass
class Overview:
    span: Span
    period: Period = field(default_factory=Period)
    period_last_year: Period = field(default_factory=Period)
    new_supporters: int = 0
    new_supporters_last_year: int = 0
    active_plans: int = 0
    #: monthly recurring income per currency, in minor units (yearly plans count 1/12)
    monthly_income: dict[str, int] = field(default_factory=dict)
    #: the chart's bars, oldest first, per `span.unit`
    series: list[Bucket] = field(default_factory=list)
    #: the first days of the first and last months the top lists cover (they count whole months)
    top_months: tuple[date, date] | None = None
    top_campaigns: list[tuple[str, int]] = field(default_factory=list)
    top_articles: list[TopArticle] = field(default_factory=list)
    recent: list[Any] = field(default_factory=list)
    #: counted gifts these figures leave out until they are converted, per currency
    not_converted: list[currency.NotConverted] = field(default_factory=list)


# --- The period asked for --------------------------------------------------------------


def _month_start(day: date, back: int = 0) -> date:
    month = day.year * 12 + day.month - 1 - back
    return date(month // 12, month % 12 + 1, 1)


def _midnight(day: date) -> datetime:
    """The organisation's midnight starting `day`, in UTC."""
    return datetime.combine(day, time(), dates.org_timezone()).astimezone(UTC)


def span_of(key: str, now: datetime, first: date | None = None, last: date | None = None) -> Span:
    """The period `key` (one of PERIODS) ending today; "custom" is `first` to `last`,
    kept between the organisation's founding and today."""
    today = now.astimezone(dates.org_timezone()).date()
    if key == "custom":
        founded: date = current_app.config["SUPPORTERS_FOUNDED_ON"]
        last = max(min(last or today, today), founded)
        first = min(max(first or last - timedelta(days=29), founded), last)
    else:
        last = today
        first = {
            "30d": today - timedelta(days=29),
            "3m": _month_start(today, 2),
            "24m": _month_start(today, 23),
            "year": today.replace(month=1, day=1),
        }.get(key, _month_start(today, 11))
    end = min(_midnight(last + timedelta(days=1)), now.astimezone(UTC))
    return Span(key if key in PERIODS else DEFAULT_PERIOD, first, last, _midnight(first), end)


def read_period(args: Mapping[str, str], now: datetime | None = None) -> tuple[Span, list[str]]:
    """The period in the address (?period=, ?from=&to= for "custom", the old ?months=24),
    and notes on what could not be read (left out) or was typed backwards (swapped)."""
    now = now or datetime.now(UTC)
    notes: list[str] = []
    key = args.get("period") or ("24m" if args.get("months") == "24" else "")
    if not key and (args.get("from") or args.get("to")):
        key = "custom"
    if key not in PERIODS:
        key = DEFAULT_PERIOD
    if key != "custom":
        return span_of(key, now), notes
    typed: list[date | None] = []
    for name in ("from", "to"):
        raw = (args.get(name) or "").strip()
        try:
            typed.append(date.fromisoformat(raw) if raw else None)
        except ValueError:
            typed.append(None)
            notes.append(_("Ignored the date “%(value)s”: use a date like 2026-01-31.", value=raw[:40]))
    first, last, swapped = dates.in_order(typed[0], typed[1])
    if swapped:
        notes.append(dates.swapped_note())
    return span_of("custom", now, first, last), notes


# --- Sums from the giving totals, exact to the moment --------------------------------------


def _nearest_utc_midnight(moment: datetime) -> datetime:
    midnight = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight + timedelta(days=1) if moment - midnight >= timedelta(hours=12) else midnight


class _Ledger:
    """Counted giving (net amount, kind, count) between any moments, from the giving
    totals (kept per UTC day) and, for the hours between each moment and the UTC midnight
    nearest to it, from the gifts themselves: a few small reads, whatever the number of gifts.

    Sum [a, b) = totals of the UTC days [A, B) + gifts [a, A) - gifts [b, B), where A and B
    are the UTC midnights nearest a and b (a gap read backwards counts negative). For
    Warsaw the gaps are the hour or two between its midnight and UTC's.
    """

    def __init__(self, moments: list[datetime]) -> None:
        self.midnights = {moment.astimezone(UTC): _nearest_utc_midnight(moment) for moment in moments}
        days = sorted(m.date() for m in self.midnights.values())
        self.days = db.session.execute(
            select(GivingTotal.period, GivingTotal.key, GivingTotal.amount_base_minor, GivingTotal.gifts)
            .where(GivingTotal.dimension == "kind", GivingTotal.period >= days[0], GivingTotal.period < days[-1])
            .order_by(GivingTotal.period)
        ).all()
        self.day_keys = [row.period for row in self.days]
        gaps = sorted({(min(p, m), max(p, m)) for p, m in self.midnights.items() if p != m})
        self.gap_sums: dict[tuple[datetime, datetime], list[int]] = {gap: [0, 0, 0] for gap in gaps}
        # Each gap added up by the database (an index range each): at ten million gifts an
        # hour holds hundreds of them, and today so far thousands, too many to fetch.
        per_gap = [
            select(sa.literal(number).label("gap"), Gift.kind, func.sum(func.coalesce(GIFT_NET_BASE, 0)), func.count())
            .where(Gift.status.in_(GIFT_COUNTED), Gift.paid_at >= low, Gift.paid_at < high)
            .group_by(Gift.kind)
            for number, (low, high) in enumerate(gaps)
        ]
        if per_gap:
            for number, kind, net, gifts in db.session.execute(sa.union_all(*per_gap)):
                sums = self.gap_sums[gaps[number]]
                sums[1 if kind == GiftKind.RECURRING else 0] += int(net)
                sums[2] += gifts

    def _gap(self, point: datetime) -> list[int]:
        """[one-time, recurring, gifts] in [point, its midnight), negative when the midnight is earlier."""
        midnight = self.midnights[point]
        if point == midnight:
            return [0, 0, 0]
        low, high, sign = (point, midnight, 1) if point < midnight else (midnight, point, -1)
        return [sign * value for value in self.gap_sums[(low, high)]]

    def between(self, start: datetime, end: datetime) -> list[int]:
        """[one-time, recurring, gifts] of the counted gifts paid in [start, end)."""
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        first, last = self.midnights[start].date(), self.midnights[end].date()
        sums = self._gap(start)
        for day, kind, amount, gifts in self.days[bisect_left(self.day_keys, first) :]:
            if day >= last:
                break
            sums[1 if kind == GiftKind.RECURRING.value else 0] += amount
            sums[2] += gifts
        at_end = self._gap(end)
        return [total - gap for total, gap in zip(sums, at_end, strict=True)]

    def period(self, start: datetime, end: datetime) -> Period:
        one, rec, gifts = self.between(start, end)
        return Period(one + rec, gifts)


def _year_ago(moment: datetime) -> datetime:
    try:
        return moment.replace(year=moment.year - 1)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year - 1, day=28)


def _buckets(span: Span) -> list[tuple[date, date]]:
    """The chart's bars as (first day, last day) of the organisation, oldest first."""
    bars: list[tuple[date, date]] = []
    day = span.first
    while day <= span.last:
        if span.unit == "day":
            after = day + timedelta(days=1)
        elif span.unit == "month":
            after = _month_start(day, -1)
        else:
            after = date(day.year + 1, 1, 1)
        bars.append((day, min(after - timedelta(days=1), span.last)))
        day = after
    return bars


def _new_supporters(start: datetime, end: datetime) -> int:
    return int(
        db.session.scalar(
            select(func.count(Supporter.id)).where(Supporter.first_gift_at >= start, Supporter.first_gift_at < end)
        )
        or 0
    )


def _top(dimension: str, since: date, until: date) -> list[tuple[str, int]]:
    """The five keys of `dimension` that raised most in the months `since` to `until` (first days)."""
    raised = func.sum(GivingTotal.amount_base_minor)
    return [
        (key, int(amount))
        for key, amount in db.session.execute(
            select(GivingTotal.key, raised)
            .where(GivingTotal.dimension == dimension, GivingTotal.period >= since, GivingTotal.period <= until)
            .group_by(GivingTotal.key)
            .having(raised > 0)
            .order_by(raised.desc(), GivingTotal.key)
            .limit(5)
        )
    ]


def _top_articles(since: date, until: date) -> list[TopArticle]:
    ranked = _top("article", since, until)
    found = {
        row.slug: row
        for row in db.session.execute(
            select(Article.id, Article.slug, Article.title).where(Article.slug.in_([slug for slug, _ in ranked]))
        )
    }
    return [
        TopArticle(slug, amount, found[slug].title, found[slug].id) if slug in found else TopArticle(slug, amount)
        for slug, amount in ranked
    ]


def overview(span: Span | None = None, now: datetime | None = None) -> Overview:
    """Everything the overview page shows for `span` (by default the last 12 months): a
    few small queries, whatever the number of gifts.

    Sums come from the giving totals (models/giving.py), kept per UTC day, with the hours
    between the organisation's midnights and UTC's read from the gifts; a period ending
    today ends now, and "a year before" ends at the same moment a year ago. The chart's
    last bar holds all of today: an offline gift is dated noon UTC of the day it was
    received, which east of UTC can be later than now, and the chart shows it at once.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    span = span or span_of(DEFAULT_PERIOD, now)
    report = Overview(span)
    bars = _buckets(span)
    edges = [_midnight(first) for first, _ in bars] + [_midnight(span.last + timedelta(days=1))]
    ago = (_year_ago(span.start), _year_ago(span.end))
    ledger = _Ledger([*edges, span.end, *ago])
    report.period = ledger.period(span.start, span.end)
    report.period_last_year = ledger.period(*ago)
    report.series = [
        Bucket(first, last, *ledger.between(start, end)[:2])
        for (first, last), start, end in zip(bars, edges[:-1], edges[1:], strict=True)
    ]
    report.new_supporters = _new_supporters(span.start, span.end)
    report.new_supporters_last_year = _new_supporters(*ago)

    active = RecurringPlan.status == PlanStatus.ACTIVE
    report.active_plans = int(db.session.scalar(select(func.count()).select_from(RecurringPlan).where(active)) or 0)
    report.monthly_income = totals.monthly_income(active)

    report.top_months = (span.first.replace(day=1), span.last.replace(day=1))
    top_campaigns = _top("campaign", *report.top_months)
    names = {
        row.id: row.name
        for row in db.session.execute(
            select(Campaign.id, Campaign.name).where(Campaign.id.in_([int(key) for key, _ in top_campaigns]))
        )
    }
    report.top_campaigns = [(names[int(key)], amount) for key, amount in top_campaigns if int(key) in names]
    report.top_articles = _top_articles(*report.top_months)
    report.not_converted = currency.not_converted()
    report.recent = list(
        db.session.execute(
            select(Gift, Supporter.name)
            .join(Supporter, Supporter.id == Gift.supporter_id)
            .where(Gift.paid_at.isnot(None))
            .order_by(Gift.paid_at.desc(), Gift.id.desc())
            .limit(10)
        ).all()
    )
    return report


# --- The chart ---------------------------------------------------------------------------


def axis_step(top: int, unit: int, most: int = 5) -> int:
    """The round step of a value axis that reaches `top` in at most `most` steps: 1, 2, 2.5
    or 5 times a power of ten, never less than `unit` (one major unit: no ticks at 0.20 zł)."""
    power = unit
    while True:
        for candidate in (power, 2 * power, 5 * power // 2, 5 * power):
            if candidate % unit == 0 and candidate * most >= top:
                return candidate
        power *= 10


def bar_chart(series: list[Bucket], currency_code: str, height: int = 200) -> dict[str, Any]:
    """Geometry of a stacked bar chart (one-time below, recurring on top) for an inline SVG
    whose x is in percent (the bars stretch to the page's width, the text keeps its size)
    and whose y is in pixels, with a value axis of round steps. The template draws it; no
    JavaScript and no CDN."""
    highest = max((bar.one_time + bar.recurring for bar in series), default=0)
    step = axis_step(highest, 10 ** minor_unit_exponent(currency_code))
    steps = max(-(-highest // step), 1)
    top = step * steps
    slot = 100 / max(len(series), 1)
    every = -(-len(series) // 12)  # label at most 12 bars: they stay legible on a phone
    bars = []
    for index, bar in enumerate(series):
        h_one = height * bar.one_time / top
        h_rec = height * bar.recurring / top
        bars.append(
            {
                "bucket": bar,
                "x": round(index * slot + slot * 0.1, 3),
                "w": round(slot * 0.8, 3),
                "middle": round(index * slot + slot / 2, 3),
                "labelled": index % every == 0,
                # every other label gives way on a narrow screen (dashboard.css)
                "narrow_hides": index % (2 * every) != 0,
                "y_one": round(height - h_one, 1),
                "h_one": round(h_one, 1),
                "y_rec": round(height - h_one - h_rec, 1),
                "h_rec": round(h_rec, 1),
            }
        )
    ticks = [{"amount": step * n, "y": round(height - height * n / steps, 1)} for n in range(steps + 1)]
    return {"height": height, "bars": bars, "ticks": ticks}
