"""Figures for the staff overview: giving this month and year against last year,
new supporters, recurring income, giving per month, top campaigns and articles.

All money is in the reporting currency (amount_base_minor), net of refunds;
gifts not yet converted are left out rather than guessed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select

from supporters.extensions import db
from supporters.giving import currency, totals
from supporters.models import (
    GIFT_COUNTED,
    GIFT_NET_BASE,
    Campaign,
    Gift,
    GiftKind,
    GivingTotal,
    PlanStatus,
    RecurringPlan,
    Supporter,
)


@dataclass
class Period:
    """Money and gift count over one stretch of time."""

    amount_minor: int = 0
    gifts: int = 0


@dataclass
class Overview:
    month: Period = field(default_factory=Period)
    month_last_year: Period = field(default_factory=Period)
    year: Period = field(default_factory=Period)
    year_last_year: Period = field(default_factory=Period)
    new_supporters: int = 0
    new_supporters_last_year: int = 0
    active_plans: int = 0
    #: monthly recurring income per currency, in minor units (yearly plans count 1/12)
    monthly_income: dict[str, int] = field(default_factory=dict)
    #: [(YYYY-MM, one-time, recurring)] oldest first
    by_month: list[tuple[str, int, int]] = field(default_factory=list)
    top_campaigns: list[tuple[str, int]] = field(default_factory=list)
    top_articles: list[tuple[str, int]] = field(default_factory=list)
    recent: list[Any] = field(default_factory=list)
    #: counted gifts these figures leave out until they are converted, per currency
    not_converted: list[currency.NotConverted] = field(default_factory=list)


def _year_ago(moment: datetime) -> datetime:
    try:
        return moment.replace(year=moment.year - 1)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year - 1, day=28)


def _partial_day(end: datetime) -> Period:
    """Counted gifts paid on end's UTC day before `end` (the totals hold whole days only)."""
    midnight = end.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    amount, count = db.session.execute(
        select(func.coalesce(func.sum(GIFT_NET_BASE), 0), func.count(Gift.id)).where(
            Gift.status.in_(GIFT_COUNTED), Gift.paid_at >= midnight, Gift.paid_at < end
        )
    ).one()
    return Period(int(amount or 0), int(count or 0))


def _new_supporters(start: datetime, end: datetime) -> int:
    return int(
        db.session.scalar(
            select(func.count(Supporter.id)).where(Supporter.first_gift_at >= start, Supporter.first_gift_at < end)
        )
        or 0
    )


def _months_back(now: datetime, months: int) -> list[str]:
    keys = []
    year, month = now.year, now.month
    for _ in range(months):
        keys.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return list(reversed(keys))


class _Days:
    """Counted giving per UTC day and kind, from the giving totals, from `first` on.

    With no end: an offline gift is dated noon UTC of the organisation's day, which
    east of UTC can be tomorrow in UTC; the chart counts it in its month at once.
    """

    def __init__(self, first: date) -> None:
        self.rows = db.session.execute(
            select(GivingTotal.period, GivingTotal.key, GivingTotal.amount_base_minor, GivingTotal.gifts).where(
                GivingTotal.dimension == "kind", GivingTotal.period >= first
            )
        ).all()

    def period(self, start: datetime, end: datetime) -> Period:
        """[start, end): whole days from the totals, and end's own day up to `end` from the gifts."""
        first, last = start.date(), end.astimezone(UTC).date()
        total = _partial_day(end)
        for day, _kind, amount, gifts in self.rows:
            if first <= day < last:
                total.amount_minor += amount
                total.gifts += gifts
        return total

    def by_month(self, keys: list[str]) -> list[tuple[str, int, int]]:
        split: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for day, kind, amount, _gifts in self.rows:
            split[f"{day.year:04d}-{day.month:02d}"][1 if kind == GiftKind.RECURRING.value else 0] += amount
        return [(key, split[key][0], split[key][1]) for key in keys]


