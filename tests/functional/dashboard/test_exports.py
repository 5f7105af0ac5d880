"""Exports are POST requests with the CSRF token: a link (in an e-mail, on another site,
in an <img>) cannot make a signed-in staff member's browser download personal data, and
no export is written to the audit log that staff did not ask for.

The filters travel in the form's address, as the list shows them; the body carries the
token and the choice of a BOM.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from supporters.lib import exporting
from supporters.models import AuditEvent, GiftKind, GiftMethod, GiftStatus
from supporters.models.base import UTCDateTime
from tests import factories

EXPORTS = ["/dashboard/supporters/export.csv", "/dashboard/gifts/export.csv"]
LISTS = {
    "/dashboard/supporters/export.csv": "/dashboard/supporters/",
    "/dashboard/gifts/export.csv": "/dashboard/gifts/",
}


def exports_audited(db: Any) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action.like("%.export"))))


@pytest.fixture
def csrf(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """CSRF protection as in production (the tests' app turns it off)."""
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)


def token_from(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the page has no CSRF token"
    return match.group(1)


@pytest.mark.parametrize("export", EXPORTS)
def test_an_export_by_get_is_refused_and_not_audited(client: Any, db: Any, fundraiser: Any, export: str) -> None:
    factories.paid_gift()
    response = client.get(export + "?bom=1")
    response.get_data()  # read to the end (a streamed export holds the request open)
    assert response.status_code == 405
    assert response.mimetype != "text/csv"
    assert exports_audited(db) == []


@pytest.mark.parametrize("export", EXPORTS)
def test_an_export_without_the_csrf_token_is_refused_and_not_audited(
    client: Any, db: Any, fundraiser: Any, csrf: None, export: str
) -> None:
    factories.paid_gift()
    for data in ({}, {"csrf_token": "forged"}, {"bom": "1"}):
        response = client.post(export, data=data)
        response.get_data()
        assert response.status_code == 400, data
        assert response.mimetype != "text/csv"
    assert exports_audited(db) == []


@pytest.mark.parametrize("export", EXPORTS)
def test_the_lists_export_form_posts_its_filters_with_the_token(
    client: Any, db: Any, fundraiser: Any, csrf: None, export: str
) -> None:
    factories.paid_gift()
    query = "country=PL" if "supporters" in export else "currency=PLN"
    page = client.get(f"{LISTS[export]}?{query}").get_data(as_text=True)
    form = re.search(rf'<form[^>]*method="post"[^>]*action="{re.escape(export)}\?([^"]*)"', page)
    assert form, "the list offers its export as a form that posts"
    assert form.group(1) == query

    response = client.post(f"{export}?{query}", data={"csrf_token": token_from(page), "bom": "1"})

    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.get_data(as_text=True).startswith("\ufeff")
    [event] = exports_audited(db)
    assert event.details["bom"] is True


def test_the_exports_page_offers_each_export_as_a_form(client: Any, db: Any, fundraiser: Any, csrf: None) -> None:
    page = client.get("/dashboard/exports/").get_data(as_text=True)
    for export in EXPORTS:
        assert re.search(rf'<form[^>]*method="post"[^>]*action="{re.escape(export)}"', page), export
    assert 'href="/dashboard/supporters/export.csv' not in page and 'href="/dashboard/gifts/export.csv' not in page
    response = client.post(EXPORTS[1], data={"csrf_token": token_from(page)})
    assert response.status_code == 200 and response.get_data(as_text=True).startswith("id,")


# --- What the files hold -------------------------------------------------------------------


def read_csv(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True).removeprefix("\ufeff"))))


@pytest.mark.parametrize("export", EXPORTS)
def test_every_timestamp_is_utc_and_its_column_says_so(client: Any, db: Any, fundraiser: Any, export: str) -> None:
    # 23:30 UTC on 31 January is already 1 February in Warsaw: the file keeps UTC, not the day staff see
    person = factories.supporter(name="Near Midnight")
    factories.paid_gift(person, paid_at=datetime(2026, 1, 31, 23, 30, 5, 123456, tzinfo=UTC))
    person.first_gift_at = person.last_gift_at = datetime(2026, 1, 31, 23, 30, 5, 123456, tzinfo=UTC)
    [row] = read_csv(client.post(export, query_string={"q": "Near Midnight"} if "supporters" in export else {}))
    stamps = {name: value for name, value in row.items() if name.endswith("_at_utc")}
    assert stamps and not [name for name in row if name.endswith("_at")], "no timestamp column without its zone"
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", value) for value in stamps.values()), stamps
    paid = row.get("paid_at_utc") or row["last_gift_at_utc"]
    assert paid == "2026-01-31T23:30:05Z"


