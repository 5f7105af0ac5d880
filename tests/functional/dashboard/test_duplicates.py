"""Likely duplicates: what the scan finds and why, the review list, "not a duplicate"
remembered, merging from the dashboard and undoing it, and the supporter's page."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa

from supporters.extensions import db as _db
from supporters.models import (
    AuditEvent,
    BankLine,
    BankStatement,
    DuplicateDismissal,
    Supporter,
    SupporterMerge,
    sort_key,
)
from supporters.people import duplicates, merging
from tests import factories

LIST = "/dashboard/duplicates/"


def found() -> dict[tuple[int, int], list[str]]:
    """The pairs the scan finds now, with their reason codes."""
    return {pair: [reason["code"] for reason in what.reasons] for pair, what in duplicates.find_pairs().items()}


def key(first: Supporter, second: Supporter) -> tuple[int, int]:
    return (min(first.id, second.id), max(first.id, second.id))


def test_gmail_dots_googlemail_and_plus_tags_are_one_mailbox() -> None:
    assert duplicates.email_variant_key("jan.kowalski+news@googlemail.com") == "jankowalski@gmail.com"
    assert duplicates.email_variant_key("jankowalski@gmail.com") == "jankowalski@gmail.com"
    assert duplicates.email_variant_key("jan.kowalski+x@example.org") == "jan.kowalski@example.org"


def test_e_mail_variants_are_a_strong_but_not_certain_signal(db: Any) -> None:
    first = factories.supporter(name="Ola Zielińska", email="ola.zielinska@gmail.com")
    second = factories.supporter(name="Aleksandra Z.", email="olazielinska+dary@googlemail.com")
    factories.supporter(name="Ola Other", email="ola.zielinska@example.org")

    pairs = duplicates.find_pairs()

    assert list(pairs) == [key(first, second)]
    assert 80 <= pairs[key(first, second)].confidence < 100


def test_the_same_name_and_postal_code_and_similar_names_in_any_order(db: Any) -> None:
    jan = factories.supporter(name="Jan Kowalski", postal_code="00-950")
    twin = factories.supporter(name="JAN KOWALSKI", postal_code="00950")
    turned = factories.supporter(name="Kowalski Jan")
    typo = factories.supporter(name="Jan Kowalsky")
    factories.supporter(name="Janina Nowak")
    factories.supporter(name="Piotr Kowalski")

    pairs = found()

    assert "same_name_postal_code" in pairs[key(jan, twin)]
    assert "same_name" in pairs[key(jan, turned)] or "similar_name" in pairs[key(jan, turned)]
    assert "similar_name" in pairs[key(jan, typo)]
    assert all({jan.id, twin.id, turned.id, typo.id} >= set(pair) for pair in pairs), pairs
    scored = duplicates.find_pairs()
    assert scored[key(jan, twin)].confidence > scored[key(jan, typo)].confidence


def test_gifts_from_one_bank_account_pair_their_supporters(db: Any) -> None:
    first, second = factories.supporter(name="Anna Mazur"), factories.supporter(name="Firma Mazur sp. z o.o.")
    statement = BankStatement(uploaded_by="cli", file_name="s.csv", format="csv", sha256="0" * 64, content=b"")
    _db.session.add(statement)
    _db.session.flush()
    for number, person in enumerate((first, second)):
        gift = factories.paid_gift(person)
        _db.session.add(
            BankLine(
                statement_id=statement.id,
                identity_key=f"line-{number}",
                booked_on=date(2026, 1, 2),
                amount_minor=5000,
                currency="PLN",
                direction="credit",
                counterparty_account="PL61 1090 1014 0000 0712 1981 2874" if number else "PL61109010140000071219812874",
                match="supporter",
                status="gift",
                gift_id=gift.id,
            )
        )
    _db.session.flush()

    assert found()[key(first, second)] == ["same_account"]


def test_erased_and_merged_away_supporters_are_never_suggested(db: Any) -> None:
    first = factories.supporter(name="Ewa Mazur")
    erased = factories.supporter(name="Ewa Mazur")
    erased.anonymised_at = sa.func.now()
    third = factories.supporter(name="Ewa Mazur")
    fourth = factories.supporter(name="Ewa Mazur")
    merging.merge(None, [third.id, fourth.id], third.id)

    assert list(found()) == [key(first, third)]


def test_the_demo_datas_same_name_pairs_are_found(cli: Any, db: Any) -> None:
    assert cli.invoke(args=["demo", "seed"]).exit_code == 0
    people = _db.session.execute(sa.select(Supporter.id, Supporter.name)).all()
    by_name: dict[str, list[int]] = {}
    for supporter_id, name in people:
        by_name.setdefault(sort_key(name), []).append(supporter_id)
    same_name = {(a, b) for ids in by_name.values() for a in ids for b in ids if a < b}
    assert same_name, "the demo data has people of the same name"

    result = cli.invoke(args=["duplicates", "scan"])

    assert result.exit_code == 0, result.output
    listed = {(pair.first.id, pair.second.id) for pair in duplicates.pair_page(10_000, 0)}
    assert same_name <= listed


# --- The review list ------------------------------------------------------------------------


@pytest.fixture
def jans(db: Any) -> tuple[Supporter, Supporter]:
    first = factories.supporter(name="Jan Kowalski", email="jan@example.org", postal_code="00-950")
    second = factories.supporter(name="Jan Kowalski", email="jan.k@example.org", postal_code="00-950")
    factories.paid_gift(second)
    duplicates.scan()
    return first, second


def test_the_list_shows_both_people_and_why(client: Any, viewer: Any, jans: Any) -> None:
    response = client.get(LIST)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "jan@example.org" in html and "jan.k@example.org" in html
    assert "The same name and postal code" in html
    assert "likely the same person" in html
    assert "Not a duplicate" not in html, "a viewer may look, not act"


def test_viewers_can_neither_merge_nor_dismiss(client: Any, viewer: Any, jans: Any) -> None:
    first, second = jans
    assert client.post(f"{LIST}dismiss", data={"first": first.id, "second": second.id}).status_code == 403
    assert client.get(f"{LIST}merge/{first.id}", query_string={"others": second.id}).status_code == 403
    assert client.post(f"{LIST}scan").status_code == 403


def test_not_a_duplicate_pair_never_comes_back(client: Any, fundraiser: Any, jans: Any) -> None:
    first, second = jans

    response = client.post(f"{LIST}dismiss", data={"first": first.id, "second": second.id})

    assert response.status_code == 303
    assert _db.session.get(DuplicateDismissal, key(first, second)) is not None
    assert "jan.k@example.org" not in client.get(LIST).get_data(as_text=True)
    duplicates.scan()
    assert key(first, second) not in found()
    assert duplicates.pair_count() == 0
    audit = _db.session.scalars(sa.select(AuditEvent).filter_by(action="supporter.not_a_duplicate")).one()
    assert audit.details == {"other_id": max(first.id, second.id)}


def test_bad_pairs_are_refused_not_errors(client: Any, fundraiser: Any, jans: Any) -> None:
    first, _second = jans
    assert client.post(f"{LIST}dismiss", data={"first": first.id, "second": first.id}).status_code == 400
    assert client.post(f"{LIST}dismiss", data={"first": first.id, "second": "x"}).status_code == 400
    assert client.post(f"{LIST}dismiss", data={"first": first.id, "second": 10**8}).status_code == 404
    assert client.get(f"{LIST}merge/{first.id}", query_string={"others": "1,x"}).status_code == 400
    assert client.get(f"{LIST}merge/{first.id}", query_string={"others": 10**8}).status_code == 404
    assert client.get(f"{LIST}merge/{10**8}").status_code == 404


def test_the_supporters_page_says_possible_duplicates(client: Any, viewer: Any, jans: Any) -> None:
    first, _second = jans
    html = client.get(f"/dashboard/supporters/{first.id}").get_data(as_text=True)
    assert "Possible duplicates: 1" in html
    assert 'href="/dashboard/duplicates/"' in client.get("/dashboard/supporters/").get_data(as_text=True)


# --- Merging from the dashboard -------------------------------------------------------------


def test_merge_from_the_page_with_values_picked_then_undo(client: Any, fundraiser: Any, jans: Any) -> None:
    first, second = jans
    page = client.get(f"{LIST}merge/{first.id}")  # its possible duplicates, from the scan
    assert page.status_code == 200
    assert f'name="field_email" value="{second.id}"' in page.get_data(as_text=True)

    response = client.post(
        f"{LIST}merge/{first.id}?others={second.id}",
        data={"survivor": first.id, "field_email": second.id, "field_name": first.id},
    )

    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/dashboard/supporters/{first.id}")
    _db.session.expire_all()
    assert _db.session.get(Supporter, first.id).email == "jan.k@example.org"
    assert _db.session.get(Supporter, second.id).merged_into_id == first.id
    assert _db.session.get(Supporter, first.id).gift_count == 1
    # the merged-away supporter's page leads to the survivor; the survivor's links to the merge
    assert client.get(f"/dashboard/supporters/{second.id}").headers["Location"].endswith(f"/supporters/{first.id}")
    html = client.get(f"/dashboard/supporters/{first.id}").get_data(as_text=True)
    [merge_id] = re.findall(r'href="/dashboard/duplicates/merges/(\d+)"', html)
    record = client.get(f"{LIST}merges/{merge_id}").get_data(as_text=True)
    assert "jan@example.org" in record and "Undo this merge" in record

    assert client.post(f"{LIST}merges/{merge_id}/undo").status_code == 303

    _db.session.expire_all()
    assert _db.session.get(Supporter, first.id).email == "jan@example.org"
    assert _db.session.get(Supporter, second.id).merged_into_id is None
    assert _db.session.get(SupporterMerge, int(merge_id)).undone_at is not None
    assert client.post(f"{LIST}merges/{merge_id}/undo").status_code == 409


def test_the_merge_page_asks_only_about_the_fields_that_differ(client: Any, fundraiser: Any, jans: Any) -> None:
    first, second = jans
    html = client.get(f"{LIST}merge/{first.id}?others={second.id}").get_data(as_text=True)
    assert 'name="field_email"' in html, "their e-mail addresses differ: a choice"
    assert 'name="field_name"' not in html and 'name="field_postal_code"' not in html, "the same in both"
    assert 'name="field_city"' not in html, "given in neither"
    assert "The same in every record" in html and "00-950" in html
    assert "Not given in any" in html


def test_a_merge_with_a_choice_of_no_one_in_it_is_refused(client: Any, fundraiser: Any, jans: Any) -> None:
    first, second = jans
    address = f"{LIST}merge/{first.id}?others={second.id}"
    assert client.post(address, data={"survivor": first.id, "field_email": 10**6}).status_code == 400
    assert client.post(address, data={"survivor": first.id, "field_city": "٣"}).status_code == 400
    assert client.post(address, data={}).status_code == 400
    _db.session.expire_all()
    assert _db.session.get(Supporter, second.id).merged_into_id is None


def test_changing_the_e_mail_to_another_supporters_offers_the_merge(client: Any, fundraiser: Any, jans: Any) -> None:
    first, second = jans
    form = {"name": first.name, "email": "JAN.K@example.org", "language": "en", "country": ""}

    response = client.post(f"/dashboard/supporters/{first.id}/profile", data=form)

    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Another supporter already has this e-mail address." in html
    assert f'href="/dashboard/duplicates/merge/{first.id}?others={second.id}">Merge the two instead' in html


def test_the_merge_page_of_someone_without_duplicates_asks_for_numbers(client: Any, fundraiser: Any, db: Any) -> None:
    alone = factories.supporter(name="Zofia Unique")
    html = client.get(f"{LIST}merge/{alone.id}").get_data(as_text=True)
    assert 'name="others"' in html and 'name="survivor"' not in html


def test_a_name_many_people_share_pairs_them_only_with_more_evidence(db: Any) -> None:
    annas = [factories.supporter(name="Anna Nowak") for _ in range(duplicates.NAME_COMMON + 1)]
    annas[0].postal_code = annas[1].postal_code = "30-001"
    _db.session.flush()

    assert list(found()) == [key(annas[0], annas[1])]
    rare = factories.supporter(name="Anna Nowakk")  # a rarer spelling may be any of them
    assert set(found()) == {key(annas[0], annas[1]), *(key(anna, rare) for anna in annas)}


def test_a_merge_takes_the_merged_away_supporters_pairs_off_the_list(db: Any) -> None:
    first, second, third = (factories.supporter(name="Olga Tokarczuk") for _ in range(3))
    duplicates.scan()
    assert duplicates.pair_count() == 3

    merging.merge(None, [first.id, second.id], first.id)

    assert [(pair.first.id, pair.second.id) for pair in duplicates.pair_page(25, 0)] == [key(first, third)]
    assert duplicates.pair_count() == 1
