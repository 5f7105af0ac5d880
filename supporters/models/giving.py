"""Running totals of counted giving, kept in step with the gifts in the same transaction.

The staff overview compares this month and year with last year, draws giving per
month and ranks campaigns and articles. Summing a million gifts for that on every
visit takes seconds; these totals make it a read of a few hundred small rows.

Each gift whose money counts (GIFT_COUNTED, with a paid_at) contributes its net
amount in the reporting currency and a count of one to three rows:

- ("kind", the UTC day it was paid, "one_time" | "recurring")
- ("campaign", the first day of that month, the campaign id), if it has a campaign
- ("article", the first day of that month, the article slug), if it came from one

Flush listeners work out, in the same transaction, for every gift added, changed
or deleted in the flush, its contribution before (read from its row, locked) and
after (read back from its row). The differences are collected in the session and
added once, at commit, with an atomic upsert (so concurrent transactions add up
rather than overwrite each other). Writing them at commit rather than at each flush
matters under load: every payment of a day adds to that day's one row, and the
upsert's row lock lasts until the transaction ends. Taken in the first flush, it made
each payment wait for the whole of the one before it (receipt, counters, commit);
taken at commit, it is held for the commit alone (docs/benchmarks.md, "Webhooks at
1,000,000 gifts").

What is collected follows the transaction: a savepoint rolled back forgets what was
collected inside it, a rollback forgets all. Anything in the same transaction that
reads or writes these rows sees them as if the differences were written at once: an
ORM statement on `GivingTotal` (the overview's reads) and `stored_totals()` write
what is collected first. (SQL written by hand in that transaction would not; none is.)

Nothing else writes these rows, except `rebuild()`, which recomputes them all from
the gifts (`flask derived rebuild`, after data was changed outside the app).
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, SessionTransaction, mapped_column
from sqlalchemy.sql.util import find_tables

from supporters.models.base import Base
from supporters.models.gift import GIFT_COUNTED, Gift, net_base

#: the gift's fields a contribution is made of
FIELDS = (
    "status",
    "paid_at",
    "kind",
    "campaign_id",
    "source_article",
    "amount_minor",
    "refunded_minor",
    "amount_base_minor",
)

Key = tuple[str, date, str]
Deltas = dict[Key, list[int]]

#: session.info: the differences flushed in this transaction and not yet written, {key: [amount, count]}
PENDING = "giving_total_pending"
#: session.info: for each savepoint open, what was pending when it began (restored if it rolls back)
AT_SAVEPOINT = "giving_total_at_savepoint"
#: session.info: set once the commit has written what was pending; later flushes write at once
COMMITTING = "giving_total_committing"
#: connection.info: the sessions with differences pending on this connection, for `stored_totals()`
SESSIONS = "giving_total_sessions"
#: session.info: the connection.info its session is named in (to leave it when the transaction ends)
NAMED_IN = "giving_total_named_in"


class GivingTotal(Base):
    """Net counted giving and gift count per day and kind, or per month and campaign or article."""

    __tablename__ = "giving_total"
    __table_args__ = (sa.CheckConstraint("dimension IN ('kind', 'campaign', 'article')", name="dimension_known"),)

    #: what the row is a total of: "kind" (per day), "campaign" or "article" (per month)
    dimension: Mapped[str] = mapped_column(sa.String(8), primary_key=True, info={"personal": False})
    #: the UTC day (kind) or the first day of the UTC month (campaign, article)
    period: Mapped[date] = mapped_column(sa.Date, primary_key=True, info={"personal": False})
    #: the gift kind, the campaign id, or the article slug
    key: Mapped[str] = mapped_column(sa.String(200), primary_key=True, info={"personal": False})
    #: net of refunds, in the reporting currency; gifts not yet converted add nothing here
    amount_base_minor: Mapped[int] = mapped_column(sa.BigInteger, default=0, info={"personal": False})
    #: how many counted gifts, converted or not
    gifts: Mapped[int] = mapped_column(default=0, info={"personal": False})


def contribution(values: dict[str, Any]) -> Counter[Key] | None:
    """What a gift with these field values adds to the totals: {key: net amount}, or None
    if its money does not count. (Counts are one per key.)"""
    paid_at: datetime | None = values["paid_at"]
    if values["status"] not in GIFT_COUNTED or paid_at is None:
        return None
    base, amount = values["amount_base_minor"], values["amount_minor"]
    net = net_base(base, amount, values["refunded_minor"]) if base is not None else 0
    day = paid_at.astimezone(UTC).date()
    month = day.replace(day=1)
    keys: Counter[Key] = Counter({("kind", day, str(getattr(values["kind"], "value", values["kind"]))): net})
    if values["campaign_id"] is not None:
        keys[("campaign", month, str(values["campaign_id"]))] = net
    if values["source_article"]:
        keys[("article", month, str(values["source_article"]))] = net
    return keys


def _add(deltas: Deltas, keys: Counter[Key] | None, sign: int) -> None:
    for key, net in (keys or {}).items():
        entry = deltas.setdefault(key, [0, 0])
        entry[0] += sign * net
        entry[1] += sign


def apply_deltas(connection: sa.Connection, deltas: Deltas) -> None:
    """Add each (amount, count) to its row, creating rows as needed, in one statement."""
    rows = [
        {"dimension": d, "period": p, "key": k, "amount_base_minor": amount, "gifts": count}
        for (d, p, k), (amount, count) in sorted(deltas.items())
        if amount or count
    ]
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    table = GivingTotal.__table__
    for start in range(0, len(rows), 2000):  # 5 parameters a row; PostgreSQL takes 65,535 a statement
        statement = dialect.insert(table).values(rows[start : start + 2000])
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=[table.c.dimension, table.c.period, table.c.key],
                set_={
                    "amount_base_minor": table.c.amount_base_minor + statement.excluded.amount_base_minor,
                    "gifts": table.c.gifts + statement.excluded.gifts,
                },
            )
        )


def _contributions(session: Session, gift_ids: set[int], *, lock: bool = False) -> dict[int, Counter[Key] | None]:
    """What these gifts contribute as their rows now say (locked first, if asked)."""
    columns = [getattr(Gift, name) for name in FIELDS]
    statement = sa.select(Gift.id, *columns).where(Gift.id.in_(sorted(gift_ids))).order_by(Gift.id)
    if lock:
        # FOR NO KEY UPDATE, as the flush's UPDATE will take: it lets rows that refer to
        # the gift (its events, its e-mails) be written meanwhile, as FOR UPDATE would not.
        statement = statement.with_for_update(key_share=True)
    return {
        row.id: contribution(dict(zip(FIELDS, row[1:], strict=True))) for row in session.connection().execute(statement)
    }


def _counts(gift: Gift) -> bool:
    """Whether the flush will write a column the gift's contribution is made of. One that
    writes none of them (a receipt number, a Stripe id) leaves its row's contribution as
    it was, so it has nothing to read, lock or add."""
    attributes = sa.inspect(gift).attrs
    return any(attributes[name].history.has_changes() for name in FIELDS)


@event.listens_for(Session, "before_flush")
def _read_before(session: Session, _context: Any, _instances: Any) -> None:
    """What the gifts about to change or go contribute now, read from their locked rows.

    From the rows, not from the session's memory of them: an attribute's history
    cannot tell "it was None" from "it was never loaded", and the object may have been
    read before another transaction changed the row (a refund's handler reads the gift
    while its payment commits). Locked (PostgreSQL; SQLite lets one writer in at a
    time), so no other transaction can change the row between this read and the
    flush's own write: the difference is the flush's alone.
    """
    changing = {gift.id for gift in session.dirty if isinstance(gift, Gift) and gift.id is not None and _counts(gift)}
    going = {gift.id for gift in session.deleted if isinstance(gift, Gift) and gift.id is not None}
    before = _contributions(session, changing | going, lock=True) if changing or going else {}
    session.info["giving_before"] = (changing, before)


@event.listens_for(Session, "after_flush")
def _keep_totals(session: Session, _context: Any) -> None:
    """Add the difference each gift made: after the flush, when new gifts have their
    column defaults. A changed gift's contribution after is read back from its row,
    as written (the columns the flush did not write are the row's, not the object's)."""
    changing, before = session.info.pop("giving_before", (set(), {}))
    deltas: Deltas = {}
    for gift in session.new:
        if isinstance(gift, Gift):
            _add(deltas, contribution({name: getattr(gift, name) for name in FIELDS}), +1)
    after = _contributions(session, changing) if changing else {}
    for gift_id, was in before.items():
        _add(deltas, was, -1)
        _add(deltas, after.get(gift_id), +1)
    _collect(session, deltas)


def count_inserted(session: Session, gifts: Iterable[dict[str, Any]]) -> None:
    """What gifts written by a bulk INSERT (no unit of work, so no flush listener sees
    them) add to the totals, given the column values inserted: collected as a flush
    collects new gifts', and written at commit the same way."""
    deltas: Deltas = {}
    for values in gifts:
        _add(deltas, contribution(values), +1)
    _collect(session, deltas)


