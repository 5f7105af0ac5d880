"""Every currency counted (giving/currency.py): an offline gift in another currency is
converted at the National Bank of Poland's table A of the last working day before it;
without that table it waits, "not converted yet", never 0, and is converted when
`flask rates import` / `flask rates fetch` brings the rates, with every total moved."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from supporters.extensions import db
from supporters.giving import currency, offline_gifts
from supporters.lib import nbp
from supporters.models import AuditEvent, ExchangeRate, Gift, GiftMethod, Supporter, giving
from tests import factories

DATA = Path(__file__).resolve().parents[1] / "data" / "nbp"
TABLES = DATA / "tables_a.json"
ARCHIVE = DATA / "archiwum_tab_a_2026_sample.csv"


def load(path: Path = TABLES) -> currency.ImportReport:
    return currency.import_tables(nbp.read_tables(path.read_bytes()))


def offline_gift(amount_minor: int, code: str, received_on: date, person: Supporter | None = None) -> Gift:
    return offline_gifts.record_offline_gift(
        person or factories.supporter(),
        amount_minor=amount_minor,
        currency=code,
        method=GiftMethod.BANK_TRANSFER,
        received_on=received_on,
        staff_user=factories.staff("admin"),
        send_receipt=False,
    )


def totals_in_step() -> dict[Any, tuple[int, int]]:
    connection = db.session.connection()
    stored = giving.stored_totals(connection)
    assert stored == giving.totals_from_gifts(connection)
    return stored


# --- The rule ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("received_on", "table", "expected"),
    [
        # Tuesday 1 December: Monday's table
        (date(2026, 12, 1), "231/A/NBP/2026", 42241),
        # Monday 30 November, the day of a table: the one before it (Friday's), never the day's own
        (date(2026, 11, 30), "230/A/NBP/2026", 42352),
        # a Saturday and a Sunday: Friday's
        (date(2026, 11, 28), "230/A/NBP/2026", 42352),
        (date(2026, 11, 29), "230/A/NBP/2026", 42352),
        # Friday 27 November: Thursday's
        (date(2026, 11, 27), "229/A/NBP/2026", 42387),
    ],
)
def test_an_offline_gift_is_converted_at_the_table_of_the_last_working_day_before_it(
    db: Any, received_on: date, table: str, expected: int
) -> None:
    load()
    gift = offline_gift(10000, "EUR", received_on)
    assert (gift.amount_base_minor, gift.base_rate_table) == (expected, table)


def test_minor_units_follow_each_currency_and_rates_quoted_per_hundred(db: Any) -> None:
    load()
    tuesday = date(2026, 12, 1)
    assert currency.convert(10_000, "JPY", tuesday) == currency.Conversion(23_850, "231/A/NBP/2026")  # ¥10,000
    assert currency.convert(1_000_000, "HUF", tuesday) == currency.Conversion(10_852, "231/A/NBP/2026")  # 10,000 Ft
    assert currency.convert(1, "USD", tuesday) == currency.Conversion(4, "231/A/NBP/2026")  # 3.66 grosze rounds to 4
    assert currency.convert(5000, "PLN", tuesday) == currency.Conversion(5000, None)


def test_with_a_reporting_currency_other_than_the_zloty_the_same_table_gives_the_cross_rate(
    db: Any, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    load()
    monkeypatch.setitem(app.config, "SUPPORTERS_BASE_CURRENCY", "EUR")
    tuesday = date(2026, 12, 1)
    assert currency.convert(42241, "PLN", tuesday) == currency.Conversion(10000, "231/A/NBP/2026")
    # 100 USD × 3.6573 / 4.2241 = 86.58 EUR
    assert currency.convert(10000, "USD", tuesday) == currency.Conversion(8658, "231/A/NBP/2026")
    assert currency.convert(10000, "EUR", tuesday) == currency.Conversion(10000, None)


def test_without_a_table_in_the_week_before_a_gift_waits_rather_than_take_an_old_rate(db: Any) -> None:
    load()
    last = date(2026, 11, 30)
    assert currency.convert(10000, "EUR", last + timedelta(days=7)) == currency.Conversion(42241, "231/A/NBP/2026")
    assert currency.convert(10000, "EUR", last + timedelta(days=8)) is None
    before_any = offline_gift(10000, "EUR", date(2026, 11, 20))  # the sample's tables are all later
    assert before_any.amount_base_minor is None and before_any.base_rate_table is None
    unknown = offline_gift(10000, "CZK", date(2026, 12, 1))  # not in the sample tables
    assert unknown.amount_base_minor is None


# --- Waiting, then converted -------------------------------------------------------------------


def test_a_gift_without_its_rate_counts_as_not_converted_and_is_converted_when_the_rates_arrive(db: Any) -> None:
    person = factories.supporter()
    in_pln = offline_gift(5000, "PLN", date(2026, 12, 1), person)
    in_eur = offline_gift(10000, "EUR", date(2026, 12, 1), person)
    assert in_pln.amount_base_minor == 5000 and in_eur.amount_base_minor is None
    assert person.lifetime_total_minor == 5000 and person.gift_count == 2
    assert currency.waiting_count() == 1
    before = totals_in_step()

    report = load()

    assert (report.tables, report.new_rates, report.converted) == (3, 18, 1)
    assert (report.first, report.last) == (date(2026, 11, 26), date(2026, 11, 30))
    db.session.refresh(in_eur)
    db.session.refresh(person)
    assert (in_eur.amount_base_minor, in_eur.base_rate_table) == (42241, "231/A/NBP/2026")
    assert person.lifetime_total_minor == 5000 + 42241
    assert currency.waiting_count() == 0
    after = totals_in_step()
    assert (
        sum(amount for amount, _ in after.values()) - sum(amount for amount, _ in before.values()) == 42241
    )  # one row: the day's "kind"


def test_importing_the_same_rates_again_changes_nothing(db: Any) -> None:
    load()
    again = load()
    assert (again.new_rates, again.known_rates, again.converted) == (0, 18, 0)
    assert db.session.scalar(select(func.count()).select_from(ExchangeRate)) == 18
    # the archive shares 26 November with the API's file, and adds two days
    archive = load(ARCHIVE)
    assert (archive.new_rates, archive.known_rates) == (12, 6)


def test_a_file_that_disagrees_with_a_stored_rate_is_refused_whole(db: Any) -> None:
    load()
    tables = json.loads(TABLES.read_text())
    tables[0]["rates"][0]["mid"] = 3.9999  # 26 November's USD
    tables.append(
        {"table": "A", "no": "232/A/NBP/2026", "effectiveDate": "2026-12-01", "rates": [{"code": "EUR", "mid": 4.21}]}
    )
    with pytest.raises(currency.RatesConflict, match="USD on 2026-11-26"):
        currency.import_tables(nbp.read_tables(json.dumps(tables).encode()))


def test_a_corrected_date_converts_the_gift_again_at_that_date_s_table(db: Any) -> None:
    load()
    gift = offline_gift(10000, "EUR", date(2026, 12, 1))
    assert gift.amount_base_minor == 42241
    offline_gifts.correct_offline_gift(
        gift,
        amount_minor=10000,
        received_on=date(2026, 11, 27),
        method=GiftMethod.BANK_TRANSFER,
        reference=None,
        reason="the bank statement says Friday",
        staff_user=factories.staff("admin"),
        notify=False,
    )
    assert (gift.amount_base_minor, gift.base_rate_table) == (42387, "229/A/NBP/2026")
    totals_in_step()
    offline_gifts.correct_offline_gift(
        gift,
        amount_minor=10000,
        received_on=date(2026, 11, 20),  # no table loaded for the week before
        method=GiftMethod.BANK_TRANSFER,
        reference=None,
        reason="it was the week before",
        staff_user=factories.staff("admin"),
        notify=False,
    )
    assert gift.amount_base_minor is None and gift.base_rate_table is None
    totals_in_step()
    assert gift.supporter.lifetime_total_minor == 0


# --- The commands ------------------------------------------------------------------------------


def test_rates_import_loads_a_file_converts_the_waiting_gifts_and_is_audited(db: Any, cli: Any) -> None:
    gift = offline_gift(10000, "EUR", date(2026, 12, 1))
    db.session.commit()
    result = cli.invoke(args=["rates", "import", str(TABLES)])
    assert result.exit_code == 0, result.output
    assert "Tables: 3 (2026-11-26 to 2026-11-30); rates new: 18, already loaded: 0." in result.output
    assert "Gifts converted now: 1; still waiting for a rate: 0." in result.output
    assert db.session.get(Gift, gift.id, populate_existing=True).amount_base_minor == 42241
    audit = db.session.scalars(select(AuditEvent).filter_by(action="rates.import")).one()
    assert audit.details["new_rates"] == 18 and audit.details["converted"] == 1


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"[{", "not valid JSON"),
        (b'[{"table": "C", "no": "1/C/NBP/2026", "effectiveDate": "2026-11-30", "rates": []}]', "only table A"),
    ],
)
def test_rates_import_of_a_bad_file_says_why_and_stores_nothing(
    db: Any, cli: Any, tmp_path: Path, content: bytes, says: str
) -> None:
    path = tmp_path / "rates.json"
    path.write_bytes(content)
    result = cli.invoke(args=["rates", "import", str(path)])
    assert result.exit_code == 1 and says in result.output and "Traceback" not in result.output
    assert db.session.scalar(select(func.count()).select_from(ExchangeRate)) == 0


class _Bank(BaseHTTPRequestHandler):
    """The bank's API on a local port: answers `last/N` with the sample file, 404 otherwise."""

    asked: list[str] = []

    def do_GET(self) -> None:
        type(self).asked.append(self.path)
        if self.path.startswith("/api/exchangerates/tables/A/last/"):
            body = TABLES.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
        else:
            body = b"404 NotFound - Not Found - Brak danych"
            self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def bank(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Bank)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/api"
    monkeypatch.setitem(app.config, "SUPPORTERS_NBP_API_URL", url)
    _Bank.asked = []
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


