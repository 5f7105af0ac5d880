"""The donor's contact choices: the newsletter withdrawn or given again on /my, the
one-click unsubscribe (RFC 8058) every newsletter-type e-mail carries, and the quiet ask.

Every decision is a consent-log row with its time, the exact words shown and where it was
taken, and an audit row naming the donor by number. The one-click POST needs no cookie
and no CSRF token; a GET never unsubscribes; a token speaks for the address it was made
for only.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import select

from supporters.extensions import db as _db
from supporters.mail import receipts, unsubscribe
from supporters.mail.outbox import build_message, queue_once
from supporters.models import AuditEvent, Consent, ConsentRequest, OutboxEmail, Supporter, utcnow
from supporters.models.supporter import NEWSLETTER
from supporters.people import consent
from tests import factories
from tests.conftest import MIGRATIONS, DatabaseFactory, make_app

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def signed_in(client: Any, supporter: Supporter) -> None:
    """A donor session, as pressing the e-mailed link's button starts it."""
    with client.session_transaction() as state:
        state["donor"] = {"supporter_id": supporter.id, "until": "2999-01-01T00:00:00+00:00"}


def subscribed(supporter: Supporter) -> Consent:
    row = Consent(
        supporter_id=supporter.id,
        purpose=NEWSLETTER,
        granted=True,
        recorded_at=utcnow() - timedelta(days=10),
        confirmed_at=utcnow() - timedelta(days=10),
        source="donation form, confirmed by e-mail",
        wording="Yes, e-mail me.",
    )
    _db.session.add(row)
    _db.session.flush()
    return row


def decisions(supporter: Supporter) -> list[Consent]:
    return list(_db.session.scalars(select(Consent).filter_by(supporter_id=supporter.id).order_by(Consent.recorded_at)))


def audits(action: str) -> list[AuditEvent]:
    return list(_db.session.scalars(select(AuditEvent).filter_by(action=action)))


def unsubscribe_path(supporter: Supporter) -> str:
    return urlsplit(consent.unsubscribe_url(supporter.id, supporter.email_normalised)).path


# --- On the donor's page ---------------------------------------------------------------


def test_the_page_says_the_donor_gets_the_newsletter_and_withdrawing_is_logged_and_audited(
    client: Any, db: Any
) -> None:
    ada = factories.supporter(email="ada@example.org", name="Ada")
    subscribed(ada)
    signed_in(client, ada)

    page = client.get("/my/gifts").get_data(as_text=True)
    assert "You receive our newsletter at ada@example.org" in page
    assert 'action="/my/newsletter/withdraw"' in page and 'action="/my/newsletter/give"' not in page

    before = utcnow()
    response = client.post("/my/newsletter/withdraw")

    assert response.status_code == 303 and response.headers["Location"].endswith("/my/gifts#contact")
    withdrawn = decisions(ada)[-1]
    assert withdrawn.granted is False and withdrawn.confirmed_at is None
    assert withdrawn.source == "donor page"
    assert withdrawn.wording == str(consent.WITHDRAW_WORDING)
    assert before <= withdrawn.recorded_at <= utcnow()
    db.session.refresh(ada)
    assert ada.newsletter is False
    [event] = audits("consent.withdrawn")
    assert event.actor == f"donor #{ada.id}" and event.target_id == str(ada.id)
    assert event.details["source"] == "donor page" and event.details["consent_id"] == withdrawn.id
    page = client.get("/my/gifts").get_data(as_text=True)
    assert "You do not receive our newsletter" in page and 'action="/my/newsletter/give"' in page


def test_withdrawing_twice_records_one_decision(client: Any, db: Any) -> None:
    ada = factories.supporter()
    subscribed(ada)
    signed_in(client, ada)

    client.post("/my/newsletter/withdraw")
    again = client.post("/my/newsletter/withdraw")

    assert again.status_code == 303
    assert [row.granted for row in decisions(ada)] == [True, False]
    assert len(audits("consent.withdrawn")) == 1


def test_giving_it_again_signed_in_grants_it_at_once_with_the_words_shown(client: Any, db: Any) -> None:
    ada = factories.supporter()
    signed_in(client, ada)
    page = client.get("/my/gifts").get_data(as_text=True)
    assert str(consent.GIVE_WORDING) in page

    response = client.post("/my/newsletter/give")

    assert response.status_code == 303
    [given] = decisions(ada)
    assert given.granted is True and given.confirmed_at == given.recorded_at
    assert given.source == "donor page, signed in by e-mail"
    assert given.wording == str(consent.GIVE_WORDING)
    assert consent.has_confirmed_newsletter(ada.id)
    db.session.refresh(ada)
    assert ada.newsletter is True
    [event] = audits("consent.granted")
    assert event.actor == f"donor #{ada.id}"
    client.post("/my/newsletter/give")  # a second press
    assert len(decisions(ada)) == 1


