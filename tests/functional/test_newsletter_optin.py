"""Newsletter consent by double opt-in.

Ticking the box on the donation form records a request, not a consent: anyone can
type someone else's address. Once the gift is paid, the address gets an e-mail
with a single-use link; the page behind it confirms only when its button is
pressed (mail scanners open links), and only then is the consent recorded, with
the time it was confirmed and the wording the donor saw.
"""

from __future__ import annotations

import html
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import func, select

from supporters.extensions import db as _db
from supporters.giving import checkout, lifecycle
from supporters.models import (
    Consent,
    ConsentRequest,
    Frequency,
    Gift,
    OutboxEmail,
    Supporter,
    utcnow,
)
from supporters.people import consent as consent_rules
from supporters.people import edits
from supporters.people.queries import SupporterFilters, export_rows, supporter_page
from tests import factories
from tests.conftest import MIGRATIONS, DatabaseFactory, make_app

WORDING = "Yes, send me occasional e-mails about your work and how my gift helps. I can unsubscribe at any time."
CONFIRMATION = "newsletter_confirmation"


def count(model: type) -> int:
    return int(_db.session.scalar(select(func.count()).select_from(model)) or 0)


def give(email: str = "ada@example.org", *, newsletter: bool = True, submission: str = "s1") -> Gift:
    """A pending one-time gift of 50 zł started as the donation form starts it."""
    return checkout.start_gift(
        checkout.GiftIntent(
            email=email,
            name="Ada Lovelace",
            amount_minor=5000,
            currency="PLN",
            frequency=Frequency.ONE_TIME,
            submission_id=submission,
            newsletter=newsletter,
            newsletter_wording=WORDING if newsletter else "",
        )
    )


def give_and_pay(email: str = "ada@example.org", **kwargs: Any) -> Gift:
    gift = give(email, **kwargs)
    assert lifecycle.mark_paid(gift)
    return gift


def confirmations() -> list[OutboxEmail]:
    return list(_db.session.scalars(select(OutboxEmail).filter_by(kind=CONFIRMATION).order_by(OutboxEmail.id)))


def link_in(email: OutboxEmail) -> str:
    found = re.findall(r"https?://\S+/newsletter/confirm/\S+", email.body_text)
    assert found, email.body_text
    assert len(set(found)) == 1
    return found[0]


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def confirmation_path(gift: Gift | None = None) -> str:
    [email] = confirmations() if gift is None else [e for e in confirmations() if e.to_address == gift.supporter.email]
    return path_of(link_in(email))


def supporter(email: str = "ada@example.org") -> Supporter:
    _db.session.expire_all()
    return _db.session.execute(select(Supporter).filter_by(email_normalised=email)).scalar_one()


# --- Ticking the box -------------------------------------------------------------


def test_ticking_the_box_on_the_form_records_a_request_and_no_consent(client: Any, db: Any) -> None:
    page = client.get("/donate/").get_data(as_text=True)
    label = re.search(r'<label for="newsletter">(.*?)</label>', page, re.S)
    assert label is not None
    wording = html.unescape(label.group(1)).strip()
    form = {
        "frequency": "one_time",
        "amount_choice": "",
        "custom_amount": "50",
        "currency": "PLN",
        "shown_currency": "PLN",
        "email": "ada@example.org",
        "name": "Ada Lovelace",
        "newsletter": "y",
        "submission_id": "3f2a9c1d0b4e4f6a8c7d5e3b1a2f4c6d",
    }

    assert client.post("/donate/", data=form).status_code == 303

    assert count(Consent) == 0, "ticking the box is no consent: the address has not confirmed it"
    person = supporter()
    assert person.newsletter is False
    [request] = _db.session.scalars(select(ConsentRequest)).all()
    [gift] = _db.session.scalars(select(Gift)).all()
    assert (request.supporter_id, request.purpose, request.gift_id) == (person.id, "newsletter", gift.id)
    assert request.wording == wording
    assert request.source == "donation form"
    assert request.requested_at is not None and request.confirmed_at is None
    assert confirmations() == [], "nothing is sent before the gift is paid"


def test_without_the_box_ticked_nothing_is_requested(db: Any) -> None:
    give_and_pay(newsletter=False)

    assert (count(ConsentRequest), count(Consent), len(confirmations())) == (0, 0, 0)


