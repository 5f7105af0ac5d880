"""The access and portability export (GDPR Art. 15, 20): one ZIP per supporter with
data.json, a CSV per kind of record and a README in their language; built from the
privacy marks, so every personal column of every row about them is in it; audited."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from supporters.extensions import db as _db
from supporters.lib import audit
from supporters.models import AuditEvent, Consent, DonorSignIn, OutboxEmail, PlanStatus, RequestKind, utcnow
from supporters.people import edits
from supporters.privacy import access, requests
from supporters.privacy.marks import personal_columns
from tests import factories

FILES = {
    "README.txt",
    "data.json",
    "supporter.csv",
    "gifts.csv",
    "plans.csv",
    "consents.csv",
    "consent_requests.csv",
    "notes.csv",
    "tags.csv",
    "sign_ins.csv",
    "audit.csv",
    "emails.csv",
    "bank_lines.csv",
    "merged_records.csv",
    "merges.csv",
}


def anna() -> Any:
    staff = factories.staff("fundraiser", email="ewa@example.org")
    person = factories.supporter(
        email="anna@example.org", name="Anna Kowalska", language="pl", city="Kraków", postal_code="30-001"
    )
    factories.paid_gift(
        person,
        paid_at=datetime(2026, 3, 1, tzinfo=UTC),
        amount_minor=12550,
        comment="=HYPERLINK(evil)",
        receipt_number="2026-000007",
    )
    plan = factories.plan(person, amount_minor=3000)
    plan.status = PlanStatus.ACTIVE
    edits.add_note(staff, person, "Prefers post")
    edits.set_tags(staff, person, ["board"])
    _db.session.add_all(
        [
            Consent(supporter_id=person.id, purpose="newsletter", granted=True, source="form", wording="Yes"),
            DonorSignIn(supporter_id=person.id, token_hash="t" * 64, code_hash="c" * 64, expires_at=utcnow()),
            OutboxEmail(
                dedupe_key="r:anna",
                kind="receipt",
                to_address="Anna@example.org",
                subject="Pokwitowanie",
                body_text="Dzień dobry",
            ),
            OutboxEmail(dedupe_key="r:other", kind="receipt", to_address="x@example.org", subject="S", body_text="B"),
        ]
    )
    _db.session.flush()
    return staff, person


def opened(export: access.Export) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(export.content))


def rows(archive: zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8-sig"))))


def test_the_zip_holds_every_file_and_the_json_says_the_same(db: Any) -> None:
    staff, person = anna()

    archive = opened(access.build_export(staff, person))

    assert set(archive.namelist()) == FILES
    data = json.loads(archive.read("data.json"))
    assert data["supporter"]["email"] == "anna@example.org" and data["supporter"]["city"] == "Kraków"
    [gift] = data["gifts"]
    assert (gift["amount_minor"], gift["amount"], gift["currency"], gift["receipt_number"]) == (
        12550,
        "125.50",
        "PLN",
        "2026-000007",
    )
    assert [row["body"] for row in data["notes"]] == ["Prefers post"]
    assert [row["tag"] for row in data["tags"]] == ["board"]
    assert [row["purpose"] for row in data["consents"]] == ["newsletter"]
    assert len(data["sign_ins"]) == 1 and len(data["plans"]) == 1
    assert [row["subject"] for row in data["emails"]] == ["Pokwitowanie"]  # not the other person's
    assert {row["action"] for row in data["audit"]} >= {"supporter.add_note", "supporter.set_tags"}
    assert rows(archive, "supporter.csv")[0]["name"] == "Anna Kowalska"
    assert rows(archive, "gifts.csv")[0]["amount"] == "125.50"


def test_every_personal_column_of_the_supporter_is_in_the_export(db: Any) -> None:
    staff, person = anna()
    archive = opened(access.build_export(staff, person))
    header = set(rows(archive, "supporter.csv")[0])
    assert set(personal_columns(person.__table__)) <= header


def test_a_cell_that_a_spreadsheet_would_run_is_made_inert(db: Any) -> None:
    staff, person = anna()
    archive = opened(access.build_export(staff, person))
    assert rows(archive, "gifts.csv")[0]["comment"] == "'=HYPERLINK(evil)"
    # the JSON has the value as it is
    assert json.loads(archive.read("data.json"))["gifts"][0]["comment"] == "=HYPERLINK(evil)"


def test_the_readme_is_in_the_supporters_language(db: Any) -> None:
    staff, person = anna()
    readme_pl = opened(access.build_export(staff, person)).read("README.txt").decode()
    person.language = "en"
    readme_en = opened(access.build_export(staff, person)).read("README.txt").decode()

    assert "gifts.csv" in readme_en and "data.json" in readme_en and "Your gifts" in readme_en
    assert "gifts.csv" in readme_pl


def test_the_export_is_audited_and_noted_on_its_request(db: Any) -> None:
    staff, person = anna()
    logged = requests.log_request(staff, RequestKind.ACCESS, received_on=datetime(2026, 3, 2).date(), supporter=person)

    access.build_export(staff, person, logged)

    entry = _db.session.scalar(sa.select(AuditEvent).filter_by(action="privacy.export"))
    assert entry.actor == "ewa@example.org" and entry.target_id == str(person.id)
    assert entry.details["request_id"] == logged.id and entry.details["rows"]["gifts"] == 1
    assert logged.exported_at is not None


def test_the_audit_entries_about_their_gifts_are_in_it(db: Any) -> None:
    staff, person = anna()
    gift = factories.paid_gift(person)
    audit.record(staff, "gift.refund", "gift", gift.id, amount_minor=100)
    other = factories.paid_gift()
    audit.record(staff, "gift.refund", "gift", other.id, amount_minor=200)

    data = json.loads(opened(access.build_export(staff, person)).read("data.json"))

    refunds = [row for row in data["audit"] if row["action"] == "gift.refund"]
    assert [row["target_id"] for row in refunds] == [str(gift.id)]