def test_giving_it_on_the_page_closes_the_confirmation_link_still_waiting(client: Any, db: Any) -> None:
    ada = factories.supporter()
    gift = factories.paid_gift(ada)
    asked = consent.request_newsletter(ada, wording="Yes, e-mail me.", source="donation form", gift=gift)
    assert asked is not None
    token = consent.issue_link(asked)
    signed_in(client, ada)
    assert "You asked for our newsletter" in client.get("/my/gifts").get_data(as_text=True)

    client.post("/my/newsletter/give")

    assert client.post(f"/newsletter/confirm/{token}").status_code == 410
    assert [row.granted for row in decisions(ada)] == [True]


def test_the_newsletter_buttons_are_for_a_signed_in_donor_only(client: Any, db: Any) -> None:
    ada = factories.supporter()
    subscribed(ada)
    for path in ("/my/newsletter/withdraw", "/my/newsletter/give"):
        response = client.post(path)
        assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/my/"
    assert len(decisions(ada)) == 1


# --- One-click unsubscribe ---------------------------------------------------------------


def test_opening_the_unsubscribe_link_shows_a_button_and_unsubscribes_no_one(client: Any, db: Any) -> None:
    ada = factories.supporter(email="ada@example.org")
    subscribed(ada)

    for _scanner in range(3):
        page = client.get(unsubscribe_path(ada))
        assert page.status_code == 200 and "<button" in page.get_data(as_text=True)
        assert page.headers["Cache-Control"] == "no-store" and page.headers["Referrer-Policy"] == "no-referrer"
    client.head(unsubscribe_path(ada))

    assert [row.granted for row in decisions(ada)] == [True]
    db.session.refresh(ada)
    assert ada.newsletter is True


def test_the_one_click_post_withdraws_once_and_answers_200_every_time(client: Any, db: Any) -> None:
    ada = factories.supporter()
    subscribed(ada)
    path = unsubscribe_path(ada)

    answers = [client.post(path, data=ONE_CLICK).status_code for _press in range(3)]

    assert answers == [200, 200, 200]
    assert [row.granted for row in decisions(ada)] == [True, False]
    withdrawn = decisions(ada)[-1]
    assert (withdrawn.wording, withdrawn.source) == ("one-click unsubscribe", "List-Unsubscribe")
    [event] = audits("consent.withdrawn")
    assert event.actor == f"donor #{ada.id}" and event.details["source"] == "List-Unsubscribe"
    db.session.refresh(ada)
    assert ada.newsletter is False


