"""Dashboard audit log: admins only, newest first, filtered by person, action and date,
100 a page, details shown as escaped JSON (the sentences: test_audit_sentences.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete

from supporters.models import AuditEvent, StaffUser
from tests import factories


@pytest.fixture
def admin(client: Any, db: Any) -> StaffUser:
    user = factories.staff("admin")
    factories.sign_in(client, user)
    db.session.execute(delete(AuditEvent))  # the sign-in's own event
    db.session.flush()
    return user


def event(db: Any, action: str, when: datetime, who: StaffUser | None = None, **details: Any) -> AuditEvent:
    row = AuditEvent(
        staff_user_id=who.id if who else None,
        actor=who.email if who else "cli",
        action=action,
        target_type="gift",
        target_id="7",
        created_at=when,
        details=details,
    )
    db.session.add(row)
    db.session.flush()
    return row


def actions(page: str) -> list[str]:
    return re.findall(r"<summary><code>([^<]+)</code></summary>", page)


NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("role", ["viewer", "fundraiser"])
def test_only_admins_read_the_audit_log(db: Any, client: Any, role: str) -> None:
    factories.sign_in(client, factories.staff(role))
    assert client.get("/dashboard/audit/").status_code == 403


def test_events_are_newest_first_with_who_what_which_record(db: Any, client: Any, admin: StaffUser) -> None:
    event(db, "gift.refund", NOON, admin)
    event(db, "supporters.export", NOON + timedelta(hours=1), admin)
    event(db, "staff.create", NOON - timedelta(days=1))
    page = client.get("/dashboard/audit/").get_data(as_text=True)
    assert actions(page) == ["supporters.export", "gift.refund", "staff.create"]
    # the organisation's time (Europe/Warsaw in the tests): noon UTC is 13:00 there in March
    assert admin.email in page and "cli" in page and "gift 7" in page and "2026-03-10 13:00:00" in page


@pytest.mark.parametrize(
    "query,expected",
    [
        ("action=gift.refund", ["gift.refund"]),
        ("action=gift.", ["gift.refund", "gift.offline"]),
        ("action=gift*", ["gift.refund", "gift.offline"]),
        ("action=gift", []),
        ("action=gift_", []),
        ("person=cli", ["campaign.update"]),
        ("from=2026-03-10&to=2026-03-10", ["gift.refund"]),
        ("from=2026-03-11", ["supporters.export"]),
        ("to=2026-03-09", ["gift.offline", "campaign.update"]),
    ],
)
def test_events_can_be_filtered_by_action_person_and_date(
    db: Any, client: Any, admin: StaffUser, query: str, expected: list[str]
) -> None:
    event(db, "supporters.export", NOON + timedelta(days=1), admin)
    event(db, "gift.refund", NOON, admin)
    event(db, "gift.offline", NOON - timedelta(days=1), admin)
    event(db, "campaign.update", NOON - timedelta(days=2))
    response = client.get(f"/dashboard/audit/?{query}")
    assert response.status_code == 200
    assert actions(response.get_data(as_text=True)) == expected
    # an empty list is the log saying so, not a page without its table
    assert ("No events match." in response.get_data(as_text=True)) == (not expected)


def test_filtering_by_person_uses_the_account(db: Any, client: Any, admin: StaffUser) -> None:
    other = factories.staff("fundraiser")
    event(db, "gift.refund", NOON, other)
    event(db, "gift.offline", NOON, admin)
    page = client.get(f"/dashboard/audit/?person={other.id}").get_data(as_text=True)
    assert actions(page) == ["gift.refund"]
    assert f'<option value="{other.id}" selected>' in page


def test_a_hundred_events_a_page(db: Any, client: Any, admin: StaffUser) -> None:
    for number in range(205):
        event(db, f"test.e{number:03d}", NOON + timedelta(seconds=number))
    first = client.get("/dashboard/audit/?action=test.").get_data(as_text=True)
    assert len(actions(first)) == 100 and actions(first)[0] == "test.e204"
    assert 'href="/dashboard/audit/?action=test.&amp;page=2"' in first and 'rel="prev"' not in first
    third = client.get("/dashboard/audit/?action=test.&page=3").get_data(as_text=True)
    assert actions(third) == ["test.e004", "test.e003", "test.e002", "test.e001", "test.e000"]
    assert 'rel="next"' not in third and 'rel="prev"' in third


@pytest.mark.parametrize(
    "query,message",
    [
        ("from=10.03.2026", "Enter dates as YYYY-MM-DD"),
    ],
)
def test_filters_that_make_no_sense_are_refused_with_a_message(
    db: Any, client: Any, admin: StaffUser, query: str, message: str
) -> None:
    response = client.get(f"/dashboard/audit/?{query}")
    assert response.status_code == 400 and message in response.get_data(as_text=True)


def test_a_period_typed_backwards_is_swapped_with_a_note(db: Any, client: Any, admin: StaffUser) -> None:
    """The same on every list (lib.dates.in_order): 1 to 10 March, whichever end came first."""
    event(db, "gift.refund", NOON, admin)
    event(db, "supporters.export", NOON + timedelta(days=30), admin)
    response = client.get("/dashboard/audit/?from=2026-03-10&to=2026-03-01")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "The dates were the wrong way round; they were swapped." in page
    assert actions(page) == ["gift.refund"]


@pytest.mark.parametrize("page", ["0", "two", "", "123456789"])
def test_a_page_that_is_no_page_shows_the_first_with_a_note(db: Any, client: Any, admin: StaffUser, page: str) -> None:
    """As on every dashboard list (lib.paging.page_number)."""
    event(db, "gift.refund", NOON, admin)
    response = client.get(f"/dashboard/audit/?page={page}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and actions(html) == ["gift.refund"]
    assert ("Ignored the page" in html) is bool(page)


def test_details_are_shown_as_escaped_json(db: Any, client: Any, admin: StaffUser) -> None:
    event(
        db,
        "campaign.update",
        NOON,
        admin,
        changed={"name": ["Old", "</code><script>alert(1)</script>"]},
        note="\u202eevil",
    )
    page = client.get("/dashboard/audit/").get_data(as_text=True)
    assert "<script>alert(1)" not in page
    assert (
        "{&#34;changed&#34;: {&#34;name&#34;: [&#34;Old&#34;, &#34;&lt;/code&gt;&lt;script&gt;alert(1)"
        "&lt;/script&gt;&#34;]}, &#34;note&#34;: &#34;\u202eevil&#34;}"
    ) in page


def test_what_staff_do_in_the_dashboard_lands_in_the_log(db: Any, client: Any, admin: StaffUser) -> None:
    other = factories.staff("viewer")
    client.post(f"/dashboard/staff/{other.id}/deactivate", data={"confirm": "yes"})
    page = client.get("/dashboard/audit/?action=staff.").get_data(as_text=True)
    assert actions(page) == ["staff.deactivate"] and other.email in page and admin.email in page
