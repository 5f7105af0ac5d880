"""Reading a bank statement: MT940 (with the mt-940 library) or CSV (a column layout per
bank, a "preset"), into the same lines, each with its identity across imports.

A file that cannot be read is refused (`Refused`, field "file") with what was wrong and
where, never half read.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import mt940
from flask import current_app
from flask_babel import lazy_gettext as _l

from supporters.lib.errors import Refused
from supporters.lib.money import MAX_AMOUNT_MINOR, MoneyError, minor_unit_exponent
from supporters.models import LineDirection

FORMATS = ("mt940", "csv")
#: the largest statement file accepted (the upload route's body limit is a little more)
MAX_FILE_BYTES = 5 * 1024 * 1024
#: the most lines one file may hold
MAX_LINES = 50_000


@dataclass(frozen=True)
class StatementLine:
    """One booking as the file gives it. `amount_minor` is always positive; `direction`
    says which way the money went."""

    booked_on: date
    amount_minor: int
    currency: str
    direction: LineDirection
    counterparty_name: str | None = None
    counterparty_account: str | None = None
    title: str | None = None
    bank_reference: str | None = None
    #: the booking's identity across imports (`with_identities`)
    identity_key: str = ""


@dataclass
class Statement:
    """A file read: the account it is the statement of (if it says) and its lines."""

    account: str | None
    lines: list[StatementLine] = field(default_factory=list)


def _refused(message: Any, **params: Any) -> Refused:
    return Refused(message, field="file", **params)


def _decode(content: bytes) -> str:
    """The file's text: UTF-8 (with or without a byte-order mark), else Windows-1250, the
    encoding Polish banks' exports use."""
    if b"\x00" in content:
        raise _refused(_l("This file is not a bank statement: it holds binary data."))
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return content.decode("cp1250")
        except UnicodeDecodeError:
            raise _refused(_l("This file's text cannot be read: save it as UTF-8 or Windows-1250.")) from None


def _clean(text: Any, limit: int) -> str | None:
    """Text fit to keep: whitespace collapsed, control characters gone, within `limit`."""
    if text is None:
        return None
    value = " ".join("".join(ch if ch.isprintable() else " " for ch in str(text)).split())
    return value[:limit] or None


def _account(text: Any) -> str | None:
    """An account number as one string of letters and digits ("PL61 1090…" -> "PL611090…")."""
    value = re.sub(r"[^0-9A-Za-z]", "", str(text or "")).upper()
    return value[:64] or None


def _minor(amount: Decimal, currency: str) -> int:
    exponent = minor_unit_exponent(currency)
    scaled = amount * (Decimal(10) ** exponent)
    if scaled != scaled.to_integral_value():
        raise ValueError("too many decimals")
    return int(scaled)


# --- Identity ------------------------------------------------------------------------


def with_identities(account: str | None, lines: Iterable[StatementLine]) -> list[StatementLine]:
    """Each line with its identity across imports: the bank's own reference for it, or
    else a hash of the account, date, direction, amount, title and sender, with its place
    among identical lines of the file (two equal gifts on one day are two bookings, and an
    overlapping statement holds both again)."""
    seen: Counter[str] = Counter()
    result = []
    for line in lines:
        if line.bank_reference:
            # with the date and the amount: a bank that gives each booking its own reference
            # loses nothing by it, and one that reuses a customer's reference on other days
            # does not hide a later booking behind an earlier one
            parts = ["ref", account or "", line.bank_reference, line.booked_on.isoformat(), str(line.amount_minor)]
        else:
            parts = [
                "line",
                account or "",
                line.counterparty_account or "",
                line.booked_on.isoformat(),
                line.direction.value,
                str(line.amount_minor),
                line.currency,
                (line.title or "").casefold(),
                (line.counterparty_name or "").casefold(),
            ]
        base = "\x1f".join(parts)
        seen[base] += 1
        key = hashlib.sha256(f"{base}\x1f{seen[base]}".encode()).hexdigest()
        result.append(replace(line, identity_key=key))
    return result


# --- MT940 ---------------------------------------------------------------------------

#: a structured :86: field: a three-digit code, then sub-fields each opened by a mark and two
#: digits; German banks mark them with "?", Polish ones with "~", "^" or "<"
_STRUCTURED = re.compile(r"^\s*\d{3}\s*([?~^<])\d{2}")


