"""Saved searches: a name for the supporters list's current filters, seen by the whole
team beside the filters; deleted by whoever saved it or an admin; audited."""

from __future__ import annotations

import html as html_lib
import re
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from supporters.extensions import db as _db
from supporters.models import AuditEvent, SavedSearch, SupporterTag
from tests import factories

LIST = "/dashboard/supporters/"
SAVE = "/dashboard/supporters/saved-searches"


def saved(name: str = "Board in Poland", query: str = "country=PL&tag=board", author: Any = None) -> SavedSearch:
    row = SavedSearch(page="supporters", name=name, query=query, staff_user_id=author.id if author else None)
    _db.session.add(row)
    _db.session.flush()
    return row


def delete_url(row: SavedSearch) -> str:
    return f"{SAVE}/{row.id}/delete"


def events(db: Any, action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).filter_by(action=action)))


def count(db: Any) -> int:
    return int(db.session.scalar(select(sa.func.count()).select_from(SavedSearch)) or 0)


def test_the_current_filters_are_saved_under_a_name_and_audited(db: Any, client: Any, fundraiser: Any) -> None:
    response = client.post(SAVE + "?country=pl&tag=board&bogus=1", data={"name": "  Board   in Poland "})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/dashboard/supporters/?country=PL&tag=board")
    [row] = db.session.scalars(select(SavedSearch))
    assert (row.name, row.query, row.page, row.staff_user_id) == (
        "Board in Poland",
        "country=PL&tag=board",
        "supporters",
        fundraiser.id,
    )
    [event] = events(db, "saved_search.create")
    assert event.details == {"name": "Board in Poland", "query": "country=PL&tag=board"}


def test_the_whole_team_sees_the_saved_searches_beside_the_filters_and_they_open_the_list(
    db: Any, client: Any, viewer: Any
) -> None:
    saved(author=factories.staff("fundraiser"))
    in_poland = factories.supporter(country="PL")
    in_poland.tags.append(SupporterTag(tag="board"))
    in_germany = factories.supporter(country="DE")
    in_germany.tags.append(SupporterTag(tag="board"))
    page = client.get(LIST).get_data(as_text=True)
    [link] = re.findall(r'<a href="([^"]+)">Board in Poland</a>', page)
    listed = client.get(html_lib.unescape(link)).get_data(as_text=True)
    assert f'href="/dashboard/supporters/{in_poland.id}"' in listed and "Showing 1–1 of 1 supporters" in listed
    assert 'action="/dashboard/supporters/saved-searches' not in page, "a viewer saves nothing"


def test_the_list_offers_to_save_only_when_there_are_filters(db: Any, client: Any, fundraiser: Any) -> None:
    assert f'action="{SAVE}' not in client.get(LIST).get_data(as_text=True)
    assert f'action="{SAVE}?country=PL"' in client.get(LIST + "?country=PL").get_data(as_text=True)


@pytest.mark.parametrize(
    "query,name,status,message",
    [
        ("?country=PL", "   ", 400, "Give the search a name."),
        ("?country=PL", "x" * 101, 400, "A name has at most 100 characters."),
        ("", "Everyone", 400, "Choose some filters first"),
        ("?country=PL", "BOARD IN POLAND", 409, "Another saved search is called"),
    ],
)
def test_a_search_without_a_name_without_filters_or_with_a_name_in_use_is_refused(
    db: Any, client: Any, fundraiser: Any, query: str, name: str, status: int, message: str
) -> None:
    saved()
    response = client.post(SAVE + query, data={"name": name})
    assert response.status_code == status and message in response.get_data(as_text=True)
    assert count(db) == 1 and events(db, "saved_search.create") == []


def test_whoever_saved_it_deletes_it_audited(db: Any, client: Any, fundraiser: Any) -> None:
    row = saved(author=fundraiser)
    assert delete_url(row) in client.get(LIST).get_data(as_text=True)
    assert client.post(delete_url(row)).status_code == 303
    assert count(db) == 0
    [event] = events(db, "saved_search.delete")
    assert event.details == {"name": "Board in Poland", "query": "country=PL&tag=board"}


def test_an_admin_deletes_anyones(db: Any, client: Any, admin: Any) -> None:
    row = saved(author=factories.staff("fundraiser"))
    assert delete_url(row) in client.get(LIST).get_data(as_text=True)
    assert client.post(delete_url(row)).status_code == 303 and count(db) == 0


def test_another_fundraiser_sees_no_delete_button_and_is_refused(db: Any, client: Any, fundraiser: Any) -> None:
    row = saved(author=factories.staff("fundraiser"))
    page = client.get(LIST).get_data(as_text=True)
    assert "Board in Poland" in page and delete_url(row) not in page
    assert client.post(delete_url(row)).status_code == 403
    assert count(db) == 1 and events(db, "saved_search.delete") == []


def test_a_viewer_may_neither_save_nor_delete(db: Any, client: Any, viewer: Any) -> None:
    row = saved(author=viewer)
    assert client.post(SAVE + "?country=PL", data={"name": "Mine"}).status_code == 403
    assert client.post(delete_url(row)).status_code == 403
    assert count(db) == 1


def test_an_unknown_saved_search_is_404(db: Any, client: Any, admin: Any) -> None:
    assert client.post(f"{SAVE}/999999/delete").status_code == 404


def test_a_hostile_name_is_shown_as_text(db: Any, client: Any, fundraiser: Any) -> None:
    saved(name="<script>alert(1)</script>")
    page = client.get(LIST).get_data(as_text=True)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
