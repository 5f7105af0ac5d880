"""Reading a supporters or gifts file, row by row: CSV (UTF-8, with or without the BOM
Excel writes, `,` or `;` as Polish Excel separates) or XLSX (the first sheet).

Rows are read as they are needed, never all at once: a file of 300,000 gifts costs the
memory of one row. Every value is text, trimmed; a date cell of a spreadsheet is written
as its ISO date, a number cell as its decimal digits.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any

from flask_babel import lazy_gettext as _l

from supporters.lib.errors import Refused

#: the largest file staff may upload, each of the two (the route's limit is in
#: core/request_sizes.py): about 150,000 supporters, or 400,000 gifts, as CSV
MAX_FILE_BYTES = 16 * 1024 * 1024
#: the longest value a cell may hold; longer ones are cut here and refused by the field
MAX_CELL = 2000
#: a CSV field's own limit (the csv module's default is 128 kB)
csv.field_size_limit(64 * 1024)

XLSX_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class Table:
    """A file as its rows are read: its header names and a way to read the rows again."""

    headers: list[str]
    rows: Callable[[], Iterator[tuple[int, dict[str, str]]]]


def file_kind(content_start: bytes, file_name: str) -> str:
    """ "xlsx" or "csv" by what the file is; refused for anything else (a 400)."""
    name = (file_name or "").lower()
    if content_start.startswith(XLSX_MAGIC):
        if name.endswith((".xlsx", ".xlsm")) or not name.endswith(".csv"):
            return "xlsx"
    if name.endswith((".xls", ".ods", ".numbers", ".zip", ".pdf", ".doc", ".docx")) or content_start.startswith(
        (XLSX_MAGIC, b"\xd0\xcf\x11\xe0", b"%PDF")
    ):
        raise Refused(_l("Upload a CSV or XLSX file (in Excel: Save as, CSV UTF-8 or Excel workbook)."), field="file")
    if b"\x00" in content_start:
        raise Refused(_l("This is no text file: upload a CSV or XLSX file."), field="file")
    return "csv"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        # 12.5 as Excel shows it, not 12.4999…; a whole number without ".0"
        return format(Decimal(repr(value)).normalize(), "f")
    return str(value).strip()[:MAX_CELL]


def _unique_headers(raw: list[str]) -> list[str]:
    headers: list[str] = []
    for index, header in enumerate(raw):
        header = " ".join(header.split()) or f"#{index + 1}"
        while header in headers:
            header += "'"
        headers.append(header[:200])
    return headers


def _delimiter(first_line: str) -> str:
    """ ";" when the header has more semicolons than commas (Polish Excel), else ","."""
    return ";" if first_line.count(";") > first_line.count(",") else ","


def _csv_text(opener: Callable[[], IO[bytes]]) -> Callable[[], IO[str]]:
    def open_text() -> IO[str]:
        return io.TextIOWrapper(opener(), encoding="utf-8-sig", newline="", errors="strict")

    return open_text


def read_table(opener: Callable[[], IO[bytes]], file_name: str) -> Table:
    """The file's headers and its rows (row number as a spreadsheet shows it, and
    {header: value}), read again from the start each time `rows()` is called.

    Refused for a file that is no CSV or XLSX, that is not UTF-8, or that has no header row.
    """
    with opener() as stream:
        start = stream.read(4096)
    kind = file_kind(start, file_name)
    if kind == "xlsx":
        return _read_xlsx(opener)
    return _read_csv(opener)


def _not_utf8() -> Refused:
    return Refused(
        _l(
            "The file is not UTF-8 text. In Excel choose Save as, CSV UTF-8 (comma delimited), or upload the XLSX file."
        ),
        field="file",
    )


def _read_csv(opener: Callable[[], IO[bytes]]) -> Table:
    open_text = _csv_text(opener)
    try:
        with open_text() as text:
            first = text.readline()
            delimiter = _delimiter(first)
            header_row = next(csv.reader([first], delimiter=delimiter), [])
    except UnicodeDecodeError:
        raise _not_utf8() from None
    headers = _unique_headers(header_row)
    if not any(header_row):
        raise Refused(_l("The file's first row must name its columns."), field="file")

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        try:
            with open_text() as text:
                reader = csv.reader(text, delimiter=delimiter)
                next(reader, None)
                for number, values in enumerate(reader, start=2):
                    if not any(value.strip() for value in values):
                        continue
                    yield (
                        number,
                        {header: value.strip()[:MAX_CELL] for header, value in zip(headers, values, strict=False)},
                    )
        except UnicodeDecodeError:
            raise _not_utf8() from None
        except csv.Error as exc:
            raise Refused(_l("The CSV file cannot be read: %(reason)s"), field="file", reason=str(exc)) from None

    return Table(headers, rows)


def _read_xlsx(opener: Callable[[], IO[bytes]]) -> Table:
    import openpyxl  # only for spreadsheets: it takes a while to import

    def sheet_rows() -> Iterator[tuple[Any, ...]]:
        with opener() as stream:
            try:
                book = openpyxl.load_workbook(stream, read_only=True, data_only=True)
            except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError):
                raise Refused(_l("The XLSX file cannot be read: save it again in Excel."), field="file") from None
            try:
                sheet = book.worksheets[0]
                yield from sheet.iter_rows(values_only=True)
            finally:
                book.close()

    first = next(sheet_rows(), None)
    if not first or not any(value not in (None, "") for value in first):
        raise Refused(_l("The file's first row must name its columns."), field="file")
    headers = _unique_headers([_cell(value) for value in first])

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        iterator = sheet_rows()
        next(iterator, None)
        for number, values in enumerate(iterator, start=2):
            cells = [_cell(value) for value in values]
            if not any(cells):
                continue
            yield number, dict(zip(headers, cells, strict=False))

    return Table(headers, rows)


def bytes_opener(content: bytes) -> Callable[[], IO[bytes]]:
    """Open an uploaded file's bytes again, as often as asked."""
    return lambda: io.BytesIO(content)


def path_opener(path: str) -> Callable[[], IO[bytes]]:
    """Open a file on disk again, as often as asked (the command line)."""
    return lambda: open(path, "rb")
