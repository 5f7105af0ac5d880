"""CSV exports that stream, and that spreadsheets cannot be tricked by.

A cell starting with = + - @ tab or carriage return could run as a formula in
Excel or LibreOffice; such cells get a leading apostrophe. Rows are written as
they are read, a batch at a time, so memory stays flat whatever the row count.

On PostgreSQL an export may have the database write its lines (`copy_csv`, a
`COPY … TO STDOUT`), from cells made text in SQL as Python would make them
(`inert_sql`, `iso_sql`, `plain_sql`); a test proves such an export writes the bytes
its Python path writes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from itertools import islice
from typing import Any

import sqlalchemy as sa
from flask import Response, stream_with_context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from supporters.extensions import db
from supporters.lib import money

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: the first characters that make a cell a formula, for loops that neutralise cells inline
FORMULA_FIRST = frozenset(FORMULA_STARTS)
BOM = "\ufeff"
#: rows per chunk of an export's stream: few enough yields, little enough held at once
BATCH_ROWS = 2000
#: rows per chunk of `csv_lines`, whose rows each pass through `inert_row` anyway
LINES_ROWS = 500
#: lines per chunk of `copy_csv`'s stream (some 500 kB of an export's rows)
COPY_LINES = 2000


def neutralise(value: Any) -> str:
    """The cell as text, made inert if a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def iso(moment: datetime | None) -> str:
    """A timestamp cell: ISO 8601 in UTC to the second, "2026-01-31T23:30:00Z"; empty for None.

    Every export writes its timestamps so, whatever the organisation's time zone, and names
    their columns with `_utc` (`paid_at_utc`), so the file says which zone it is in."""
    if moment is None:
        return ""
    return (moment if moment.tzinfo is UTC else moment.astimezone(UTC)).isoformat(timespec="seconds")[:19] + "Z"


class iso_sql(FunctionElement[str]):  # noqa: N801 (an SQL function, named like one)
    """`iso` written by the database: the same text for the same timestamp column (NULL
    for NULL), for exports of a million rows, where making a datetime of each cell and
    formatting it again is a good part of the time. `tests/functional/dashboard/test_exports.py`
    proves the two agree on SQLite and PostgreSQL."""

    type = sa.String()
    name = "iso_sql"
    inherit_cache = True


