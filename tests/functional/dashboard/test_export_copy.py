"""On PostgreSQL the gifts export is written by the database (`COPY … TO STDOUT`); the
issue allows that second path only if it writes, byte for byte, the file the Python path
writes. These tests make the same gifts, of hostile text and every kind of amount, and
compare the two files whole: line ends, quoting, empty and NULL cells, times, each
currency's decimals, formula starts, labels in each language, the BOM.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supporters.extensions import db as _db
from supporters.giving import queries
from supporters.lib import exporting, money
from supporters.models import Campaign, Gift, GiftKind, GiftMethod, GiftStatus
from tests import factories

CURRENCIES = ["PLN", "EUR", "USD", "JPY", "CLP", "KWD", "BHD"]
#: cells a spreadsheet or a CSV reader could trip on, beside any text Hypothesis makes
HOSTILE = [
    "",
    "=1+2",
    "+48 600 000 000",
    "-5",
    "@SUM(A1)",
    "\tindented",
    "\rreturn",
    "a,b",
    'say "hi"',
    '"',
    "line\nbreak",
    "cr\r\nlf",
    "trailing\r",
    " spaced ",
    "zażółć gęślą jaźń",
    "\\.",
    "\\N",
    "NULL",
    "'quoted",
    "😀",
]
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
CELL = st.none() | st.sampled_from(HOSTILE) | TEXT
#: times near midnight and the DST changes of 2026 (29 March, 25 October in Warsaw), in any zone
MOMENTS = st.one_of(
    st.sampled_from(
        [
            datetime(2026, 1, 31, 23, 59, 59, 999999, tzinfo=UTC),
            datetime(2026, 3, 29, 0, 59, 59, 500000, tzinfo=UTC),
            datetime(2026, 3, 29, 1, 0, 0, tzinfo=UTC),
            datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
            datetime(2026, 10, 25, 1, 0, 0, 1, tzinfo=UTC),
            datetime(2026, 12, 31, 23, 0, tzinfo=ZoneInfo("Europe/Warsaw")),
        ]
    ),
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 12, 31),
        timezones=st.sampled_from([UTC, ZoneInfo("Europe/Warsaw"), ZoneInfo("America/St_Johns")]),
    ),
)
_unique = itertools.count(1)


@dataclass
class GiftDraw:
    fields: dict[str, Any]
    name: str
    email: str
    plan_interval: str | None
    campaign_slug: str | None


@st.composite
def gift_draws(draw: st.DrawFn) -> GiftDraw:
    amount = draw(st.integers(1, 10**12) | st.sampled_from([1, 9, 10, 99, 100, 101, 999, 1000]))
    fields: dict[str, Any] = {
        "amount_minor": amount,
        "currency": draw(st.sampled_from(CURRENCIES)),
        "amount_base_minor": draw(st.none() | st.integers(1, 10**12)),
        "refunded_minor": draw(st.sampled_from([0, amount]) | st.integers(0, amount)),
        "status": draw(st.sampled_from(list(GiftStatus))),
        "kind": draw(st.sampled_from(list(GiftKind))),
        "method": draw(st.sampled_from(list(GiftMethod))),
        "created_at": draw(MOMENTS),
        "paid_at": draw(st.none() | MOMENTS),
        "fee_minor": draw(st.none() | st.integers(0, 10**9)),
        "net_minor": draw(st.none() | st.integers(-(10**9), 10**12)),
        "balance_currency": draw(st.none() | st.sampled_from(CURRENCIES)),
        "comment": draw(CELL),
        "offline_reference": draw(CELL),
        "source_article": draw(CELL),
        "source_variant": draw(CELL),
    }
    # unique columns: hostile at the start, made unique at the end
    for column in ("transfer_reference", "receipt_number", "stripe_checkout_session_id", "stripe_payment_intent_id"):
        text = draw(CELL)
        fields[column] = None if text is None else f"{text[:10]}{next(_unique)}"
    for column in ("stripe_charge_id", "stripe_invoice_id"):
        text = draw(st.none() | st.sampled_from(HOSTILE))
        fields[column] = None if text is None else f"{text}{next(_unique)}"
    return GiftDraw(
        fields=fields,
        name=draw(st.sampled_from(HOSTILE) | TEXT),
        email=f"{draw(st.sampled_from(HOSTILE) | TEXT)}{next(_unique)}@example.org",
        plan_interval=draw(st.none() | st.sampled_from(["month", "year"])),
        campaign_slug=draw(st.none() | st.sampled_from(HOSTILE[1:]) | TEXT.filter(bool)),
    )


def made(draws: list[GiftDraw]) -> None:
    campaigns: dict[str, int] = {}
    for one in draws:
        person = factories.supporter(name=one.name, email=one.email)
        fields = dict(one.fields)
        if one.plan_interval:
            fields["recurring_plan_id"] = factories.plan(person, interval=one.plan_interval).id
        if one.campaign_slug is not None:
            if one.campaign_slug not in campaigns:
                campaign = Campaign(slug=one.campaign_slug, name="Campaign", goal_currency="PLN")
                _db.session.add(campaign)
                _db.session.flush()
                campaigns[one.campaign_slug] = campaign.id
            fields["campaign_id"] = campaigns[one.campaign_slug]
        status = fields.pop("status")
        gift = factories.gift(person, **fields)
        # any status, as a gift may end in it: set past the transition table, which is not what is tested
        _db.session.execute(sa.update(Gift).where(Gift.id == gift.id).values(status=status))


@st.composite
def filter_draws(draw: st.DrawFn) -> queries.GiftFilters:
    """Any of the list's filters, so the COPY's parameters (enums, times, lists) are bound as
    the Python path's are."""
    filters = queries.GiftFilters()
    if draw(st.booleans()):
        filters.statuses = draw(st.lists(st.sampled_from(list(GiftStatus)), min_size=1, unique=True))
    if draw(st.booleans()):
        filters.date_from = draw(st.dates(date(2000, 1, 1), date(2100, 12, 31)))
        filters.date_to = filters.date_from + timedelta(days=draw(st.integers(0, 20000)))
    if draw(st.booleans()):
        filters.currency = draw(st.sampled_from(CURRENCIES))
        filters.amount_min = draw(st.none() | st.integers(1, 10**6))
    if draw(st.booleans()):
        filters.method = draw(st.sampled_from(list(GiftMethod)))
        filters.kind = draw(st.sampled_from(list(GiftKind)))
    return filters


