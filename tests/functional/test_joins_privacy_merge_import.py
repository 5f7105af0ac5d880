"""Duplicates and merging, privacy and the import together: a merge moves the privacy
requests and the imported rows too (and undo moves them back); an import finds the
survivor, never a merged-away or erased record; the access export and the erasure of a
survivor cover the records merged into it; erased supporters stay out of the scan and of
merges; the new tables carry the right privacy marks."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa

from supporters.extensions import db as _db
from supporters.imports import mapping as mappings
from supporters.imports import operations
from supporters.imports.preview import preview
from supporters.imports.rows import ERROR, KNOWN
from supporters.lib.errors import Refused
from supporters.models import (
    DuplicateCandidate,
    DuplicateDismissal,
    Gift,
    ImportedRow,
    ImportRun,
    OutboxEmail,
    PrivacyRequest,
    RequestKind,
    Supporter,
    SupporterMerge,
)
from supporters.people import duplicates, merging
from supporters.privacy import access, erasure, requests
from supporters.privacy.marks import is_personal, personal_columns
from tests import factories
from tests.fakes import FakeGateway
from tests.functional.test_import import SUPPORTERS, imported, saved_mapping, supporter, uploaded
from tests.functional.test_privacy_access import opened

GIFT_HEADER = "ID wpłaty;ID darczyńcy;Kwota;Waluta;Data wpłaty;Forma płatności;Nr potwierdzenia;Kampania;Uwagi\n"


def fresh(row: Any) -> Any:
    _db.session.expire_all()
    return _db.session.get(type(row), row.id)


def jan_imported_then_merged() -> tuple[Supporter, Supporter, SupporterMerge]:
    """Jan, imported from the old CRM as K-2 (jan@example.org), merged into the Jan who
    gave online (jan.nowak@example.com), who keeps his own address."""
    saved_mapping()  # the source's gifts file is read with it later
    imported(gifts=None)
    from_crm = supporter("jan@example.org")
    online = factories.supporter(name="Jan Nowak", email="jan.nowak@example.com")
    entry = merging.merge(None, [from_crm.id, online.id], online.id)
    return online, from_crm, entry


def test_a_merge_moves_the_privacy_requests_and_undo_moves_them_back(db: Any) -> None:
    first = factories.supporter(name="Ola Nowak", email="ola@example.org")
    second = factories.supporter(name="Ola Nowak", email="ola.nowak@example.org")
    asked = requests.log_request(None, RequestKind.ACCESS, received_on=date(2026, 1, 5), supporter=second)

    entry = merging.merge(None, [first.id, second.id], first.id)
    assert fresh(asked).supporter_id == first.id

    merging.undo(None, entry)
    assert fresh(asked).supporter_id == second.id


def test_a_merge_moves_the_imported_rows_and_undo_moves_them_back(db: Any) -> None:
    online, from_crm, entry = jan_imported_then_merged()
    jans = select_imported(from_crm.id) + select_imported(online.id)
    assert jans and select_imported(from_crm.id) == []

    merging.undo(None, entry)
    assert select_imported(from_crm.id) == jans and select_imported(online.id) == []


def select_imported(supporter_id: int) -> list[int]:
    _db.session.expire_all()
    return list(_db.session.scalars(sa.select(ImportedRow.id).where(ImportedRow.supporter_id == supporter_id)))


def test_a_later_gift_naming_a_merged_away_source_id_goes_to_the_survivor(db: Any) -> None:
    online, _from_crm, _entry = jan_imported_then_merged()
    gifts = (GIFT_HEADER + "W-90;K-2;40;PLN;2024-06-01;gotówka;;;\n").encode()

    run = uploaded(gifts=gifts)
    operations.import_run(run, operations.source_of(run), actor=None)

    gift = _db.session.scalar(sa.select(Gift).where(Gift.amount_minor == 4000))
    assert gift is not None and gift.supporter_id == online.id


def test_an_import_row_with_a_merged_away_address_matches_the_survivor(db: Any) -> None:
    old = factories.supporter(name="Ewa Zielińska", email="ewa@example.org")
    kept = factories.supporter(name="Ewa Zielińska", email="ewa.z@example.com")
    merging.merge(None, [old.id, kept.id], kept.id)
    saved_mapping(name="Excel 2025")

    run = operations.upload(
        b"ID;Imi\xc4\x99;Nazwisko;E-mail\nX-1;Ewa;Zieli\xc5\x84ska;EWA@example.org\n", file_name="x.csv", actor=None
    )
    operations.use_mapping(run, mappings.mapping_named("Excel 2025"))
    operations.import_run(run, operations.source_of(run), actor=None)

    assert _db.session.scalar(sa.select(sa.func.count()).select_from(Supporter)) == 2
    [row] = _db.session.scalars(sa.select(ImportedRow).where(ImportedRow.run_id == run.id)).all()
    assert row.supporter_id == kept.id


def test_the_export_of_a_survivor_holds_what_its_merged_away_records_hold(db: Any) -> None:
    staff = factories.staff("fundraiser")
    old = factories.supporter(name="Anna Nowakowska", email="anna.old@example.org", city="Łódź")
    kept = factories.supporter(name="Anna Nowak", email="anna@example.org")
    _db.session.add(
        OutboxEmail(dedupe_key="r:old", kind="receipt", to_address="anna.old@example.org", subject="Old", body_text="B")
    )
    merging.merge(staff, [old.id, kept.id], kept.id, {"city": old.id})

    data = json.loads(opened(access.build_export(staff, kept)).read("data.json"))

    [record] = data["merged_records"]
    assert (record["id"], record["email"], record["name"]) == (old.id, "anna.old@example.org", "Anna Nowakowska")
    [merge] = data["merges"]
    assert merge["record"]["fields"]["city"]["new"] == "Łódź"
    assert [row["subject"] for row in data["emails"]] == ["Old"]
    assert {row["action"] for row in data["audit"]} >= {"supporter.merge"}


def test_erasing_a_survivor_erases_its_merged_away_records_and_their_stripe_customers(
    db: Any, fake_stripe: FakeGateway
) -> None:
    old = factories.supporter(name="Zofia K.", email="zosia@example.org", stripe_customer_id="cus_old")
    kept = factories.supporter(name="Zofia Kwiatkowska", email="zofia@example.org", stripe_customer_id="cus_kept")
    other = factories.supporter(name="Zofia Kwiatkowska", email="z.kw@example.org")
    merging.merge(None, [old.id, kept.id], kept.id, {"name": old.id})
    duplicates.dismiss(None, kept, other)

    erasure.erase(None, kept, fake_stripe)

    assert sorted(fake_stripe.deleted_customers) == ["cus_kept", "cus_old"]
    tombstone = fresh(old)
    assert (tombstone.name, tombstone.email, tombstone.stripe_customer_id) == (
        "Erased supporter",
        f"erased-{old.id}@erased.invalid",
        None,
    )
    assert tombstone.anonymised_at is not None and tombstone.merged_into_id == kept.id
    [entry] = _db.session.scalars(sa.select(SupporterMerge)).all()
    assert "Zofia" not in json.dumps(entry.record)
    assert _db.session.scalar(sa.select(sa.func.count()).select_from(DuplicateDismissal)) == 0


def test_erasing_a_person_removes_the_duplicate_pairs_naming_them(db: Any, fake_stripe: FakeGateway) -> None:
    first = factories.supporter(name="Marta Wiśniewska", email="marta@example.org")
    factories.supporter(name="Marta Wiśniewska", email="marta.w@example.org")
    duplicates.scan()
    assert _db.session.scalar(sa.select(sa.func.count()).select_from(DuplicateCandidate)) == 1

    erasure.erase(None, first, fake_stripe)

    assert _db.session.scalar(sa.select(sa.func.count()).select_from(DuplicateCandidate)) == 0


def test_a_merged_away_supporter_is_not_erased_directly_the_refusal_names_the_survivor(
    db: Any, fake_stripe: FakeGateway
) -> None:
    old = factories.supporter(email="old@example.org", stripe_customer_id="cus_old")
    kept = factories.supporter(email="kept@example.org")
    merging.merge(None, [old.id, kept.id], kept.id)

    with pytest.raises(Refused) as refused:
        erasure.erase(None, old, fake_stripe)

    assert refused.value.status == 409 and f"#{kept.id}" in refused.value.message()
    assert fake_stripe.deleted_customers == [] and fresh(old).anonymised_at is None


def test_erased_supporters_stay_out_of_the_scan_and_of_merges(db: Any, fake_stripe: FakeGateway) -> None:
    first = factories.supporter(name="Piotr Zieliński", email="piotr@example.org", postal_code="00-950")
    second = factories.supporter(name="Piotr Zieliński", email="piotr.z@example.org", postal_code="00-950")
    erasure.erase(None, first, fake_stripe)

    duplicates.scan()
    assert _db.session.scalar(sa.select(sa.func.count()).select_from(DuplicateCandidate)) == 0
    with pytest.raises(Refused) as refused:
        merging.merge(None, [first.id, second.id], second.id)
    assert refused.value.status == 409


def test_the_erased_persons_old_address_makes_a_new_supporter_on_import(db: Any, fake_stripe: FakeGateway) -> None:
    person = factories.supporter(name="Ewa Zielińska", email="ewa@example.org")
    erasure.erase(None, person, fake_stripe)

    imported(gifts=None)

    newcomer = supporter("ewa@example.org")
    assert newcomer.id != person.id and newcomer.anonymised_at is None
    assert fresh(person).name == "Erased supporter"


def test_an_erased_persons_imported_rows_lead_nowhere_and_their_upload_is_gone(
    db: Any, fake_stripe: FakeGateway
) -> None:
    saved_mapping()
    run = imported(gifts=None)
    jan = supporter("jan@example.org")

    erasure.erase(None, jan, fake_stripe)

    assert fresh(run).content is None
    assert select_imported(jan.id) == []
    gifts = (GIFT_HEADER + "W-91;K-2;40;PLN;2024-06-01;gotówka;;;\n").encode()
    again = uploaded(gifts=gifts)
    with pytest.raises(Refused) as refused:  # no gift is attached to the erased record
        operations.import_run(again, operations.source_of(again), actor=None)
    assert "row 2 of gifts.csv" in refused.value.message()
    assert _db.session.scalar(sa.select(sa.func.count()).where(Gift.supporter_id == jan.id)) == 0


def test_the_new_tables_carry_the_right_privacy_marks() -> None:
    assert set(personal_columns(ImportRun.__table__)) >= {"content", "gifts_content", "file_name"}
    assert is_personal(SupporterMerge.__table__.c.record)
    assert personal_columns(ImportedRow.__table__) == []  # hashes and ids only
    assert personal_columns(DuplicateCandidate.__table__) == []  # reasons are codes and figures
    assert set(personal_columns(PrivacyRequest.__table__)) >= {"requester_name", "requester_email", "notes"}


def test_an_undone_merge_is_left_out_of_the_export_and_scrubbed_by_the_erasure(
    db: Any, fake_stripe: FakeGateway
) -> None:
    ola = factories.supporter(name="Ola Nowak", email="ola@example.org")
    other = factories.supporter(name="Aleksandra Nowak", email="a.nowak@example.org")
    entry = merging.merge(None, [ola.id, other.id], ola.id, {"name": other.id})
    merging.undo(None, entry)  # two people after all: the record holds both names

    data = json.loads(opened(access.build_export(None, fresh(ola))).read("data.json"))
    assert data["merges"] == []

    erasure.erase(None, fresh(other), fake_stripe)
    assert "Aleksandra" not in json.dumps(fresh(entry).record)


@pytest.mark.parametrize("with_supporters", [False, True], ids=["not in the supporters file", "both files again"])
def test_a_gift_of_an_erased_imported_supporter_says_so(
    db: Any, fake_stripe: FakeGateway, with_supporters: bool
) -> None:
    """A later file's gift for a supporter whose data was erased is an error that says why,
    not "no such supporter" or "its supporter's row has an error"; the supporter's own row
    is known and says it is not brought back."""
    saved_mapping()
    imported(gifts=None)
    erasure.erase(None, supporter("jan@example.org"), fake_stripe)

    gifts = (GIFT_HEADER + "W-91;K-2;40;PLN;2024-06-01;gotówka;;;\n").encode()
    others = b"".join(line for line in SUPPORTERS.splitlines(keepends=True) if b"jan@example.org" not in line)
    run = uploaded(gifts=gifts) if with_supporters else uploaded(supporters=others, gifts=gifts)
    shown = preview(operations.source_of(run))

    (gift,) = [row for row in shown.rows if row.kind == "gift"]
    assert gift.outcome == ERROR
    assert gift.messages == ["Its supporter's data was erased (a privacy request): the gift is not imported."]
    if with_supporters:
        (jan,) = [row for row in shown.rows if row.kind == "supporter" and "jan@example.org" in row.label]
        assert jan.outcome == KNOWN
        assert jan.messages == ["Imported before and erased since (a privacy request): not imported again."]
