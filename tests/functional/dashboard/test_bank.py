"""Matching the bank statement (supporters/bank/): staff upload a statement, see what will
happen to each line with nothing written, import it (pledges named with their amount are
paid, the rest waits for them), decide about the rest, and can look at every import
again. Importing the same bookings twice changes nothing; every step is audited; only
fundraisers and admins may do it."""

from __future__ import annotations

import io
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from supporters.bank import imports
from supporters.extensions import db
from supporters.giving import transfers
from supporters.lib.errors import Refused
from supporters.models import (
    AuditEvent,
    BankLine,
    BankStatement,
    Gift,
    GiftMethod,
    GiftStatus,
    LineMatch,
    LineStatus,
    OutboxEmail,
    StatementStatus,
    Supporter,
)
from supporters.models.base import Base
from tests import factories
from tests.functional.dashboard.conftest import signed_in_as

DAY = date.today() - timedelta(days=3)
HEADER = "date,amount,currency,name,account,title,reference\n"
MT940 = Path(__file__).parents[2] / "data" / "bank" / "statement.mt940"


def csv_file(*rows: tuple[Any, ...]) -> bytes:
    """A statement in the generic CSV layout: (amount, currency, name, account, title, reference[, day])."""
    lines = [HEADER]
    for row in rows:
        amount, currency, name, account, title, reference, *day = row
        lines.append(
            f"{(day[0] if day else DAY).isoformat()},{amount},{currency},{name},{account},{title},{reference}\n"
        )
    return "".join(lines).encode()


def pledge(amount_minor: int = 15000, currency: str = "PLN", **fields: Any) -> Gift:
    gift = factories.gift(amount_minor=amount_minor, currency=currency, method=GiftMethod.BANK_TRANSFER, **fields)
    transfers.assign_reference(gift)
    return gift


def row_counts() -> tuple[int, ...]:
    counts = [sa.select(sa.func.count()).select_from(t).scalar_subquery() for t in Base.metadata.sorted_tables]
    return tuple(db.session.execute(sa.select(*counts)).one())


def upload(client: Any, content: bytes, file_format: str = "csv", preset: str = "generic", name: str = "s.csv") -> Any:
    return client.post(
        "/dashboard/bank/upload",
        data={"file": (io.BytesIO(content), name), "format": file_format, "preset": preset},
        content_type="multipart/form-data",
    )


def uploaded(client: Any, content: bytes, **kwargs: Any) -> BankStatement:
    response = upload(client, content, **kwargs)
    assert response.status_code == 303, response.get_data(as_text=True)[:3000]
    statement_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    return db.session.get(BankStatement, statement_id, populate_existing=True)


def import_(client: Any, statement: BankStatement) -> BankStatement:
    response = client.post(f"/dashboard/bank/statements/{statement.id}/import")
    assert response.status_code == 303, response.get_data(as_text=True)[:3000]
    return db.session.get(BankStatement, statement.id, populate_existing=True)


def lines_of(statement: BankStatement) -> list[BankLine]:
    return list(
        db.session.scalars(
            sa.select(BankLine)
            .where(BankLine.statement_id == statement.id)
            .order_by(BankLine.id)
            .execution_options(populate_existing=True)
        )
    )


@pytest.fixture
def world(db: Any) -> dict[str, Any]:
    """A pledge, a pledge for another amount, and supporters found by account, e-mail, name."""
    by_account = factories.supporter(name="Jan Kowalski", email="jan@example.org")
    earlier = BankStatement(uploaded_by="cli", file_name="old.csv", format="csv", sha256="0" * 64, content=b"")
    db.session.add(earlier)
    db.session.flush()
    db.session.add(
        BankLine(
            statement_id=earlier.id,
            identity_key="earlier-line",
            booked_on=DAY - timedelta(days=30),
            amount_minor=1000,
            currency="PLN",
            direction="credit",
            counterparty_account="PL83101010230000261395100000",
            match=LineMatch.SUPPORTER,
            status=LineStatus.GIFT,
            supporter_id=by_account.id,
        )
    )
    return {
        "pledge": pledge(15000),
        "other_amount": pledge(20000),
        "by_account": by_account,
        "by_email": factories.supporter(name="Ewa Nowak", email="ewa@example.org"),
        "by_name": factories.supporter(name="Łukasz Żak", email="lukasz@example.org"),
    }


