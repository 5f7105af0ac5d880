"""A donor signs in without a password, at /my, and sees their own gifts.

The page answers the same whether or not the address has given; only a known
supporter is e-mailed a single-use link (valid 30 minutes) and a 6-digit code, of
which only hashes are stored. The link's page only shows a button (mail scanners open
links); pressing it signs in, once. The donor session is separate from staff sign-in
and never opens a dashboard page.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from sqlalchemy import func, select

from supporters.extensions import db as _db
from supporters.models import Campaign, DonorSignIn, GiftMethod, OutboxEmail, Supporter, utcnow
from tests import factories
from tests.functional.test_donate import build_app  # noqa: F401 - the fixture

SENT = "a sign-in link is on its way"


def emails_to(address: str) -> list[OutboxEmail]:
    return list(_db.session.scalars(select(OutboxEmail).filter_by(to_address=address, kind="donor_sign_in")))


def link_and_code(email: OutboxEmail) -> tuple[str, str]:
    link = re.search(r"https?://\S+/my/sign-in/\S+", email.body_text)
    code = re.search(r"\b(\d{6})\b", email.body_text)
    assert link and code, email.body_text
    return urlsplit(link.group(0)).path, code.group(1)


def ask(client: Any, email: str) -> Any:
    return client.post("/my/", data={"email": email})


def signed_in_as(client: Any, supporter: Supporter) -> None:
    ask(client, supporter.email)
    path, _code = link_and_code(emails_to(supporter.email)[-1])
    response = client.post(path)
    assert response.status_code == 303 and response.headers["Location"].endswith("/my/gifts")


def test_a_known_address_gets_a_link_that_signs_in_once_after_a_button(client: Any, db: Any) -> None:
    ada = factories.supporter(email="ada@example.org", name="Ada Lovelace")
    factories.paid_gift(ada, receipt_number="2026-000101")

    response = ask(client, "ADA@example.org ")

    assert response.status_code == 200 and SENT in response.get_data(as_text=True)
    assert 'name="code"' in response.get_data(as_text=True)  # the code field, for a phone
    (email,) = emails_to("ada@example.org")
    path, code = link_and_code(email)
    token = path.rsplit("/", 1)[1]
    row = db.session.scalars(select(DonorSignIn)).one()
    assert token not in row.token_hash and code not in row.code_hash  # only hashes
    assert row.expires_at - row.created_at == timedelta(minutes=30)

    page = client.get(path)  # what a mail scanner does: it uses nothing
    assert page.status_code == 200 and "<button" in page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"
    assert client.get("/my/gifts").status_code == 302

    signed = client.post(path)
    assert signed.status_code == 303
    gifts = client.get("/my/gifts")
    assert gifts.status_code == 200 and "2026-000101" in gifts.get_data(as_text=True)

    client.post("/my/sign-out")
    assert client.get("/my/gifts").status_code == 302
    again = client.post(path)  # a second use
    assert again.status_code == 410 and "already been used" in again.get_data(as_text=True)
    assert client.get("/my/gifts").status_code == 302


def test_an_unknown_address_gets_the_same_answer_and_no_email(client: Any, db: Any) -> None:
    factories.supporter(email="ada@example.org")
    erased = factories.supporter(email="gone@example.org")
    erased.anonymised_at = utcnow()
    db.session.flush()

    known = ask(client, "ada@example.org")
    unknown = ask(client, "nobody@example.org")
    gone = ask(client, "gone@example.org")

    assert known.status_code == unknown.status_code == gone.status_code == 200

    def shown(response: Any, email: str) -> str:
        return response.get_data(as_text=True).replace(email, "EMAIL")

    assert shown(known, "ada@example.org") == shown(unknown, "nobody@example.org") == shown(gone, "gone@example.org")
    assert emails_to("nobody@example.org") == [] and emails_to("gone@example.org") == []
    assert len(emails_to("ada@example.org")) == 1
    assert db.session.scalar(select(func.count()).select_from(DonorSignIn)) == 1


def test_an_expired_link_is_refused_clearly(client: Any, db: Any) -> None:
    factories.supporter(email="ada@example.org")
    ask(client, "ada@example.org")
    path, _code = link_and_code(emails_to("ada@example.org")[0])
    row = db.session.scalars(select(DonorSignIn)).one()
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.flush()

    for response in (client.get(path), client.post(path)):
        assert response.status_code == 410
        assert "has expired" in response.get_data(as_text=True)
    assert client.get("/my/gifts").status_code == 302


def test_a_link_that_is_not_ours_is_refused_with_404(client: Any, db: Any) -> None:
    for token in ["x" * 43, "short", "%00", "é" * 43]:
        assert client.get(f"/my/sign-in/{token}").status_code == 404
        assert client.post(f"/my/sign-in/{token}").status_code == 404


def test_the_code_signs_in_once_and_only_for_its_own_address(client: Any, db: Any) -> None:
    factories.supporter(email="ada@example.org")
    factories.supporter(email="bob@example.org")
    ask(client, "ada@example.org")
    ask(client, "bob@example.org")
    _path, code = link_and_code(emails_to("ada@example.org")[0])
    _bob_path, bob_code = link_and_code(emails_to("bob@example.org")[0])
    if bob_code == code:
        pytest.skip("the two random codes happen to be equal")

    other = client.post("/my/code", data={"email": "bob@example.org", "code": code})
    assert other.status_code == 400 and "not right" in other.get_data(as_text=True)
    assert client.get("/my/gifts").status_code == 302

    right = client.post("/my/code", data={"email": "ada@example.org", "code": code})
    assert right.status_code == 303
    assert "ada@example.org" in client.get("/my/gifts").get_data(as_text=True)

    client.post("/my/sign-out")
    reused = client.post("/my/code", data={"email": "ada@example.org", "code": code})
    assert reused.status_code == 400
    assert client.get("/my/gifts").status_code == 302


def test_five_wrong_codes_close_the_sign_in(client: Any, db: Any) -> None:
    factories.supporter(email="ada@example.org")
    ask(client, "ada@example.org")
    _path, code = link_and_code(emails_to("ada@example.org")[0])
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"

    answers = [client.post("/my/code", data={"email": "ada@example.org", "code": wrong}).status_code for _ in range(5)]
    assert answers == [400] * 5
    assert db.session.scalars(select(DonorSignIn)).one().attempts == 5  # kept, though refused

    late = client.post("/my/code", data={"email": "ada@example.org", "code": code})
    assert late.status_code == 400
    assert client.get("/my/gifts").status_code == 302


def test_a_code_for_an_unknown_address_is_refused_as_a_wrong_one(client: Any, db: Any) -> None:
    unknown = client.post("/my/code", data={"email": "nobody@example.org", "code": "123456"})
    assert unknown.status_code == 400 and "not right" in unknown.get_data(as_text=True)
    for bad in ["", "12 34 56", "١٢٣٤٥٦", "9" * 30]:
        assert client.post("/my/code", data={"email": "nobody@example.org", "code": bad}).status_code == 400


def test_each_donor_sees_only_their_own_gifts(client: Any, db: Any, app: Flask) -> None:
    campaign = Campaign(slug="donor-page", name="Clean rivers", goal_currency="PLN", goal_minor=1000)
    db.session.add(campaign)
    db.session.flush()
    ada = factories.supporter(email="ada@example.org")
    bob = factories.supporter(email="bob@example.org")
    old = datetime(2026, 1, 5, 12, tzinfo=UTC)
    factories.paid_gift(ada, paid_at=old, receipt_number="2026-000201", campaign_id=campaign.id)
    factories.paid_gift(ada, method=GiftMethod.CASH, amount_minor=12345, receipt_number="2026-000202")
    factories.gift(ada, amount_minor=777)  # not paid yet
    factories.paid_gift(bob, receipt_number="2026-000299", amount_minor=99900)

    signed_in_as(client, ada)
    page = client.get("/my/gifts").get_data(as_text=True)

    assert "2026-000201" in page and "2026-000202" in page and "Clean rivers" in page
    assert "cash" in page and "not paid yet" in page and "paid" in page
    assert page.index("2026-000202") < page.index("2026-000201")  # newest first
    assert "2026-000299" not in page and "bob@example.org" not in page and "999" not in page

    client.post("/my/sign-out")
    signed_in_as(client, bob)
    page = client.get("/my/gifts").get_data(as_text=True)
    assert "2026-000299" in page
    assert "2026-000201" not in page and "2026-000202" not in page and "ada@example.org" not in page


def test_the_donor_session_ends_after_two_hours(client: Any, db: Any) -> None:
    ada = factories.supporter(email="ada@example.org")
    signed_in_as(client, ada)
    assert client.get("/my/gifts").status_code == 200
    with client.session_transaction() as state:
        assert set(state["donor"]) == {"supporter_id", "until"}
        until = datetime.fromisoformat(state["donor"]["until"])
        assert timedelta(hours=1, minutes=59) < until - utcnow() <= timedelta(hours=2)
        state["donor"] = {"supporter_id": ada.id, "until": (utcnow() - timedelta(seconds=1)).isoformat()}
    assert client.get("/my/gifts").status_code == 302
    with client.session_transaction() as state:
        assert "donor" not in state


def test_an_odd_donor_session_is_no_session(client: Any, db: Any) -> None:
    ada = factories.supporter(email="ada@example.org")
    later = (utcnow() + timedelta(hours=1)).isoformat()
    for odd in [
        {"supporter_id": str(ada.id), "until": later},
        {"supporter_id": ada.id, "until": "tomorrow"},
        {"supporter_id": ada.id, "until": later.replace("+00:00", "")},
        {"supporter_id": 2**40, "until": later},
        "ada",
    ]:
        with client.session_transaction() as state:
            state["donor"] = odd
        assert client.get("/my/gifts").status_code == 302


def test_a_donor_session_opens_no_dashboard_page(client: Any, db: Any) -> None:
    ada = factories.supporter(email="ada@example.org")
    signed_in_as(client, ada)
    assert client.get("/my/gifts").status_code == 200
    for path in ["/dashboard/", "/dashboard/supporters/", "/dashboard/gifts/"]:
        response = client.get(path)
        assert response.status_code in (302, 401, 403), path
        if response.status_code == 302:
            assert "/login" in response.headers["Location"]
    with client.session_transaction() as state:
        assert "_user_id" not in state  # never Flask-Login


LIMITS = {"DONOR_SIGN_IN_LIMIT_PER_IP": "4 per hour", "DONOR_SIGN_IN_LIMIT_PER_EMAIL": "2 per hour"}


def test_sign_ins_are_limited_per_address_and_per_connection(build_app: Callable[..., Flask]) -> None:  # noqa: F811
    application = build_app(RATELIMIT_ENABLED=True, ENVIRON=LIMITS)
    client = application.test_client()
    with application.app_context():
        factories.supporter(email="ada@example.org")
        _db.session.commit()

    def ask_from(ip: str, email: str) -> int:
        response = client.post("/my/", data={"email": email}, environ_base={"REMOTE_ADDR": ip})
        return int(response.status_code)

    per_address = [ask_from("10.0.0.1", email) for email in ["ada@example.org", "ADA@example.org", " ada@example.org"]]
    assert per_address == [200, 200, 429]
    # the limit counts the address whether or not it has given, from any connection
    assert [ask_from(f"10.0.1.{n}", "nobody@example.org") for n in range(3)] == [200, 200, 429]
    with application.app_context():
        assert _db.session.scalar(select(func.count()).select_from(DonorSignIn)) == 2

    per_connection = [ask_from("10.0.2.1", f"p{n}@example.org") for n in range(5)]
    assert per_connection == [200, 200, 200, 200, 429]
    limited = client.post("/my/", data={"email": "z@example.org"}, environ_base={"REMOTE_ADDR": "10.0.2.1"})
    assert "Several sign-ins were asked for from this connection" in limited.get_data(as_text=True)

    codes = [
        client.post(
            "/my/code", data={"email": f"q{n}@example.org", "code": "123456"}, environ_base={"REMOTE_ADDR": "10.0.3.1"}
        ).status_code
        for n in range(5)
    ]
    assert codes == [400, 400, 400, 400, 429]


def test_links_and_codes_sent_to_an_old_address_stop_when_it_changes(client: Any, db: Any) -> None:
    from supporters.people import edits

    ada = factories.supporter(email="ada@example.org")
    ask(client, "ada@example.org")
    ask(client, "ada@example.org")
    path, _code = link_and_code(emails_to("ada@example.org")[0])
    _path, code = link_and_code(emails_to("ada@example.org")[1])

    edits.update_profile(None, ada, email="ada.lovelace@example.org")
    db.session.flush()

    assert client.post(path).status_code == 410
    assert client.post("/my/code", data={"email": "ada.lovelace@example.org", "code": code}).status_code == 400
    assert client.get("/my/gifts").status_code == 302


def test_signing_out_ends_the_session_even_for_a_copy_of_its_cookie(client: Any, app: Flask, db: Any) -> None:
    """A signed cookie alone cannot be taken back: signing out records the time, and every
    donor session of the supporter begun before it is over (on every device)."""
    ada = factories.supporter(email="ada@example.org")
    signed_in_as(client, ada)
    with client.session_transaction() as state:
        copied = dict(state["donor"])
    client.post("/my/sign-out")
    with client.session_transaction() as state:
        state["donor"] = copied  # the cookie as it was, replayed
    assert client.get("/my/gifts").status_code == 302
    # A new sign-in after it works.
    signed_in_as(client, ada)
    assert client.get("/my/gifts").status_code == 200