def test_rates_fetch_asks_the_configured_api_for_the_last_tables(db: Any, cli: Any, bank: str) -> None:
    result = cli.invoke(args=["rates", "fetch", "--last", "5"])
    assert result.exit_code == 0, result.output
    assert _Bank.asked == ["/api/exchangerates/tables/A/last/5/?format=json"]
    assert "rates new: 18" in result.output
    assert db.session.scalar(select(func.count()).select_from(ExchangeRate)) == 18
    assert db.session.get(ExchangeRate, ("EUR", date(2026, 11, 30))).rate == Decimal("4.2241")


def test_rates_fetch_says_so_when_the_bank_does_not_answer(
    db: Any, cli: Any, app: Flask, bank: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "SUPPORTERS_NBP_API_URL", bank + "/elsewhere")
    result = cli.invoke(args=["rates", "fetch"])
    assert result.exit_code == 1 and "did not answer" in result.output and "404" in result.output
    monkeypatch.setitem(app.config, "SUPPORTERS_NBP_API_URL", "http://127.0.0.1:9")
    result = cli.invoke(args=["rates", "fetch"])
    assert result.exit_code == 1 and "did not answer" in result.output
    assert cli.invoke(args=["rates", "fetch", "--last", "0"]).exit_code == 2


# --- What staff see ----------------------------------------------------------------------------