def _subfields(details: str) -> dict[str, str] | None:
    """The sub-fields of a structured :86: ("~20" -> its text), or None for free text."""
    text = "".join(part.strip("\r\n") for part in details.splitlines())
    found = _STRUCTURED.match(text)
    if not found:
        return None
    mark = re.escape(found.group(1))
    fields: dict[str, str] = {}
    for code, value in re.findall(rf"{mark}(\d{{2}})((?:(?!{mark}\d{{2}}).)*)", text):
        fields[code] = fields.get(code, "") + value
    return fields


def _mt940_line(transaction: Any, statement_currency: str | None) -> StatementLine:
    data = transaction.data
    amount = data.get("amount")
    if amount is None:
        raise ValueError("a booking without an amount")
    currency = str(getattr(amount, "currency", None) or data.get("currency") or statement_currency or "").upper()
    value = Decimal(amount.amount)
    # the :61: mark says which way the money went: C in, D out, and their reversals the
    # other way (RC takes a credit back: money out; RD gives a debit back: money in);
    # the library signs only a plain D, so the sign alone would take RC for money in
    mark = str(data.get("status") or "").upper()
    if mark in ("C", "RD"):
        direction = LineDirection.CREDIT
    elif mark in ("D", "RC"):
        direction = LineDirection.DEBIT
    else:
        direction = LineDirection.CREDIT if value > 0 else LineDirection.DEBIT
    booked = data.get("entry_date") or data.get("date")
    if booked is None:
        raise ValueError("a booking without a date")
    details = data.get("transaction_details") or ""
    fields = _subfields(details)
    if fields is None:
        title, name, account = details, None, None
    else:
        title = "".join(fields.get(code, "") for code in ("20", "21", "22", "23", "24", "25", "26"))
        name = "".join(fields.get(code, "") for code in ("32", "33")) or "".join(
            fields.get(code, "") for code in ("27", "28", "29")
        )
        account = fields.get("38") or (fields.get("30", "") + fields.get("31", ""))
    reference = data.get("bank_reference") or None
    if not reference and (data.get("customer_reference") or "").upper() not in ("", "NONREF"):
        reference = data.get("customer_reference")
    return StatementLine(
        booked_on=date(booked.year, booked.month, booked.day),
        amount_minor=abs(_minor(value, currency)),
        currency=currency,
        direction=direction,
        counterparty_name=_clean(name, 200),
        counterparty_account=_account(account),
        title=_clean(title, 500),
        bank_reference=_clean(reference, 100),
    )


def read_mt940(content: bytes) -> Statement:
    """Every booking of an MT940 file (one statement or several, as banks send them)."""
    text = _decode(content)
    if ":20:" not in text or (":61:" not in text and ":60F:" not in text and ":60M:" not in text):
        raise _refused(_l("This file is not an MT940 statement (it has no :20: and :61: fields)."))
    # the :86: details are read here (Polish banks mark their sub-fields differently)
    transactions = mt940.models.Transactions(processors={"post_transaction_details": []})
    try:
        transactions.parse(text)
    except Exception as error:  # the library raises many kinds, all meaning "cannot read"
        raise _refused(
            _l("This MT940 file cannot be read: %(detail)s"),
            detail=str(error).splitlines()[0][:200] if str(error) else type(error).__name__,
        ) from None
    account = _account(str(transactions.data.get("account_identification") or "").split("/")[-1] or None)
    currency = None
    opening = transactions.data.get("final_opening_balance") or transactions.data.get("opening_balance")
    if opening is not None:
        currency = str(getattr(opening.amount, "currency", "") or "") or None
    lines = []
    for number, transaction in enumerate(transactions, start=1):
        try:
            line = _mt940_line(transaction, currency)
        except (ValueError, InvalidOperation, MoneyError, TypeError):
            raise _refused(_l("Booking %(number)s of this MT940 file cannot be read."), number=number) from None
        if line.amount_minor:  # a booking of 0,00 moves no money (the CSV reader skips them too)
            lines.append(line)
    return Statement(account, with_identities(account, lines))


