"""Staff accounts that can be recovered and cannot be turned against their owner.

"Forgot password?" answers the same whether or not the address has an account and
e-mails an active one a single-use link (30 minutes, only its HMAC stored); its page
shows a form and uses nothing; the new password ends every session and does not skip
the second factor. A temporary password (an invitation, a re-invitation) must be
changed before any other page opens. Past LOGIN_LIMIT failed tries for an account, the
password is not checked and the owner is e-mailed an unlock link that lets their own
browser in whatever others try. Everything is in the audit log, never a password.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import func, select

from supporters.extensions import db as _db
from supporters.models import AuditEvent, OutboxEmail, StaffSession, StaffToken, StaffUser, utcnow
from supporters.staff import recovery
from tests import factories
from tests.conftest import MIGRATIONS, DatabaseFactory, make_app

NEW_PASSWORD = "a brand new long passphrase"
SENT = "If this address has an active staff account, we have e-mailed it a link"


def emails(address: str, kind: str = "staff_password_reset") -> list[OutboxEmail]:
    return list(_db.session.scalars(select(OutboxEmail).filter_by(to_address=address, kind=kind)))


def link_in(email: OutboxEmail, part: str) -> str:
    found = re.search(rf"https?://\S+/login/{part}/\S+", email.body_text)
    assert found, email.body_text
    return urlsplit(found.group(0)).path


def actions(db: Any, action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).filter_by(action=action).order_by(AuditEvent.id)))


def signed_in(client: Any) -> bool:
    return client.get("/dashboard/").status_code == 200


def sign_in(client: Any, email: str, password: str) -> Any:
    return client.post("/login", data={"email": email, "password": password})


def reset_link(client: Any, user: StaffUser) -> str:
    assert client.post("/login/forgot", data={"email": user.email}).status_code == 200
    return link_in(emails(user.email)[-1], "reset")


# --- Forgot password? ---------------------------------------------------------------------------


def test_asking_for_a_reset_answers_the_same_whether_or_not_there_is_an_account(db: Any, client: Any) -> None:
    known = factories.staff("fundraiser", email="known@example.org")
    gone = factories.staff("viewer", email="gone@example.org", active=False)

    answers = [
        client.post("/login/forgot", data={"email": address})
        for address in ("Known@Example.org", "nobody@example.org", gone.email)
    ]

    assert [answer.status_code for answer in answers] == [200, 200, 200]
    bodies = {re.sub(r'name="csrf_token"[^>]*', "", a.get_data(as_text=True)) for a in answers}
    assert len(bodies) == 1 and SENT in bodies.pop()
    assert len(emails(known.email)) == 1
    assert emails("nobody@example.org") == [] and emails(gone.email) == []
    [asked] = actions(db, "staff.password_reset_requested")
    assert asked.target_id == str(known.id)
    row = db.session.scalars(select(StaffToken)).one()
    token = link_in(emails(known.email)[0], "reset").rsplit("/", 1)[1]
    assert token not in (row.token_hash, str(asked.details)), "only the token's HMAC is stored"


def test_the_forgot_form_refuses_what_is_no_address(db: Any, client: Any) -> None:
    for value in ("", "\x00", "a" * 400):
        assert client.post("/login/forgot", data={"email": value}).status_code == 400
    assert db.session.scalar(select(func.count()).select_from(OutboxEmail)) == 0
    assert "Forgot password?" in client.get("/login").get_data(as_text=True)


def test_the_reset_link_shows_a_form_then_sets_the_password_once_and_ends_every_session(
    db: Any, client: Any, app: Flask
) -> None:
    user = factories.staff("admin", email="ewa@example.org")
    elsewhere = app.test_client()
    assert factories.sign_in(elsewhere, user).status_code == 303 and signed_in(elsewhere)
    path = reset_link(client, user)

    page = client.get(path)
    assert page.status_code == 200 and 'name="password"' in page.get_data(as_text=True)
    assert page.headers["Referrer-Policy"] == "no-referrer" and page.headers["Cache-Control"] == "no-store"
    assert db.session.scalars(select(StaffToken)).one().used_at is None, "opening the link uses nothing"

    done = client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})

    assert done.status_code == 303 and done.headers["Location"] == "/login"
    assert not signed_in(elsewhere), "every session of the account ended"
    assert not signed_in(client), "the reset itself signs nobody in"
    assert sign_in(app.test_client(), user.email, factories.STAFF_PASSWORD).status_code == 401
    assert sign_in(app.test_client(), user.email, NEW_PASSWORD).status_code == 303
    [event] = actions(db, "staff.password_reset")
    assert event.target_id == str(user.id) and event.details == {"sessions_ended": 1}
    assert NEW_PASSWORD not in str([e.details for e in db.session.scalars(select(AuditEvent))])

    again = client.post(path, data={"password": "yet another passphrase", "confirm": "yet another passphrase"})
    assert again.status_code == 410 and "already been used" in again.get_data(as_text=True)
    assert client.get(path).status_code == 410
    assert user.check_password(NEW_PASSWORD)


def test_a_new_reset_link_spends_the_older_ones(db: Any, client: Any) -> None:
    user = factories.staff("viewer")
    first, second = reset_link(client, user), reset_link(client, user)
    assert client.post(second, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code == 303
    assert client.post(first, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code == 410


def test_an_expired_link_and_one_of_a_deactivated_account_do_nothing(db: Any, client: Any) -> None:
    user = factories.staff("viewer")
    other = factories.staff("viewer")
    path = reset_link(client, user)
    other_path = reset_link(client, other)
    row = db.session.scalars(select(StaffToken).filter_by(staff_user_id=user.id)).one()
    row.expires_at = utcnow() - timedelta(seconds=1)
    other.active = False
    data = {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}

    expired = client.post(path, data=data)
    assert expired.status_code == 410 and "expired" in expired.get_data(as_text=True)
    assert client.get(path).status_code == 410
    assert client.post(other_path, data=data).status_code == 404
    assert client.get(other_path).status_code == 404
    for bad in ("/login/reset/" + "x" * 43, "/login/reset/short", "/login/reset/" + "%00" * 10):
        assert client.post(bad, data=data).status_code == 404
    assert user.check_password(factories.STAFF_PASSWORD) and other.check_password(factories.STAFF_PASSWORD)
    assert actions(db, "staff.password_reset") == []


@pytest.mark.parametrize(
    "password,confirm,message",
    [
        ("short pass", "short pass", "at least 12 characters"),
        ("ewa.kowalska-2026!", "ewa.kowalska-2026!", "does not contain your e-mail address"),
        ("my EWA.KOWALSKA@example.org", "my EWA.KOWALSKA@example.org", "does not contain your e-mail address"),
        (NEW_PASSWORD, NEW_PASSWORD + "x", "not the same"),
        ("x" * 1001, "x" * 1001, "Field cannot be longer than 1000 characters."),
    ],
)
def test_a_new_password_must_meet_the_rules(db: Any, client: Any, password: str, confirm: str, message: str) -> None:
    user = factories.staff("viewer", email="ewa.kowalska@example.org")
    path = reset_link(client, user)
    answer = client.post(path, data={"password": password, "confirm": confirm})
    assert answer.status_code == 400 and message in answer.get_data(as_text=True)
    assert db.session.scalars(select(StaffToken)).one().used_at is None, "a refused password leaves the link"
    assert user.check_password(factories.STAFF_PASSWORD)


def test_the_password_rules(app: Flask) -> None:
    with app.app_context():
        assert recovery.password_problem("ab@example.org", "ab" + "x" * 10) is None, "a short local part is no rule"
        assert recovery.password_problem("ewa@example.org", "correct horse battery staple") is None
        assert recovery.password_problem("ewa@example.org", "Ewa likes long walks") is not None
        assert recovery.password_problem("ewa@example.org", "ü" * 12) is None, "any character counts"


# --- Changing the password, and temporary ones ----------------------------------------------------


def test_changing_the_password_needs_the_current_one_and_ends_the_other_sessions(
    db: Any, client: Any, app: Flask
) -> None:
    user = factories.staff("viewer")
    factories.sign_in(client, user)
    elsewhere = app.test_client()
    factories.sign_in(elsewhere, user)
    data = {"current_password": "not it at all", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}

    wrong = client.post("/dashboard/staff/me/password", data=data)
    assert wrong.status_code == 400 and "This is not your current password." in wrong.get_data(as_text=True)
    assert user.check_password(factories.STAFF_PASSWORD) and signed_in(elsewhere)

    done = client.post("/dashboard/staff/me/password", data={**data, "current_password": factories.STAFF_PASSWORD})

    assert done.status_code == 303
    assert signed_in(client), "this session goes on"
    assert not signed_in(elsewhere), "the others end"
    assert user.check_password(NEW_PASSWORD)
    [event] = actions(db, "staff.password_change")
    assert event.details == {"was_temporary": False, "other_sessions_ended": 1}


def test_an_invitations_temporary_password_must_be_changed_before_any_page(db: Any, client: Any, app: Flask) -> None:
    factories.sign_in(client, factories.staff("admin"))
    page = client.post("/dashboard/staff/invite", data={"email": "newcomer@example.org", "role": "fundraiser"})
    password = page.get_data(as_text=True).split('class="adm-secret"><code>')[1].split("</code>")[0]
    newcomer = app.test_client()
    assert sign_in(newcomer, "newcomer@example.org", password).status_code == 303

    for method, path in (
        ("GET", "/dashboard/"),
        ("GET", "/dashboard/supporters/"),
        ("POST", "/dashboard/gifts/export.csv"),
    ):
        answer = newcomer.open(path, method=method)
        assert answer.status_code == 303 and answer.headers["Location"] == "/dashboard/staff/me/", path
    own = newcomer.get("/dashboard/staff/me/")
    assert own.status_code == 200 and "Choose your own password first." in own.get_data(as_text=True)
    assert newcomer.post("/dashboard/staff/me/two-factor/start").status_code == 303
    assert (
        db.session.scalars(select(StaffUser).filter_by(email="newcomer@example.org")).one().totp_pending_secret is None
    )

    changed = newcomer.post(
        "/dashboard/staff/me/password",
        data={"current_password": password, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert changed.status_code == 303
    assert newcomer.get("/dashboard/").status_code == 200
    assert not db.session.scalars(select(StaffUser).filter_by(email="newcomer@example.org")).one().must_change_password
    assert actions(db, "staff.password_change")[0].details["was_temporary"] is True


def test_reinviting_a_deactivated_person_reactivates_them_with_a_new_temporary_password(
    db: Any, client: Any, app: Flask
) -> None:
    admin = factories.staff("admin")
    factories.sign_in(client, admin)
    gone = factories.staff("viewer", email="back@example.org", active=False)
    gone.totp_secret, gone.totp_enabled_at = "JBSWY3DPEHPK3PXP", utcnow()

    page = client.post("/dashboard/staff/invite", data={"email": "Back@Example.org", "role": "fundraiser"})

    assert page.status_code == 200 and "Account reactivated" in page.get_data(as_text=True)
    password = page.get_data(as_text=True).split('class="adm-secret"><code>')[1].split("</code>")[0]
    db.session.refresh(gone)
    assert gone.active and gone.role.value == "fundraiser" and gone.must_change_password
    assert not gone.two_factor_on, "they start afresh"
    assert db.session.scalar(select(func.count()).select_from(StaffUser).filter_by(email="back@example.org")) == 1
    assert sign_in(app.test_client(), gone.email, factories.STAFF_PASSWORD).status_code == 401
    assert sign_in(app.test_client(), gone.email, password).status_code == 303
    [event] = actions(db, "staff.reinvite")
    assert event.staff_user_id == admin.id and event.details == {
        "email": "back@example.org",
        "role": "fundraiser",
        "role_before": "viewer",
        "two_factor_cleared": True,
    }
    assert password not in str(event.details)
    taken = client.post("/dashboard/staff/invite", data={"email": "back@example.org", "role": "viewer"})
    assert taken.status_code == 400 and "There is already an account" in taken.get_data(as_text=True)


def test_deactivating_asks_to_confirm_first(db: Any, client: Any) -> None:
    admin = factories.staff("admin")
    factories.sign_in(client, admin)
    other = factories.staff("fundraiser")
    asked = client.post(f"/dashboard/staff/{other.id}/deactivate")
    assert asked.status_code == 200 and 'name="confirm" value="yes"' in asked.get_data(as_text=True)
    assert other.active and actions(db, "staff.deactivate") == []
    assert client.post(f"/dashboard/staff/{other.id}/deactivate", data={"confirm": "no"}).status_code == 200
    assert other.active
    own = client.post(f"/dashboard/staff/{admin.id}/deactivate")
    assert own.status_code == 400 and "You cannot deactivate your own account" in own.get_data(as_text=True)
    assert client.post(f"/dashboard/staff/{other.id}/deactivate", data={"confirm": "yes"}).status_code == 303
    assert not other.active and len(actions(db, "staff.deactivate")) == 1


# --- Failed sign-ins and the lockout ------------------------------------------------------------


def test_failed_sign_ins_are_audited_without_the_password(db: Any, client: Any) -> None:
    user = factories.staff("viewer")
    assert sign_in(client, user.email, "my secret guess").status_code == 401
    assert sign_in(client, "nobody@example.org", "my secret guess").status_code == 401
    [event] = actions(db, "staff.login_failed")
    assert event.target_id == str(user.id) and event.details == {"stage": "password"}
    assert event.staff_user_id is None and event.actor == "sign-in page"
    assert "my secret guess" not in str([(e.details, e.actor) for e in db.session.scalars(select(AuditEvent))])


@pytest.fixture
def limited(databases: DatabaseFactory) -> Iterator[Flask]:
    """An app with the rate limits on (3 tries per 15 minutes), on a database of its own."""
    app = make_app(databases.create(), RATELIMIT_ENABLED=True, ENVIRON={"LOGIN_LIMIT": "3 per 15 minutes"})
    with app.app_context():
        upgrade(directory=MIGRATIONS)
        yield app
        _db.session.remove()
        _db.engine.dispose()


def from_address(app: Flask, address: str) -> Any:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_guesses_from_anywhere_never_lock_the_owner_out(limited: Flask) -> None:
    user = factories.staff("admin", email="owner@example.org")
    _db.session.commit()
    attackers = [from_address(limited, f"10.0.0.{n}") for n in range(1, 7)]
    owner = from_address(limited, "192.0.2.10")

    assert [sign_in(a, user.email, f"guess {n}").status_code for n, a in enumerate(attackers[:3])] == [401] * 3
    # the account's allowance is used up: even the right password is not checked now
    held = sign_in(owner, user.email, factories.STAFF_PASSWORD)
    assert held.status_code == 429
    assert "Too many failed sign-in attempts for this account" in held.get_data(as_text=True)
    assert not owner.get("/dashboard/").status_code == 200
    for attacker in attackers[3:]:
        assert sign_in(attacker, user.email, factories.STAFF_PASSWORD).status_code == 429
    _db.session.expire_all()
    [unlock] = emails(user.email, "staff_unlock")
    assert len(actions(_db, "staff.lockout")) == 1, "one lockout, one e-mail, however many tries follow"
    assert [e.details["stage"] for e in actions(_db, "staff.login_failed")] == ["password"] * 3

    path = link_in(unlock, "unlock")
    assert owner.get(path).status_code == 200
    assert _db.session.scalars(select(StaffToken).filter_by(purpose="unlock")).one().used_at is None
    assert owner.post(path).status_code == 303
    # the attacker goes on guessing; the owner's browser has an allowance of its own
    for attacker in attackers:
        assert sign_in(attacker, user.email, "another guess").status_code == 429
    assert sign_in(owner, user.email, factories.STAFF_PASSWORD).status_code == 303
    assert owner.get("/dashboard/").status_code == 200
    assert sign_in(attackers[0], user.email, factories.STAFF_PASSWORD).status_code == 429, "the link is not theirs"
    assert owner.post(path).status_code == 410, "the link works once"
    assert len(actions(_db, "staff.unlock_link_used")) == 1


def test_a_locked_address_without_an_account_answers_the_same(limited: Flask) -> None:
    factories.staff("admin", email="real@example.org")
    _db.session.commit()
    answers = {}
    for email in ("real@example.org", "ghost@example.org"):
        for n in range(3):
            sign_in(from_address(limited, f"10.1.{len(answers)}.{n}"), email, "guess")
        answer = sign_in(from_address(limited, f"10.2.{len(answers)}.1"), email, "guess")
        answers[email] = (answer.status_code, answer.get_data(as_text=True).replace(email, "EMAIL"))
    assert answers["real@example.org"] == answers["ghost@example.org"]
    _db.session.expire_all()
    assert emails("ghost@example.org", "staff_unlock") == []


def test_reset_requests_are_limited_per_address_and_per_connection(limited: Flask) -> None:
    user = factories.staff("viewer", email="ask@example.org")
    _db.session.commit()
    limited.config["STAFF_RESET_LIMIT_PER_EMAIL"] = "2 per hour"
    answers = [
        from_address(limited, f"10.3.0.{n}").post("/login/forgot", data={"email": user.email}).status_code
        for n in range(3)
    ]
    assert answers == [200, 200, 429]
    _db.session.expire_all()
    assert len(emails(user.email)) == 2
    limited.config["STAFF_RESET_LIMIT_PER_IP"] = "2 per hour"
    one = from_address(limited, "10.4.0.1")
    assert [one.post("/login/forgot", data={"email": f"x{n}@example.org"}).status_code for n in range(3)] == [
        200,
        200,
        429,
    ]


def test_sessions_rows_survive_nothing_after_a_reset(db: Any, client: Any, app: Flask) -> None:
    user = factories.staff("viewer")
    for _ in range(2):
        factories.sign_in(app.test_client(), user)
    path = reset_link(client, user)
    client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    live = select(func.count()).select_from(StaffSession).filter_by(staff_user_id=user.id, ended_at=None)
    assert db.session.scalar(live) == 0


def test_two_lockouts_at_once_send_one_unlock_link(committed_app: Flask) -> None:
    """Two sign-ins using up the allowance together (two threads, two transactions)
    still give the owner one unlock e-mail: the account's row is locked while the
    link is made, so the second sees the first's link and sends none."""
    app = committed_app
    with app.app_context():
        user = factories.staff("admin", email="locked@example.org")
        _db.session.commit()
        user_id = user.id
    made: list[object] = []

    def lockout() -> None:
        with app.app_context():
            made.append(recovery.issue_unlock("locked@example.org"))
            _db.session.commit()

    with app.app_context():
        ours = recovery.issue_unlock("locked@example.org")
        thread = threading.Thread(target=lockout)
        thread.start()
        thread.join(0.8)  # PostgreSQL: waiting for our lock; SQLite: waiting to begin
        _db.session.commit()
    thread.join(20)
    assert ours is not None and made == [None]
    with app.app_context():
        links = _db.session.scalars(select(StaffToken).filter_by(staff_user_id=user_id, purpose="unlock")).all()
        assert len(links) == 1