def statement_for(world: dict[str, Any]) -> bytes:
    return csv_file(
        ("150.00", "PLN", "Anna Kowalska", "PL27114020040000300201355387", world["pledge"].transfer_reference, "R1"),
        ("150.00", "PLN", "Piotr", "", f"za {world['other_amount'].transfer_reference}", "R2"),
        ("50.00", "PLN", "KOWALSKI JAN", "PL83101010230000261395100000", "Darowizna", "R3"),
        ("70.00", "PLN", "E N", "", "Darowizna ewa@example.org", "R4"),
        ("80.00", "PLN", "ZAK LUKASZ", "", "Na cele statutowe", "R5"),
        ("90.00", "PLN", "Nieznany", "", "Darowizna", "R6"),
        ("-12.50", "PLN", "Bank", "", "Oplata", "R7"),
        ("25.00", "CHF", "Jean", "", "Don", "R8"),
    )


def test_the_preview_says_what_will_happen_to_each_line_and_writes_nothing(client: Any, world: dict[str, Any]) -> None:
    signed_in_as(client, "fundraiser")
    statement = uploaded(client, statement_for(world))
    before = row_counts()
    page = client.get(f"/dashboard/bank/statements/{statement.id}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert row_counts() == before
    assert statement.status is StatementStatus.UPLOADED
    assert world["pledge"].status is GiftStatus.PENDING
    planned = imports.statement_preview(statement)
    assert [(p.match, p.matched_by, p.supporter.id if p.supporter else None) for p in planned.proposals] == [
        (LineMatch.PLEDGE, "pledge", world["pledge"].supporter_id),
        (LineMatch.AMOUNT_DIFFERS, "pledge", world["other_amount"].supporter_id),
        (LineMatch.SUPPORTER, "account", world["by_account"].id),
        (LineMatch.SUPPORTER, "email", world["by_email"].id),
        (LineMatch.SUPPORTER, "name", world["by_name"].id),
        (LineMatch.NOTHING, None, None),
        (LineMatch.OUTGOING, None, None),
        (LineMatch.OTHER_CURRENCY, None, None),
    ]
    assert "Pays its pledge" in text and "Outgoing: skipped" in text and "Import this statement" in text


def test_importing_pays_the_sure_matches_and_leaves_the_rest_for_staff(client: Any, world: dict[str, Any]) -> None:
    signed_in_as(client, "fundraiser")
    receipts = db.session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail).filter_by(kind="receipt"))
    statement = import_(client, uploaded(client, statement_for(world)))
    assert statement.status is StatementStatus.IMPORTED
    assert (statement.line_count, statement.new_count, statement.paid_count) == (8, 8, 1)
    assert (statement.open_count, statement.skipped_count) == (5, 2)
    paid = db.session.get(Gift, world["pledge"].id, populate_existing=True)
    assert paid.status is GiftStatus.SUCCEEDED and paid.paid_at is not None and paid.paid_at.date() == DAY
    assert db.session.get(Gift, world["other_amount"].id, populate_existing=True).status is GiftStatus.PENDING
    assert (
        db.session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail).filter_by(kind="receipt"))
        == (receipts or 0) + 1
    )
    lines = lines_of(statement)
    assert [line.status for line in lines] == [LineStatus.PAID] + [LineStatus.OPEN] * 5 + [LineStatus.SKIPPED] * 2
    assert lines[0].gift_id == paid.id
    actions = set(db.session.scalars(sa.select(AuditEvent.action)))
    assert {"bank.statement_uploaded", "bank.statement_imported", "gift.transfer_received"} <= actions
    page = client.get(f"/dashboard/bank/statements/{statement.id}?show=open").get_data(as_text=True)
    assert "Waiting for you" in page and "Nieznany" in page and "Anna Kowalska" not in page


def test_the_same_statement_twice_or_an_overlapping_one_changes_nothing_the_second_time(
    client: Any, world: dict[str, Any]
) -> None:
    signed_in_as(client, "admin")
    content = statement_for(world)
    import_(client, uploaded(client, content))
    gifts = db.session.scalar(sa.select(sa.func.count()).select_from(Gift))
    mails = db.session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail))
    again = import_(client, uploaded(client, content))
    assert (again.line_count, again.new_count, again.paid_count, again.open_count) == (8, 0, 0, 0)
    overlap = csv_file(
        ("150.00", "PLN", "Anna Kowalska", "PL27114020040000300201355387", world["pledge"].transfer_reference, "R1"),
        ("90.00", "PLN", "Nieznany", "", "Darowizna", "R6"),
        ("33.00", "PLN", "Nowy", "", "Darowizna", "R9"),
    )
    third = import_(client, uploaded(client, overlap))
    assert (third.line_count, third.new_count, third.paid_count, third.open_count) == (3, 1, 0, 1)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Gift)) == gifts
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail)) == mails
    assert db.session.scalar(sa.select(sa.func.count()).select_from(BankLine)) == 1 + 8 + 1