# --- CSV -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvLayout:
    """How one bank lays out its CSV export: the separator, the header row's column names
    for each thing we read, and how dates and amounts are written."""

    key: str
    label: str
    delimiter: str
    #: column names (as in the header row) of each value; currency None: `currency` is fixed
    booked_on: str
    amount: str
    title: str
    counterparty_name: str | None = None
    counterparty_account: str | None = None
    currency_column: str | None = None
    bank_reference: str | None = None
    #: the currency of every line when the file has no currency column
    currency: str = "PLN"
    date_formats: tuple[str, ...] = ("%Y-%m-%d", "%d.%m.%Y", "%d-%m-%Y")


#: the layouts shipped; SUPPORTERS_BANK_CSV_LAYOUTS adds others or replaces these
PRESETS: dict[str, CsvLayout] = {
    # mBank's "Lista operacji" export (mBank internet banking, CSV): Windows-1250, ";", a few
    # lines about the account first, then the operations under a header of "#" names
    "mbank": CsvLayout(
        key="mbank",
        label="mBank (CSV, lista operacji)",
        delimiter=";",
        booked_on="#Data księgowania",
        amount="#Kwota",
        title="#Tytuł",
        counterparty_name="#Nadawca/Odbiorca",
        counterparty_account="#Numer konta",
    ),
    # a plain layout for any bank, or a spreadsheet typed by hand
    "generic": CsvLayout(
        key="generic",
        label="Generic (date, amount, currency, name, account, title, reference)",
        delimiter=",",
        booked_on="date",
        amount="amount",
        title="title",
        counterparty_name="name",
        counterparty_account="account",
        currency_column="currency",
        bank_reference="reference",
    ),
}


def layouts() -> dict[str, CsvLayout]:
    """The CSV layouts staff can choose: the shipped presets and the configured ones."""
    found = dict(PRESETS)
    for key, spec in (current_app.config.get("SUPPORTERS_BANK_CSV_LAYOUTS") or {}).items():
        found[key] = layout_from_setting(key, spec)
    return found


def layout_from_setting(key: str, spec: Mapping[str, str]) -> CsvLayout:
    """A layout from SUPPORTERS_BANK_CSV_LAYOUTS, as config.py checked it."""
    values = {"label": key, "delimiter": ",", **spec}
    return CsvLayout(key=key, **values)  # type: ignore[arg-type]


_AMOUNT = re.compile(r"^([+-]?)\s*([0-9][0-9 .,']*)\s*([A-Z]{3})?$")


def parse_amount(text: str) -> tuple[Decimal, str | None]:
    """A signed amount as banks write it ("-1 234,56", "1,234.56", "150,00 PLN") and the
    currency written beside it, if any; ValueError when it is none."""
    raw = text.replace("\u00a0", " ").replace("\u202f", " ").strip().upper()
    sign = ""
    if raw.startswith("(") and raw.endswith(")"):
        sign, raw = "-", raw[1:-1].strip()
    found = _AMOUNT.match(raw)
    if not found:
        raise ValueError(text)
    sign = sign or found.group(1)
    number = found.group(2).replace(" ", "").replace("'", "")
    marks = [mark for mark in ",." if mark in number]
    if len(marks) == 2:  # the later mark is the decimal one: "1.234,56", "1,234.56"
        decimal_mark = "," if number.rfind(",") > number.rfind(".") else "."
    elif marks and number.count(marks[0]) == 1:
        decimal_mark = marks[0]
    else:  # no mark, or one used many times: thousands only ("1.234.567")
        decimal_mark = ""
    whole, _mark, decimals = number.rpartition(decimal_mark) if decimal_mark else ("", "", number)
    if not decimal_mark:
        whole, decimals = decimals, ""
    whole = whole.replace(",", "").replace(".", "")
    if not whole.isdigit() or (decimals and not decimals.isdigit()):
        raise ValueError(text)
    return Decimal(f"{sign}{whole}.{decimals or '0'}"), found.group(3)


def _date(text: str, formats: tuple[str, ...]) -> date:
    for pattern in formats:
        try:
            return datetime.strptime(text.strip(), pattern).date()
        except ValueError:
            continue
    raise ValueError(text)