def test_a_gift_that_is_never_paid_sends_no_confirmation(db: Any) -> None:
    gift = give()
    lifecycle.mark_failed(gift)

    assert confirmations() == []
    assert supporter().newsletter is False


# --- The e-mail --------------------------------------------------------------------


def test_paying_the_gift_queues_one_confirmation_with_a_link_to_our_public_address(app: Flask, db: Any) -> None:
    gift = give()
    lifecycle.mark_paid(gift)
    lifecycle.mark_paid(gift)  # a second "paid" is a duplicate

    [email] = confirmations()
    assert email.to_address == "ada@example.org"
    assert "newsletter" in email.subject.lower()
    link = link_in(email)
    assert link.startswith(app.config["SUPPORTERS_PUBLIC_URL"] + "/newsletter/confirm/")
    assert WORDING in email.body_text
    assert email.body_html is not None and html.escape(link) in email.body_html
    request = _db.session.scalars(select(ConsentRequest)).one()
    assert request.token_hash is not None and request.token_hash not in link, "only the token's hash is stored"
    assert request.expires_at is not None and request.emailed_at is not None
    assert request.expires_at - request.emailed_at == timedelta(days=consent_rules.LINK_VALID_DAYS)
    assert count(Consent) == 0


def test_the_link_is_on_our_public_address_whatever_host_the_paying_request_named(app: Flask, db: Any) -> None:
    gift = give()
    assert "localhost" not in app.config["SUPPORTERS_PUBLIC_URL"]
    with app.test_request_context("/webhooks/stripe", method="POST", headers={"Host": "localhost:8080"}):
        lifecycle.mark_paid(gift)

    [email] = confirmations()
    assert link_in(email).startswith(app.config["SUPPORTERS_PUBLIC_URL"] + "/newsletter/confirm/")
    assert "localhost" not in email.body_text + (email.body_html or "")


def test_an_erased_supporter_gets_no_confirmation(db: Any) -> None:
    gift = give()
    supporter().anonymised_at = utcnow()
    _db.session.flush()
    lifecycle.mark_paid(gift)

    assert confirmations() == []


# --- The link ----------------------------------------------------------------------


def test_opening_the_link_shows_a_button_and_confirms_nothing(client: Any, db: Any) -> None:
    give_and_pay()

    response = client.get(confirmation_path())

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert re.search(r'<form[^>]+method="post"', page)
    assert html.escape(WORDING) in page or WORDING in page
    assert "ada@example.org" in page
    assert count(Consent) == 0
    assert supporter().newsletter is False


def test_pressing_the_button_records_the_consent_with_its_time_and_the_wording_shown(client: Any, db: Any) -> None:
    gift = give_and_pay()
    before = utcnow()

    response = client.post(confirmation_path())

    assert response.status_code == 200
    assert "confirmed" in response.get_data(as_text=True).lower()
    _db.session.expire_all()
    [consent] = _db.session.scalars(select(Consent)).all()
    request = _db.session.scalars(select(ConsentRequest)).one()
    assert (consent.purpose, consent.granted, consent.wording) == ("newsletter", True, WORDING)
    assert consent.confirmed_at is not None and consent.confirmed_at >= before - timedelta(seconds=1)
    assert consent.recorded_at == consent.confirmed_at
    assert consent.source == "donation form, confirmed by e-mail"
    assert consent.request_id == request.id and request.gift_id == gift.id
    assert request.confirmed_at == consent.confirmed_at
    assert supporter().newsletter is True


def test_a_second_press_changes_nothing_and_says_it_is_done(client: Any, db: Any) -> None:
    give_and_pay()
    path = confirmation_path()
    assert client.post(path).status_code == 200

    again = client.post(path)
    opened = client.get(path)

    assert again.status_code == opened.status_code == 410
    assert "already" in again.get_data(as_text=True)
    assert count(Consent) == 1


@pytest.mark.parametrize(
    "token",
    [
        "A" * 43,
        "not-a-token",
        "x" * 5000,
        "%00",
        "%E2%80%AE" * 3,
    ],
)
def test_a_forged_link_is_not_found_and_records_nothing(client: Any, db: Any, token: str) -> None:
    give_and_pay()

    for method in (client.get, client.post):
        response = method(f"/newsletter/confirm/{token}")
        assert response.status_code == 404, (method, token)
        assert "link" in response.get_data(as_text=True).lower()
    assert count(Consent) == 0


