"""Dashboard staff accounts: admins only; invitations with a temporary password shown once;
role changes, deactivation that ends sessions at once, and an admin always left."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from supporters.lib.errors import Refused
from supporters.models import AuditEvent, StaffRole, StaffSession, StaffUser
from supporters.staff import accounts
from tests import factories


def signed_in(client: Any) -> bool:
    return client.get("/dashboard/").status_code == 200


def audit_events(db: Any, action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).filter_by(action=action)))


@pytest.mark.parametrize("role", ["viewer", "fundraiser"])
def test_only_admins_reach_the_staff_pages(db: Any, client: Any, role: str) -> None:
    factories.sign_in(client, factories.staff(role))
    other = factories.staff("viewer")
    assert client.get("/dashboard/staff/").status_code == 403
    assert client.post("/dashboard/staff/invite", data={"email": "x@example.org", "role": "admin"}).status_code == 403
    assert client.post(f"/dashboard/staff/{other.id}/role", data={"role": "admin"}).status_code == 403
    assert client.post(f"/dashboard/staff/{other.id}/deactivate").status_code == 403
    assert db.session.scalar(select(func.count()).select_from(StaffUser)) == 2
    assert other.role == StaffRole.VIEWER and other.active


def test_the_list_shows_role_status_last_sign_in_and_open_sessions(
    db: Any, client: Any, admin: StaffUser, app: Flask
) -> None:
    colleague = factories.staff("fundraiser", email="colleague@example.org")
    for _ in range(2):
        factories.sign_in(app.test_client(), colleague)
    factories.staff("viewer", email="never@example.org", active=False)
    page = client.get("/dashboard/staff/").get_data(as_text=True)
    row = page[page.index("colleague@example.org") :]
    row = row[: row.index("</tr>")]
    assert 'value="fundraiser" selected' in row and "Active" in row and "<time" in row
    assert '<td class="adm-num">2</td>' in row
    never = page[page.index("never@example.org") :]
    assert "Deactivated" in never[: never.index("</tr>")] and "Never" in never[: never.index("</tr>")]


def test_inviting_creates_the_account_and_shows_the_password_once(
    db: Any, client: Any, admin: StaffUser, app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = client.post("/dashboard/staff/invite", data={"email": " New.Person@Example.org ", "role": "fundraiser"})

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    created = db.session.scalars(select(StaffUser).filter_by(email="new.person@example.org")).one()
    assert created.role == StaffRole.FUNDRAISER and created.active
    password = page.split('class="adm-secret"><code>')[1].split("</code>")[0]
    assert len(password) >= 12 and created.check_password(password)
    assert "shown only this once" in page and "no e-mail is sent" in page
    assert response.headers["Cache-Control"] == "no-store"

    [event] = audit_events(db, "staff.invite")
    assert event.details == {"email": "new.person@example.org", "role": "fundraiser"}
    assert (event.staff_user_id, event.target_id) == (admin.id, str(created.id))
    everything_logged = " ".join(str(e.details) for e in db.session.scalars(select(AuditEvent))) + caplog.text
    assert password not in everything_logged
    staff_list = client.get("/dashboard/staff/")
    assert password not in staff_list.get_data(as_text=True)
    assert staff_list.status_code == 200 and "new.person@example.org" in staff_list.get_data(as_text=True)
    audit_log = client.get("/dashboard/audit/")
    assert password not in audit_log.get_data(as_text=True)
    assert audit_log.status_code == 200
    assert "<summary><code>staff.invite</code></summary>" in audit_log.get_data(as_text=True)

    newcomer = app.test_client()
    assert newcomer.post("/login", data={"email": "new.person@example.org", "password": password}).status_code == 303


@pytest.mark.parametrize(
    "data,message",
    [
        ({"email": "", "role": "viewer"}, "Enter the person&#39;s e-mail address."),
        ({"email": "not an address", "role": "viewer"}, "Enter a valid e-mail address."),
        ({"email": "someone@example.org", "role": "owner"}, "Not a valid choice."),
        ({"email": "TAKEN@example.org", "role": "viewer"}, "There is already an account for taken@example.org."),
    ],
)
def test_an_invalid_invitation_is_refused_with_a_message(
    db: Any, client: Any, admin: StaffUser, data: dict[str, str], message: str
) -> None:
    factories.staff("viewer", email="taken@example.org")
    response = client.post("/dashboard/staff/invite", data=data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True).replace("person's", "person&#39;s")
    assert db.session.scalar(select(func.count()).select_from(StaffUser)) == 2
    assert audit_events(db, "staff.invite") == []


def test_changing_a_role_is_audited(db: Any, client: Any, admin: StaffUser) -> None:
    other = factories.staff("viewer")
    assert client.post(f"/dashboard/staff/{other.id}/role", data={"role": "fundraiser"}).status_code == 303
    assert other.role == StaffRole.FUNDRAISER
    [event] = audit_events(db, "staff.change_role")
    assert event.details == {"email": other.email, "before": "viewer", "after": "fundraiser"}
    assert event.staff_user_id == admin.id
    assert client.post(f"/dashboard/staff/{other.id}/role", data={"role": "owner"}).status_code == 400


def test_deactivation_ends_the_persons_open_sessions_at_once(
    db: Any, client: Any, admin: StaffUser, app: Flask
) -> None:
    other = factories.staff("fundraiser")
    theirs = app.test_client()
    assert factories.sign_in(theirs, other).status_code == 303 and signed_in(theirs)
    assert theirs.get("/dashboard/supporters/").status_code == 200

    asked = client.post(f"/dashboard/staff/{other.id}/deactivate")
    assert asked.status_code == 200 and "Yes, deactivate" in asked.get_data(as_text=True)
    assert other.active and signed_in(theirs), "the first press only asks to confirm"

    response = client.post(f"/dashboard/staff/{other.id}/deactivate", data={"confirm": "yes"})

    assert response.status_code == 303 and not other.active
    assert not signed_in(theirs)
    assert theirs.get("/dashboard/supporters/").status_code in (302, 404)
    for path in ("/dashboard/", "/dashboard/supporters/"):  # sent to sign in, as anyone signed out is
        answer = theirs.get(path)
        assert answer.status_code == 302 and answer.headers["Location"].startswith("/login?next="), path
    assert (
        db.session.scalar(
            select(func.count()).select_from(StaffSession).filter_by(staff_user_id=other.id, ended_at=None)
        )
        == 0
    )
    assert factories.sign_in(theirs, other).status_code == 401
    [event] = audit_events(db, "staff.deactivate")
    assert event.details == {"email": other.email, "sessions_ended": 1}
    assert signed_in(client), "the admin's own session goes on"


def test_reactivation_lets_the_person_sign_in_again(db: Any, client: Any, admin: StaffUser, app: Flask) -> None:
    other = factories.staff("viewer", active=False)
    assert client.post(f"/dashboard/staff/{other.id}/activate").status_code == 303
    assert other.active and factories.sign_in(app.test_client(), other).status_code == 303
    assert [e.details for e in audit_events(db, "staff.activate")] == [{"email": other.email}]


def test_an_admin_cannot_demote_or_deactivate_themselves(db: Any, client: Any, admin: StaffUser) -> None:
    factories.staff("admin")  # not the last admin: the rule is about oneself
    response = client.post(f"/dashboard/staff/{admin.id}/role", data={"role": "viewer"})
    assert response.status_code == 400
    assert "You cannot change your own role" in response.get_data(as_text=True)
    response = client.post(f"/dashboard/staff/{admin.id}/deactivate")
    assert response.status_code == 400
    assert "You cannot deactivate your own account" in response.get_data(as_text=True)
    assert admin.role == StaffRole.ADMIN and admin.active and signed_in(client)
    assert audit_events(db, "staff.change_role") == audit_events(db, "staff.deactivate") == []


def test_the_last_active_admin_cannot_be_demoted_or_deactivated(db: Any, app: Flask) -> None:

    with app.test_request_context():
        last = factories.staff("admin")
        factories.staff("admin", active=False)  # an inactive admin does not count
        actor = factories.staff("fundraiser")  # e.g. demoted a moment ago in another tab
        for attempt in (
            lambda: accounts.change_role(actor, last, StaffRole.VIEWER),
            lambda: accounts.deactivate(actor, last),
        ):
            with pytest.raises(Refused, match="last active admin"):
                attempt()
        assert last.role == StaffRole.ADMIN and last.active
        second = factories.staff("admin")
        assert accounts.change_role(actor, last, StaffRole.VIEWER) == StaffRole.ADMIN
        with pytest.raises(Refused, match="last active admin"):
            accounts.deactivate(actor, second)


def test_the_last_admin_rule_answers_400_through_the_page(db: Any, client: Any, admin: StaffUser) -> None:
    other_admin = factories.staff("admin")
    assert client.post(f"/dashboard/staff/{other_admin.id}/role", data={"role": "viewer"}).status_code == 303
    response = client.post(f"/dashboard/staff/{admin.id}/role", data={"role": "viewer"})
    assert response.status_code == 400
    assert db.session.scalar(select(func.count()).select_from(StaffUser).filter_by(role=StaffRole.ADMIN)) == 1


def test_unknown_accounts_are_404(db: Any, client: Any, admin: StaffUser) -> None:
    known = factories.staff("viewer")

    def post(staff_id: int, action: str) -> Any:
        return client.post(f"/dashboard/staff/{staff_id}/{action}", data={"role": "viewer", "confirm": "yes"})

    for action in ("role", "deactivate", "activate"):
        assert post(999999, action).status_code == 404
        assert post(known.id, action).status_code == 303, f"{action} of an account that exists"
