"""The National Bank of Poland's exchange-rate tables, read from the files it publishes.

Table A holds the average ("mid") rate of about 35 currencies in złoty, one table per
working day. Two published shapes are read:

- the web API's JSON (api.nbp.pl): a list of tables, `[{"table": "A", "no":
  "232/A/NBP/2026", "effectiveDate": "2026-11-30", "rates": [{"code": "EUR", "mid":
  4.2241}, …]}]`, or one currency's series, `{"table": "A", "code": "EUR", "rates":
  [{"no": …, "effectiveDate": …, "mid": …}]}`;
- the yearly archive CSV (archiwum_tab_a_YYYY.csv): `;`-separated, a header row
  `data;1THB;1USD;…;100HUF;…;nr tabeli;pełny numer tabeli`, then a row per day
  `20261130;0,1098;3,6573;…;232;232/A/NBP/2026`, decimal commas, in UTF-8 or
  Windows-1250. A header "100HUF" quotes 100 forints: the rate kept is per one.

Pure Python, no network, no database: `read_tables` turns bytes into `Table`s, or
raises `RatesFileError` saying what is wrong and where. Amounts are `Decimal`,
never float.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

#: a file larger than this is not a rates file (a year's archive CSV is about 60 kB)
MAX_FILE_BYTES = 5_000_000
_TABLE_NO = re.compile(r"[0-9]{1,3}/A/NBP/[0-9]{4}")
_UNIT_CODE = re.compile(r"([0-9]{1,6})([A-Z]{3})")
_CODE = re.compile(r"[A-Z]{3}")
_DAY = re.compile(r"[0-9]{8}")


class RatesFileError(ValueError):
    """The file is not a table A the bank published; the message says why."""


@dataclass(frozen=True)
class Table:
    """One day's table A: złoty per one unit of each currency."""

    number: str
    effective_on: date
    rates: dict[str, Decimal] = field(default_factory=dict)


def read_tables(data: bytes) -> list[Table]:
    """The tables in `data` (the API's JSON or the archive CSV), oldest first."""
    if len(data) > MAX_FILE_BYTES:
        raise RatesFileError(f"The file is larger than {MAX_FILE_BYTES // 1_000_000} MB; it is not a rates table.")
    text = _decode(data).lstrip("\ufeff").strip()
    if not text:
        raise RatesFileError("The file is empty.")
    tables = _from_json(text) if text[0] in "[{" else _from_csv(text)
    if not tables:
        raise RatesFileError("The file holds no rates.")
    merged: dict[date, Table] = {}
    for table in tables:
        known = merged.get(table.effective_on)
        if known is not None and known.number != table.number:
            raise RatesFileError(f"Two tables for {table.effective_on.isoformat()}: {known.number} and {table.number}.")
        rates = {**(known.rates if known else {}), **table.rates}
        merged[table.effective_on] = Table(table.number, table.effective_on, rates)
    return [merged[day] for day in sorted(merged)]


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1250", errors="replace")


# --- JSON ----------------------------------------------------------------------


def _from_json(text: str) -> list[Table]:
    try:
        document = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except ValueError as exc:
        raise RatesFileError(f"The file is not valid JSON: {exc}.") from None
    items = document if isinstance(document, list) else [document]
    tables: list[Table] = []
    for position, item in enumerate(items, start=1):
        where = f"table {position}"
        if not isinstance(item, dict):
            raise RatesFileError(f"{where} is not an object.")
        _require_table_a(item.get("table"), where)
        if "code" in item:  # one currency's series
            code = _code(item.get("code"), where)
            for row in _list(item.get("rates"), where):
                tables.append(
                    Table(
                        _number(row.get("no"), where),
                        _day(row.get("effectiveDate"), where),
                        {code: _rate(row.get("mid"), Decimal(1), f"{where}, {code}")},
                    )
                )
            continue
        number = _number(item.get("no"), where)
        day = _day(item.get("effectiveDate"), where)
        rates: dict[str, Decimal] = {}
        for row in _list(item.get("rates"), where):
            code = _code(row.get("code"), where)
            rates[code] = _rate(row.get("mid"), Decimal(1), f"{where} ({number}), {code}")
        tables.append(Table(number, day, rates))
    return tables