def _collect(session: Session, deltas: Deltas) -> None:
    if not deltas:
        return
    if session.info.get(COMMITTING):  # a flush after the commit wrote what was pending
        apply_deltas(session.connection(), deltas)
        return
    pending: Deltas = session.info.setdefault(PENDING, {})
    for key, (amount, count) in deltas.items():
        entry = pending.setdefault(key, [0, 0])
        entry[0] += amount
        entry[1] += count
    if NAMED_IN not in session.info:
        named_in = session.info[NAMED_IN] = session.connection().info
        named_in.setdefault(SESSIONS, weakref.WeakSet()).add(session)


def write_pending(session: Session) -> None:
    """Add what this session's transaction has collected to the rows now (it is then
    held locked until the transaction ends)."""
    pending: Deltas | None = session.info.pop(PENDING, None)
    if pending:
        apply_deltas(session.connection(), pending)


@event.listens_for(Session, "before_commit")
def _write_at_commit(session: Session) -> None:
    """The transaction's differences, written as it commits: after its last flush, so
    the day's row is locked only for the commit itself. (A savepoint's commit writes
    nothing: what it collected is the transaction's, kept for the transaction's commit.)"""
    if session.get_nested_transaction() is not None:
        return
    session.flush()
    write_pending(session)
    session.info[COMMITTING] = True


