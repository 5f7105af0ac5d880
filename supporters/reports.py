"""Figures for the staff overview: giving this month and year against last year,
new supporters, recurring income, giving per month, top campaigns and articles.

All money is in the reporting currency (amount_base_minor), net of refunds;
gifts not yet converted are left out rather than guessed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select

from .extensions import db
from .models import GIFT_COUNTED, Campaign, Gift, GiftKind, PlanInterval, PlanStatus, RecurringPlan, Supporter

NET_BASE = Gift.amount_base_minor * (Gift.amount_minor - Gift.refunded_minor) // Gift.amount_minor


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


def _year_ago(moment: datetime) -> datetime:
    try:
        return moment.replace(year=moment.year - 1)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year - 1, day=28)


def _period(start: datetime, end: datetime) -> Period:
    amount, count = db.session.execute(
        select(func.coalesce(func.sum(NET_BASE), 0), func.count(Gift.id)).where(
            Gift.status.in_(GIFT_COUNTED), Gift.paid_at >= start, Gift.paid_at < end
        )
    ).one()
    return Period(int(amount or 0), int(count or 0))


def _new_supporters(start: datetime, end: datetime) -> int:
    return int(db.session.scalar(
        select(func.count(Supporter.id)).where(Supporter.first_gift_at >= start, Supporter.first_gift_at < end)
    ) or 0)


def month_key(column: Any) -> ColumnElement[str]:
    """YYYY-MM of a UTC timestamp column, on SQLite and PostgreSQL."""
    if db.session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM")
    return func.strftime("%Y-%m", column)


def _months_back(now: datetime, months: int) -> list[str]:
    keys = []
    year, month = now.year, now.month
    for _ in range(months):
        keys.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return list(reversed(keys))


def overview(now: datetime | None = None, months: int = 12) -> Overview:
    """Everything the overview page shows, in a handful of aggregate queries."""
    now = now or datetime.now(UTC)
    report = Overview()
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    year_start = month_start.replace(month=1)
    report.month = _period(month_start, now)
    report.month_last_year = _period(_year_ago(month_start), _year_ago(now))
    report.year = _period(year_start, now)
    report.year_last_year = _period(_year_ago(year_start), _year_ago(now))
    report.new_supporters = _new_supporters(month_start, now)
    report.new_supporters_last_year = _new_supporters(_year_ago(month_start), _year_ago(now))

    for currency, interval, count, total in db.session.execute(
        select(RecurringPlan.currency, RecurringPlan.interval, func.count(), func.sum(RecurringPlan.amount_minor))
        .where(RecurringPlan.status == PlanStatus.ACTIVE).group_by(RecurringPlan.currency, RecurringPlan.interval)
    ):
        report.active_plans += count
        monthly = total if interval is PlanInterval.MONTH else round(total / 12)
        report.monthly_income[currency] = report.monthly_income.get(currency, 0) + int(monthly)

    keys = _months_back(now, months)
    first = datetime.strptime(keys[0], "%Y-%m").replace(tzinfo=UTC)
    bucket = month_key(Gift.paid_at)
    split: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for key, kind, amount in db.session.execute(
        select(bucket, Gift.kind, func.coalesce(func.sum(NET_BASE), 0))
        .where(Gift.status.in_(GIFT_COUNTED), Gift.paid_at >= first)
        .group_by(bucket, Gift.kind)
    ):
        split[key][1 if kind is GiftKind.RECURRING else 0] += int(amount or 0)
    report.by_month = [(key, split[key][0], split[key][1]) for key in keys]

    twelve_months = datetime.strptime(_months_back(now, 12)[0], "%Y-%m").replace(tzinfo=UTC)
    recent_counted = and_(Gift.status.in_(GIFT_COUNTED), Gift.paid_at >= twelve_months)
    report.top_campaigns = [
        (name, int(amount)) for name, amount in db.session.execute(
            select(Campaign.name, func.sum(NET_BASE).label("raised")).join(Gift, Gift.campaign_id == Campaign.id)
            .where(recent_counted).group_by(Campaign.id, Campaign.name).order_by(func.sum(NET_BASE).desc()).limit(5)
        ) if amount
    ]
    report.top_articles = [
        (str(slug), int(amount)) for slug, amount in db.session.execute(
            select(Gift.source_article, func.sum(NET_BASE)).where(recent_counted, Gift.source_article.isnot(None))
            .group_by(Gift.source_article).order_by(func.sum(NET_BASE).desc()).limit(5)
        ) if amount
    ]
    report.recent = list(db.session.execute(
        select(Gift, Supporter.name).join(Supporter, Supporter.id == Gift.supporter_id)
        .where(Gift.paid_at.isnot(None)).order_by(Gift.paid_at.desc()).limit(10)
    ).all())
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
        bars.append({
            "key": key, "label": key[5:] if key[5:] != "01" else key[:4], "x": round(x, 1), "w": round(slot - gap, 1),
            "one": one, "rec": rec,
            "y_one": round(height - bottom - h_one, 1), "h_one": round(h_one, 1),
            "y_rec": round(height - bottom - h_one - h_rec, 1), "h_rec": round(h_rec, 1),
        })
    return {"width": width, "height": height, "bars": bars, "baseline": height - bottom}