def test_an_expired_link_is_gone_and_records_nothing(client: Any, db: Any) -> None:
    give_and_pay()
    path = confirmation_path()
    request = _db.session.scalars(select(ConsentRequest)).one()
    request.expires_at = utcnow() - timedelta(minutes=1)
    _db.session.flush()

    for method in (client.get, client.post):
        response = method(path)
        assert response.status_code == 410
        assert "expired" in response.get_data(as_text=True)
    assert count(Consent) == 0
    assert supporter().newsletter is False


def test_a_link_sent_to_an_address_the_supporter_no_longer_has_no_longer_subscribes(client: Any, db: Any) -> None:
    give_and_pay()
    path = confirmation_path()
    edits.update_profile(None, supporter(), email="someone.else@example.org")
    _db.session.flush()

    assert client.post(path).status_code == 410
    assert count(Consent) == 0
    assert supporter("someone.else@example.org").newsletter is False


def test_a_link_sent_before_a_withdrawal_no_longer_subscribes(client: Any, db: Any) -> None:
    give_and_pay()
    path = confirmation_path()
    person = supporter()
    _db.session.add(
        Consent(supporter_id=person.id, purpose="newsletter", granted=False, source="dashboard", wording="withdrawn")
    )
    _db.session.flush()

    assert client.post(path).status_code == 410
    assert supporter().newsletter is False


def test_the_button_works_only_with_the_csrf_token_of_the_page(databases: DatabaseFactory) -> None:
    application = make_app(databases.create(), WTF_CSRF_ENABLED=True)
    with application.app_context():
        upgrade(directory=MIGRATIONS)
        give_and_pay()
        _db.session.commit()
        path = confirmation_path()
    client = application.test_client()

    refused = client.post(path)
    page = client.get(path).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    confirmed = client.post(path, data={"csrf_token": token.group(1)})

    assert (refused.status_code, confirmed.status_code) == (400, 200)
    with application.app_context():
        assert count(Consent) == 1
        _db.engine.dispose()


def test_twenty_presses_at_the_same_moment_record_one_consent(committed_app: Flask) -> None:
    with committed_app.app_context():
        give_and_pay()
        _db.session.commit()
        path = confirmation_path()
    barrier = threading.Barrier(20)

    def press() -> int:
        client = committed_app.test_client()
        barrier.wait(timeout=60)
        return int(client.post(path).status_code)

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: press(), range(20)))

    assert sorted(answers) == [200] + [410] * 19
    with committed_app.app_context():
        assert count(Consent) == 1
        assert supporter().newsletter is True


# --- Asking again --------------------------------------------------------------------


def test_a_supporter_who_confirmed_is_not_asked_again(client: Any, db: Any) -> None:
    give_and_pay()
    assert client.post(confirmation_path()).status_code == 200

    give_and_pay(submission="s2")

    assert count(ConsentRequest) == 1
    assert len(confirmations()) == 1


def test_a_second_gift_while_the_first_link_is_open_sends_no_second_email(db: Any) -> None:
    give_and_pay()
    give_and_pay(submission="s2")

    assert count(ConsentRequest) == 2, "each ticked box is on record"
    assert len(confirmations()) == 1, "but the address is asked once while a link is open"


def test_a_subscriber_from_before_double_opt_in_who_ticks_again_can_confirm(client: Any, db: Any) -> None:
    person = factories.supporter(email="ada@example.org")
    _db.session.add(
        Consent(
            supporter_id=person.id,
            purpose="newsletter",
            granted=True,
            source="donation form, before double opt-in",
            wording=WORDING,
            recorded_at=utcnow() - timedelta(days=400),
        )
    )
    _db.session.flush()
    assert supporter().newsletter is True

    give_and_pay()
    assert client.post(confirmation_path()).status_code == 200

    newest = _db.session.scalars(select(Consent).order_by(Consent.recorded_at.desc())).first()
    assert newest is not None and newest.confirmed_at is not None
    assert supporter().newsletter is True


# --- Who is on the newsletter --------------------------------------------------------


