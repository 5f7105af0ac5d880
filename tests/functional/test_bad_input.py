"""Input no person types is refused with a message, never a server error.

Each case here was a 500 on SQLite, PostgreSQL or both: an amount choice of
whitespace only or of digits `int()` cannot read, a text field sent as a file
part, a line break in the address signed-in staff are sent back to, and ids
larger than any row can have, in the path or in a filter. The hostile sweep
(test_hostile_sweep.py) sends such values everywhere; these pin each cause.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from supporters.lib.forms import MAX_ID, Form, whole_number
from supporters.models import AuditEvent, Consent, Gift, RecurringPlan, Supporter
from tests import factories
from tests.functional.test_donate import seed_campaigns, valid_form


def _rows(db: Any) -> tuple[int, ...]:
    return tuple(
        int(db.session.scalar(select(func.count()).select_from(model)) or 0)
        for model in (Gift, Supporter, RecurringPlan, Consent)
    )


# --- Whole numbers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [" ", "\t", "\x1e", "\u3000", "", None, "1" * 30, "፩", "²", "１", "٣", "𝟙", "-1", "+1", "1e3", "1.0", "0x1"],
)
def test_whole_number_reads_only_ascii_digits(raw: str | None) -> None:
    assert whole_number(raw) is None


def test_whole_number_reads_up_to_the_largest_id_a_row_can_have() -> None:
    assert whole_number(" 42 ") == 42
    assert whole_number(str(MAX_ID)) == MAX_ID
    assert whole_number(str(MAX_ID + 1)) is None
    assert whole_number(str(2**63)) is None
    assert whole_number("12", maximum=10) is None
    assert whole_number("0" * 40 + "7") is None, "a number that long is a typing slip, not a 7"


# --- The donation form's amount choice ----------------------------------------------------


@pytest.mark.parametrize(
    "choice",
    [" ", "\t", "\x1e", "\u3000", "\u2028", "\x85", "1" * 30, "፩", "²", "１", "٣", "2000\x00", " 2000"],
    ids=repr,
)
def test_an_amount_choice_no_one_offered_is_refused_at_the_amount(client: Any, db: Any, choice: str) -> None:
    seed_campaigns()
    before = _rows(db)

    response = client.post("/donate/", data=valid_form(amount_choice=choice))

    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Please check the form" in page
    assert "Choose an amount or enter your own." in page or "Not a valid choice" in page
    assert _rows(db) == before


def test_an_amount_choice_of_whitespace_leaves_a_typed_amount_in_force(client: Any, db: Any) -> None:
    seed_campaigns()
    response = client.post("/donate/", data=valid_form(amount_choice="\u3000", custom_amount="30"))
    assert response.status_code == 303
    assert db.session.scalars(select(Gift)).one().amount_minor == 3000


# --- File parts -----------------------------------------------------------------------------


def test_a_text_field_sent_as_a_file_is_refused_as_missing(client: Any, db: Any) -> None:
    seed_campaigns()
    before = _rows(db)
    data: dict[str, Any] = valid_form()
    data["name"] = (io.BytesIO(b"Ada"), "name.txt")
    data["comment"] = (io.BytesIO(b"x" * 10_000), "comment.txt")

    response = client.post("/donate/", data=data, content_type="multipart/form-data")

    assert response.status_code == 400
    assert "Enter your name." in response.get_data(as_text=True)
    assert _rows(db) == before


def test_a_staff_form_ignores_a_file_sent_for_a_text_field(client: Any, db: Any) -> None:
    person = factories.supporter(name="Ada")
    factories.sign_in(client, factories.staff("admin"))
    response = client.post(
        f"/dashboard/supporters/{person.id}/notes",
        data={"body": (io.BytesIO(b"hello"), "note.txt")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400


def test_every_form_of_the_app_reads_files_only_for_its_file_fields(app: Flask) -> None:
    from flask_wtf import FlaskForm

    def subclasses(cls: type) -> list[type]:
        return [sub for direct in cls.__subclasses__() for sub in (direct, *subclasses(direct))]

    ours = [cls for cls in subclasses(FlaskForm) if cls.__module__.startswith("supporters.")]
    assert len(ours) > 5
    for cls in ours:
        assert issubclass(cls, Form), f"{cls.__module__}.{cls.__name__} should derive from supporters.lib.forms.Form"


def test_a_form_ignores_a_json_body(client: Any, db: Any) -> None:
    seed_campaigns()
    for body in ('"text"', "[1, 2, 3]", "[" * 5000, '{"name": {"a": 1}}'):
        response = client.post("/donate/", data=body, content_type="application/json")
        assert response.status_code == 400, body[:20]


# --- Where staff are sent after signing in ---------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/dashboard%0d%0a",
        "/dashboard%0d%0aSet-Cookie:%20a=b",
        "/dashboard/%09",
        "/dashboard/%7f",
        "/dashboard/%e2%80%a8",
        "/dashboard@evil.example",
        "/dashboardevil",
        "/dashboard/..%2f..%2flogin",
        "https://evil.example/dashboard",
        "//evil.example/dashboard",
        "/dashboard/\\evil",
        "/%2fevil.example",
    ],
)
def test_signing_in_with_an_unsafe_next_goes_to_the_overview(client: Any, db: Any, target: str) -> None:
    user = factories.staff("viewer")
    response = client.post(f"/login?next={target}", data={"email": user.email, "password": factories.STAFF_PASSWORD})
    assert response.status_code == 303
    assert response.headers["Location"] == "/dashboard/"


@pytest.mark.parametrize("target", ["/dashboard/gifts/?status=succeeded&currency=PLN", "/dashboard/supporters/7"])
def test_signing_in_returns_to_the_dashboard_page_asked_for(client: Any, db: Any, target: str) -> None:
    from urllib.parse import quote

    user = factories.staff("viewer")
    response = client.post(
        f"/login?next={quote(target)}", data={"email": user.email, "password": factories.STAFF_PASSWORD}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == target


# --- Ids past any row --------------------------------------------------------------------------

HUGE_IDS = [str(MAX_ID + 1), str(2**63 - 1), str(2**63), "9" * 20, "9" * 400]


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/supporters/{}",
        "/dashboard/gifts/{}",
        "/dashboard/gifts/{}/refund",
        "/dashboard/plans/{}",
        "/dashboard/campaigns/{}",
        "/dashboard/articles/{}",
    ],
)
def test_an_id_past_any_row_in_the_path_is_404(client: Any, db: Any, path: str) -> None:
    factories.sign_in(client, factories.staff("admin"))
    for number in HUGE_IDS:
        assert client.get(path.format(number)).status_code == 404, number


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/supporters/{}/notes",
        "/dashboard/staff/{}/role",
        "/dashboard/campaigns/{}/variants",
    ],
)
def test_a_write_to_an_id_past_any_row_is_404(client: Any, db: Any, path: str) -> None:
    factories.sign_in(client, factories.staff("admin"))
    before = db.session.scalar(select(func.count()).select_from(AuditEvent))
    for number in HUGE_IDS:
        assert client.post(path.format(number), data={"body": "x", "role": "viewer"}).status_code == 404, number
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == before


def test_ids_in_other_digits_are_not_ids(client: Any, db: Any) -> None:
    person = factories.supporter()
    factories.sign_in(client, factories.staff("admin"))
    arabic = str(person.id).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    assert client.get(f"/dashboard/supporters/{arabic}").status_code == 404
    assert client.get(f"/dashboard/supporters/{person.id}").status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        "/dashboard/gifts/?campaign={}",
        "/dashboard/gifts/?supporter_id={}",
        "/dashboard/gifts/new?supporter_id={}",
        "/dashboard/audit/?person={}",
        "/dashboard/supporters/?page={}",
        "/dashboard/gifts/?page={}",
        "/articles/?page={}",
    ],
)
def test_an_id_past_any_row_in_a_filter_is_ignored(client: Any, db: Any, query: str) -> None:
    factories.sign_in(client, factories.staff("admin"))
    for number in [*HUGE_IDS, "፩", "²", "１", "-1"]:
        response = client.get(query.format(number))
        assert response.status_code in (200, 404), (number, response.status_code)


def test_a_variant_id_in_other_digits_is_refused(client: Any, db: Any) -> None:
    from supporters.models import Campaign

    campaign = Campaign(slug="v", name="V", goal_currency="PLN")
    db.session.add(campaign)
    db.session.flush()
    factories.sign_in(client, factories.staff("admin"))
    for raw in ("፩", "²", str(2**63), "9" * 400):
        response = client.post(f"/dashboard/campaigns/{campaign.id}/variants/remove", data={"variant_id": raw})
        assert response.status_code in (400, 404), raw


def test_an_offline_gift_with_a_campaign_of_whitespace_has_no_campaign(client: Any, db: Any) -> None:
    factories.sign_in(client, factories.staff("fundraiser"))
    data = {
        "email": "anna@example.org",
        "name": "Anna Kowalska",
        "amount": "125,50",
        "currency": "PLN",
        "method": "bank_transfer",
        "received_on": "2026-01-05",
        "reference": "Darowizna",
        "submission_id": "ws-1",
    }
    for blank in ("\u3000", " ", "\x1e"):
        response = client.post("/dashboard/gifts/new", data={**data, "campaign_id": blank, "submission_id": blank})
        assert response.status_code in (303, 400), repr(blank)
    assert all(gift.campaign_id is None for gift in db.session.scalars(select(Gift)))