def test_staff_see_what_is_not_converted_yet_and_then_its_conversion(db: Any, client: Any) -> None:
    user = factories.staff("admin")
    factories.sign_in(client, user)
    person = factories.supporter(name="Greta Lind")
    gift = offline_gift(10000, "EUR", date(2026, 12, 1), person)
    db.session.commit()

    overview = client.get("/dashboard/").get_data(as_text=True)
    assert "Not in these figures yet" in overview and '<span class="money">€100.00</span> in 1 gift' in overview
    health = client.get("/dashboard/health/").get_data(as_text=True)
    assert "Gifts not converted yet (1)" in health and f"/dashboard/gifts/{gift.id}" in health
    assert "No exchange-rate table is loaded." in health and "flask rates fetch" in health
    detail = client.get(f"/dashboard/gifts/{gift.id}").get_data(as_text=True)
    assert "not converted yet: waiting for the exchange rate of the working day before" in detail
    assert "Processing fee" not in detail  # an offline gift has none
    supporter_page = client.get(f"/dashboard/supporters/{person.id}").get_data(as_text=True)
    assert 'and <span class="money">€100.00</span> in 1 gift not converted yet' in supporter_page

    load()
    db.session.commit()
    overview = client.get("/dashboard/").get_data(as_text=True)
    assert "Not in these figures yet" not in overview and "422.41" in overview
    health = client.get("/dashboard/health/").get_data(as_text=True)
    assert "Gifts not converted yet (0)" in health and "231/A/NBP/2026" in health
    detail = client.get(f"/dashboard/gifts/{gift.id}").get_data(as_text=True)
    assert "422.41" in detail and "at the NBP average rate, table 231/A/NBP/2026" in detail
    assert "not converted yet" not in client.get(f"/dashboard/supporters/{person.id}").get_data(as_text=True)


