"""Widget counters: one row per campaign, article, variant and day, bumped in place."""

from __future__ import annotations

from datetime import date

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