def test_a_statement_is_imported_once(client: Any, world: dict[str, Any]) -> None:
    signed_in_as(client, "admin")
    statement = import_(client, uploaded(client, statement_for(world)))
    response = client.post(f"/dashboard/bank/statements/{statement.id}/import")
    assert response.status_code == 409


def test_staff_record_a_suggested_line_as_the_supporters_gift_once(client: Any, world: dict[str, Any]) -> None:
    staff = signed_in_as(client, "fundraiser")
    statement = import_(client, uploaded(client, statement_for(world)))
    line = lines_of(statement)[2]
    assert line.supporter_id == world["by_account"].id
    assert client.get(f"/dashboard/bank/lines/{line.id}").status_code == 200
    response = client.post(f"/dashboard/bank/lines/{line.id}/gift", data={"supporter_id": str(line.supporter_id)})
    assert response.status_code == 303
    line = db.session.get(BankLine, line.id, populate_existing=True)
    assert line.status is LineStatus.GIFT and line.decided_by == staff.email
    gift = db.session.get(Gift, line.gift_id)
    assert (gift.supporter_id, gift.amount_minor, gift.method, gift.status) == (
        world["by_account"].id,
        5000,
        GiftMethod.BANK_TRANSFER,
        GiftStatus.SUCCEEDED,
    )
    assert gift.paid_at is not None and gift.paid_at.date() == DAY
    event = db.session.scalars(sa.select(AuditEvent).filter_by(action="bank.line_recorded_as_gift")).one()
    assert event.target_id == str(line.id) and event.details["gift_id"] == gift.id
    second = client.post(f"/dashboard/bank/lines/{line.id}/gift", data={"supporter_id": str(line.supporter_id)})
    assert second.status_code == 409
    assert (
        db.session.scalar(sa.select(sa.func.count()).select_from(Gift).filter_by(supporter_id=gift.supporter_id)) == 1
    )


def test_staff_assign_an_unmatched_line_to_a_new_supporter(client: Any, world: dict[str, Any]) -> None:
    signed_in_as(client, "admin")
    statement = import_(client, uploaded(client, statement_for(world)))
    line = lines_of(statement)[5]
    assert line.match is LineMatch.NOTHING
    missing_name = client.post(f"/dashboard/bank/lines/{line.id}/gift", data={"email": "new@example.org"})
    assert missing_name.status_code == 400 and "enter their name" in missing_name.get_data(as_text=True)
    response = client.post(
        f"/dashboard/bank/lines/{line.id}/gift", data={"email": "new@example.org", "name": "Nowa Osoba"}
    )
    assert response.status_code == 303
    supporter = db.session.scalars(sa.select(Supporter).filter_by(email_normalised="new@example.org")).one()
    line = db.session.get(BankLine, line.id, populate_existing=True)
    assert line.supporter_id == supporter.id and line.gift.amount_minor == 9000


def test_staff_mark_a_line_as_not_a_gift_saying_what_it_is(client: Any, world: dict[str, Any]) -> None:
    signed_in_as(client, "admin")
    statement = import_(client, uploaded(client, statement_for(world)))
    line = lines_of(statement)[6]
    assert line.status is LineStatus.SKIPPED
    assert client.post(f"/dashboard/bank/lines/{line.id}/not-a-gift", data={"reason": ""}).status_code == 400
    response = client.post(f"/dashboard/bank/lines/{line.id}/not-a-gift", data={"reason": "Bank fee"})
    assert response.status_code == 303
    line = db.session.get(BankLine, line.id, populate_existing=True)
    assert line.status is LineStatus.NOT_A_GIFT and line.decision_note == "Bank fee"
    event = db.session.scalars(sa.select(AuditEvent).filter_by(action="bank.line_not_a_gift")).one()
    assert event.details["reason"] == "Bank fee"
    # money going out can never be a gift
    with pytest.raises(Refused):
        imports.record_line_as_gift(lines_of(statement)[6], world["by_name"], actor=None)


def test_a_pledge_named_with_another_amount_is_held_and_can_be_given_to_its_supporter(
    client: Any, world: dict[str, Any]
) -> None:
    signed_in_as(client, "admin")
    statement = import_(client, uploaded(client, statement_for(world)))
    line = lines_of(statement)[1]
    assert (line.match, line.status, line.pledge_id) == (
        LineMatch.AMOUNT_DIFFERS,
        LineStatus.OPEN,
        world["other_amount"].id,
    )
    assert (
        client.post(f"/dashboard/bank/lines/{line.id}/gift", data={"supporter_id": str(line.supporter_id)}).status_code
        == 303
    )
    assert db.session.get(Gift, world["other_amount"].id, populate_existing=True).status is GiftStatus.PENDING