def test_the_gifts_export_has_the_transfer_reference_comment_fee_and_net(client: Any, db: Any, fundraiser: Any) -> None:
    transfer = factories.paid_gift(
        method=GiftMethod.BANK_TRANSFER,
        amount_minor=10000,
        amount_base_minor=10000,
        transfer_reference="DAR 2026 000153 0",
        offline_reference="Darowizna dla fundacji",
        comment="=for the winter appeal",
    )
    card = factories.paid_gift(amount_minor=5000, amount_base_minor=2400, currency="EUR")
    card.fee_minor, card.net_minor, card.balance_currency, card.refunded_minor = 105, 2295, "PLN", 1000
    card.status = GiftStatus.PARTIALLY_REFUNDED
    db.session.flush()
    rows = {row["id"]: row for row in read_csv(client.post("/dashboard/gifts/export.csv"))}
    bank = rows[str(transfer.id)]
    assert (bank["transfer_reference"], bank["offline_reference"]) == ("DAR 2026 000153 0", "Darowizna dla fundacji")
    assert bank["comment"] == "'=for the winter appeal", "a donor's comment is neutralised like any cell"
    assert (bank["fee"], bank["net"], bank["fee_currency"], bank["net_base"]) == ("", "", "", "100.00")
    stripe = rows[str(card.id)]
    assert (stripe["amount"], stripe["currency"], stripe["refunded"]) == ("50.00", "EUR", "10.00")
    assert (stripe["fee"], stripe["net"], stripe["fee_currency"]) == ("1.05", "22.95", "PLN")
    assert stripe["net_base"] == "19.20", "what the gift counts in the totals: its converted amount, net of refunds"


def test_each_code_has_a_readable_column_beside_it_in_the_exports_language(
    client: Any, db: Any, fundraiser: Any
) -> None:
    plan = factories.plan(interval="year")
    factories.paid_gift(method=GiftMethod.BANK_TRANSFER)
    factories.paid_gift(kind=GiftKind.RECURRING, recurring_plan_id=plan.id)
    response = client.post("/dashboard/gifts/export.csv?lang=pl")
    header = response.get_data(as_text=True).splitlines()[0].split(",")
    for code in ("status", "kind", "interval", "method"):
        assert header[header.index(code) + 1] == f"{code}_label", code
    by_method = {row["method"]: row for row in read_csv(response)}
    assert (by_method["bank_transfer"]["method_label"], by_method["bank_transfer"]["status_label"]) == (
        "przelew bankowy",
        "opłacona",
    )
    assert (by_method["bank_transfer"]["interval"], by_method["bank_transfer"]["interval_label"]) == ("", "")
    recurring = by_method["stripe"]
    assert (recurring["kind"], recurring["interval"], recurring["interval_label"]) == ("recurring", "year", "co roku")
    english = read_csv(client.post("/dashboard/gifts/export.csv?lang=en"))
    assert {row["status_label"] for row in english} == {"paid"} and {row["kind_label"] for row in english} == {
        "one-time",
        "recurring",
    }


def test_the_gifts_export_writes_each_currencys_decimals_a_negative_net_inert_and_null_as_empty(
    client: Any, db: Any, fundraiser: Any
) -> None:
    # the rows are made cell by cell in the export's own loop: every rule of `neutralise` holds there too
    dinar = factories.paid_gift(amount_minor=12345, currency="KWD", amount_base_minor=None, comment="")
    yen = factories.paid_gift(amount_minor=500, currency="JPY", offline_reference='say "hi", then\r\nleave')
    yen.fee_minor, yen.net_minor, yen.balance_currency = 700, -200, "JPY"
    db.session.flush()
    response = client.post("/dashboard/gifts/export.csv")
    rows = {row["id"]: row for row in read_csv(response)}
    kwd, jpy = rows[str(dinar.id)], rows[str(yen.id)]
    assert (kwd["amount"], kwd["refunded"], kwd["comment"], kwd["fee"], kwd["net_base"]) == (
        "12.345",
        "0.000",
        "",
        "",
        "",
    )
    assert (jpy["amount"], jpy["fee"], jpy["net"], jpy["fee_currency"]) == ("500", "700", "'-200", "JPY")
    assert jpy["offline_reference"] == 'say "hi", then\r\nleave'
    assert jpy["supporter_id"] == str(yen.supporter_id)
    assert '"say ""hi"", then\r\nleave"' in response.get_data(as_text=True)


def test_the_gifts_export_of_a_period_holds_the_gifts_of_that_period(client: Any, db: Any, fundraiser: Any) -> None:
    # a paid gift counts on the day it was paid, any other on the day it was made
    def made(day: int) -> datetime:
        return datetime(2026, 3, day, 12, tzinfo=UTC)

    inside_paid = factories.paid_gift(created_at=made(1), paid_at=made(10))
    outside_paid = factories.paid_gift(created_at=made(10), paid_at=made(20))
    inside_pending = factories.gift(created_at=made(12))
    outside_pending = factories.gift(created_at=made(2))
    rows = read_csv(client.post("/dashboard/gifts/export.csv?date_from=2026-03-05&date_to=2026-03-15"))
    ids = {int(row["id"]) for row in rows}
    assert ids == {inside_paid.id, inside_pending.id}
    assert not ids & {outside_paid.id, outside_pending.id}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    moment=st.datetimes(
        min_value=datetime(1970, 1, 1),
        max_value=datetime(2200, 12, 31),
        timezones=st.sampled_from([UTC]) | st.timezones(),
    )
)
def test_timestamps_written_by_the_database_read_as_iso_writes_them(db: Any, moment: datetime) -> None:
    if db.session.get_bind().dialect.name == "postgresql":
        # the session's zone must not matter: a server or a role may set any
        db.session.execute(sa.text("SET LOCAL TIME ZONE 'America/St_Johns'"))
    written = db.session.scalar(select(exporting.iso_sql(sa.literal(moment, UTCDateTime()))))
    assert written == exporting.iso(moment)
    assert db.session.scalar(select(exporting.iso_sql(sa.cast(sa.null(), UTCDateTime())))) is None
