"""CSV exports that stream, and that spreadsheets cannot be tricked by.

A cell starting with = + - @ tab or carriage return could run as a formula in
Excel or LibreOffice; such cells get a leading apostrophe. Rows are written as
they are read, a batch at a time, so memory stays flat whatever the row count.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import sqlalchemy as sa
from flask import Response, stream_with_context
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: the first characters that make a cell a formula, for loops that neutralise cells inline
FORMULA_FIRST = frozenset(FORMULA_STARTS)
BOM = "\ufeff"
#: rows per chunk of an export's stream: few enough yields, little enough held at once
BATCH_ROWS = 2000
#: rows per chunk of `csv_lines`, whose rows each pass through `inert_row` anyway
LINES_ROWS = 500


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


def csv_download(filename: str, chunks: Iterator[str]) -> Response:
    """A streamed CSV download of `chunks` (from `csv_lines` or `csv_batches`), UTF-8."""
    response = Response(stream_with_context(chunks), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]], bom: bool = False) -> Response:
    """A streamed CSV download (UTF-8, optionally with a BOM for spreadsheet programs)."""
    return csv_download(filename, csv_lines(header, rows, bom))
