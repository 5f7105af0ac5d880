"""The money figures, one function each: a gift's net of refunds, monthly recurring
income, and a supporter's giving totals. (Conversion to the reporting currency is
giving/currency.py.)

Every page and aggregate that shows one of these calls the function here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func, select
from sqlalchemy.orm import lazyload

from supporters.extensions import db
from supporters.lib.sql import one_of
from supporters.models import (
    GIFT_COUNTED,
    GIFT_NET_BASE,
    Gift,
    PlanInterval,
    RecurringPlan,
    Supporter,
)

# --- Totals --------------------------------------------------------------------

#: a supporter's totals from their counted gifts: first and last paid, how many, net lifetime
_TOTALS: tuple[sa.ColumnElement[Any], ...] = (
    func.min(Gift.paid_at),
    func.max(Gift.paid_at),
    func.count(Gift.id),
    func.coalesce(func.sum(GIFT_NET_BASE), 0),
)
#: the supporter's columns that hold them, in that order
_COLUMNS = ("first_gift_at", "last_gift_at", "gift_count", "lifetime_total_minor")


def refresh_supporter_totals(supporter: Supporter) -> None:
    """Recompute a supporter's first/last gift dates, gift count and lifetime total.

    Only gifts whose money counts are included; the lifetime total is net of
    refunds, in the reporting currency, and leaves out gifts not yet converted.

    The supporter's row is locked first (PostgreSQL): two of their gifts paid at
    once then recompute in turn, the second seeing the first, instead of the later
    commit writing figures that leave the other gift out.

    The lock is FOR NO KEY UPDATE (what an UPDATE of these columns takes), not FOR
    UPDATE: a transaction that has updated one of the supporter's gifts twice already
    holds FOR KEY SHARE on the supporter (PostgreSQL checks the foreign key again
    when a row written by the same transaction is updated), and two such
    transactions each asking FOR UPDATE would wait for each other: a deadlock, and a
    500 for one of two events about two gifts of one donor arriving together.
    """
    db.session.flush()
    # Reloaded whole (the row as it is once ours), but not its tags: the lock is on the
    # supporter's row, and nothing here needs them (they load again if asked for).
    db.session.get(
        Supporter,
        supporter.id,
        with_for_update={"key_share": True},
        populate_existing=True,
        options=[lazyload(Supporter.tags)],
    )
    counted = (Gift.supporter_id == supporter.id) & Gift.status.in_(GIFT_COUNTED)
    first, last, count, total = db.session.execute(select(*_TOTALS).where(counted)).one()
    supporter.first_gift_at = first
    supporter.last_gift_at = last
    supporter.gift_count = count
    supporter.lifetime_total_minor = int(total or 0)
    db.session.flush()


def refresh_many_supporter_totals(supporter_ids: Iterable[int], batch: int = 1000) -> None:
    """`refresh_supporter_totals` for many supporters at once (an import): the same
    figures from the same gifts, a batch of supporters locked, then summed and written by
    one UPDATE, rather than a statement each. Supporters held in the session
    read their figures afresh."""
    ids = sorted(set(supporter_ids))
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        db.session.flush()
        # the same lock as refresh_supporter_totals, in id order (no two imports deadlock)
        lock = select(Supporter.id).where(one_of(Supporter.id, chunk)).order_by(Supporter.id)
        db.session.execute(lock.with_for_update(key_share=True)).all()
        # the figures of the batch summed in one pass over its gifts, and written by one
        # UPDATE … FROM (not a subquery per supporter: within an import's transaction the
        # planner's statistics still say the gift table is small)
        figures = (
            select(Gift.supporter_id, *(figure.label(name) for figure, name in zip(_TOTALS, _COLUMNS, strict=True)))
            .where(one_of(Gift.supporter_id, chunk), Gift.status.in_(GIFT_COUNTED))
            .group_by(Gift.supporter_id)
            .subquery()
        )
        given = set(
            db.session.scalars(
                sa.update(Supporter)
                .where(Supporter.id == figures.c.supporter_id)
                .values({name: figures.c[name] for name in _COLUMNS})
                .returning(Supporter.id)
                .execution_options(synchronize_session=False)
            )
        )
        if never := [supporter_id for supporter_id in chunk if supporter_id not in given]:
            db.session.execute(
                sa.update(Supporter)
                .where(one_of(Supporter.id, never))
                .values(first_gift_at=None, last_gift_at=None, gift_count=0, lifetime_total_minor=0)
                .execution_options(synchronize_session=False)
            )
        for supporter_id in chunk:
            held = db.session.identity_map.get(sa.inspect(Supporter).identity_key_from_primary_key((supporter_id,)))
            if held is not None:
                db.session.expire(held, list(_COLUMNS))


def monthly_minor(amount_minor: int, interval: PlanInterval) -> int:
    """What one plan brings in a month, in minor units: a yearly plan counts a twelfth of
    its amount, rounded half up, in integers (PLN 100.02 a year is PLN 8.34 a month)."""
    if interval is PlanInterval.MONTH:
        return amount_minor
    return (amount_minor + 6) // 12


def monthly_income(where: sa.ColumnElement[bool]) -> dict[str, int]:
    """What the plans matching `where` bring in a month, per currency, in minor units:
    the sum of each plan's `monthly_minor`. Currencies are never added together.

    The overview, the plans list and a plan's page all show this figure.
    """
    rows = db.session.execute(
        sa.select(RecurringPlan.currency, RecurringPlan.interval, RecurringPlan.amount_minor, sa.func.count())
        .where(where)
        .group_by(RecurringPlan.currency, RecurringPlan.interval, RecurringPlan.amount_minor)
    ).all()
    totals: dict[str, int] = {}
    for currency, interval, amount, count in rows:
        totals[currency] = totals.get(currency, 0) + monthly_minor(amount, interval) * count
    return dict(sorted(totals.items()))