@event.listens_for(Session, "after_transaction_create")
def _note_savepoint(session: Session, transaction: SessionTransaction) -> None:
    """Remember what was pending when a savepoint began: what it rolls back to."""
    if transaction.nested:
        pending: Deltas = session.info.get(PENDING, {})
        session.info.setdefault(AT_SAVEPOINT, {})[transaction] = {key: list(entry) for key, entry in pending.items()}


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    """What was collected since the savepoint that rolled back (or in the whole
    transaction) never happened: the database has forgotten the gifts' changes too."""
    savepoint = session.get_nested_transaction()  # the savepoint that rolled back, if it was one
    if savepoint is None:
        session.info.pop(PENDING, None)
    else:
        session.info[PENDING] = session.info.get(AT_SAVEPOINT, {}).get(savepoint, {})


@event.listens_for(Session, "after_transaction_end")
def _end(session: Session, transaction: SessionTransaction) -> None:
    session.info.get(AT_SAVEPOINT, {}).pop(transaction, None)
    if transaction.parent is None:  # the transaction is over: committed (written) or rolled back
        for name in (PENDING, AT_SAVEPOINT, COMMITTING):
            session.info.pop(name, None)
        named_in = session.info.pop(NAMED_IN, None)
        if named_in is not None:
            named_in.get(SESSIONS, weakref.WeakSet()).discard(session)


@event.listens_for(Session, "do_orm_execute")
def _write_before_reading(state: ORMExecuteState) -> None:
    """A statement on the totals in the same transaction sees its differences (the
    overview, a test reading the rows)."""
    statement = state.statement
    if not state.session.info.get(PENDING) or not isinstance(statement, sa.ClauseElement):
        return
    if GivingTotal.__table__ in find_tables(statement, include_crud=True, check_columns=True):
        write_pending(state.session)


def totals_from_gifts(connection: sa.Connection) -> dict[Key, tuple[int, int]]:
    """Every total recomputed from the gifts themselves: {key: (amount, count)}."""
    columns = [getattr(Gift, name) for name in FIELDS]
    statement = (
        sa.select(*columns)
        .where(Gift.status.in_(GIFT_COUNTED), Gift.paid_at.is_not(None))
        .execution_options(yield_per=5000)
    )
    deltas: Deltas = {}
    for row in connection.execute(statement):
        _add(deltas, contribution(dict(zip(FIELDS, row, strict=True))), +1)
    return {key: (amount, count) for key, (amount, count) in deltas.items()}


def stored_totals(connection: sa.Connection) -> dict[Key, tuple[int, int]]:
    """The totals as stored, leaving out rows that came back to zero; what a session on
    this connection has collected and not yet written is written first."""
    for session in list(connection.info.get(SESSIONS, ())):
        if session.info.get(PENDING):
            write_pending(session)
    table = GivingTotal.__table__
    return {
        (row.dimension, row.period, row.key): (row.amount_base_minor, row.gifts)
        for row in connection.execute(sa.select(table))
        if row.amount_base_minor or row.gifts
    }


def rebuild(connection: sa.Connection) -> bool:
    """Replace the totals by their recomputation from the gifts; True if they had drifted."""
    totals = totals_from_gifts(connection)
    if totals == stored_totals(connection):
        return False
    connection.execute(sa.delete(GivingTotal))
    apply_deltas(connection, {key: [amount, count] for key, (amount, count) in totals.items()})
    return True
