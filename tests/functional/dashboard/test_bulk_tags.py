"""Tags added to (or removed from) every supporter the list's filters match, after a page
that says how many; one audit entry; set-based statements, a batch of ids at a time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from supporters.models import AuditEvent, Supporter, SupporterTag, utcnow
from supporters.people import edits
from supporters.people.queries import SupporterFilters
from tests import factories

CONFIRM = "/dashboard/supporters/bulk-tags"


def tags_of(db: Any, person: Supporter) -> list[str]:
    return sorted(db.session.scalars(select(SupporterTag.tag).filter_by(supporter_id=person.id)))


def in_country(country: str, *tags: str, **fields: Any) -> Supporter:
    person = factories.supporter(country=country, **fields)
    person.tags.extend(SupporterTag(tag=tag) for tag in tags)
    return person


def bulk_events(db: Any) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).filter_by(action="supporters.bulk_tag")))


def test_the_list_offers_to_tag_the_supporters_it_shows(db: Any, client: Any, fundraiser: Any) -> None:
    in_country("PL")
    html = client.get("/dashboard/supporters/?country=PL").get_data(as_text=True)
    assert f'action="{CONFIRM}"' in html and 'name="bulk_tag"' in html
    assert '<input type="hidden" name="country" value="PL">' in html


def test_the_confirmation_says_how_many_and_changes_nothing(db: Any, client: Any, fundraiser: Any) -> None:
    in_country("PL")
    in_country("PL", "Board")
    in_country("DE")
    response = client.get(CONFIRM, query_string={"country": "PL", "bulk_tag": "board", "change": "add"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "2 supporters match" in html and "1 of them already has it" in html
    assert 'action="/dashboard/supporters/bulk-tags?country=PL"' in html and "Yes, add the tag" in html
    assert db.session.scalar(select(sa.func.count()).select_from(SupporterTag)) == 1
    assert bulk_events(db) == []


def test_the_page_opened_without_a_tag_asks_for_one(db: Any, client: Any, fundraiser: Any) -> None:
    response = client.get(CONFIRM, query_string={"country": "PL"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'name="bulk_tag"' in html and "Yes, add" not in html
    assert '<input type="hidden" name="country" value="PL">' in html


def test_a_tag_is_added_to_every_supporter_the_filters_match_and_to_no_other(
    db: Any, client: Any, fundraiser: Any
) -> None:
    first, second = in_country("PL"), in_country("PL", "major")
    already = in_country("PL", "Board")
    other = in_country("DE")
    response = client.post(CONFIRM + "?country=PL", data={"bulk_tag": "  board ", "change": "add"})
    assert response.status_code == 303 and response.headers["Location"].endswith("/dashboard/supporters/?country=PL")
    db.session.expire_all()
    assert tags_of(db, first) == ["board"] and tags_of(db, second) == ["board", "major"]
    assert tags_of(db, already) == ["Board"], "the same tag in another case is the same tag, kept as it was"
    assert tags_of(db, other) == []
    [event] = bulk_events(db)
    assert event.staff_user_id == fundraiser.id and event.target_type is None
    assert event.details == {"tag": "board", "change": "add", "count": 2, "matched": 3, "filters": {"country": "PL"}}
    assert "The tag “board” was added to 2 supporters." in client.get(response.headers["Location"]).get_data(
        as_text=True
    )


def test_a_tag_is_removed_from_every_supporter_the_filters_match(db: Any, client: Any, fundraiser: Any) -> None:
    first, second = in_country("PL", "Board", "keep"), in_country("PL")
    other = in_country("DE", "board")
    assert client.post(CONFIRM + "?country=PL", data={"bulk_tag": "BOARD", "change": "remove"}).status_code == 303
    db.session.expire_all()
    assert tags_of(db, first) == ["keep"] and tags_of(db, second) == [] and tags_of(db, other) == ["board"]
    [event] = bulk_events(db)
    assert event.details["change"] == "remove" and event.details["count"] == 1


def test_the_filters_are_the_lists_own_including_the_search(db: Any, client: Any, fundraiser: Any) -> None:
    found = factories.supporter(name="Anna Śliwińska-Kowalczyk")
    missed = factories.supporter(name="Jan Nowak")
    assert client.post(CONFIRM + "?q=kowalczyk", data={"bulk_tag": "family", "change": "add"}).status_code == 303
    db.session.expire_all()
    assert tags_of(db, found) == ["family"] and tags_of(db, missed) == []


def test_erased_supporters_are_left_as_they_are(db: Any, client: Any, fundraiser: Any) -> None:
    erased = in_country("PL")
    erased.anonymised_at = utcnow()
    kept = in_country("PL")
    assert client.post(CONFIRM + "?country=PL", data={"bulk_tag": "x", "change": "add"}).status_code == 303
    db.session.expire_all()
    assert tags_of(db, erased) == [] and tags_of(db, kept) == ["x"]


def test_nothing_to_change_writes_no_audit_entry(db: Any, client: Any, fundraiser: Any) -> None:
    in_country("PL", "x")
    assert client.post(CONFIRM + "?country=PL", data={"bulk_tag": "x", "change": "add"}).status_code == 303
    assert bulk_events(db) == []


@pytest.mark.parametrize(
    "data,message",
    [
        ({"bulk_tag": "   ", "change": "add"}, "Type the tag"),
        ({"bulk_tag": "x" * 51, "change": "add"}, "A tag has at most 50 characters"),
        ({"bulk_tag": "x", "change": "rename"}, "Not a valid choice"),
    ],
)
def test_a_missing_or_too_long_tag_or_an_unknown_change_is_refused(
    db: Any, client: Any, fundraiser: Any, data: dict[str, str], message: str
) -> None:
    in_country("PL")
    for response in (client.get(CONFIRM, query_string=data), client.post(CONFIRM, data=data)):
        assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert db.session.scalar(select(sa.func.count()).select_from(SupporterTag)) == 0


def test_a_viewer_may_not_tag_many_at_once(db: Any, client: Any, viewer: Any) -> None:
    in_country("PL")
    assert 'name="bulk_tag"' not in client.get("/dashboard/supporters/").get_data(as_text=True)
    assert client.get(CONFIRM, query_string={"bulk_tag": "x", "change": "add"}).status_code == 403
    assert client.post(CONFIRM, data={"bulk_tag": "x", "change": "add"}).status_code == 403
    assert db.session.scalar(select(sa.func.count()).select_from(SupporterTag)) == 0


@pytest.fixture
def statements(db: Any) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    yield seen
    sa.event.remove(db.engine, "before_cursor_execute", count)


def test_the_statements_do_not_grow_with_the_supporters_and_batches_cover_them_all(
    db: Any, fundraiser: Any, statements: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(edits, "BULK_BATCH", 10)
    people = [in_country("PL") for _ in range(5)]
    assert fundraiser.email  # loaded before counting (the sign-in's commit expired it)
    statements.clear()
    assert edits.bulk_tag(fundraiser, SupporterFilters(country="PL"), "few", add=True) == 5
    few = [" ".join(st.split()[:4]) for st in statements]
    people += [in_country("PL") for _ in range(4)]  # the same number of batches of 10 ids
    statements.clear()
    assert edits.bulk_tag(fundraiser, SupporterFilters(country="PL"), "more", add=True) == 9
    assert [" ".join(st.split()[:4]) for st in statements] == few
    monkeypatch.setattr(edits, "BULK_BATCH", 2)
    assert edits.bulk_tag(fundraiser, SupporterFilters(country="PL"), "small batches", add=True) == 9
    db.session.expire_all()
    assert all("small batches" in tags_of(db, person) for person in people)
