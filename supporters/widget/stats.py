"""Widget counters: one row per campaign, article, variant and day, added to in place."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from supporters.extensions import db
from supporters.models import Campaign, WidgetStat

#: a row's key: campaign id, article ("" for the campaign's "elsewhere"), variant, day
Key = tuple[int, str, str, date]

COUNTERS = ("impressions", "clicks", "gifts", "amount_base_minor")


def _insert() -> Any:
    return postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert


def bump(campaign_id: int, article: str, variant: str, day: date, **by: int) -> None:
    """Add to the day's counters atomically (INSERT … ON CONFLICT DO UPDATE), so
    concurrent beacons never lose a count or collide on the unique key."""
    increments = {name: int(by.get(name, 0)) for name in COUNTERS}
    table = WidgetStat.__table__
    statement = _insert()(WidgetStat).values(
        campaign_id=campaign_id, article=article, variant=variant, day=day, **increments
    )
    statement = statement.on_conflict_do_update(
        index_elements=["campaign_id", "article", "variant", "day"],
        set_={name: table.c[name] + statement.excluded[name] for name in COUNTERS if increments[name]},
    )
    db.session.execute(statement)


#: keys per statement: PostgreSQL takes at most 65,535 parameters in one
_CHUNK = 1000


def add_counts(offered: Mapping[Key, tuple[int, int]]) -> dict[Key, int]:
    """Add (impressions, clicks) to each key's row of counters; flushes, never commits.
    Returns, per key, the clicks that could not be counted.

    The click rule holds in the batch: a day's row never has more clicks than
    impressions, the impressions of this batch included, so a click is counted only
    against an impression that is in the database or arrives with it. Rows of the
    batch that exist are locked first, in id order (one statement per chunk), so two
    processes writing at once wait for each other rather than pass the impressions
    between them; new rows are inserted with INSERT … ON CONFLICT, adding to the row
    another process inserted meanwhile. Keys of a campaign deleted since are dropped
    (their row would go with it).
    """
    row = WidgetStat.__table__.c
    keys = sorted(offered)
    live: set[int] = set()
    existing: dict[Key, tuple[int, int, int]] = {}
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        live.update(db.session.scalars(select(Campaign.id).where(Campaign.id.in_({key[0] for key in chunk}))))
        found = db.session.execute(
            select(row.id, row.campaign_id, row.article, row.variant, row.day, row.impressions, row.clicks)
            .where(tuple_(row.campaign_id, row.article, row.variant, row.day).in_(chunk))
            .order_by(row.id)
            .with_for_update()
        )
        for stat_id, campaign_id, article, variant, day, impressions, clicks in found:
            existing[(campaign_id, article, variant, day)] = (stat_id, impressions, clicks)
    updates: list[dict[str, int]] = []
    inserts: list[dict[str, Any]] = []
    uncounted: dict[Key, int] = {}
    for key in keys:
        if key[0] not in live:
            continue
        impressions, clicks = offered[key]
        stat_id, had_impressions, had_clicks = existing.get(key, (0, 0, 0))
        counted = max(0, min(clicks, had_impressions + impressions - had_clicks))
        if clicks > counted:
            uncounted[key] = clicks - counted
        if stat_id and (impressions or counted):
            updates.append({"stat_id": stat_id, "more_impressions": impressions, "more_clicks": counted})
        elif not stat_id and impressions:
            campaign_id, article, variant, day = key
            inserts.append(
                {
                    "campaign_id": campaign_id,
                    "article": article,
                    "variant": variant,
                    "day": day,
                    "impressions": impressions,
                    "clicks": counted,
                    "gifts": 0,
                    "amount_base_minor": 0,
                }
            )
    if updates:
        db.session.execute(
            update(cast(Table, WidgetStat.__table__))  # Core: an executemany by id, not the ORM's bulk update
            .where(row.id == bindparam("stat_id"))
            .values(
                impressions=row.impressions + bindparam("more_impressions"),
                clicks=row.clicks + bindparam("more_clicks"),
            ),
            updates,
        )
    for start in range(0, len(inserts), _CHUNK):
        statement = _insert()(WidgetStat).values(inserts[start : start + _CHUNK])
        statement = statement.on_conflict_do_update(
            index_elements=["campaign_id", "article", "variant", "day"],
            # this batch's clicks are no more than its impressions: the sum keeps the rule
            set_={name: row[name] + statement.excluded[name] for name in ("impressions", "clicks")},
        )
        db.session.execute(statement)
    return uncounted
