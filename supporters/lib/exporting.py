"""CSV exports that stream, and that spreadsheets cannot be tricked by.

A cell starting with = + - @ tab or carriage return could run as a formula in
Excel or LibreOffice; such cells get a leading apostrophe. Rows are written as
they are read, so memory stays flat whatever the row count.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from flask import Response, stream_with_context

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_FIRST = frozenset(FORMULA_STARTS)
BOM = "\ufeff"


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


def inert_row(row: Sequence[Any]) -> list[Any]:
    """The row with every text cell made inert; numbers and None go to the CSV writer as
    they are (a number is never read as a formula, and None is written empty).
    The per-cell fast path of `neutralise`, for exports of a million rows."""
    return [("'" + cell if cell[:1] in _FORMULA_FIRST else cell) if isinstance(cell, str) else cell for cell in row]


def csv_lines(header: Sequence[str], rows: Iterable[Sequence[Any]], bom: bool = False) -> Iterator[str]:
    """The CSV text, a chunk of rows at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if bom:
        buffer.write(BOM)
    writer.writerow([neutralise(cell) for cell in header])
    for count, row in enumerate(rows, 1):
        writer.writerow(inert_row(row))
        if count % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]], bom: bool = False) -> Response:
    """A streamed CSV download (UTF-8, optionally with a BOM for spreadsheet programs)."""
    response = Response(stream_with_context(csv_lines(header, rows, bom)), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response
