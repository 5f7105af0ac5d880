"""Widget counters: one row per campaign, article, variant and day, bumped in place."""

from __future__ import annotations

from datetime import date

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite

from supporters.extensions import db
from supporters.models import WidgetStat

COUNTERS = ("impressions", "clicks", "gifts", "amount_base_minor")


def bump(campaign_id: int, article: str, variant: str, day: date, **by: int) -> None:
    """Add to the day's counters atomically (INSERT … ON CONFLICT DO UPDATE), so
    concurrent beacons never lose a count or collide on the unique key."""
    increments = {name: int(by.get(name, 0)) for name in COUNTERS}
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = WidgetStat.__table__
    statement = insert(WidgetStat).values(
        campaign_id=campaign_id, article=article, variant=variant, day=day, **increments
    )
    statement = statement.on_conflict_do_update(
        index_elements=["campaign_id", "article", "variant", "day"],
        set_={name: table.c[name] + statement.excluded[name] for name in COUNTERS if increments[name]},
    )
    db.session.execute(statement)


def add_click(campaign_id: int, article: str, variant: str, day: date) -> None:
    """Count a click only while the day's row has more impressions than clicks: one
    conditional UPDATE, so parallel clicks cannot pass the impressions between
    them (PostgreSQL re-checks the condition on the row it waited for; SQLite
    writes one at a time)."""
    row = WidgetStat.__table__.c
    statement = (
        update(WidgetStat)
        .where(
            row.campaign_id == campaign_id,
            row.article == article,
            row.variant == variant,
            row.day == day,
            row.clicks < row.impressions,
        )
        .values(clicks=row.clicks + 1)
    )
    db.session.execute(statement)
