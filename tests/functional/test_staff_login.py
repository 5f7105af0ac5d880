"""Staff sign-in: sessions that really end, throttling, and safe redirects."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from supporters.models import AuditEvent, StaffSession, utcnow
from supporters.staff import sessions
from tests import factories
from tests.conftest import make_app


def signed_in(client: Any) -> bool:
    return client.get("/dashboard/").status_code == 200


def sent_to_sign_in(client: Any) -> bool:
    """The dashboard sends this client to the sign-in page, as it does anyone signed out
    (unlike `not signed_in`, a 404 is not that)."""
    response = client.get("/dashboard/")
    return response.status_code == 302 and response.headers["Location"].startswith("/login?next=")


def test_signing_in_opens_the_dashboard_and_is_audited(db: Any, client: Any) -> None:
    user = factories.staff("fundraiser")
    assert not signed_in(client)
    response = factories.sign_in(client, user)
    assert response.status_code == 303 and response.headers["Location"] == "/dashboard/"
    assert signed_in(client)
    assert db.session.scalar(select(AuditEvent).filter_by(action="staff.login")).staff_user_id == user.id


@pytest.mark.parametrize(
    "email,password", [("nobody@example.org", factories.STAFF_PASSWORD), ("KNOWN", "wrong password")]
)
def test_a_wrong_login_says_the_same_whether_or_not_the_account_exists(
    db: Any, client: Any, email: str, password: str
) -> None:
    user = factories.staff("admin")
    response = client.post("/login", data={"email": user.email if email == "KNOWN" else email, "password": password})
    assert response.status_code == 401
    assert "The e-mail or password is not right." in response.get_data(as_text=True)
    assert not signed_in(client)
    assert sent_to_sign_in(client)


def test_a_deactivated_account_cannot_sign_in(db: Any, client: Any) -> None:
    user = factories.staff("admin", active=False)
    assert factories.sign_in(client, user).status_code == 401


def test_each_sign_in_gets_a_new_session_and_the_old_cookie_is_useless(db: Any, client: Any, app: Flask) -> None:
    user = factories.staff("admin")
    factories.sign_in(client, user)
    first = client.get_cookie("session").value
    client.post("/logout")
    factories.sign_in(client, user)
    second = client.get_cookie("session").value
    assert first != second
    assert signed_in(client), "the new session works"
    replay = app.test_client()
    replay.set_cookie("session", first)
    assert not signed_in(replay), "a logged-out session's cookie no longer works"
    assert sent_to_sign_in(replay)
    assert (
        db.session.scalar(select(func.count()).select_from(StaffSession).filter(StaffSession.ended_at.is_(None))) == 1
    )


def test_logout_really_ends_the_session(db: Any, client: Any, app: Flask) -> None:
    factories.sign_in(client, factories.staff("admin"))
    stolen = client.get_cookie("session").value
    copy = app.test_client()
    copy.set_cookie("session", stolen)
    assert signed_in(client) and signed_in(copy), "before the logout the cookie opens the dashboard"
    assert client.post("/logout").status_code == 303
    assert not signed_in(client)
    assert sent_to_sign_in(client)
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    assert not signed_in(thief)
    assert sent_to_sign_in(thief)


def test_idle_and_absolute_timeouts_end_a_session(db: Any, client: Any) -> None:
    factories.sign_in(client, factories.staff("admin"))
    assert signed_in(client)
    record = db.session.scalars(select(StaffSession)).one()
    record.last_seen_at = utcnow() - timedelta(minutes=31)
    db.session.commit()
    assert not signed_in(client)
    assert sent_to_sign_in(client)

    client.post("/logout")
    factories.sign_in(client, factories.staff("viewer"))
    assert signed_in(client)
    record = db.session.scalars(select(StaffSession).filter(StaffSession.ended_at.is_(None))).one()
    record.created_at = utcnow() - timedelta(hours=12, minutes=1)
    db.session.commit()
    assert not signed_in(client)
    assert sent_to_sign_in(client)


def test_deactivation_ends_every_session_of_that_person(db: Any, client: Any, app: Flask) -> None:
    user = factories.staff("fundraiser")
    factories.sign_in(client, user)
    other_device = app.test_client()
    factories.sign_in(other_device, user)
    assert signed_in(client) and signed_in(other_device)
    user.active = False
    assert sessions.end_all_sessions(user) == 2
    db.session.commit()
    assert not signed_in(client) and not signed_in(other_device)
    assert sent_to_sign_in(client) and sent_to_sign_in(other_device)


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "/donate/"])
def test_after_sign_in_only_dashboard_addresses_are_followed(db: Any, client: Any, target: str) -> None:
    user = factories.staff("admin")
    response = client.post(f"/login?next={target}", data={"email": user.email, "password": factories.STAFF_PASSWORD})
    assert response.headers["Location"] == "/dashboard/"


def test_the_session_cookie_is_http_only_and_same_site(db: Any, client: Any) -> None:
    factories.sign_in(client, factories.staff("admin"))
    cookie = client.get_cookie("session")
    assert cookie.http_only and cookie.same_site == "Lax"


def test_failed_logins_are_throttled_per_account_and_per_address(databases: Any) -> None:
    from flask_migrate import upgrade

    from supporters.extensions import db as _db
    from tests.conftest import MIGRATIONS

    app = make_app(databases.create(), RATELIMIT_ENABLED=True, ENVIRON={"LOGIN_LIMIT": "3 per 15 minutes"})
    with app.app_context():
        upgrade(directory=MIGRATIONS)
        user = factories.staff("admin", email="ewa@example.org")
        _db.session.commit()
        client = app.test_client()
        codes = [
            client.post("/login", data={"email": "ewa@example.org", "password": "nope"}).status_code for _ in range(3)
        ]
        assert codes == [401, 401, 401]
        blocked = client.post("/login", data={"email": "ewa@example.org", "password": factories.STAFF_PASSWORD})
        assert blocked.status_code == 429 and "Too many failed sign-in attempts" in blocked.get_data(as_text=True)
        unknown = app.test_client().post(
            "/login", data={"email": "ghost@example.org", "password": "x"}, environ_base={"REMOTE_ADDR": "10.9.9.9"}
        )
        assert unknown.status_code == 401
        for _ in range(2):
            app.test_client().post(
                "/login", data={"email": "ghost@example.org", "password": "x"}, environ_base={"REMOTE_ADDR": "10.9.9.9"}
            )
        ghost = app.test_client().post(
            "/login", data={"email": "ghost@example.org", "password": "x"}, environ_base={"REMOTE_ADDR": "10.9.9.9"}
        )
        assert ghost.status_code == 429 and "Too many failed sign-in attempts" in ghost.get_data(as_text=True)
        assert user.id
        _db.engine.dispose()


@pytest.mark.parametrize("email", ["ada\x00@example.org", "\x00", "ada@example.org\x01"])
def test_control_characters_in_the_email_are_refused_plainly(db: Any, client: Any, email: str) -> None:
    """PostgreSQL refuses NUL in a query: the form refuses it first, with a 400, not a 500."""
    response = client.post("/login", data={"email": email, "password": "whatever it is"})
    assert response.status_code == 400


def test_a_dashboard_page_records_the_session_in_use_while_another_request_writes(committed_app: Flask) -> None:
    """A dashboard GET that finds the session due a touch writes last_seen_at: on SQLite
    it must not fail with "database is locked" when a webhook wrote while it read."""
    import threading

    from supporters.extensions import db as _db

    app = committed_app
    with app.app_context():
        if _db.engine.dialect.name != "sqlite":
            pytest.skip("PostgreSQL's row versions let the touch wait; the lock mode is SQLite's")
        client = app.test_client()
        factories.sign_in(client, factories.staff("viewer"))
        record = _db.session.scalars(select(StaffSession)).one()
        record.last_seen_at = before = utcnow() - timedelta(minutes=5)
        supporter_id = factories.supporter().id
        _db.session.commit()
        writer = _db.engine.raw_connection()
    cursor = writer.cursor()
    cursor.execute("BEGIN IMMEDIATE")
    cursor.execute("UPDATE supporter SET city = 'Kraków' WHERE id = ?", (supporter_id,))
    releasing = threading.Timer(0.5, writer.commit)
    releasing.start()
    try:
        response = client.get("/dashboard/supporters/")
    finally:
        releasing.join()
        writer.close()
    assert response.status_code == 200
    with app.app_context():
        assert _db.session.scalars(select(StaffSession)).one().last_seen_at > before