def test_the_one_click_post_needs_no_cookie_and_no_csrf_token(databases: DatabaseFactory) -> None:
    application = make_app(databases.create(), WTF_CSRF_ENABLED=True)
    with application.app_context():
        upgrade(directory=MIGRATIONS)
        ada = factories.supporter()
        subscribed(ada)
        other = factories.supporter()
        subscribed(other)
        _db.session.commit()
        path, ada_id = unsubscribe_path(ada), ada.id
    client = application.test_client(use_cookies=False)

    # as a mail provider sends it: form-encoded or multipart, no cookie, no token
    answer = client.post(path, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    multipart = client.post(path, data=ONE_CLICK, content_type="multipart/form-data")
    # every other form still needs its token
    refused = client.post("/my/", data={"email": "someone@example.org"})

    assert (answer.status_code, multipart.status_code, refused.status_code) == (200, 200, 400)
    assert "Set-Cookie" not in answer.headers
    with application.app_context():
        rows = _db.session.scalars(select(Consent).filter_by(supporter_id=ada_id).order_by(Consent.id)).all()
        assert [row.granted for row in rows] == [True, False]
        _db.engine.dispose()


def test_a_token_for_an_old_address_is_refused_and_withdraws_nothing(client: Any, db: Any) -> None:
    ada = factories.supporter(email="ada@example.org")
    subscribed(ada)
    path = unsubscribe_path(ada)
    ada.email, ada.email_normalised = "ada@new.example.org", "ada@new.example.org"
    db.session.flush()

    assert client.get(path).status_code == 404
    assert client.post(path, data=ONE_CLICK).status_code == 404
    assert [row.granted for row in decisions(ada)] == [True]
    assert client.post(unsubscribe_path(ada), data=ONE_CLICK).status_code == 200  # the new address's own


@pytest.mark.parametrize(
    "token", ["", "x", "a" * 500, "eyJzIjoxLCJhIjoiMDAwMDAwMDAwMDAwMDAwMCJ9.forged.signature", "..%2F..%2Fadmin"]
)
def test_a_token_not_ours_is_not_found(client: Any, db: Any, token: str) -> None:
    ada = factories.supporter()
    subscribed(ada)
    for answer in (
        client.get(f"/newsletter/unsubscribe/{token}"),
        client.post(f"/newsletter/unsubscribe/{token}", data=ONE_CLICK),
    ):
        assert answer.status_code == 404
    assert len(decisions(ada)) == 1


def test_a_token_of_another_purpose_does_not_unsubscribe(client: Any, db: Any) -> None:
    from supporters.donors import links

    ada = factories.supporter()
    subscribed(ada)
    donor_link = links.make_token(ada, "/my/gifts")
    assert client.post(f"/newsletter/unsubscribe/{donor_link}", data=ONE_CLICK).status_code == 404
    assert len(decisions(ada)) == 1


def test_an_erased_supporters_token_is_refused(client: Any, db: Any) -> None:
    ada = factories.supporter()
    subscribed(ada)
    path = unsubscribe_path(ada)
    ada.anonymised_at = utcnow()
    db.session.flush()
    assert client.post(path, data=ONE_CLICK).status_code == 404


# --- Newsletter-type e-mail: its headers ----------------------------------------------


def test_a_newsletter_type_email_carries_the_one_click_headers_in_the_built_message(
    app: Flask, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(unsubscribe, "NEWSLETTER_KINDS", frozenset({"newsletter"}))
    ada = factories.supporter(email="ada@example.org")
    subscribed(ada)

    email = unsubscribe.queue_newsletter("newsletter:1:ada", "newsletter", ada, "News", "Text", "<p>Text</p>")
    assert email is not None
    message = build_message(email)

    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    targets = re.findall(r"<([^>]+)>", message["List-Unsubscribe"])
    assert len(targets) == 2 and targets[1].startswith("mailto:")
    https = urlsplit(targets[0])
    assert https.scheme in ("http", "https") and https.netloc == urlsplit(app.config["SUPPORTERS_PUBLIC_URL"]).netloc
    assert https.path == unsubscribe_path(ada)
    assert message["Reply-To"] and message["From"]


def test_only_a_kind_marked_newsletter_type_is_queued_so_and_only_to_a_subscriber(db: Any) -> None:
    ada = factories.supporter()
    with pytest.raises(ValueError):
        unsubscribe.queue_newsletter("k", "receipt", ada, "S", "T", "H")


def test_no_newsletter_type_email_goes_to_who_is_not_subscribed(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(unsubscribe, "NEWSLETTER_KINDS", frozenset({"newsletter"}))
    ada = factories.supporter()
    assert unsubscribe.queue_newsletter("k", "newsletter", ada, "S", "T", "H") is None


def test_our_own_emails_carry_no_unsubscribe_header(db: Any) -> None:
    gift = factories.paid_gift(factories.supporter())
    email = receipts.queue_receipt(gift)
    assert email is not None
    message = build_message(email)
    assert message["List-Unsubscribe"] is None and message["List-Unsubscribe-Post"] is None


def test_an_outbox_row_may_not_carry_other_headers(db: Any) -> None:
    for headers in ({"From": "x@example.org"}, {"List-Unsubscribe": "<https://x>\r\nBcc: y@example.org"}):
        with pytest.raises(ValueError):
            queue_once("bad", "k", "a@example.org", "S", "T", "H", headers=headers)
    assert db.session.scalar(select(OutboxEmail.id).filter_by(dedupe_key="bad")) is None


def test_a_bare_sender_address_is_named_as_the_organisation(app: Flask, db: Any, monkeypatch: Any) -> None:
    email = receipts.queue_receipt(factories.paid_gift(factories.supporter()))
    assert email is not None
    monkeypatch.setitem(app.config, "MAIL_DEFAULT_SENDER", "noreply@example.org")
    assert build_message(email)["From"] == f"{app.config['SUPPORTERS_ORG_NAME']} <noreply@example.org>"


# --- The quiet ask -------------------------------------------------------------------


def test_the_quiet_page_is_public_and_has_the_buttons_and_its_script(client: Any, db: Any) -> None:
    page = client.get("/my/quiet")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert [int(days) for days in re.findall(r'data-quiet-days="(\d+)"', html)] == [30, 90, 365]
    assert "data-quiet-off" in html and 'src="/widget/quiet.js"' in html
    assert "Set-Cookie" not in page.headers
    script = client.get("/widget/quiet.js")
    assert script.status_code == 200 and script.mimetype == "text/javascript"
    assert "supporters:quiet-until" in script.get_data(as_text=True)


def test_the_donors_page_offers_the_quiet_ask_too(client: Any, db: Any) -> None:
    ada = factories.supporter()
    signed_in(client, ada)
    html = client.get("/my/gifts").get_data(as_text=True)
    assert 'data-quiet-days="90"' in html and 'src="/widget/quiet.js"' in html


def test_the_receipt_links_to_the_quiet_page_in_the_donors_language(db: Any) -> None:
    gift = factories.paid_gift(factories.supporter(language="pl"))
    email = receipts.queue_receipt(gift)
    assert email is not None
    for body in (email.body_text, email.body_html or ""):
        found = re.search(r"https?://[^\s\"<>]+/my/quiet\?lang=pl", body)
        assert found, body


def test_a_pending_request_alone_can_be_declined_on_the_page(client: Any, db: Any) -> None:
    ada = factories.supporter()
    gift = factories.paid_gift(ada)
    asked = consent.request_newsletter(ada, wording="Yes, e-mail me.", source="donation form", gift=gift)
    assert asked is not None
    token = consent.issue_link(asked)
    signed_in(client, ada)

    client.post("/my/newsletter/withdraw")

    [declined] = decisions(ada)
    assert declined.granted is False
    assert client.post(f"/newsletter/confirm/{token}").status_code == 410
    assert db.session.scalars(select(ConsentRequest).filter_by(supporter_id=ada.id)).one().confirmed_at is None