def test_a_stripe_gift_shows_its_fee_and_net_in_the_account_s_currency(db: Any, client: Any) -> None:
    factories.sign_in(client, factories.staff("admin"))
    gift = factories.paid_gift(
        amount_minor=2000, currency="EUR", amount_base_minor=None, stripe_payment_intent_id="pi_x1"
    )
    db.session.commit()
    detail = client.get(f"/dashboard/gifts/{gift.id}").get_data(as_text=True)
    assert "waiting for Stripe" in detail and detail.count("not known yet") == 2
    gift.fee_minor, gift.net_minor, gift.balance_currency, gift.amount_base_minor = 227, 8221, "PLN", 8448
    db.session.commit()
    detail = client.get(f"/dashboard/gifts/{gift.id}").get_data(as_text=True)
    assert "as it reached the account (Stripe)" in detail
    fee = detail.split('class="gift-fee">', 1)[1].split("</dd>", 1)[0]
    net = detail.split('class="gift-net">', 1)[1].split("</dd>", 1)[0]
    assert "2.27" in fee and "PLN" in fee and "82.21" in net


def test_a_table_loaded_late_converts_again_the_gifts_that_took_an_older_one(db: Any) -> None:
    tables = json.loads(TABLES.read_text())
    thursday, friday, monday = tables
    currency.import_tables(nbp.read_tables(json.dumps([thursday, monday]).encode()))
    saturday = offline_gift(10000, "EUR", date(2026, 11, 28))
    assert saturday.base_rate_table == "229/A/NBP/2026"  # Friday's table is missing: Thursday's
    tuesday = offline_gift(10000, "EUR", date(2026, 12, 1))
    assert tuesday.base_rate_table == "231/A/NBP/2026"

    report = currency.import_tables(nbp.read_tables(json.dumps([friday]).encode()))

    assert report.converted == 1
    db.session.refresh(saturday)
    db.session.refresh(tuesday)
    assert (saturday.amount_base_minor, saturday.base_rate_table) == (42352, "230/A/NBP/2026")
    assert tuesday.base_rate_table == "231/A/NBP/2026"
    assert saturday.supporter.lifetime_total_minor == 42352
    totals_in_step()
