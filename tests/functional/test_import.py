"""Importing supporters and their gifts (supporters/imports/): a file read with a source's
column mapping, previewed row by row with nothing written, then imported in one
transaction or not at all; importing it again changes nothing; gifts keep their dates
and receipt numbers, send no e-mail and count in every total; consents come only with
their date and source. The command line does the same."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa

from supporters.extensions import db
from supporters.giving import lifecycle
from supporters.giving.totals import refresh_supporter_totals
from supporters.imports import mapping as mappings
from supporters.imports import operations, rows
from supporters.imports.preview import preview
from supporters.imports.reading import read_table
from supporters.imports.rows import ERROR, KNOWN, MATCH, NEW
from supporters.lib.errors import Refused
from supporters.models import (
    AuditEvent,
    Campaign,
    Consent,
    Gift,
    GiftMethod,
    GiftStatus,
    GivingTotal,
    ImportedRow,
    ImportRun,
    OutboxEmail,
    Supporter,
    SupporterSearchKey,
    derived,
    giving,
)
from supporters.models.base import Base
from supporters.models.supporter import rebuild_search_keys
from supporters.privacy import erasure
from tests import factories

DATA = Path(__file__).parents[1] / "data" / "imports"
SUPPORTERS = (DATA / "supporters.csv").read_bytes()
GIFTS = (DATA / "gifts.csv").read_bytes()


def row_counts() -> tuple[int, ...]:
    counts = [sa.select(sa.func.count()).select_from(t).scalar_subquery() for t in Base.metadata.sorted_tables]
    return tuple(db.session.execute(sa.select(*counts)).one())


def campaign() -> Campaign:
    row = Campaign(slug="general", name="General", goal_currency="PLN", goal_minor=100_000, preset_amounts={})
    db.session.add(row)
    db.session.flush()
    return row


def saved_mapping(supporters: bytes = SUPPORTERS, gifts: bytes | None = GIFTS, name: str = "Old CRM", **kw: Any) -> Any:
    supporter_headers = read_table(lambda: io.BytesIO(supporters), "s.csv").headers
    gift_headers = read_table(lambda: io.BytesIO(gifts), "g.csv").headers if gifts else []
    return mappings.save_mapping(
        name,
        supporter_columns=kw.pop("supporter_columns", None) or mappings.guess_supporters(supporter_headers),
        gift_columns=kw.pop("gift_columns", None) or mappings.guess_gifts(gift_headers),
        gifts_by=kw.pop("gifts_by", "source_id"),
        actor=None,
    )


def uploaded(supporters: bytes = SUPPORTERS, gifts: bytes | None = GIFTS, name: str = "supporters.csv") -> Any:
    run = operations.upload(
        supporters, file_name=name, gifts_content=gifts, gifts_file_name="gifts.csv" if gifts else None, actor=None
    )
    operations.use_mapping(run, mappings.mapping_named("Old CRM") or saved_mapping(supporters, gifts))
    return run


def imported(supporters: bytes = SUPPORTERS, gifts: bytes | None = GIFTS) -> ImportRun:
    run = uploaded(supporters, gifts)
    return operations.import_run(run, operations.source_of(run), actor=None)


def supporter(email: str) -> Supporter:
    found = db.session.scalar(sa.select(Supporter).filter_by(email_normalised=email))
    assert found is not None
    return found


def test_polish_and_english_headers_are_guessed() -> None:
    headers = read_table(lambda: io.BytesIO(SUPPORTERS), "s.csv").headers
    assert mappings.guess_supporters(headers) == {
        "source_id": "ID darczyńcy",
        "first_name": "Imię",
        "last_name": "Nazwisko",
        "email": "E-mail",
        "country": "Kraj",
        "language": "Język",
        "address_line1": "Ulica",
        "postal_code": "Kod pocztowy",
        "city": "Miasto",
        "tags": "Tagi",
        "newsletter": "Zgoda newsletter",
        "consent_date": "Data zgody",
        "consent_source": "Źródło zgody",
    }
    gift_headers = read_table(lambda: io.BytesIO(GIFTS), "g.csv").headers
    assert mappings.guess_gifts(gift_headers)["amount"] == "Kwota"
    assert mappings.guess_gifts(gift_headers)["receipt_number"] == "Nr potwierdzenia"
    assert mappings.guess_supporters(["Name", "Email Address", "ZIP"]) == {
        "name": "Name",
        "email": "Email Address",
        "postal_code": "ZIP",
    }


def test_the_preview_says_what_each_row_will_do_and_writes_nothing(db: Any) -> None:
    campaign()
    known = factories.supporter(email="Jan@Example.org", name="Jan N.")
    run = uploaded()
    before = row_counts()
    planned = preview(operations.source_of(run))
    assert row_counts() == before
    assert (planned.supporters[NEW], planned.supporters[MATCH], planned.supporters[ERROR]) == (2, 1, 0)
    assert planned.gifts[NEW] == 3 and planned.errors == 0
    jan = next(row for row in planned.rows if row.kind == "supporter" and row.number == 3)
    assert (jan.outcome, jan.supporter_id) == (MATCH, known.id)
    # a consent without its date and source is said to be left out
    assert any("Newsletter consent not imported" in message for message in jan.messages)
    assert planned.consents == 1


def test_an_import_creates_supporters_and_gifts_and_counts_them_in_every_total(db: Any) -> None:
    general = campaign()
    run = imported()
    anna = supporter("anna@example.org")
    assert (anna.name, anna.country, anna.language, anna.city) == ("Anna Śliwińska-Kowalczyk", "PL", "pl", "Warszawa")
    assert sorted(tag.tag for tag in anna.tags) == ["darczyńca stały", "zarząd"]
    assert supporter("jan@example.org").country == "PL"  # "Polska", read as its code
    gifts = db.session.scalars(sa.select(Gift).where(Gift.supporter_id == anna.id).order_by(Gift.paid_at)).all()
    assert [(g.amount_minor, g.method, g.status) for g in gifts] == [
        (125050, GiftMethod.BANK_TRANSFER, GiftStatus.SUCCEEDED),
        (10000, GiftMethod.CASH, GiftStatus.SUCCEEDED),
    ]
    # the original dates, the original receipt number, the campaign
    assert [g.paid_at.date() for g in gifts] == [date(2024, 3, 5), date(2024, 4, 5)]  # type: ignore[union-attr]
    assert gifts[0].receipt_number == "2024-000900" and gifts[0].campaign_id == general.id
    # the supporter's totals, the giving totals and the search keys, as the app keeps them
    db.session.refresh(anna)
    assert (anna.gift_count, anna.lifetime_total_minor) == (2, 135050)
    assert anna.first_gift_at is not None and anna.first_gift_at.date() == date(2024, 3, 5)
    assert (
        db.session.scalar(sa.select(GivingTotal.amount_base_minor).filter_by(dimension="campaign", key=str(general.id)))
        == 125050
    )
    assert db.session.scalar(sa.select(SupporterSearchKey.supporter_id).filter_by(key="anna@example.org")) == anna.id
    assert derived.rebuild(db.session.connection()) == derived.Rebuilt(False, False, 0)
    # no receipt e-mail for gifts the old system receipted long ago
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail)) == 0
    assert run.counts == {
        "supporters": {"new": 3, "match": 0, "known": 0},
        "gifts": {"new": 3, "known": 0},
        "consents": 1,
    }


def test_importing_the_same_file_again_changes_nothing(db: Any) -> None:
    campaign()
    imported()
    before = row_counts()
    run = uploaded()
    planned = preview(operations.source_of(run))
    assert (planned.supporters[KNOWN], planned.gifts[KNOWN], planned.supporters[NEW], planned.gifts[NEW]) == (
        3,
        3,
        0,
        0,
    )
    operations.import_run(run, operations.source_of(run), actor=None)
    assert row_counts()[1:] != () and _without_imports(row_counts()) == _without_imports(before)


def _without_imports(counts: tuple[int, ...]) -> tuple[int, ...]:
    skip = {"import_run", "audit_event"}
    return tuple(n for table, n in zip(Base.metadata.sorted_tables, counts, strict=True) if table.name not in skip)


def test_a_row_with_an_error_refuses_the_whole_import(db: Any) -> None:
    campaign()
    bad = GIFTS.replace(b"2024-06-01", (date.today() + timedelta(days=3)).isoformat().encode())
    run = uploaded(gifts=bad)
    planned = preview(operations.source_of(run), show="errors")
    assert planned.gifts[ERROR] == 1
    assert "future" in planned.rows[0].messages[0]
    before = row_counts()
    with pytest.raises(Refused) as refused:
        with db.session.begin_nested():
            operations.import_run(run, operations.source_of(run), actor=None)
    assert refused.value.status == 409 and "row 4 of gifts.csv" in refused.value.message()
    assert row_counts() == before


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("K-9;Zoe;X;not-an-address;;;;;;;;;", "is not valid"),
        ("K-9;Zoe;X;anna@EXAMPLE.org;;;;;;;;;", "same e-mail address as row 2"),
        ("K-1;Zoe;X;zoe@example.org;;;;;;;;;", "same id as row 2"),
        ("K-9;Zoe;X;zoe@example.org;Atlantis;;;;;;;;", "Unknown country"),
        ("K-9;;;zoe@example.org;;;;;;;;;", "No name"),
    ],
)
def test_a_row_that_cannot_be_imported_says_why(db: Any, line: str, reason: str) -> None:
    run = uploaded(SUPPORTERS + line.encode() + b"\n", gifts=None)
    planned = preview(operations.source_of(run), show="errors")
    assert [row.number for row in planned.rows] == [5]
    assert reason in " ".join(planned.rows[0].messages)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ((b"100;PLN", b"-5;PLN"), "cannot be read"),
        ((b"100;PLN", b"100;XYZ"), "Unknown currency"),
        ((b"05.04.2024", b"31.02.2024"), "cannot be read"),
        ((b"K-1;100", b"K-77;100"), "No supporter with the id"),
        (("gotówka;".encode(), b"karta;"), "Unknown method"),
        (("gotówka;;".encode(), "gotówka;2024-000900;".encode()), "same receipt number as row 2"),
        ((b"general;Na", b"winter;Na"), "No campaign"),
    ],
)
def test_a_gift_that_cannot_be_imported_says_why(db: Any, change: tuple[bytes, bytes], reason: str) -> None:
    campaign()
    run = uploaded(gifts=GIFTS.replace(*change))
    planned = preview(operations.source_of(run), show="errors")
    assert planned.gifts[ERROR] == 1, planned.rows
    assert reason in " ".join(planned.rows[0].messages)


def test_a_receipt_number_another_gift_has_is_a_row_error(db: Any) -> None:
    campaign()
    factories.paid_gift(receipt_number="2024-000900")
    planned = preview(operations.source_of(uploaded()), show="errors")
    assert "another gift's already" in planned.rows[0].messages[0]


def test_receipt_numbers_given_after_an_import_never_meet_an_imported_one(db: Any) -> None:
    campaign()
    imported()
    later = factories.paid_gift(method=GiftMethod.CASH)
    later.paid_at = later.paid_at.replace(year=2024)  # type: ignore[union-attr]
    # the import brought 2024-000900 and numbered its other two gifts of 2024 after it
    assert lifecycle.receipt_number(later) == "2024-000903"


def test_a_consent_comes_with_its_date_and_source_into_the_consent_log(db: Any) -> None:
    campaign()
    imported()
    anna, jan = supporter("anna@example.org"), supporter("jan@example.org")
    consent = db.session.scalars(sa.select(Consent).filter_by(supporter_id=anna.id)).one()
    assert consent.granted and consent.recorded_at.date() == date(2023, 5, 4)
    assert consent.source == "import (Old CRM): formularz www" and consent.confirmed_at is None
    assert anna.newsletter
    assert not jan.newsletter and db.session.scalars(sa.select(Consent).filter_by(supporter_id=jan.id)).all() == []


def test_a_supporter_matched_by_e_mail_keeps_their_name_and_gets_empty_details_and_tags(db: Any) -> None:
    campaign()
    jan = factories.supporter(email="JAN@example.org", name="Jan Nowak-Senior", city="Gdańsk")
    imported()
    db.session.refresh(jan)
    assert (jan.name, jan.city, jan.country) == ("Jan Nowak-Senior", "Gdańsk", "PL")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Supporter)) == 3 + 0
    assert jan.gift_count == 1


def test_gifts_can_name_their_supporter_by_e_mail(db: Any) -> None:
    known = factories.supporter(email="ola@example.org", name="Ola")
    supporters = b"name,email\nAda,ada@example.org\n"
    gifts = b"email,amount,date\nada@example.org,10,2024-01-02\nOLA@example.org,20,2024-01-03\n"
    saved_mapping(supporters, gifts, gifts_by="email")
    run = imported(supporters, gifts)
    assert run.counts["gifts"] == {"new": 2, "known": 0}
    db.session.refresh(known)
    assert known.lifetime_total_minor == 2000


def test_an_xlsx_file_is_read_like_its_csv(db: Any, tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Imię i nazwisko", "E-mail", "ID"])
    sheet.append(["Ada Lovelace", "ada@example.org", 7])
    gifts_book = openpyxl.Workbook()
    gifts_sheet = gifts_book.active
    assert gifts_sheet is not None
    gifts_sheet.append(["ID darczyńcy", "Kwota", "Data"])
    gifts_sheet.append([7, 12.5, date(2024, 2, 1)])
    contents = []
    for workbook in (book, gifts_book):
        buffer = io.BytesIO()
        workbook.save(buffer)
        contents.append(buffer.getvalue())
    run = operations.upload(
        contents[0], file_name="a.xlsx", gifts_content=contents[1], gifts_file_name="g.xlsx", actor=None
    )
    supporters_table, gifts_table = operations.tables(run)
    assert gifts_table is not None
    chosen = mappings.save_mapping(
        "Spreadsheet",
        supporter_columns=mappings.guess_supporters(supporters_table.headers),
        gift_columns=mappings.guess_gifts(gifts_table.headers),
        gifts_by="source_id",
        actor=None,
    )
    operations.use_mapping(run, chosen)
    operations.import_run(run, operations.source_of(run), actor=None)
    ada = supporter("ada@example.org")
    assert ada.name == "Ada Lovelace" and ada.lifetime_total_minor == 1250


@pytest.mark.parametrize(
    ("content", "name"),
    [(b"%PDF-1.4 ...", "list.pdf"), (b"\xd0\xcf\x11\xe0old excel", "list.xls"), (b"\xff\xfen\x00a\x00", "list.csv")],
)
def test_a_file_that_is_no_csv_or_xlsx_is_refused_and_nothing_kept(db: Any, content: bytes, name: str) -> None:
    before = row_counts()
    with pytest.raises(Refused) as refused:
        operations.upload(content, file_name=name, actor=None)
    assert refused.value.status == 400
    assert row_counts() == before


def test_an_import_is_audited_once_with_its_counts_file_and_hash(db: Any) -> None:
    campaign()
    run = imported()
    entries = db.session.scalars(sa.select(AuditEvent).filter_by(action="import.committed")).all()
    assert len(entries) == 1
    assert entries[0].details["sha256"] == run.sha256 and entries[0].details["file_name"] == "supporters.csv"
    assert entries[0].details["gifts"] == {"new": 3, "known": 0}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ImportedRow)) == 6


def test_an_import_cannot_be_imported_twice(db: Any) -> None:
    campaign()
    run = imported()
    with pytest.raises(Refused):
        operations.import_run(run, operations.source_of(run), actor=None)


def test_a_preview_key_changes_with_the_mapping(db: Any) -> None:
    campaign()
    run = uploaded()
    seen = operations.key_of(run, operations.source_of(run))
    saved_mapping(gift_columns={"supporter_key": "ID darczyńcy", "amount": "Kwota", "date": "Data wpłaty"})
    with pytest.raises(Refused) as refused:
        operations.import_run(run, operations.source_of(run), actor=None, seen_key=seen)
    assert refused.value.status == 409


# --- The command line ------------------------------------------------------------------


def test_the_command_line_previews_with_dry_run_and_writes_nothing(cli: Any, db: Any, tmp_path: Path) -> None:
    campaign()
    saved_mapping()
    before = row_counts()
    result = cli.invoke(
        args=["import", "supporters", str(DATA / "supporters.csv"), "--mapping", "Old CRM", "--gifts",
              str(DATA / "gifts.csv"), "--dry-run"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Supporters: new 3" in result.output and "Gifts: new 3" in result.output
    assert "Dry run" in result.output
    assert row_counts() == before


def test_the_command_line_imports_and_again_changes_nothing(cli: Any, db: Any) -> None:
    campaign()
    saved_mapping()
    args = [
        "import",
        "supporters",
        str(DATA / "supporters.csv"),
        "--mapping",
        "Old CRM",
        "--gifts",
        str(DATA / "gifts.csv"),
    ]
    result = cli.invoke(args=args)
    assert result.exit_code == 0, result.output
    assert supporter("anna@example.org").gift_count == 2
    again = cli.invoke(args=args)
    assert again.exit_code == 0 and "imported before 3" in again.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Gift)) == 3


def test_the_command_line_exits_1_and_writes_nothing_when_a_row_has_an_error(cli: Any, db: Any, tmp_path: Path) -> None:
    saved_mapping(gifts=None)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(SUPPORTERS + b"K-9;Zoe;X;broken;;;;;;;;;\n")
    before = row_counts()
    result = cli.invoke(args=["import", "supporters", str(bad), "--mapping", "Old CRM"])
    assert result.exit_code == 1
    assert "bad.csv row 5" in result.output
    assert row_counts() == before


def test_the_command_line_can_save_the_guessed_mapping(cli: Any, db: Any) -> None:
    result = cli.invoke(args=["import", "supporters", str(DATA / "english.csv"), "--mapping", "New", "--save-guessed"])
    assert result.exit_code == 0, result.output
    assert supporter("ada@example.org").name == "Ada"


# --- Written in bulk, counted as one by one; the files let go of --------------------------


def test_imported_gifts_add_to_the_giving_totals_what_the_gifts_say(db: Any) -> None:
    general = campaign()
    # gifts of the app on the days and in the campaign the file's gifts fall on
    there = factories.supporter()
    factories.paid_gift(there, paid_at=datetime(2024, 3, 5, 9, tzinfo=UTC), campaign_id=general.id)
    factories.paid_gift(there, paid_at=datetime(2024, 6, 1, 18, tzinfo=UTC))
    before = giving.stored_totals(db.session.connection())

    imported()

    connection = db.session.connection()
    assert giving.stored_totals(connection) == giving.totals_from_gifts(connection) != before


def test_imported_supporters_have_the_totals_and_search_keys_the_app_gives_them(db: Any) -> None:
    campaign()
    imported()
    supporters = db.session.scalars(sa.select(Supporter).order_by(Supporter.id)).all()
    as_imported = [(s.gift_count, s.lifetime_total_minor, s.first_gift_at, s.last_gift_at) for s in supporters]

    for row in supporters:
        refresh_supporter_totals(row)
    db.session.flush()
    for row in supporters:
        db.session.refresh(row)
    assert [(s.gift_count, s.lifetime_total_minor, s.first_gift_at, s.last_gift_at) for s in supporters] == as_imported
    assert sum(s.gift_count for s in supporters) == 3
    assert rebuild_search_keys(db.session.connection()) is False


def test_an_imported_run_keeps_its_counts_but_not_its_files(db: Any, client: Any) -> None:
    campaign()
    run = imported()
    db.session.flush()
    db.session.expire(run)

    assert (run.content, run.gifts_content) == (None, None)
    assert (run.sha256, run.counts["gifts"]["new"]) != ("", 0)


def test_the_purge_removes_uploads_never_imported_after_seven_days(db: Any) -> None:
    campaign()
    kept, stale = uploaded(), uploaded(name="old.csv")
    done = imported()
    for run in (stale, done):
        run.created_at = datetime(2026, 2, 28, 10, tzinfo=UTC)
    kept.created_at = datetime(2026, 3, 3, 10, tzinfo=UTC)
    stale_id = stale.id

    assert erasure.purge(date(2026, 3, 8)).uploads_removed == 1

    assert db.session.get(ImportRun, stale_id) is None
    assert {kept.id, done.id} <= set(db.session.scalars(sa.select(ImportRun.id)))
    assert db.session.scalar(
        sa.select(AuditEvent.action).filter_by(target_id=str(stale_id), action="import.upload_removed")
    )
    assert erasure.purge(date(2026, 3, 9)).uploads_removed == 0


def test_a_pass_gives_its_keys_table_room_in_the_connection_on_postgresql(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if db.session.get_bind().dialect.name != "postgresql":
        pytest.skip("PostgreSQL's temp_buffers")
    campaign()
    source = operations.source_of(uploaded())
    assert preview(source).errors == 0
    assert db.session.scalar(sa.text("SHOW temp_buffers")) == "256MB"
    # and its keys are compared byte by byte, not by the server's locale
    collation = (
        "SELECT collation_name FROM information_schema.columns WHERE table_name = 'import_seen' AND column_name = 'key'"
    )
    assert db.session.scalar(sa.text(collation)) == "C"
    # a connection whose temporary tables were sized before keeps them, and the pass goes on
    monkeypatch.setattr(rows, "TEMP_BUFFERS", "16MB")
    planned = preview(source)
    assert (planned.errors, planned.gifts[NEW]) == (0, 3)
    assert db.session.scalar(sa.text("SHOW temp_buffers")) == "256MB"


def test_a_first_import_of_a_source_does_not_look_for_rows_imported_before(db: Any) -> None:
    campaign()
    source = operations.source_of(uploaded())
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = db.session.get_bind()
    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        planned = preview(source)
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    assert planned.supporters[NEW] == 3 and planned.gifts[NEW] == 3
    looked_up = [statement for statement in statements if "FROM imported_row" in statement]
    assert len(looked_up) == 1 and "EXISTS" in looked_up[0]  # only whether there are any


def test_a_matched_supporter_held_in_the_session_reads_the_newsletter_flag_the_consent_gave(db: Any) -> None:
    campaign()
    anna = factories.supporter(email="anna@example.org", name="Anna S.")
    assert not anna.newsletter
    imported()
    assert anna.newsletter  # read afresh, not the False it was loaded with
    assert db.session.scalars(sa.select(Consent).filter_by(supporter_id=anna.id)).one().granted


def test_an_imported_gift_in_another_currency_is_converted_as_any_gift_is(db: Any) -> None:
    from decimal import Decimal

    from supporters.giving.currency import convert_gift
    from supporters.models import ExchangeRate

    campaign()
    # the gifts file's 50,00 EUR of 2024-06-01: the table of the working day before
    db.session.add(
        ExchangeRate(currency="EUR", effective_on=date(2024, 5, 31), rate=Decimal("4.3000"), table_no="105/A")
    )
    imported()
    euro = db.session.scalars(sa.select(Gift).where(Gift.currency == "EUR")).one()
    assert (euro.amount_minor, euro.amount_base_minor, euro.base_rate_table) == (5000, 21500, "105/A")
    # what the rule gives the same gift made by hand
    twin = Gift(
        supporter_id=euro.supporter_id, amount_minor=5000, currency="EUR", method=euro.method, paid_at=euro.paid_at
    )
    convert_gift(twin)
    assert (twin.amount_base_minor, twin.base_rate_table) == (euro.amount_base_minor, euro.base_rate_table)
    assert supporter(euro.supporter.email).lifetime_total_minor == sum(
        g.amount_base_minor or 0 for g in db.session.scalars(sa.select(Gift).filter_by(supporter_id=euro.supporter_id))
    )


def test_an_imported_gift_in_another_currency_with_no_rate_yet_waits_for_its_conversion(db: Any) -> None:
    campaign()
    imported()
    euro = db.session.scalars(sa.select(Gift).where(Gift.currency == "EUR")).one()
    assert (euro.amount_base_minor, euro.base_rate_table) == (None, None)
    assert euro.status is GiftStatus.SUCCEEDED
