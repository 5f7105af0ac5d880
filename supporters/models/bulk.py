"""Many rows written at once, for imports: one statement a chunk, not one a row.

`insert_rows` is an INSERT of many rows without RETURNING. On PostgreSQL it is a
`COPY … FROM STDIN`: psycopg parses every multi-row INSERT it is given afresh (a
statement of a thousand rows is too long for its cache), which was a third of an
import's CPU, and the server too takes a COPY faster than an INSERT. The values are
the ones an INSERT would send: each bound by its column's own type (enums, UTC
times), and a column left out gets its Python-side default, as Core's INSERT gives
it. Elsewhere (SQLite) it is one executemany INSERT.

Neither path runs the ORM's flush listeners: what is derived from the rows (a gift's
giving totals: `models.giving.count_inserted`) is the caller's to count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


def _called(make: Callable[[Any], Any]) -> Callable[[], Any]:
    return lambda: make(None)  # SQLAlchemy wraps a default taking no argument to take the context


def _defaults(table: sa.Table, given: Sequence[str]) -> dict[str, Callable[[], Any]]:
    """How to fill each column left out that has a Python-side default."""
    fill: dict[str, Callable[[], Any]] = {}
    for column in table.columns:
        default = column.default
        if column.name in given or default is None:
            continue
        if isinstance(default, sa.ColumnDefault) and default.is_scalar:
            fill[column.name] = _constant(default.arg)
        elif isinstance(default, sa.ColumnDefault) and default.is_callable:
            fill[column.name] = _called(default.arg)
        else:  # a SQL expression or a sequence: COPY cannot run it
            raise ValueError(f"insert_rows: give {table.name}.{column.name}, its default is not a Python value")
    return fill


def insert_rows(connection: Connection, table: sa.FromClause, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys) into `table` (a model's `__table__`) in
    the connection's transaction."""
    assert isinstance(table, sa.Table)
    if not rows:
        return
    if connection.dialect.name != "postgresql":
        connection.execute(sa.insert(table), list(rows))
        return
    given = list(rows[0])
    fill = _defaults(table, given)
    names = [*given, *fill]
    processors = [table.c[name].type._cached_bind_processor(connection.dialect) for name in names]
    columns = ", ".join(connection.dialect.identifier_preparer.quote(name) for name in names)
    statement = f"COPY {connection.dialect.identifier_preparer.format_table(table)} ({columns}) FROM STDIN"
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            values = [row[name] for name in given] + [make() for make in fill.values()]
            copy.write_row(
                [
                    value if process is None or value is None else process(value)
                    for value, process in zip(values, processors, strict=True)
                ]
            )


def insert_rows_with_ids(
    connection: Connection, table: sa.FromClause, rows: Sequence[dict[str, Any]]
) -> list[int] | None:
    """`insert_rows`, each row given its `id` first where the database hands out many at
    once (PostgreSQL: from the column's sequence, one statement): the ids, in the rows'
    order. None elsewhere (SQLite gives a many-row INSERT's ids back only a row at a
    time): the rows are inserted and the caller finds their ids by a key of its own."""
    assert isinstance(table, sa.Table)
    if connection.dialect.name != "postgresql":
        insert_rows(connection, table, rows)
        return None
    if not rows:
        return []
    ids = list(
        connection.execute(
            sa.text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :count)"),
            {"table": table.name, "count": len(rows)},
        ).scalars()
    )
    insert_rows(connection, table, [{"id": id_, **row} for id_, row in zip(ids, rows, strict=True)])
    return ids
