"""Finding supporters: the dashboard's list (search, filters, sorts, pages) and its
CSV export, built from one set of conditions so both always agree on what "the
current filters" mean."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, raiseload

from supporters.extensions import db
from supporters.lib import audit
from supporters.lib.audit import Actor
from supporters.lib.exporting import iso
from supporters.lib.money import minor_unit_exponent
from supporters.lib.paging import count_up_to
from supporters.models import (
    GIFT_COUNTED,
    Gift,
    PlanStatus,
    RecurringPlan,
    Supporter,
    SupporterSearchKey,
    SupporterTag,
    normalise_email,
    prefix_range,
    sort_key,
)
from supporters.people import consent

#: what the list may be ordered by: the indexed aggregate columns of supporter
SORTS: dict[str, InstrumentedAttribute[Any]] = {
    "last_gift": Supporter.last_gift_at,
    "total": Supporter.lifetime_total_minor,
    "name": Supporter.name_sort,
}
#: the direction each sort starts in when none is asked for
DEFAULT_DESCENDING = {"last_gift": True, "total": True, "name": False}


# --- Finding supporters ---------------------------------------------------------


@dataclass(frozen=True)
class SupporterFilters:
    """What the supporters list is narrowed to and ordered by; every value already valid."""

    #: search text: a prefix of the name, of any word of it (either half of a double-barrelled
    #: surname), of the e-mail, or of the e-mail's domain
    q: str = ""
    #: only supporters with an active recurring plan
    recurring_active: bool = False
    #: only supporters with a counted gift paid on or after / on or before these days
    gave_from: date | None = None
    gave_to: date | None = None
    #: the days above are days in this time zone (the organisation's)
    timezone: tzinfo = UTC
    #: ISO 3166-1 alpha-2, upper case
    country: str | None = None
    tag: str | None = None
    #: True: the newest newsletter decision is a grant; False: it is not (or there is none)
    newsletter: bool | None = None
    sort: str = "last_gift"
    descending: bool = True

    def as_args(self) -> dict[str, str]:
        """The filters as query-string arguments (only those in force), for links and the audit log."""
        args: dict[str, str] = {}
        if self.q:
            args["q"] = self.q
        if self.recurring_active:
            args["recurring"] = "active"
        if self.gave_from:
            args["gave_from"] = self.gave_from.isoformat()
        if self.gave_to:
            args["gave_to"] = self.gave_to.isoformat()
        if self.country:
            args["country"] = self.country
        if self.tag:
            args["tag"] = self.tag
        if self.newsletter is not None:
            args["newsletter"] = "yes" if self.newsletter else "no"
        if self.sort != "last_gift" or not self.descending:
            args["sort"] = self.sort
            args["dir"] = "desc" if self.descending else "asc"
        return args


def _start_of(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


def _search_prefixes(q: str) -> list[str]:
    """What the search text may start a key with: the name as sorted (no case, no accents)
    and the e-mail as stored, so "lukasz" also finds lukasz.zak@… and "Łukasz" Łukasz Żak;
    a single word is also tried as the start of an e-mail domain, so "example.org" finds
    everyone @example.org (as "@example.org" does, being a key's start)."""
    typed = [sort_key(q), normalise_email(q)]
    if " " not in q and "@" not in q:
        typed.append("@" + normalise_email(q))
    return sorted({prefix for prefix in typed if prefix})


def _key_starts_with(prefixes: list[str]) -> ColumnElement[bool]:
    """A search key (models.search_keys) starting with one of `prefixes`: index ranges."""
    ranges = []
    for prefix in prefixes:
        low, high = prefix_range(prefix)
        ranges.append(
            and_(SupporterSearchKey.key >= low, SupporterSearchKey.key < high)
            if high
            else SupporterSearchKey.key >= low
        )
    return or_(*ranges)


def filter_conditions(filters: SupporterFilters) -> list[ColumnElement[bool]]:
    """The WHERE conditions of `filters`, each answered through an index. Supporters
    merged into another (tombstones, people/merging.py) are never listed."""
    conditions: list[ColumnElement[bool]] = [Supporter.merged_into_id.is_(None)]
    prefixes = _search_prefixes(filters.q) if filters.q else []
    if prefixes:
        conditions.append(Supporter.id.in_(select(SupporterSearchKey.supporter_id).where(_key_starts_with(prefixes))))
    # Each filter on related rows is an uncorrelated IN: the database reads the
    # matching plans or tags once through their own index, rather than probing
    # them once per supporter.
    if filters.recurring_active:
        conditions.append(
            Supporter.id.in_(select(RecurringPlan.supporter_id).where(RecurringPlan.status == PlanStatus.ACTIVE))
        )
    if filters.gave_from or filters.gave_to:
        # first_gift_at and last_gift_at are the first and last counted payment, so
        # they answer "gave on or after" and "gave before" alone; a period with both
        # ends also needs a counted gift inside it.
        start = _start_of(filters.gave_from, filters.timezone) if filters.gave_from else None
        end = _start_of(filters.gave_to + timedelta(days=1), filters.timezone) if filters.gave_to else None
        if start:
            conditions.append(Supporter.last_gift_at >= start)
        if end:
            conditions.append(Supporter.first_gift_at < end)
        if start and end:
            conditions.append(
                Supporter.id.in_(
                    select(Gift.supporter_id).where(
                        Gift.status.in_(GIFT_COUNTED), Gift.paid_at >= start, Gift.paid_at < end
                    )
                )
            )
    if filters.country:
        conditions.append(Supporter.country == filters.country)
    if filters.tag:
        conditions.append(
            Supporter.id.in_(
                select(SupporterTag.supporter_id).where(func.lower(SupporterTag.tag) == func.lower(filters.tag))
            )
        )
    if filters.newsletter is not None:
        conditions.append(Supporter.newsletter.is_(filters.newsletter))
    return conditions


def supporter_query(filters: SupporterFilters) -> Select[Supporter]:
    """Supporters matching `filters` in their order (nulls last; id breaks ties, so pages are stable)."""
    column = SORTS[filters.sort]
    first = column.desc() if filters.descending else column.asc()
    if filters.sort == "last_gift":  # the only sort column that may be empty
        first = first.nulls_last()
    order = [first, Supporter.id.desc() if filters.descending else Supporter.id.asc()]
    return select(Supporter).where(*filter_conditions(filters)).order_by(*order)


def supporter_page(filters: SupporterFilters, limit: int, offset: int) -> list[Supporter]:
    """One page of the list: the page's ids first (read from the sort's index alone, however
    deep the page), then just those supporters. Their tags are not loaded."""
    ids = list(
        db.session.execute(
            supporter_query(filters).with_only_columns(Supporter.id).limit(limit).offset(offset)
        ).scalars()
    )
    if not ids:
        return []
    found = {
        row.id: row
        for row in db.session.execute(
            select(Supporter).where(Supporter.id.in_(ids)).options(raiseload(Supporter.tags))
        ).scalars()
    }
    return [found[supporter_id] for supporter_id in ids if supporter_id in found]


def count_supporters(filters: SupporterFilters) -> int:
    """How many supporters match `filters`: the list's own conditions, so a merged-away
    supporter (whose search keys stay) is never counted."""
    return int(db.session.execute(select(func.count(Supporter.id)).where(*filter_conditions(filters))).scalar_one())


def count_supporters_up_to(filters: SupporterFilters, cap: int) -> int | None:
    """How many supporters match `filters` when they are at most `cap`, else None (the
    list's own conditions, as count_supporters; the database stops after cap + 1)."""
    return count_up_to(select(Supporter.id).where(*filter_conditions(filters)), cap)


def tags_in_use(limit: int = 200) -> list[str]:
    """The first `limit` tags in use, each once, in order: read from the tag index one tag
    at a time (the next tag after the last one found), so a few dozen tags on a million
    supporters are a few dozen index look-ups, not a read of every supporter's tags."""
    found = select(func.min(SupporterTag.tag).label("tag")).cte("found", recursive=True)
    following = (
        select(SupporterTag.tag).where(SupporterTag.tag > found.c.tag).order_by(SupporterTag.tag).limit(1)
    ).scalar_subquery()
    found = found.union_all(select(following).where(found.c.tag.is_not(None)))
    return list(db.session.execute(select(found.c.tag).where(found.c.tag.is_not(None)).limit(limit)).scalars())


def with_active_plan(supporter_ids: Sequence[int]) -> set[int]:
    """Which of these supporters have an active recurring plan (one query)."""
    if not supporter_ids:
        return set()
    return set(
        db.session.execute(
            select(RecurringPlan.supporter_id)
            .where(RecurringPlan.supporter_id.in_(supporter_ids), RecurringPlan.status == PlanStatus.ACTIVE)
            .distinct()
        ).scalars()
    )


# --- Exporting them -------------------------------------------------------------

EXPORT_COLUMNS = (
    "id",
    "name",
    "email",
    "country",
    "language",
    "gift_count",
    "lifetime_total",
    "first_gift_at_utc",
    "last_gift_at_utc",
    "newsletter",
    "tags",
    "created_at_utc",
    # for the foundation's newsletter tool: its List-Unsubscribe header (mail/unsubscribe.py)
    "unsubscribe_url",
)
EXPORT_BATCH = 1000


def export_supporters(
    actor: Actor | None, filters: SupporterFilters, *, ignored: list[str], bom: bool
) -> Iterator[tuple[Any, ...]]:
    """The export of the supporters matching `filters`, audited before any row is read
    (the request commits the audit row before the first row leaves)."""
    audit.record(
        actor, "supporters.export", filters=filters.as_args(), ignored=ignored, rows=count_supporters(filters), bom=bom
    )
    return export_rows(filters, current_app.config["SUPPORTERS_BASE_CURRENCY"])


def export_rows(filters: SupporterFilters, base_currency: str) -> Iterator[tuple[Any, ...]]:
    """The supporters matching `filters`, in order, as EXPORT_COLUMNS rows.

    Rows are read a batch at a time (plain columns, no ORM objects) with one more
    query per batch for its tags, so memory stays flat however many there are.
    An erased supporter's personal fields are empty; the lifetime total is a
    decimal in `base_currency` units, timestamps are ISO 8601 in UTC (`lib.exporting.iso`).
    """
    statement = (
        supporter_query(filters)
        .with_only_columns(
            Supporter.id,
            Supporter.name,
            Supporter.email,
            Supporter.country,
            Supporter.language,
            Supporter.gift_count,
            Supporter.lifetime_total_minor,
            Supporter.first_gift_at,
            Supporter.last_gift_at,
            Supporter.newsletter,
            Supporter.created_at,
            Supporter.anonymised_at,
            Supporter.email_normalised,
        )
        .execution_options(yield_per=EXPORT_BATCH)
    )
    exponent = minor_unit_exponent(base_currency)
    for batch in db.session.execute(statement).partitions():
        tags: dict[int, list[str]] = {}
        for supporter_id, tag in db.session.execute(
            select(SupporterTag.supporter_id, SupporterTag.tag).where(
                SupporterTag.supporter_id.in_([row.id for row in batch])
            )
        ):
            tags.setdefault(supporter_id, []).append(tag)
        for row in batch:
            common = (
                row.gift_count,
                Decimal(row.lifetime_total_minor).scaleb(-exponent),
                iso(row.first_gift_at),
                iso(row.last_gift_at),
            )
            if row.anonymised_at is not None:
                yield (row.id, "", "", "", "", *common, "", "", iso(row.created_at), "")
            else:
                yield (
                    row.id,
                    row.name,
                    row.email,
                    row.country or "",
                    row.language,
                    *common,
                    "yes" if row.newsletter else "no",
                    ", ".join(sorted(tags.get(row.id, []), key=str.casefold)),
                    iso(row.created_at),
                    consent.unsubscribe_url(row.id, row.email_normalised) if row.newsletter else "",
                )
