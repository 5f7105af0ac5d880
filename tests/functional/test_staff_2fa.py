"""Two-factor sign-in for staff: TOTP (codes computed here with pyotp) and one-time
recovery codes.

Enrolment shows a secret (QR code and text) that is on only once a code confirms it;
ten recovery codes are shown once and stored hashed; each is spent when used. Signing
in is then two steps, and the state between them opens no page and lasts minutes. A
code is never accepted twice. Turning it off takes the password and a code; an admin
can reset another member's. SUPPORTERS_STAFF_2FA_REQUIRED_FOR sends the roles it names
to enrol before any other page. Every change is audited.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from flask import Flask
from sqlalchemy import select

from supporters.config import ConfigError, load_config
from supporters.models import AuditEvent, StaffRecoveryCode, StaffUser, utcnow
from supporters.staff import sign_in as sign_in_pages
from tests import factories
from tests.functional.test_staff_recovery import emails, from_address, limited, link_in  # noqa: F401 - the fixture

ME = "/dashboard/staff/me/"


def actions(db: Any, action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).filter_by(action=action).order_by(AuditEvent.id)))


def signed_in(client: Any) -> bool:
    return client.get("/dashboard/").status_code == 200


def code_at(secret: str, offset_steps: int = 0) -> str:
    return str(pyotp.TOTP(secret).at(time.time() + 30 * offset_steps))


def enrol(client: Any, user: StaffUser) -> tuple[str, list[str]]:
    """Turn two-factor sign-in on for the signed-in `user`: (secret, recovery codes)."""
    assert client.post(ME + "two-factor/start").status_code == 303
    page = client.get(ME).get_data(as_text=True)
    secret = re.search(r'<code class="adm-secret">([A-Z2-7]+)</code>', page)
    assert secret, page
    done = client.post(ME + "two-factor/confirm", data={"confirm-code": code_at(secret.group(1))})
    assert done.status_code == 200, done.get_data(as_text=True)
    codes = re.findall(r"<li><code>([a-z2-7]{4}(?:-[a-z2-7]{4}){3})</code></li>", done.get_data(as_text=True))
    return secret.group(1), codes


@pytest.fixture
def enrolled(db: Any, app: Flask) -> tuple[StaffUser, str, list[str]]:
    """A fundraiser with two-factor sign-in on, signed out again."""
    user = factories.staff("fundraiser")
    client = app.test_client()
    factories.sign_in(client, user)
    secret, codes = enrol(client, user)
    client.post("/logout")
    user.totp_last_step = None  # the enrolment's code step: the tests sign in within the same 30 seconds
    return user, secret, codes


def password_step(client: Any, user: StaffUser) -> Any:
    return factories.sign_in(client, user)


def test_enrolment_shows_a_secret_that_is_on_only_once_a_code_confirms_it(db: Any, client: Any) -> None:
    user = factories.staff("viewer")
    factories.sign_in(client, user)
    assert client.post(ME + "two-factor/start").status_code == 303
    page = client.get(ME).get_data(as_text=True)
    assert 'src="data:image/svg+xml' in page, "the QR code"
    secret = re.search(r'<code class="adm-secret">([A-Z2-7]+)</code>', page).group(1)  # type: ignore[union-attr]
    assert not user.two_factor_on and user.totp_pending_secret == secret

    wrong = client.post(ME + "two-factor/confirm", data={"confirm-code": "000000"})
    assert wrong.status_code == 400 and "This code is not right" in wrong.get_data(as_text=True)
    assert not user.two_factor_on

    done = client.post(ME + "two-factor/confirm", data={"confirm-code": code_at(secret)})

    assert done.status_code == 200 and "shown only this once" in done.get_data(as_text=True)
    codes = re.findall(r"<li><code>([a-z2-7-]{19})</code></li>", done.get_data(as_text=True))
    assert len(codes) == len(set(codes)) == 10
    db.session.refresh(user)
    assert user.two_factor_on and user.totp_secret == secret and user.totp_pending_secret is None
    stored = list(db.session.scalars(select(StaffRecoveryCode).filter_by(staff_user_id=user.id)))
    assert len(stored) == 10
    assert not {code.replace("-", "") for code in codes} & {row.code_hash for row in stored}, "only hashes"
    [event] = actions(db, "staff.2fa_enabled")
    assert event.details == {"replaced": False, "recovery_codes": 10}
    assert secret not in str(event.details)
    assert "Recovery codes left: 10" in client.get(ME).get_data(as_text=True)
    assert client.post(ME + "two-factor/confirm", data={"confirm-code": code_at(secret)}).status_code == 400


def test_signing_in_takes_the_password_then_a_code(db: Any, app: Flask, enrolled: Any) -> None:
    user, secret, _codes = enrolled
    client = app.test_client()

    first = password_step(client, user)

    assert first.status_code == 303 and first.headers["Location"] == "/login/code"
    assert client.get("/login/code").status_code == 200
    wrong = client.post("/login/code", data={"code": "123456"})
    assert wrong.status_code == 401 and not signed_in(client)
    done = client.post("/login/code", data={"code": code_at(secret)})
    assert done.status_code == 303 and done.headers["Location"] == "/dashboard/"
    assert signed_in(client)
    assert [e.details for e in actions(db, "staff.login_failed")] == [{"stage": "code"}]
    assert len(actions(db, "staff.login")) == 2  # the enrolment's sign-in, and this one


def test_the_half_signed_state_opens_no_page(db: Any, app: Flask, enrolled: Any) -> None:
    user, _secret, _codes = enrolled
    client = app.test_client()
    password_step(client, user)
    for path in ("/dashboard/", ME, "/dashboard/supporters/", "/dashboard/staff/"):
        answer = client.get(path)
        assert answer.status_code == 302 and answer.headers["Location"].startswith("/login?next="), path
    assert client.post(ME + "two-factor/start").status_code == 302
    with client.session_transaction() as state:
        assert "_user_id" not in state and sign_in_pages.PENDING in state


def test_the_half_signed_state_lasts_minutes_and_no_longer_than_the_password(
    db: Any, app: Flask, enrolled: Any
) -> None:
    user, secret, _codes = enrolled
    client = app.test_client()
    password_step(client, user)
    with client.session_transaction() as state:
        state[sign_in_pages.PENDING] = {
            **state[sign_in_pages.PENDING],
            "until": (utcnow() - timedelta(seconds=1)).isoformat(),
        }
    late = client.post("/login/code", data={"code": code_at(secret)})
    assert late.status_code == 400 and "expired" in late.get_data(as_text=True)
    assert not signed_in(client)

    password_step(client, user)
    user.set_password("someone changed it meanwhile")
    assert client.post("/login/code", data={"code": code_at(secret)}).status_code == 400
    user.set_password(factories.STAFF_PASSWORD)
    password_step(client, user)
    user.active = False
    assert client.post("/login/code", data={"code": code_at(secret)}).status_code == 400
    assert not signed_in(client)
    # a forged state (the cookie is signed, but say the key leaked a number) names an account only
    anon = app.test_client()
    with anon.session_transaction() as state:
        state[sign_in_pages.PENDING] = {"id": "1", "email": user.email, "until": "2999-01-01T00:00:00+00:00"}
    assert anon.post("/login/code", data={"code": code_at(secret)}).status_code == 400


def test_a_code_is_never_accepted_twice(db: Any, app: Flask, enrolled: Any) -> None:
    user, secret, _codes = enrolled
    code = code_at(secret)
    first = app.test_client()
    password_step(first, user)
    assert first.post("/login/code", data={"code": code}).status_code == 303
    second = app.test_client()
    password_step(second, user)
    assert second.post("/login/code", data={"code": code}).status_code == 401
    assert not signed_in(second)
    assert second.post("/login/code", data={"code": code_at(secret, -10)}).status_code == 401, "an old code"


def test_recovery_codes_sign_in_once_each(db: Any, app: Flask, enrolled: Any) -> None:
    user, _secret, codes = enrolled
    client = app.test_client()
    password_step(client, user)
    assert client.post("/login/code", data={"code": " " + codes[0].upper().replace("-", " ") + " "}).status_code == 303
    assert signed_in(client)
    [used] = actions(db, "staff.2fa_recovery_code_used")
    assert used.details == {"recovery_codes_left": 9}

    again = app.test_client()
    password_step(again, user)
    assert again.post("/login/code", data={"code": codes[0]}).status_code == 401, "a used code is spent"
    assert again.post("/login/code", data={"code": "aaaa-bbbb-cccc-dddd"}).status_code == 401
    assert again.post("/login/code", data={"code": codes[1]}).status_code == 303


def test_a_password_reset_does_not_skip_the_second_factor(db: Any, app: Flask, enrolled: Any) -> None:
    user, secret, _codes = enrolled
    client = app.test_client()
    client.post("/login/forgot", data={"email": user.email})
    path = link_in(emails(user.email)[-1], "reset")
    assert client.post(path, data={"password": "the newest passphrase", "confirm": "the newest passphrase"}).status_code
    answer = client.post("/login", data={"email": user.email, "password": "the newest passphrase"})
    assert answer.status_code == 303 and answer.headers["Location"] == "/login/code"
    assert not signed_in(client)
    assert client.post("/login/code", data={"code": code_at(secret)}).status_code == 303


def test_turning_it_off_takes_the_password_and_a_code(db: Any, app: Flask, enrolled: Any) -> None:
    user, secret, codes = enrolled
    client = app.test_client()
    password_step(client, user)
    client.post("/login/code", data={"code": codes[0]})
    data = {"disable-password": factories.STAFF_PASSWORD, "disable-code": code_at(secret)}

    wrong_password = client.post(ME + "two-factor/disable", data={**data, "disable-password": "not mine"})
    wrong_code = client.post(ME + "two-factor/disable", data={**data, "disable-code": "000000"})
    assert wrong_password.status_code == wrong_code.status_code == 400
    assert user.two_factor_on

    assert client.post(ME + "two-factor/disable", data=data).status_code == 303
    db.session.refresh(user)
    assert not user.two_factor_on and user.totp_secret is None
    assert db.session.scalars(select(StaffRecoveryCode).filter_by(staff_user_id=user.id)).all() == []
    assert len(actions(db, "staff.2fa_disabled")) == 1
    client.post("/logout")
    assert password_step(client, user).headers["Location"] == "/dashboard/"


def test_new_recovery_codes_replace_the_old_ones(db: Any, app: Flask, enrolled: Any) -> None:
    user, secret, codes = enrolled
    client = app.test_client()
    password_step(client, user)
    client.post("/login/code", data={"code": codes[0]})
    renewed = client.post(ME + "two-factor/recovery-codes", data={"renew-code": code_at(secret)})
    assert renewed.status_code == 200
    fresh = re.findall(r"<li><code>([a-z2-7-]{19})</code></li>", renewed.get_data(as_text=True))
    assert len(fresh) == 10 and not set(fresh) & set(codes)
    assert len(actions(db, "staff.2fa_recovery_codes_renewed")) == 1
    other = app.test_client()
    password_step(other, user)
    assert other.post("/login/code", data={"code": codes[1]}).status_code == 401
    assert other.post("/login/code", data={"code": fresh[0]}).status_code == 303


def test_an_admin_can_reset_another_members_two_factor(db: Any, client: Any, app: Flask, enrolled: Any) -> None:
    user, _secret, _codes = enrolled
    admin = factories.staff("admin")
    factories.sign_in(client, admin)
    page = client.get("/dashboard/staff/").get_data(as_text=True)
    assert f"/dashboard/staff/{user.id}/reset-two-factor" in page

    assert client.post(f"/dashboard/staff/{user.id}/reset-two-factor").status_code == 303

    db.session.refresh(user)
    assert not user.two_factor_on
    [event] = actions(db, "staff.2fa_reset")
    assert event.staff_user_id == admin.id and event.target_id == str(user.id)
    own = client.post(f"/dashboard/staff/{admin.id}/reset-two-factor")
    assert own.status_code == 400
    assert factories.sign_in(app.test_client(), user).headers["Location"] == "/dashboard/"
    for role in ("viewer", "fundraiser"):
        other = app.test_client()
        factories.sign_in(other, factories.staff(role))
        assert other.post(f"/dashboard/staff/{user.id}/reset-two-factor").status_code == 403


@pytest.fixture
def required_for_admins(app: Flask) -> Iterator[None]:
    before = app.config["SUPPORTERS_STAFF_2FA_REQUIRED_FOR"]
    app.config["SUPPORTERS_STAFF_2FA_REQUIRED_FOR"] = ["admin"]
    yield
    app.config["SUPPORTERS_STAFF_2FA_REQUIRED_FOR"] = before


def test_a_role_that_requires_it_enrols_before_any_other_page(
    db: Any, client: Any, app: Flask, required_for_admins: None
) -> None:
    admin = factories.staff("admin")
    assert factories.sign_in(client, admin).status_code == 303
    for path in ("/dashboard/", "/dashboard/staff/", "/dashboard/audit/"):
        answer = client.get(path)
        assert answer.status_code == 303 and answer.headers["Location"] == ME + "#two-factor", path
    assert "Your role requires it" in client.get(ME).get_data(as_text=True)
    viewer = app.test_client()
    factories.sign_in(viewer, factories.staff("viewer"))
    assert signed_in(viewer), "other roles are not asked"

    secret, _codes = enrol(client, admin)
    assert signed_in(client)
    refused = client.post(
        ME + "two-factor/disable", data={"disable-password": factories.STAFF_PASSWORD, "disable-code": code_at(secret)}
    )
    assert refused.status_code == 400 and "required for your role" in refused.get_data(as_text=True)
    assert admin.two_factor_on


def test_the_setting_defaults_to_admins_in_production_and_checks_its_roles(tmp_path: Path) -> None:
    production = {
        "SUPPORTERS_ENV": "production",
        "SECRET_KEY": "k" * 40,
        "DATABASE_URL": "postgresql://u@h/db",
        "SUPPORTERS_PUBLIC_URL": "https://support.example.org",
        "SUPPORTERS_ORG_NAME": "Org",
        "SUPPORTERS_ORG_ADDRESS": "Street 1",
        "SUPPORTERS_ORG_EMAIL": "org@example.org",
        "SUPPORTERS_SINGLE_PROCESS": "1",
    }
    assert load_config(tmp_path, env=production)["SUPPORTERS_STAFF_2FA_REQUIRED_FOR"] == ["admin"]
    assert load_config(tmp_path, env={})["SUPPORTERS_STAFF_2FA_REQUIRED_FOR"] == []
    both = {**production, "SUPPORTERS_STAFF_2FA_REQUIRED_FOR": "admin, Fundraiser"}
    assert load_config(tmp_path, env=both)["SUPPORTERS_STAFF_2FA_REQUIRED_FOR"] == ["admin", "fundraiser"]
    none = {**production, "SUPPORTERS_STAFF_2FA_REQUIRED_FOR": ""}
    assert load_config(tmp_path, env=none)["SUPPORTERS_STAFF_2FA_REQUIRED_FOR"] == []
    with pytest.raises(ConfigError, match="'owner' is not one of"):
        load_config(tmp_path, env={"SUPPORTERS_STAFF_2FA_REQUIRED_FOR": "owner"})


def test_codes_typed_oddly_are_refused_plainly(db: Any, app: Flask, enrolled: Any) -> None:
    user, _secret, _codes = enrolled
    client = app.test_client()
    password_step(client, user)
    for code in ("", "\x00", "٣٣٣٣٣٣", "9" * 65, "12345", "1234567"):
        assert client.post("/login/code", data={"code": code}).status_code in (400, 401), repr(code)
    assert not signed_in(client)


def test_wrong_codes_count_against_the_account_and_the_unlock_link_still_asks_for_one(limited: Flask) -> None:  # noqa: F811
    """Someone who has the password but not the phone gets LOGIN_LIMIT codes per window;
    the owner's unlock link gives their browser its own allowance, and still asks for a code."""
    from supporters.extensions import db as _db

    user = factories.staff("admin", email="phone@example.org")
    secret = pyotp.random_base32()
    user.totp_secret, user.totp_enabled_at = secret, utcnow()
    _db.session.commit()
    thief = from_address(limited, "10.7.0.1")
    owner = from_address(limited, "192.0.2.7")

    for n in range(3):
        assert password_step(thief, user).status_code == 303, "the password is right: on to the code"
        assert thief.post("/login/code", data={"code": f"00000{n}"}).status_code == 401
    assert password_step(thief, user).status_code == 429, "the account's allowance is used up"
    assert password_step(owner, user).status_code == 429
    _db.session.expire_all()
    [unlock] = emails(user.email, "staff_unlock")

    assert owner.post(link_in(unlock, "unlock")).status_code == 303
    step = password_step(owner, user)
    assert step.status_code == 303 and step.headers["Location"] == "/login/code", "the link is no second factor"
    assert owner.get("/dashboard/").status_code == 302
    assert owner.post("/login/code", data={"code": code_at(secret)}).status_code == 303
    assert owner.get("/dashboard/").status_code == 200