def read_csv(content: bytes, layout: CsvLayout) -> Statement:
    """Every booking of a bank's CSV export laid out as `layout` says. Lines before the
    header row (the account's details) and after the bookings (the balances) are left."""
    text = _decode(content)
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=layout.delimiter))
    except csv.Error as error:
        raise _refused(_l("This CSV file cannot be read: %(detail)s"), detail=str(error)[:200]) from None
    wanted = {
        "booked_on": layout.booked_on,
        "amount": layout.amount,
        "title": layout.title,
        "counterparty_name": layout.counterparty_name,
        "counterparty_account": layout.counterparty_account,
        "currency": layout.currency_column,
        "bank_reference": layout.bank_reference,
    }

    def key(name: str) -> str:
        return " ".join(name.split()).casefold()

    header_at = None
    for index, row in enumerate(rows[:100]):
        cells = [key(cell) for cell in row]
        if key(layout.booked_on) in cells and key(layout.amount) in cells:
            header_at = index
            break
    if header_at is None:
        raise _refused(
            _l("This file is not a %(layout)s CSV export: no header row with the columns “%(date)s” and “%(amount)s”."),
            layout=layout.label,
            date=layout.booked_on,
            amount=layout.amount,
        )
    header = [key(cell) for cell in rows[header_at]]
    columns: dict[str, int] = {}
    for name, column in wanted.items():
        if column is None:
            continue
        if key(column) not in header:
            raise _refused(_l("The header row has no column “%(column)s”."), column=column)
        columns[name] = header.index(key(column))
    lines: list[StatementLine] = []
    for number, row in enumerate(rows[header_at + 1 :], start=header_at + 2):
        if not any(cell.strip() for cell in row):
            continue
        cell = row[columns["booked_on"]].strip() if len(row) > columns["booked_on"] else ""
        if not cell or cell.startswith("#"):
            continue  # the balances and totals below the bookings
        if len(lines) >= MAX_LINES:
            raise _refused(_l("This file holds more than %(count)s bookings: split it."), count=MAX_LINES)

        def value(name: str, row: list[str] = row) -> str | None:
            at = columns.get(name)
            return row[at].strip().strip("'") if at is not None and at < len(row) else None

        try:
            booked_on = _date(cell, layout.date_formats)
            amount, written_currency = parse_amount(value("amount") or "")
            currency = (value("currency") or written_currency or layout.currency).upper()
            amount_minor = _minor(amount, currency)
        except (ValueError, InvalidOperation, MoneyError):
            raise _refused(
                _l("Row %(row)s cannot be read: check its date (%(date)s) and amount (%(amount)s)."),
                row=number,
                date=cell[:40],
                amount=(value("amount") or "")[:40],
            ) from None
        if amount_minor == 0:
            continue
        lines.append(
            StatementLine(
                booked_on=booked_on,
                amount_minor=abs(amount_minor),
                currency=currency,
                direction=LineDirection.CREDIT if amount_minor > 0 else LineDirection.DEBIT,
                counterparty_name=_clean(value("counterparty_name"), 200),
                counterparty_account=_account(value("counterparty_account")),
                title=_clean(value("title"), 500),
                bank_reference=_clean(value("bank_reference"), 100),
            )
        )
    return Statement(None, with_identities(None, lines))


def read_statement(content: bytes, file_format: str, preset: str | None = None) -> Statement:
    """The file read in `file_format` ("mt940", or "csv" with the layout `preset`);
    Refused, saying what is wrong, when it cannot be."""
    if not content:
        raise _refused(_l("The file is empty."))
    if len(content) > MAX_FILE_BYTES:
        raise _refused(_l("The file is larger than 5 MB: split the statement."))
    if file_format == "mt940":
        statement = read_mt940(content)
    elif file_format == "csv":
        layout = layouts().get(preset or "")
        if layout is None:
            raise Refused(_l("Choose the bank whose CSV layout the file has."), field="preset")
        statement = read_csv(content, layout)
    else:
        raise Refused(_l("Choose the file's format: MT940 or CSV."), field="format")
    if len(statement.lines) > MAX_LINES:
        raise _refused(_l("This file holds more than %(count)s bookings: split it."), count=MAX_LINES)
    for number, line in enumerate(statement.lines, start=1):
        try:
            minor_unit_exponent(line.currency)
        except MoneyError:
            raise _refused(
                _l("The file names a currency that does not exist: %(code)s."), code=line.currency[:8]
            ) from None
        if line.amount_minor > MAX_AMOUNT_MINOR:
            raise _refused(_l("Booking %(number)s has an amount no bank account holds."), number=number)
    return statement