def _require_table_a(value: Any, where: str) -> None:
    if value != "A":
        raise RatesFileError(f"{where} is table {str(value)[:10]!r}; only table A (average rates) is used.")


def _list(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        raise RatesFileError(f'{where}: "rates" is not a list of rates.')
    return value


def _code(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _CODE.fullmatch(value):
        raise RatesFileError(f"{where}: {str(value)[:20]!r} is not a currency code.")
    return value


def _number(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _TABLE_NO.fullmatch(value):
        raise RatesFileError(f"{where}: {str(value)[:40]!r} is not a table A number such as 232/A/NBP/2026.")
    return value


def _day(value: Any, where: str) -> date:
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise RatesFileError(f"{where}: {str(value)[:20]!r} is not a date (YYYY-MM-DD).")


def _rate(value: Any, units: Decimal, where: str) -> Decimal:
    if isinstance(value, str):
        try:
            value = Decimal(value.strip().replace(",", "."))
        except InvalidOperation:
            value = None
    if not isinstance(value, Decimal) or not value.is_finite() or value <= 0 or value > 1_000_000:
        raise RatesFileError(f"{where}: {str(value)[:20]!r} is not a rate.")
    return value / units


# --- CSV -----------------------------------------------------------------------


def _from_csv(text: str) -> list[Table]:
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    except csv.Error as exc:
        raise RatesFileError(f"The CSV file cannot be read: {exc}.") from None
    header_at = next((i for i, row in enumerate(rows) if row and row[0].strip().lower() == "data"), None)
    if header_at is None:
        raise RatesFileError('The file is neither the API\'s JSON nor the archive CSV (no header row "data;…").')
    header = [cell.strip() for cell in rows[header_at]]
    columns: dict[int, tuple[str, Decimal]] = {}
    for index, cell in enumerate(header):
        unit_code = _UNIT_CODE.fullmatch(cell)
        if unit_code:
            columns[index] = (unit_code.group(2), Decimal(unit_code.group(1)))
    if not columns:
        raise RatesFileError("The header row names no currency (such as 1EUR or 100HUF).")
    tables: list[Table] = []
    for line, row in enumerate(rows[header_at + 1 :], start=header_at + 2):
        first = row[0].strip() if row else ""
        if not _DAY.fullmatch(first):
            continue  # the names row, blank lines and the notes at the end
        where = f"line {line}"
        try:
            day = date(int(first[:4]), int(first[4:6]), int(first[6:]))
        except ValueError:
            raise RatesFileError(f"{where}: {first!r} is not a date (YYYYMMDD).") from None
        number = next((cell.strip() for cell in row if _TABLE_NO.fullmatch(cell.strip())), None)
        if number is None:
            raise RatesFileError(f"{where}: no table number such as 232/A/NBP/2026.")
        rates = {
            code: _rate(row[index], units, f"{where}, {code}")
            for index, (code, units) in columns.items()
            if index < len(row) and row[index].strip()
        }
        tables.append(Table(number, day, rates))
    return tables


# --- The web API ---------------------------------------------------------------

#: the most tables one request to the API may ask for
MOST_TABLES = 255


def tables_url(api_url: str, last: int) -> str:
    """The API address of the last `last` tables A, as JSON."""
    return f"{api_url.rstrip('/')}/exchangerates/tables/A/last/{last}/?format=json"


def download(url: str, timeout: float = 20.0) -> bytes:
    """The body the API answers at `url`; RatesFileError when it does not answer with one."""
    import requests  # only `flask rates fetch` needs it

    try:
        response = requests.get(url, headers={"Accept": "application/json"}, timeout=timeout, stream=True)
        response.raise_for_status()
        body = response.raw.read(MAX_FILE_BYTES + 1, decode_content=True)
    except requests.RequestException as exc:
        raise RatesFileError(f"The bank's API did not answer at {url}: {exc}") from None
    return bytes(body)
