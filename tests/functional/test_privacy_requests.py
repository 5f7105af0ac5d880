"""The privacy request log and its pages: a request logged is due one month after it
arrived; the overview shows the open ones and those overdue or due within a week; access
and erasure are done from the request, or from the supporter's page, which logs one; who
may do what (view: read; export: the data; write: log, answer, erase)."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from supporters.extensions import db as _db
from supporters.lib.dates import org_today
from supporters.lib.errors import Refused
from supporters.models import AuditEvent, PlanStatus, PrivacyRequest, RequestKind, RequestStatus, Supporter
from supporters.privacy import requests
from tests import factories
from tests.fakes import FakeGateway
from tests.functional.dashboard.conftest import signed_in_as


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (date(2026, 1, 15), date(2026, 2, 15)),
        (date(2026, 1, 31), date(2026, 2, 28)),
        (date(2028, 1, 31), date(2028, 2, 29)),
        (date(2026, 12, 20), date(2027, 1, 20)),
    ],
)
def test_a_request_is_due_one_month_after_it_arrived(received: date, due: date) -> None:
    assert requests.one_month_after(received) == due


def test_a_logged_request_is_open_due_and_audited(db: Any) -> None:
    logged = requests.log_request(
        None, RequestKind.ACCESS, received_on=date(2026, 1, 31), requester_email="anna@example.org"
    )
    assert (logged.status, logged.due_on, logged.created_by) == (RequestStatus.OPEN, date(2026, 2, 28), "cli")
    assert _db.session.scalar(sa.select(AuditEvent.action).filter_by(target_id=str(logged.id))) == (
        "privacy.request_logged"
    )


def test_a_request_from_nobody_or_from_the_future_is_refused(db: Any) -> None:
    with pytest.raises(Refused):
        requests.log_request(None, RequestKind.ACCESS, received_on=date(2026, 1, 1))
    with pytest.raises(Refused):
        requests.log_request(
            None, RequestKind.ACCESS, received_on=org_today() + timedelta(days=2), requester_name="Anna"
        )


def test_a_closed_request_cannot_be_closed_again(db: Any) -> None:
    logged = requests.log_request(None, RequestKind.OBJECTION, received_on=date(2026, 1, 2), requester_name="Jan")
    requests.close_request(None, logged, "No more letters.")
    with pytest.raises(Refused) as refused:
        requests.close_request(None, logged, "Again.")
    assert refused.value.status == 409


def test_the_health_counts_open_requests_and_names_the_overdue_and_the_due_soon(db: Any) -> None:
    today = date(2026, 3, 10)

    def asked(received: date) -> PrivacyRequest:
        return requests.log_request(None, RequestKind.ACCESS, received_on=received, requester_name="A")

    overdue = asked(date(2026, 2, 9))  # due 9 March
    soon = asked(date(2026, 2, 17))  # due 17 March: within 7 days
    asked(date(2026, 2, 18))  # due 18 March: 8 days away
    closed = asked(date(2026, 1, 1))
    requests.close_request(None, closed, "Done.")

    health = requests.open_request_health(today)

    assert health.open == 3
    assert health.overdue == [overdue] and health.due_soon == [soon]


def test_the_overview_shows_the_open_requests_and_the_overdue(client: Any, db: Any) -> None:
    signed_in_as(client, "viewer")
    assert "Privacy requests" not in client.get("/dashboard/").get_data(as_text=True)
    late = requests.log_request(
        None, RequestKind.ERASURE, received_on=org_today() - timedelta(days=40), requester_name="A"
    )

    page = client.get("/dashboard/").get_data(as_text=True)

    assert "Privacy requests" in page and "1 open request." in page and "1 is overdue." in page
    assert f"/dashboard/privacy/{late.id}" in page


def test_staff_log_a_request_and_answer_it(client: Any, db: Any) -> None:
    signed_in_as(client, "fundraiser")
    person = factories.supporter()
    response = client.post(
        "/dashboard/privacy/new",
        data={
            "kind": "rectification",
            "received_on": "2026-01-05",
            "requester_name": "Anna Kowalska",
            "supporter_id": str(person.id),
            "notes": "Wrong street name",
        },
    )
    assert response.status_code == 303
    logged = _db.session.scalar(sa.select(PrivacyRequest))
    assert (logged.kind, logged.supporter_id, logged.due_on) == (RequestKind.RECTIFICATION, person.id, date(2026, 2, 5))
    page = client.get(f"/dashboard/privacy/{logged.id}").get_data(as_text=True)
    assert "Anna Kowalska" in page and "2026-02-05" in page

    assert client.post(f"/dashboard/privacy/{logged.id}/close", data={"outcome": ""}).status_code == 400
    assert client.post(f"/dashboard/privacy/{logged.id}/close", data={"outcome": "Street fixed."}).status_code == 303
    assert logged.status is RequestStatus.CLOSED and logged.outcome == "Street fixed."


def test_an_unknown_supporter_number_is_refused_next_to_the_field(client: Any, db: Any) -> None:
    signed_in_as(client, "admin")
    response = client.post(
        "/dashboard/privacy/new",
        data={"kind": "access", "received_on": "2026-01-05", "requester_name": "A", "supporter_id": "999999"},
    )
    assert response.status_code == 400 and "There is no supporter with this number." in response.get_data(as_text=True)
    assert _db.session.scalar(sa.select(sa.func.count()).select_from(PrivacyRequest)) == 0


def test_the_export_from_the_supporter_page_logs_an_access_request(client: Any, db: Any) -> None:
    signed_in_as(client, "fundraiser")
    person = factories.supporter(name="Anna Kowalska", language="pl")
    assert "/dashboard/privacy/supporters/" in client.get(f"/dashboard/supporters/{person.id}").get_data(as_text=True)

    response = client.post(
        f"/dashboard/privacy/supporters/{person.id}/export", data={"export-received_on": "2026-01-05"}
    )

    assert response.status_code == 200 and response.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    assert json.loads(archive.read("data.json"))["supporter"]["name"] == "Anna Kowalska"
    logged = _db.session.scalar(sa.select(PrivacyRequest))
    assert (logged.kind, logged.supporter_id, logged.exported_at is not None) == (RequestKind.ACCESS, person.id, True)
    assert logged.is_open  # closed once the person has it


def test_erasure_from_the_supporter_page_needs_the_address_typed(
    client: Any, db: Any, fake_stripe: FakeGateway
) -> None:
    signed_in_as(client, "fundraiser")
    person = factories.supporter(email="anna@example.org", stripe_customer_id="cus_anna")
    url = f"/dashboard/privacy/supporters/{person.id}/erase"

    wrong = client.post(url, data={"erase-received_on": "2026-01-05", "erase-confirmation": "someone@example.org"})
    assert wrong.status_code == 400 and "Type the supporter" in wrong.get_data(as_text=True)
    assert fake_stripe.deleted_customers == [] and _db.session.get(Supporter, person.id).anonymised_at is None

    right = client.post(url, data={"erase-received_on": "2026-01-05", "erase-confirmation": " Anna@example.org "})

    assert right.status_code == 303
    _db.session.expire_all()
    assert _db.session.get(Supporter, person.id).anonymised_at is not None
    logged = _db.session.scalar(sa.select(PrivacyRequest))
    assert logged.kind is RequestKind.ERASURE and logged.status is RequestStatus.CLOSED and logged.erased_at
    assert fake_stripe.deleted_customers == ["cus_anna"]


def test_erasure_refused_for_a_live_plan_says_why(client: Any, db: Any, fake_stripe: FakeGateway) -> None:
    signed_in_as(client, "admin")
    person = factories.supporter(email="anna@example.org")
    factories.plan(person).status = PlanStatus.ACTIVE

    response = client.post(
        f"/dashboard/privacy/supporters/{person.id}/erase", data={"erase-confirmation": "anna@example.org"}
    )

    assert response.status_code == 409 and "Cancel it first" in response.get_data(as_text=True)


def test_a_stripe_failure_is_a_clear_message_and_erases_nothing(client: Any, db: Any, fake_stripe: FakeGateway) -> None:
    signed_in_as(client, "admin")
    person = factories.supporter(email="anna@example.org", stripe_customer_id="cus_anna")
    logged = requests.log_request(None, RequestKind.ERASURE, received_on=date(2026, 1, 5), supporter=person)
    fake_stripe.fail = True

    response = client.post(f"/dashboard/privacy/{logged.id}/erase", data={"erase-confirmation": "anna@example.org"})

    assert response.status_code == 502 and "Nothing was erased" in response.get_data(as_text=True)
    _db.session.expire_all()
    assert _db.session.get(Supporter, person.id).anonymised_at is None


def test_only_an_erasure_request_erases(client: Any, db: Any, fake_stripe: FakeGateway) -> None:
    signed_in_as(client, "admin")
    person = factories.supporter(email="anna@example.org")
    logged = requests.log_request(None, RequestKind.ACCESS, received_on=date(2026, 1, 5), supporter=person)
    response = client.post(f"/dashboard/privacy/{logged.id}/erase", data={"erase-confirmation": "anna@example.org"})
    assert response.status_code == 409 and person.anonymised_at is None


@pytest.mark.parametrize(
    ("role", "path", "status"),
    [
        ("viewer", "/dashboard/privacy/", 200),
        ("viewer", "/dashboard/privacy/new", 403),
        ("viewer", "/dashboard/privacy/supporters/{supporter}", 200),
    ],
)
def test_viewers_read_the_log_but_change_nothing(client: Any, db: Any, role: str, path: str, status: int) -> None:
    signed_in_as(client, role)
    person = factories.supporter()
    assert client.get(path.format(supporter=person.id)).status_code == status


def test_a_viewer_cannot_export_or_erase(client: Any, db: Any, fake_stripe: FakeGateway) -> None:
    signed_in_as(client, "viewer")
    person = factories.supporter(email="anna@example.org")
    assert client.post(f"/dashboard/privacy/supporters/{person.id}/export", data={}).status_code == 403
    erase = client.post(
        f"/dashboard/privacy/supporters/{person.id}/erase", data={"erase-confirmation": "anna@example.org"}
    )
    assert erase.status_code == 403 and person.anonymised_at is None


def test_pages_for_ids_that_do_not_exist_are_404(client: Any, db: Any) -> None:
    signed_in_as(client, "admin")
    assert client.get("/dashboard/privacy/999999").status_code == 404
    assert client.get("/dashboard/privacy/supporters/999999").status_code == 404
    assert client.post("/dashboard/privacy/999999/close", data={"outcome": "x"}).status_code == 404
