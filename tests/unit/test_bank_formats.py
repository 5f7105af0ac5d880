"""Reading bank statements (bank/formats.py): an MT940 file as Polish banks write it, mBank's
CSV export and the generic layout, each booking with an identity that is the same in every
file carrying it; a file that is not a statement is refused with a message saying why."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from supporters.bank.formats import (
    PRESETS,
    StatementLine,
    layout_from_setting,
    parse_amount,
    read_statement,
    with_identities,
)
from supporters.config import ConfigError, load_config
from supporters.giving.transfers import Reference, references_in
from supporters.lib.errors import Refused
from supporters.models import LineDirection

DATA = Path(__file__).parent.parent / "data" / "bank"


def test_mt940_bookings_are_read_with_sender_account_and_title(app: Any) -> None:
    with app.app_context():
        statement = read_statement((DATA / "statement.mt940").read_bytes(), "mt940")
    assert statement.account == "PL61109010140000071219812874"
    first, second, fee, interest = statement.lines
    assert first.booked_on == date(2026, 12, 1)
    assert (first.amount_minor, first.currency, first.direction) == (15000, "PLN", LineDirection.CREDIT)
    assert first.counterparty_name == "ANNA KOWALSKAUL. LIPOWA 1"
    assert first.counterparty_account == "PL27114020040000300201355387"
    assert first.bank_reference == "26120100001"
    # a title split over two sub-fields is read whole, so its transfer title is found
    assert references_in(first.title or "") == [Reference(2026, 153)]
    assert second.counterparty_name == "KOWALSKI JAN" and second.title == "Na statutowe"
    assert (fee.amount_minor, fee.direction) == (1250, LineDirection.DEBIT)
    assert fee.title == "Oplata za prowadzenie rachunku"
    assert (interest.amount_minor, interest.title, interest.counterparty_name) == (37, "Kapitalizacja odsetek", None)
    assert len({line.identity_key for line in statement.lines}) == 4


def test_mbank_csv_export_is_read_from_its_windows_1250_layout(app: Any) -> None:
    with app.app_context():
        statement = read_statement((DATA / "mbank.csv").read_bytes(), "csv", "mbank")
    pledge, gift, fee = statement.lines
    assert pledge.booked_on == date(2026, 12, 1) and pledge.amount_minor == 15000 and pledge.currency == "PLN"
    assert pledge.counterparty_name == "ŁUKASZ ŻAK UL. KRÓTKA 2 00-950 WARSZAWA"
    assert pledge.counterparty_account == "27114020040000300201355387"
    assert references_in(pledge.title or "") == [Reference(2026, 153)]
    assert gift.amount_minor == 120000 and gift.title == "Darowizna, ewa@example.org"
    assert (fee.amount_minor, fee.direction) == (1250, LineDirection.DEBIT)


def test_generic_csv_reads_currency_and_the_banks_reference(app: Any) -> None:
    with app.app_context():
        statement = read_statement((DATA / "generic.csv").read_bytes(), "csv", "generic")
    assert [(line.amount_minor, line.currency, line.bank_reference) for line in statement.lines] == [
        (15000, "PLN", "B-0001"),
        (2500, "EUR", "B-0002"),
        (1250, "PLN", "B-0003"),
    ]


def test_the_same_booking_has_the_same_identity_in_overlapping_files() -> None:
    def line(day: int, title: str = "Darowizna") -> StatementLine:
        return StatementLine(date(2026, 12, day), 5000, "PLN", LineDirection.CREDIT, "Ewa", "PL1", title)

    december = with_identities("PL9", [line(1), line(2), line(2)])
    overlap = with_identities("PL9", [line(2), line(2), line(3)])
    # two equal gifts on one day are two bookings, and both are found again
    assert december[1].identity_key != december[2].identity_key
    assert [december[1].identity_key, december[2].identity_key] == [overlap[0].identity_key, overlap[1].identity_key]
    assert with_identities("PL8", [line(1)])[0].identity_key != december[0].identity_key


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-1 234,56", "-1234.56"),
        ("1,234.56", "1234.56"),
        ("1.234,56", "1234.56"),
        ("150,00 PLN", "150.00"),
        ("1\u00a0000,00", "1000.00"),
        ("12", "12.0"),
    ],
)
def test_amounts_are_read_as_banks_write_them(text: str, expected: str) -> None:
    assert str(parse_amount(text)[0]) == expected


@pytest.mark.parametrize(
    ("content", "file_format", "preset", "says"),
    [
        (b"", "mt940", None, "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "mt940", None, "binary"),
        (b"Hello, this is a letter.", "mt940", None, "not an MT940"),
        (b":20:X\r\n:25:/PL1\r\n:61:garbage\r\n-", "mt940", None, "MT940"),
        (b"a,b,c\n1,2,3\n", "csv", "generic", "no header row"),
        (b"date,amount,currency,name,account,reference\n", "csv", "generic", "no column"),
        (b"date,amount,currency,name,account,title,reference\n2026-13-45,12,PLN,,,,\n", "csv", "generic", "Row 2"),
        (b"date,amount,currency,name,account,title,reference\n2026-12-01,lots,PLN,,,,\n", "csv", "generic", "Row 2"),
        (b"date,amount,currency,name,account,title,reference\n2026-12-01,1.234,PLN,,,,\n", "csv", "generic", "Row 2"),
        (b"date,amount,currency,name,account,title,reference\n2026-12-01,1,XQZ,,,,\n", "csv", "generic", "Row 2"),
        (b"date,amount\n", "csv", "nosuchbank", "Choose the bank"),
        (b"date,amount\n", "pdf", None, "MT940 or CSV"),
    ],
)
def test_a_file_that_is_not_a_statement_is_refused_saying_why(
    app: Any, content: bytes, file_format: str, preset: str | None, says: str
) -> None:
    with app.test_request_context(), pytest.raises(Refused) as refused:
        read_statement(content, file_format, preset)
    assert says in refused.value.message()


def test_a_layout_from_the_setting_needs_the_columns_read(tmp_path: Path) -> None:
    env = {"SECRET_KEY": "k" * 40}

    def layouts(value: str) -> Any:
        return load_config(tmp_path, {**env, "SUPPORTERS_BANK_CSV_LAYOUTS": value})["SUPPORTERS_BANK_CSV_LAYOUTS"]

    found = layouts('{"pko": {"delimiter": ";", "booked_on": "Data", "amount": "Kwota", "title": "Opis"}}')
    layout = layout_from_setting("pko", found["pko"])
    assert (layout.label, layout.delimiter, layout.currency) == ("pko", ";", "PLN")
    for bad, says in [
        ('{"pko": {"booked_on": "Data", "amount": "Kwota"}}', "title"),
        ('{"pko": {"booked_on": "D", "amount": "K", "title": "O", "colour": "red"}}', "unknown"),
        ('{"pko": {"booked_on": "D", "amount": "K", "title": "O", "delimiter": ";;"}}', "one character"),
        ("[1]", "JSON object"),
        ("{nope", "JSON object"),
    ]:
        with pytest.raises(ConfigError, match=says):
            layouts(bad)
    assert {"mbank", "generic"} <= set(PRESETS)


def test_an_mt940_file_of_several_daily_statements_is_read_whole(app: Any) -> None:
    one = (DATA / "statement.mt940").read_bytes()
    next_day = one.replace(b"261201", b"261203").replace(b"2612011201", b"2612031203")
    for number in range(1, 5):
        next_day = next_day.replace(f"2612010000{number}".encode(), f"2612030000{number}".encode())
        next_day = next_day.replace(f"2612020000{number}".encode(), f"2612030000{number}".encode())
    with app.app_context():
        statement = read_statement(one + next_day, "mt940")
    assert len(statement.lines) == 8
    assert len({line.identity_key for line in statement.lines}) == 8


MT940_WITH = """:20:STARTUMS
:25:PL61109010140000071219812874
:28C:1/1
:60F:C261130PLN1000,00
{lines}:62F:C261201PLN1000,00
"""


def mt940(*lines: str) -> bytes:
    return MT940_WITH.format(lines="".join(lines)).encode()


def test_the_mark_says_which_way_the_money_went_reversals_included(app: Any) -> None:
    content = mt940(
        ":61:2612011201C20,00NTRFNONREF//B1\n:86:020~00TRF~20DAR\n",
        ":61:2612011201RC50,00NTRFNONREF//B2\n:86:020~00TRF~20ZWROT\n",
        ":61:2612011201RD30,00NTRFNONREF//B3\n:86:020~00TRF~20STORNO\n",
        ":61:2612011201D10,00NTRFNONREF//B4\n:86:020~00TRF~20OPLATA\n",
    )
    with app.app_context():
        lines = read_statement(content, "mt940").lines
    assert [(line.bank_reference, line.direction) for line in lines] == [
        ("B1", LineDirection.CREDIT),
        ("B2", LineDirection.DEBIT),  # a credit taken back is money out, never a gift
        ("B3", LineDirection.CREDIT),
        ("B4", LineDirection.DEBIT),
    ]


def test_a_booking_of_nothing_is_left_out(app: Any) -> None:
    content = mt940(":61:2612011201C0,00NTRFNONREF//B1\n:86:020~00TRF~20ZERO\n", ":61:2612011201C5,00NTRFNONREF//B2\n")
    with app.app_context():
        assert [line.bank_reference for line in read_statement(content, "mt940").lines] == ["B2"]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (
            b"date,amount,currency,name,account,title,reference\n2026-12-01,99999999999999999999999.00,PLN,A,,t,R1\n",
            "an amount no bank account holds",
        ),
        (
            b'date,amount,currency,name,account,title,reference\n2026-12-01,5.00,PLN,"' + b"x" * 140_000 + b'",,t,R1\n',
            "cannot be read",
        ),
    ],
)
def test_a_csv_no_bank_writes_is_refused_not_a_crash(app: Any, content: bytes, says: str) -> None:
    with app.app_context(), pytest.raises(Refused) as refused:
        read_statement(content, "csv", "generic")
    with app.test_request_context():
        assert says in refused.value.message()


def test_a_bank_reference_reused_on_another_day_is_another_booking() -> None:
    def line(day: int) -> StatementLine:
        return StatementLine(
            booked_on=date(2026, 12, day),
            amount_minor=5000,
            currency="PLN",
            direction=LineDirection.CREDIT,
            counterparty_name="A",
            counterparty_account=None,
            title="t",
            bank_reference="CUSTREF-1",
        )

    first, second = with_identities("PL61109010140000071219812874", [line(1), line(2)])
    assert first.identity_key != second.identity_key