@compiles(iso_sql, "sqlite")
def _iso_sqlite(element: iso_sql, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps a UTCDateTime as UTC text, "2026-01-31 23:30:05.123456" (SQLAlchemy's one
    # storage format): cutting it is exact, and far cheaper than strftime().
    [moment] = element.clauses
    text = sa.func.substr(moment, 1, 10) + "T" + sa.func.substr(moment, 12, 8) + "Z"
    return compiler.process(text, **kw)


@compiles(iso_sql, "postgresql")
def _iso_postgresql(element: iso_sql, compiler: SQLCompiler, **kw: Any) -> str:
    # to_char, not ::text: the text form of a timestamp follows the session's DateStyle
    [moment] = element.clauses
    text = sa.func.to_char(sa.func.timezone("UTC", moment), 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
    return compiler.process(text, **kw)


def plain_sql(amount_minor: sa.ColumnElement[int], currency: str | sa.ColumnElement[str]) -> sa.ColumnElement[str]:
    """`money.plain` written by PostgreSQL, for `copy_csv`: the same text for the same
    amount in the same currency (a currency given, or a column of them), NULL for NULL.

    An integer times 0.01 is a numeric of exactly two decimals, which PostgreSQL prints as
    `plain` writes it ("25.50", "-0.05", "0.000" KWD, "500" JPY). PostgreSQL only: SQLite's
    numbers are floats. `tests/functional/dashboard/test_export_copy.py` proves the two agree."""
    if isinstance(currency, str):
        return _scaled(amount_minor, money.minor_unit_exponent(currency))
    return sa.case(
        (currency.in_(sorted(money.ZERO_DECIMAL)), _scaled(amount_minor, 0)),
        (currency.in_(sorted(money.THREE_DECIMAL)), _scaled(amount_minor, 3)),
        else_=_scaled(amount_minor, 2),
    )


def _scaled(amount_minor: sa.ColumnElement[int], exponent: int) -> sa.ColumnElement[str]:
    if exponent == 0:
        return sa.cast(amount_minor, sa.Text)
    return sa.cast(amount_minor * sa.literal(Decimal(1).scaleb(-exponent), sa.Numeric()), sa.Text)


def inert_sql(text: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
    """`neutralise` written by the database, for `copy_csv`: the text cell made inert, and
    NULL for "" as for NULL. COPY writes NULL as nothing, as `csv.writer` writes "" and
    None, but quotes an empty string (`""`), which `csv.writer` does not."""
    # strpos in the string of formula starts, not `IN` the six of them: 22 cells a row pass
    # here, and `IN` took 4 s of the server's 12 s of CPU for a million rows, strpos 1 s
    starts = sa.func.strpos("".join(FORMULA_STARTS), sa.func.substr(text, 1, 1)) > 0
    return sa.case((text == "", sa.null()), (starts, sa.literal("'") + text), else_=text)


def inert_row(row: Sequence[Any]) -> list[Any]:
    """The row with every text cell made inert; numbers and None go to the CSV writer as
    they are (a number is never read as a formula, and None is written empty).
    The per-cell fast path of `neutralise`, for exports of a million rows."""
    return [("'" + cell if cell[:1] in FORMULA_FIRST else cell) if isinstance(cell, str) else cell for cell in row]


def csv_batches(header: Sequence[str], batches: Iterable[Iterable[Sequence[Any]]], bom: bool = False) -> Iterator[str]:
    """The CSV text, one chunk per batch of rows, for rows whose cells are inert already
    (made so by `inert_row`, or cell by cell as `neutralise` would): the export's hot loop
    hands over whole batches, and the C writer writes each in one call."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if bom:
        buffer.write(BOM)
    writer.writerow([neutralise(cell) for cell in header])
    for batch in batches:
        writer.writerows(batch)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if rest := buffer.getvalue():
        yield rest


def csv_text_batches(
    header: Sequence[str], batches: Iterable[Iterable[Sequence[str]]], bom: bool = False
) -> Iterator[str]:
    """`csv_batches` for rows of text only (inert already, "" for empty), written by `text_lines`."""
    yield from csv_batches(header, (), bom)
    for batch in batches:
        yield text_lines(batch)


def text_lines(rows: Iterable[Sequence[str]]) -> str:
    """Rows of text cells as CSV lines, each ending CRLF: the text `csv.writer` writes, made
    by joining the cells of a row that needs no quotes (no quote, comma or line break in
    any cell: most rows of an export), which is several times cheaper than the writer."""
    lines: list[str] = []
    add = lines.append
    for cells in rows:
        line = ",".join(cells)
        if '"' in line or "\n" in line or "\r" in line or line.count(",") != len(cells) - 1 or len(cells) < 2:
            line = _quoted_line(cells)
        add(line)
    return "\r\n".join(lines) + "\r\n" if lines else ""


def _quoted_line(cells: Sequence[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue()[:-2]


def csv_lines(header: Sequence[str], rows: Iterable[Sequence[Any]], bom: bool = False) -> Iterator[str]:
    """The CSV text of any rows, a chunk of rows at a time, every cell made inert."""
    rows = iter(rows)

    def batches() -> Iterator[list[list[Any]]]:
        while batch := [inert_row(row) for row in islice(rows, LINES_ROWS)]:
            yield batch

    return csv_batches(header, batches(), bom)


def copy_csv(header: Sequence[str], cells: sa.Select[Any], bom: bool = False) -> Iterator[bytes]:
    """The CSV file `csv_text_batches` would write of `cells`' rows, written by PostgreSQL:
    `COPY (cells) TO STDOUT (FORMAT csv)` in the session's transaction, in UTF-8, a chunk
    of `COPY_LINES` lines at a time. Every cell of `cells` must be text made inert already
    (`inert_sql`), NULL for empty, never "" (which COPY would quote).

    COPY quotes as `csv.writer` does (a cell holding a comma, a quote, CR or LF; quotes
    doubled) but ends its lines with LF: each row comes from the server as one message
    (the protocol sends a COPY's rows so), so its last byte is the line's end, replaced by
    CRLF; a line break inside a quoted cell is left as it is, as `csv.writer` leaves it.
    Nothing is read before the first chunk is asked for: the request commits its audit
    row first."""
    yield "".join(csv_batches(header, (), bom)).encode()
    connection = db.session.connection()
    statement, parameters = _bound(connection, cells)
    driver = connection.connection.driver_connection
    assert driver is not None
    encoding = driver.info.encoding
    with driver.cursor() as cursor:
        # JIT-compiling an export's many cell expressions took 5 s of a million rows' 22
        # (measured: docs/benchmarks.md), more than the compiled code saved; to the transaction's end
        cursor.execute("SET LOCAL jit = off")
        with cursor.copy(f"COPY ({statement}) TO STDOUT (FORMAT csv)", parameters) as copy:
            lines: list[Any] = []
            add = lines.append
            for row in copy:
                add(row[:-1])
                if len(lines) == COPY_LINES:
                    yield _crlf_lines(lines, encoding)
                    lines.clear()
            if lines:
                yield _crlf_lines(lines, encoding)


def _crlf_lines(lines: list[Any], encoding: str) -> bytes:
    chunk = b"\r\n".join(lines) + b"\r\n"
    return chunk if encoding == "utf-8" else chunk.decode(encoding).encode()


def _bound(connection: Connection, statement: sa.Select[Any]) -> tuple[str, dict[str, Any] | None]:
    """`statement`'s SQL for psycopg, and its parameters bound by their types (enums, UTC
    times) as SQLAlchemy's own execution binds them, for a `cursor.copy()`, which merges
    them into the SQL on the client (COPY takes no parameters of its own)."""
    compiled = statement.compile(dialect=connection.dialect)
    state = compiled.construct_expanded_state()
    # the statement's processors and those of the lists it expanded (`IN`), as
    # SQLAlchemy's execution context merges them
    processors: dict[str, Any] = {**compiled._bind_processors, **state.processors}
    parameters = {
        name: processors[name](value) if name in processors else value for name, value in state.parameters.items()
    }
    if not parameters:
        # psycopg merges nothing then, so it would not undo the doubled % of a pyformat statement
        return state.statement.replace("%%", "%"), None
    return state.statement, parameters


def csv_download(filename: str, chunks: Iterator[str] | Iterator[bytes]) -> Response:
    """A streamed CSV download of `chunks` (from `csv_lines`, `csv_batches` or `copy_csv`), UTF-8."""
    response = Response(stream_with_context(chunks), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]], bom: bool = False) -> Response:
    """A streamed CSV download (UTF-8, optionally with a BOM for spreadsheet programs)."""
    return csv_download(filename, csv_lines(header, rows, bom))