def test_a_file_that_cannot_be_read_is_refused_with_its_reason_and_nothing_kept(client: Any, db: Any) -> None:
    signed_in_as(client, "admin")
    before = row_counts()
    response = upload(client, b"Dear bank, hello.", file_format="mt940", name="letter.txt")
    assert response.status_code == 400
    assert "not an MT940 statement" in response.get_data(as_text=True)
    no_file = client.post("/dashboard/bank/upload", data={"format": "csv", "preset": "generic"})
    assert no_file.status_code == 400 and "Choose the statement file" in no_file.get_data(as_text=True)
    assert row_counts() == before


def test_the_upload_route_takes_a_statement_of_a_few_megabytes_but_no_more(client: Any, db: Any) -> None:
    signed_in_as(client, "admin")
    big = HEADER.encode() + b"2026-12-01,1.00,PLN,A,,%s,\n" % (b"B" * 75) * 40_000  # about 4 MB
    assert upload(client, big).status_code == 303
    assert upload(client, b"x" * (6 * 1024 * 1024)).status_code == 413


def test_mt940_statement_uploaded_through_the_page(client: Any, world: dict[str, Any]) -> None:
    signed_in_as(client, "admin")
    statement = import_(client, uploaded(client, MT940.read_bytes(), file_format="mt940", name="dec.sta"))
    assert (statement.line_count, statement.skipped_count, statement.account) == (4, 1, "PL61109010140000071219812874")
    listing = client.get("/dashboard/bank/").get_data(as_text=True)
    assert "dec.sta" in listing and "Imported" in listing


@pytest.mark.parametrize("role", ["viewer"])
def test_viewers_may_not_see_or_import_statements(client: Any, world: dict[str, Any], role: str) -> None:
    statement = imports.upload_statement(
        statement_for(world), file_name="s.csv", file_format="csv", preset="generic", actor=None
    )
    signed_in_as(client, role)
    for url in ("/dashboard/bank/", f"/dashboard/bank/statements/{statement.id}"):
        assert client.get(url).status_code == 403
    assert client.post(f"/dashboard/bank/statements/{statement.id}/import").status_code == 403
    assert upload(client, statement_for(world)).status_code == 403
    assert db.session.get(BankStatement, statement.id, populate_existing=True).status is StatementStatus.UPLOADED


def test_signed_out_visitors_are_sent_to_sign_in(client: Any, db: Any) -> None:
    response = client.get("/dashboard/bank/")
    assert response.status_code in (302, 303) and "/login" in response.headers["Location"]


def test_the_cron_import_applies_only_the_sure_matches(app: Flask, world: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "statement.csv"
    path.write_bytes(statement_for(world))
    db.session.commit()
    dry = app.test_cli_runner().invoke(args=["bank", "import", str(path), "--dry-run"])
    assert dry.exit_code == 0 and "Nothing written" in dry.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(BankStatement)) == 1
    result = app.test_cli_runner().invoke(args=["bank", "import", str(path), "--format", "csv", "--preset", "generic"])
    assert result.exit_code == 0, result.output
    assert "pledges paid 1, waiting for staff 5, skipped 2" in result.output
    assert db.session.get(Gift, world["pledge"].id, populate_existing=True).status is GiftStatus.SUCCEEDED
    statement = db.session.scalars(sa.select(BankStatement).order_by(BankStatement.id.desc())).first()
    assert statement is not None and statement.uploaded_by == "cli"
    again = app.test_cli_runner().invoke(args=["bank", "import", str(path), "--preset", "generic"])
    assert "new 0;" in again.output
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"nothing,here\n")
    refused = app.test_cli_runner().invoke(args=["bank", "import", str(bad)])
    assert refused.exit_code != 0 and "header row" in refused.output


def test_a_pledge_paid_by_someone_else_during_the_import_leaves_its_line_for_review(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, app: Flask
) -> None:
    def paid_meanwhile(gift: Gift, **_kwargs: Any) -> Gift:
        raise Refused("paid meanwhile", status=409)

    statement = imports.upload_statement(
        statement_for(world), file_name="s.csv", file_format="csv", preset="generic", actor=None
    )
    monkeypatch.setattr(transfers, "receive_transfer", paid_meanwhile)
    with app.test_request_context():
        imports.import_statement(statement, actor=None)
    first = lines_of(statement)[0]
    assert (first.match, first.status, first.gift_id, first.decided_at) == (
        LineMatch.PLEDGE_NOT_AWAITING,
        LineStatus.OPEN,
        None,
        None,
    )
    assert (statement.paid_count, statement.open_count) == (0, 6)