@pytest.fixture
def on_postgresql(db: Any) -> None:
    if db.session.get_bind().dialect.name != "postgresql":
        pytest.skip("the COPY path is PostgreSQL's")


@pytest.fixture
def base_currency(app: Flask) -> Iterator[dict[str, Any]]:
    """The app's config, its reporting currency put back after the test."""
    before = app.config["SUPPORTERS_BASE_CURRENCY"]
    yield app.config
    app.config["SUPPORTERS_BASE_CURRENCY"] = before


def both_files(app: Flask, filters: queries.GiftFilters, lang: str, bom: bool) -> tuple[bytes, bytes]:
    with app.test_request_context(f"/dashboard/gifts/export.csv?lang={lang}", method="POST"):
        written = "".join(queries.export_written_by_python(filters, bom=bom)).encode()
        copied = b"".join(queries.export_written_by_postgresql(filters, bom=bom))
    return written, copied


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    draws=st.lists(gift_draws(), min_size=1, max_size=6),
    filters=st.just(queries.GiftFilters()) | filter_draws(),
    lang=st.sampled_from(["en", "pl"]),
    bom=st.booleans(),
    base=st.sampled_from(["PLN", "JPY", "KWD"]),
)
def test_the_copied_export_is_byte_for_byte_the_written_one(
    app: Flask,
    db: Any,
    on_postgresql: None,
    base_currency: dict[str, Any],
    draws: list[GiftDraw],
    filters: queries.GiftFilters,
    lang: str,
    bom: bool,
    base: str,
) -> None:
    base_currency["SUPPORTERS_BASE_CURRENCY"] = base
    savepoint = db.session.begin_nested()
    try:
        made(draws)
        written, copied = both_files(app, filters, lang, bom)
    finally:
        savepoint.rollback()
        db.session.expire_all()
    assert copied == written
    assert written.count(b"\r\n") >= 1 and written.startswith(b"\xef\xbb\xbfid," if bom else b"id,")