def test_the_newsletter_filter_and_export_count_only_confirmed_consent(client: Any, app: Flask, db: Any) -> None:
    pending = give_and_pay("pending@example.org")
    confirmed = give_and_pay("confirmed@example.org", submission="s2")
    assert client.post(confirmation_path(confirmed)).status_code == 200
    _db.session.expire_all()

    subscribed = supporter_page(SupporterFilters(newsletter=True), limit=50, offset=0)
    assert [row.id for row in subscribed] == [confirmed.supporter_id]
    not_subscribed = supporter_page(SupporterFilters(newsletter=False), limit=50, offset=0)
    assert [row.id for row in not_subscribed] == [pending.supporter_id]
    exported = {row[2]: row[9] for row in export_rows(SupporterFilters(), "PLN")}
    assert exported == {"pending@example.org": "no", "confirmed@example.org": "yes"}


def test_the_supporters_page_shows_a_request_waiting_and_a_confirmed_consent(client: Any, db: Any) -> None:
    waiting = give_and_pay("waiting@example.org")
    confirmed = give_and_pay("confirmed@example.org", submission="s2")
    assert client.post(confirmation_path(confirmed)).status_code == 200
    factories.sign_in(client, factories.staff("viewer"))

    waiting_page = client.get(f"/dashboard/supporters/{waiting.supporter_id}").get_data(as_text=True)
    confirmed_page = client.get(f"/dashboard/supporters/{confirmed.supporter_id}").get_data(as_text=True)

    assert "Newsletter: subscribed" not in waiting_page
    assert "Waiting for the address to confirm" in waiting_page
    assert "Newsletter: subscribed" in confirmed_page
    assert "Confirmed by e-mail" in confirmed_page


def test_a_consent_from_before_double_opt_in_says_so_on_the_supporters_page(client: Any, db: Any) -> None:
    person = factories.supporter()
    _db.session.add(
        Consent(
            supporter_id=person.id,
            purpose="newsletter",
            granted=True,
            source="donation form, before double opt-in",
            wording=WORDING,
        )
    )
    _db.session.flush()
    factories.sign_in(client, factories.staff("viewer"))

    page = client.get(f"/dashboard/supporters/{person.id}").get_data(as_text=True)

    assert "Newsletter: subscribed" in page
    assert "Not confirmed by e-mail" in page


# --- The migration ---------------------------------------------------------------------


def test_the_migration_keeps_the_consents_recorded_before_double_opt_in_and_marks_them(
    databases: DatabaseFactory,
) -> None:
    app = make_app(databases.create())
    with app.app_context():
        upgrade(directory=MIGRATIONS, revision="0007")
        now = datetime(2026, 5, 2, 10, tzinfo=UTC)
        with _db.engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO supporter (id, email, email_normalised, name, name_sort, language, gift_count, "
                    "lifetime_total_minor, is_demo, newsletter, created_at, updated_at) "
                    "VALUES (1, 'a@example.org', 'a@example.org', 'A', 'a', 'en', 0, 0, false, true, :now, :now)"
                ),
                {"now": now},
            )
            connection.execute(
                sa.text(
                    "INSERT INTO consent (id, supporter_id, purpose, granted, recorded_at, source, wording) VALUES "
                    "(1, 1, 'newsletter', true, :now, 'donation form', 'w'), "
                    "(2, 1, 'newsletter', false, :before, 'dashboard', 'w'), "
                    "(3, 1, 'newsletter', true, :before, 'import', 'w')"
                ),
                {"now": now, "before": now - timedelta(days=1)},
            )
        upgrade(directory=MIGRATIONS)
        with _db.engine.connect() as connection:
            rows = {
                row.id: (bool(row.granted), row.source, row.confirmed_at)
                for row in connection.execute(sa.text("SELECT id, granted, source, confirmed_at FROM consent"))
            }
            flag = connection.execute(sa.text("SELECT newsletter FROM supporter")).scalar_one()
        assert rows == {
            1: (True, "donation form, before double opt-in", None),
            2: (False, "dashboard", None),
            3: (True, "import", None),
        }
        assert flag in (True, 1), "a supporter subscribed before double opt-in stays subscribed"

        downgrade(directory=MIGRATIONS, revision="0007")
        with _db.engine.connect() as connection:
            sources = dict(connection.execute(sa.text("SELECT id, source FROM consent")).all())
        assert sources == {1: "donation form", 2: "dashboard", 3: "import"}
        _db.engine.dispose()


def test_the_form_says_the_box_asks_for_a_confirmation(client: Any, db: Any) -> None:
    page = client.get("/donate/").get_data(as_text=True)
    assert "we will e-mail you a link to confirm" in page
    assert 'aria-describedby="newsletter-hint"' in page
