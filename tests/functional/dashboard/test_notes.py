"""Notes on a supporter: their author may edit and delete them (audited with the old
text); everyone else sees no buttons and is refused."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from supporters.models import AuditEvent, Supporter, SupporterNote, utcnow
from supporters.people import edits
from tests import factories


def note_by(author: Any, person: Supporter | None = None, body: str = "Prefers post.") -> SupporterNote:
    return edits.add_note(author, person or factories.supporter(), body)


def note_url(note: SupporterNote, action: str) -> str:
    return f"/dashboard/supporters/{note.supporter_id}/notes/{note.id}/{action}"


def audit_events(db: Any, action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).filter_by(action=action).order_by(AuditEvent.id)))


def test_the_author_edits_a_note_and_the_old_text_is_audited(db: Any, client: Any, fundraiser: Any) -> None:
    note = note_by(fundraiser, body="Prefers post.")
    response = client.post(note_url(note, "edit"), data={"body": "  Prefers e-mail now.  "})
    assert response.status_code == 303
    db.session.refresh(note)
    assert note.body == "Prefers e-mail now." and note.edited_at is not None
    [event] = audit_events(db, "supporter.edit_note")
    assert (event.target_type, event.target_id) == ("supporter", str(note.supporter_id))
    assert event.staff_user_id == fundraiser.id
    assert event.details["note_id"] == note.id
    assert event.details["changes"] == {"body": {"old": "Prefers post.", "new": "Prefers e-mail now."}}
    html = client.get(f"/dashboard/supporters/{note.supporter_id}").get_data(as_text=True)
    assert "Prefers e-mail now." in html and "edited" in html and "The note was saved." in html


def test_saving_a_note_unchanged_changes_and_audits_nothing(db: Any, client: Any, fundraiser: Any) -> None:
    note = note_by(fundraiser, body="Same.")
    assert client.post(note_url(note, "edit"), data={"body": "Same."}).status_code == 303
    db.session.refresh(note)
    assert note.edited_at is None and audit_events(db, "supporter.edit_note") == []


def test_the_author_deletes_a_note_and_its_text_is_kept_in_the_audit_log(db: Any, client: Any, fundraiser: Any) -> None:
    note = note_by(fundraiser, body="Wrong person, sorry.")
    note_id, supporter_id = note.id, note.supporter_id
    assert client.post(note_url(note, "delete")).status_code == 303
    db.session.expire_all()
    assert db.session.get(SupporterNote, note_id) is None
    [event] = audit_events(db, "supporter.delete_note")
    assert event.target_id == str(supporter_id)
    assert event.details["note_id"] == note_id and event.details["body"] == "Wrong person, sorry."


@pytest.mark.parametrize("role", ["admin", "fundraiser"])
def test_nobody_but_the_author_sees_the_buttons_or_may_edit_or_delete(db: Any, client: Any, role: str) -> None:
    author = factories.staff("fundraiser")
    note = note_by(author, body="Met at the conference.")
    other = factories.staff(role)
    assert factories.sign_in(client, other).status_code == 303
    html = client.get(f"/dashboard/supporters/{note.supporter_id}").get_data(as_text=True)
    assert "Met at the conference." in html
    assert note_url(note, "edit") not in html and note_url(note, "delete") not in html
    assert client.post(note_url(note, "edit"), data={"body": "Changed"}).status_code == 403
    assert client.post(note_url(note, "delete")).status_code == 403
    db.session.refresh(note)
    assert note.body == "Met at the conference."
    assert audit_events(db, "supporter.edit_note") == audit_events(db, "supporter.delete_note") == []


def test_the_author_sees_edit_and_delete_on_their_own_notes_only(db: Any, client: Any, fundraiser: Any) -> None:
    person = factories.supporter()
    mine = note_by(fundraiser, person, "Mine.")
    theirs = note_by(factories.staff("fundraiser"), person, "Theirs.")
    html = client.get(f"/dashboard/supporters/{person.id}").get_data(as_text=True)
    assert note_url(mine, "edit") in html and note_url(mine, "delete") in html
    assert note_url(theirs, "edit") not in html and note_url(theirs, "delete") not in html


def test_a_note_whose_author_account_was_removed_can_be_changed_by_nobody(
    db: Any, client: Any, fundraiser: Any
) -> None:
    note = note_by(fundraiser)
    note.staff_user_id = None
    db.session.flush()
    assert client.post(note_url(note, "edit"), data={"body": "x"}).status_code == 403


def test_a_viewer_may_not_change_even_a_note_they_wrote_long_ago(db: Any, client: Any, viewer: Any) -> None:
    note = note_by(viewer)
    html = client.get(f"/dashboard/supporters/{note.supporter_id}").get_data(as_text=True)
    assert note_url(note, "edit") not in html
    assert client.post(note_url(note, "edit"), data={"body": "x"}).status_code == 403
    assert client.post(note_url(note, "delete")).status_code == 403


@pytest.mark.parametrize("body", ["", "   ", "x" * 2001])
def test_an_empty_or_too_long_edit_is_refused_and_the_note_kept(
    db: Any, client: Any, fundraiser: Any, body: str
) -> None:
    note = note_by(fundraiser, body="Kept.")
    response = client.post(note_url(note, "edit"), data={"body": body})
    assert response.status_code == 400 and "A note has 1 to 2000 characters." in response.get_data(as_text=True)
    db.session.refresh(note)
    assert note.body == "Kept." and note.edited_at is None


def test_a_note_is_found_only_under_its_own_supporter(db: Any, client: Any, fundraiser: Any) -> None:
    note = note_by(fundraiser)
    other = factories.supporter()
    assert client.post(f"/dashboard/supporters/{other.id}/notes/{note.id}/edit", data={"body": "x"}).status_code == 404
    assert client.post(f"/dashboard/supporters/{other.id}/notes/{note.id}/delete").status_code == 404
    assert client.post(f"/dashboard/supporters/{note.supporter_id}/notes/999999/delete").status_code == 404
    assert db.session.scalar(select(sa.func.count()).select_from(SupporterNote)) == 1


def test_the_notes_of_an_erased_supporter_cannot_be_changed(db: Any, client: Any, fundraiser: Any) -> None:
    note = note_by(fundraiser)
    db.session.get(Supporter, note.supporter_id).anonymised_at = utcnow()
    db.session.flush()
    assert client.post(note_url(note, "edit"), data={"body": "x"}).status_code == 409
    assert client.post(note_url(note, "delete")).status_code == 409