def test_the_proof_compares_files_that_hold_every_hard_cell(app: Flask, db: Any, on_postgresql: None) -> None:
    # the property above could pass by comparing two empty files: here, one file with them all
    person = factories.supporter(name='=cmd|" /C calc"!A0', email="-x@example.org")
    factories.gift(
        person,
        amount_minor=12345,
        currency="KWD",
        amount_base_minor=None,
        comment="",
        offline_reference='cr\r\nlf, "quoted"\nand\rmore',
        fee_minor=700,
        net_minor=-200,
        balance_currency="JPY",
        created_at=datetime(2026, 3, 29, 0, 59, 59, 999999, tzinfo=UTC),
    )
    written, copied = both_files(app, queries.GiftFilters(), "pl", True)
    assert copied == written
    line = written.split(b"\r\n")[1]
    assert b",12.345,KWD,,PLN,0.000,,700,'-200,JPY,," in line
    assert b'"cr\r\nlf, ""quoted""\nand\rmore"' in written
    assert b'\'=cmd|"" /C calc""!A0' in written and b"'-x@example.org" in written
    assert b"2026-03-29T00:59:59Z" in line


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    amount=st.integers(-(10**15), 10**15) | st.sampled_from([0, 1, -1, 5, -5, 99, 100, -100, 1000]),
    currency=st.sampled_from(CURRENCIES),
)
def test_amounts_written_by_postgresql_read_as_plain_writes_them(
    db: Any, on_postgresql: None, amount: int, currency: str
) -> None:
    minor = sa.literal(amount, sa.BigInteger())
    by_column = db.session.scalar(sa.select(exporting.plain_sql(minor, sa.literal(currency))))
    by_code = db.session.scalar(sa.select(exporting.plain_sql(minor, currency)))
    assert by_column == by_code == money.plain(amount, currency)
    assert Decimal(by_code) == money.to_decimal(amount, currency)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=CELL)
def test_cells_made_inert_by_postgresql_read_as_neutralise_makes_them(
    db: Any, on_postgresql: None, text: str | None
) -> None:
    written = db.session.scalar(sa.select(exporting.inert_sql(sa.literal(text, sa.String()))))
    assert (written or "") == exporting.neutralise(text)
    assert written != "", "an empty cell is NULL, which COPY writes as csv.writer writes ''"


@pytest.mark.parametrize("lang", ["en", "pl"])
def test_the_export_is_written_by_postgresql_there_and_by_python_elsewhere(
    client: Any, db: Any, fundraiser: Any, monkeypatch: pytest.MonkeyPatch, lang: str
) -> None:
    factories.paid_gift(comment="=hello", offline_reference="a\r\nb")
    copies: list[bool] = []
    real = exporting.copy_csv

    def spied(*args: Any, **kwargs: Any) -> Iterator[bytes]:
        copies.append(True)
        return real(*args, **kwargs)

    monkeypatch.setattr(exporting, "copy_csv", spied)
    response = client.post(f"/dashboard/gifts/export.csv?lang={lang}")
    body = response.get_data()
    on_postgresql = db.session.get_bind().dialect.name == "postgresql"
    assert copies == ([True] if on_postgresql else [])
    assert body.count(b"\r\n") == 3 and b",'=hello," in body and b'"a\r\nb"' in body


def test_the_export_is_audited_and_committed_before_its_first_row_leaves(committed_app: Flask) -> None:
    app = committed_app
    client = app.test_client()
    with app.app_context():
        user = factories.staff("fundraiser")
        factories.paid_gift(comment="first")
        _db.session.commit()
        assert factories.sign_in(client, user).status_code == 303
        url = _db.engine.url
    response = client.post("/dashboard/gifts/export.csv")
    chunks = (chunk if isinstance(chunk, bytes) else chunk.encode() for chunk in response.response)
    assert next(chunks).startswith(b"id,"), "the header first, before any gift is read"
    other = sa.create_engine(url)
    try:
        with other.connect() as connection:
            audited = connection.scalar(sa.text("SELECT count(*) FROM audit_event WHERE action = 'gifts.export'"))
    finally:
        other.dispose()
    rows = b"".join(chunks)
    response.close()
    assert audited == 1, "another connection sees the audit row before any gift's line is read"
    assert b",first," in rows


@pytest.mark.parametrize("cells", [["'5%'", "NULL"], ["'5%'", "'a,\"b'"]])
def test_a_copied_file_keeps_a_percent_sign_with_or_without_parameters(
    app: Flask, db: Any, on_postgresql: None, cells: list[str]
) -> None:
    # psycopg merges parameters only when there are some, and with them undoes the %% of the SQL
    statement = sa.select(*[sa.literal_column(cell) for cell in cells])
    if cells[1] != "NULL":
        statement = statement.where(sa.literal(1) == 1)
    with app.test_request_context():
        copied = b"".join(exporting.copy_csv(["a", "b"], statement))
    assert copied == ("a,b\r\n5%," + ("" if cells[1] == "NULL" else '"a,""b"') + "\r\n").encode()
