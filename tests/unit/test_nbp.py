"""Reading the National Bank of Poland's table A files (lib/nbp.py): the API's JSON and
the archive CSV, both as shipped in tests/data/nbp, and every way a file can be wrong."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from supporters.lib.nbp import MAX_FILE_BYTES, RatesFileError, read_tables, tables_url

DATA = Path(__file__).resolve().parents[1] / "data" / "nbp"


def test_the_api_json_gives_each_table_with_its_number_day_and_exact_rates() -> None:
    tables = read_tables((DATA / "tables_a.json").read_bytes())
    assert [(t.number, t.effective_on) for t in tables] == [
        ("229/A/NBP/2026", date(2026, 11, 26)),
        ("230/A/NBP/2026", date(2026, 11, 27)),
        ("231/A/NBP/2026", date(2026, 11, 30)),
    ]
    last = tables[-1].rates
    assert last["EUR"] == Decimal("4.2241") and last["HUF"] == Decimal("0.010852")
    assert all(isinstance(rate, Decimal) for table in tables for rate in table.rates.values())


def test_the_archive_csv_in_windows_1250_divides_rates_quoted_per_hundred() -> None:
    tables = read_tables((DATA / "archiwum_tab_a_2026_sample.csv").read_bytes())
    assert [t.effective_on for t in tables] == [date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 26)]
    day = tables[-1]
    assert day.number == "229/A/NBP/2026"
    assert day.rates["HUF"] == Decimal("0.010871") and day.rates["JPY"] == Decimal("0.023911")
    assert day.rates["EUR"] == Decimal("4.2387")
    # the notes rows at the end (ISO codes, names, units, the source) are not days
    assert len(tables) == 3


def test_the_two_files_agree_on_the_day_they_share() -> None:
    from_json = {t.effective_on: t for t in read_tables((DATA / "tables_a.json").read_bytes())}
    from_csv = {t.effective_on: t for t in read_tables((DATA / "archiwum_tab_a_2026_sample.csv").read_bytes())}
    day = date(2026, 11, 26)
    assert from_json[day].number == from_csv[day].number
    assert from_json[day].rates == from_csv[day].rates


def test_one_currency_series_from_the_api_is_read_too() -> None:
    series = {
        "table": "A",
        "currency": "euro",
        "code": "EUR",
        "rates": [
            {"no": "230/A/NBP/2026", "effectiveDate": "2026-11-27", "mid": 4.2352},
            {"no": "231/A/NBP/2026", "effectiveDate": "2026-11-30", "mid": 4.2241},
        ],
    }
    tables = read_tables(json.dumps(series).encode())
    assert [(t.effective_on, t.rates) for t in tables] == [
        (date(2026, 11, 27), {"EUR": Decimal("4.2352")}),
        (date(2026, 11, 30), {"EUR": Decimal("4.2241")}),
    ]


def table(**changes: object) -> bytes:
    item: dict[str, object] = {
        "table": "A",
        "no": "231/A/NBP/2026",
        "effectiveDate": "2026-11-30",
        "rates": [{"code": "EUR", "mid": 4.2241}],
    }
    item.update(changes)
    return json.dumps([item]).encode()


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"[]", "no rates"),
        (b"[{", "not valid JSON"),
        (b"hello;world", "neither the API's JSON nor the archive CSV"),
        (b"data;nr tabeli\n20261130;231/A/NBP/2026\n", "names no currency"),
        (b"data;1EUR;pe\n20261130;4,22;\n", "no table number"),
        (b"data;1EUR;x\n20261340;4,22;231/A/NBP/2026\n", "not a date"),
        (b"data;1EUR;x\n20261130;abc;231/A/NBP/2026\n", "not a rate"),
        (b"data;1EUR;x\n20261130;-4,22;231/A/NBP/2026\n", "not a rate"),
        (table(table="C"), "only table A"),
        (table(table="B"), "only table A"),
        (table(no="231/C/NBP/2026"), "not a table A number"),
        (table(effectiveDate="30.11.2026"), "not a date"),
        (table(effectiveDate="2026-02-30"), "not a date"),
        (table(rates="EUR"), "not a list of rates"),
        (table(rates=[{"code": "eur", "mid": 4.2}]), "not a currency code"),
        (table(rates=[{"code": "EUR", "mid": 0}]), "not a rate"),
        (table(rates=[{"code": "EUR", "mid": "NaN"}]), "not a rate"),
        (table(rates=[{"code": "EUR", "mid": 1e308}]), "not a rate"),
        (table(rates=[{"code": "EUR", "mid": None}]), "not a rate"),
        (table(rates=[{"code": "EUR", "mid": True}]), "not a rate"),
        (b'["a table"]', "not an object"),
        (b'{"table": "A"}', "is not a table A number"),
        (b'data;1EUR;x\n20261130;"' + b"1" * 140_000 + b'";231/A/NBP/2026\n', "cannot be read"),
    ],
)
def test_a_file_that_is_not_table_a_says_what_is_wrong(data: bytes, says: str) -> None:
    with pytest.raises(RatesFileError, match=says):
        read_tables(data)


def test_two_different_tables_for_one_day_are_refused() -> None:
    first = json.loads(table())
    second = json.loads(table(no="232/A/NBP/2026"))
    with pytest.raises(RatesFileError, match="Two tables for 2026-11-30"):
        read_tables(json.dumps(first + second).encode())


def test_a_file_too_large_to_be_rates_is_refused_before_it_is_parsed() -> None:
    with pytest.raises(RatesFileError, match="larger than"):
        read_tables(b" " * (MAX_FILE_BYTES + 1))


def test_the_api_address_asks_for_json() -> None:
    assert (
        tables_url("https://api.nbp.pl/api/", 10)
        == "https://api.nbp.pl/api/exchangerates/tables/A/last/10/?format=json"
    )