def _top(dimension: str, since: date) -> list[tuple[str, int]]:
    """The five keys of `dimension` that raised most since the month of `since`."""
    raised = func.sum(GivingTotal.amount_base_minor)
    return [
        (key, int(amount))
        for key, amount in db.session.execute(
            select(GivingTotal.key, raised)
            .where(GivingTotal.dimension == dimension, GivingTotal.period >= since)
            .group_by(GivingTotal.key)
            .having(raised > 0)
            .order_by(raised.desc(), GivingTotal.key)
            .limit(5)
        )
    ]


def overview(now: datetime | None = None, months: int = 12) -> Overview:
    """Everything the overview page shows: a few small queries, whatever the number of gifts.

    Sums come from the giving totals (models/giving.py), kept per day; the day a
    period ends on is read from the gifts themselves, so "this year" and "the same
    time last year" end at the same moment.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    report = Overview()
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    year_start = month_start.replace(month=1)
    keys = _months_back(now, months)
    chart_start = datetime.strptime(keys[0], "%Y-%m").replace(tzinfo=UTC)
    days = _Days(min(chart_start, _year_ago(year_start)).date())
    report.month = days.period(month_start, now)
    report.month_last_year = days.period(_year_ago(month_start), _year_ago(now))
    report.year = days.period(year_start, now)
    report.year_last_year = days.period(_year_ago(year_start), _year_ago(now))
    report.by_month = days.by_month(keys)
    report.new_supporters = _new_supporters(month_start, now)
    report.new_supporters_last_year = _new_supporters(_year_ago(month_start), _year_ago(now))

    active = RecurringPlan.status == PlanStatus.ACTIVE
    report.active_plans = int(db.session.scalar(select(func.count()).select_from(RecurringPlan).where(active)) or 0)
    report.monthly_income = totals.monthly_income(active)

    twelve_months = datetime.strptime(_months_back(now, 12)[0], "%Y-%m").date()
    top_campaigns = _top("campaign", twelve_months)
    names = {
        row.id: row.name
        for row in db.session.execute(
            select(Campaign.id, Campaign.name).where(Campaign.id.in_([int(key) for key, _ in top_campaigns]))
        )
    }
    report.top_campaigns = [(names[int(key)], amount) for key, amount in top_campaigns if int(key) in names]
    report.top_articles = _top("article", twelve_months)
    report.not_converted = currency.not_converted()
    report.recent = list(
        db.session.execute(
            select(Gift, Supporter.name)
            .join(Supporter, Supporter.id == Gift.supporter_id)
            .where(Gift.paid_at.isnot(None))
            .order_by(Gift.paid_at.desc())
            .limit(10)
        ).all()
    )
    return report


def bar_chart(by_month: list[tuple[str, int, int]], width: int = 720, height: int = 240) -> dict[str, Any]:
    """Geometry of a stacked bar chart (one-time below, recurring on top), for an inline SVG.
    The template draws it; no JavaScript and no CDN."""
    top = max((one + rec for _, one, rec in by_month), default=0) or 1
    gap, left, bottom = 4, 8, 22
    slot = (width - left) / max(len(by_month), 1)
    bars = []
    for index, (key, one, rec) in enumerate(by_month):
        x = left + index * slot + gap / 2
        h_one = (height - bottom) * one / top
        h_rec = (height - bottom) * rec / top
        bars.append(
            {
                "key": key,
                "label": key[5:] if key[5:] != "01" else key[:4],
                "x": round(x, 1),
                "w": round(slot - gap, 1),
                "one": one,
                "rec": rec,
                "y_one": round(height - bottom - h_one, 1),
                "h_one": round(h_one, 1),
                "y_rec": round(height - bottom - h_one - h_rec, 1),
                "h_rec": round(h_rec, 1),
            }
        )
    return {"width": width, "height": height, "bars": bars, "baseline": height - bottom}
