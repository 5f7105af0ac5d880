"""The organisation's own details: on every page's footer and under the donation form, on
every receipt (with the payment method, and the gift and the covered fee apart), on the
privacy page (the GDPR information clause) that the form and every e-mail link to; and a
Reply-To on every e-mail, since receipts invite a reply."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest
from flask import Flask

from supporters.giving.fees import estimate_fee
from supporters.lib.organisation import format_iban, format_nip, organisation
from supporters.mail import outbox
from supporters.mail.newsletter import queue_confirmation
from supporters.mail.outbox import send_due
from supporters.mail.receipts import (
    queue_cancellation_notice,
    queue_corrected_receipt,
    queue_receipt,
)
from supporters.models import GiftKind, GiftMethod, OutboxEmail
from supporters.people import consent
from tests import factories

PAID = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)

DETAILS = {
    "SUPPORTERS_ORG_NAME": "Fundacja Przykładowa",
    "SUPPORTERS_ORG_ADDRESS": ["ul. Wiejska 1", "00-001 Warszawa"],
    "SUPPORTERS_ORG_EMAIL": "kontakt@fundacja.example.org",
    "SUPPORTERS_ORG_PHONE": "+48 22 123 45 67",
    "SUPPORTERS_ORG_KRS": "0000123456",
    "SUPPORTERS_ORG_NIP": "5260250274",
    "SUPPORTERS_ORG_REGON": "012345675",
    "SUPPORTERS_ORG_IBAN": "PL61109010140000071219812874",
    "SUPPORTERS_ORG_BIC": "WBKPPLPP",
    "SUPPORTERS_PRIVACY_CONTACT": "iod@fundacja.example.org",
}
SHOWN = (
    "Fundacja Przykładowa",
    "ul. Wiejska 1",
    "00-001 Warszawa",
    "KRS 0000123456",
    "NIP 526-025-02-74",
    "REGON 012345675",
)


@pytest.fixture(autouse=True)
def foundation(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A foundation with every detail set, and e-mails sent into memory."""
    for name, value in DETAILS.items():
        monkeypatch.setitem(app.config, name, value)
    monkeypatch.setitem(app.config, "MAIL_BACKEND", "memory")
    monkeypatch.setitem(app.config, "MAIL_REPLY_TO", "")
    outbox.sent_messages.clear()
    yield
    outbox.sent_messages.clear()


def paid_gift(**fields: Any) -> Any:
    fields.setdefault("paid_at", PAID)
    gift = factories.paid_gift(fields.pop("owner", None), **fields)
    gift.receipt_number = fields.get("receipt_number", f"2026-{gift.id:06d}")
    return gift


def text_of(page: str) -> str:
    """A page's words, tags dropped and white space folded, entities read."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


# --- Showing the details ------------------------------------------------------------------


def test_the_iban_is_shown_in_groups_of_four_and_the_nip_with_dashes(db: Any) -> None:
    assert format_iban("PL61109010140000071219812874") == "PL61 1090 1014 0000 0712 1981 2874"
    assert format_nip("5260250274") == "526-025-02-74"
    assert format_iban("") == "" and format_nip("") == ""
    shown = organisation()
    assert shown.iban == "PL61 1090 1014 0000 0712 1981 2874"
    assert shown.registry == (("KRS", "0000123456"), ("NIP", "526-025-02-74"), ("REGON", "012345675"))


def test_numbers_not_set_are_left_out(app: Flask, db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "SUPPORTERS_ORG_KRS", "")
    monkeypatch.setitem(app.config, "SUPPORTERS_ORG_REGON", "")

    assert organisation().registry == (("NIP", "526-025-02-74"),)


@pytest.mark.parametrize("path", ["/", "/donate/", "/articles/"])
def test_every_page_footer_names_the_organisation_and_links_to_the_privacy_page(client: Any, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    footer = text_of(page.split('<footer class="site-footer">', 1)[1])
    for detail in (*SHOWN, "kontakt@fundacja.example.org", "+48 22 123 45 67"):
        assert detail in footer
    assert re.search(r'<footer class="site-footer">.*href="/privacy"', page, re.S)


def test_the_donation_form_says_what_the_details_are_for_and_links_to_the_privacy_page(client: Any) -> None:
    page = client.get("/donate/").get_data(as_text=True)

    note = re.search(r'<p class="small-print privacy-note">(.*?)</p>', page, re.S)
    assert note is not None
    assert "Fundacja Przykładowa uses your details to record your gift and send your receipt." in text_of(note.group(1))
    assert 'href="/privacy"' in note.group(1)


# --- The privacy page ---------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "pl"])
def test_the_privacy_page_names_the_controller_the_bases_the_recipients_and_the_authority(
    client: Any, lang: str
) -> None:
    response = client.get(f"/privacy?lang={lang}")

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert f'<html lang="{lang}">' in page
    words = text_of(page.split('<main id="main"', 1)[1].split("</main>", 1)[0])
    for detail in (*SHOWN, "kontakt@fundacja.example.org", "iod@fundacja.example.org"):
        assert detail in words
    assert 'href="mailto:iod@fundacja.example.org"' in page
    # each legal basis, cited as each language cites the GDPR/RODO
    for letter in "abcf":
        assert (f"6(1)({letter})" if lang == "en" else f"6 ust. 1 lit. {letter}") in words
    assert "Stripe Payments Europe" in words
    assert "Prezes Urzędu Ochrony Danych Osobowych ul. Stawki 2 00-193 Warszawa" in words


def test_the_privacy_page_says_what_it_is_in_english(client: Any) -> None:
    words = text_of(client.get("/privacy?lang=en").get_data(as_text=True))

    assert "The controller of your personal data is:" in words
    assert "withdraw your consent to the newsletter at any time" in words
    assert "5 years from the end of the year in which the gift was made" in words


def test_a_privacy_contact_that_is_no_address_is_shown_as_written(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(client.application.config, "SUPPORTERS_PRIVACY_CONTACT", "Jan Kowalski, tel. 22 000 00 00")

    page = client.get("/privacy").get_data(as_text=True)

    assert "Jan Kowalski, tel. 22 000 00 00" in page
    assert "mailto:Jan" not in page


# --- Receipts -----------------------------------------------------------------------------


def test_the_receipt_names_the_organisation_its_numbers_the_purpose_and_the_method(app: Flask, db: Any) -> None:
    email = queue_receipt(paid_gift(amount_minor=5000, currency="PLN"))

    assert email is not None
    for body in (email.body_text, text_of(email.body_html)):
        for detail in SHOWN:
            assert detail in body
        assert "Purpose: Donation for statutory purposes" in body
        assert "Payment method: Online payment through Stripe" in body
        assert "Amount: PLN50.00" in body
        assert "Processing fee" not in body


@pytest.mark.parametrize(
    ("method", "label"),
    [(GiftMethod.BANK_TRANSFER, "Bank transfer"), (GiftMethod.CHEQUE, "Cheque"), (GiftMethod.CASH, "Cash")],
)
def test_an_offline_gifts_receipt_says_how_it_was_paid(db: Any, method: GiftMethod, label: str) -> None:
    email = queue_receipt(paid_gift(method=method))

    assert email is not None
    for body in (email.body_text, text_of(email.body_html)):
        assert f"Payment method: {label}" in body


def test_a_receipt_shows_the_gift_and_the_fee_the_donor_covered_apart(db: Any) -> None:
    fee = estimate_fee(10000, "PLN")
    assert fee > 0
    email = queue_receipt(paid_gift(amount_minor=10000 + fee, currency="PLN", covers_fee=True))

    assert email is not None
    total = f"PLN{(10000 + fee) / 100:.2f}"
    for body in (email.body_text, text_of(email.body_html)):
        assert "Your gift: PLN100.00" in body
        assert f"Processing fee you covered: PLN{fee / 100:.2f}" in body
        assert f"Total paid: {total}" in body
        assert "Amount:" not in body


def test_a_covered_fee_that_cannot_be_told_apart_any_more_is_said_with_the_total(
    app: Flask, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fee = estimate_fee(10000, "PLN")
    gift = paid_gift(amount_minor=10000 + fee, currency="PLN", covers_fee=True)
    monkeypatch.setitem(app.config, "SUPPORTERS_FEE_PERCENT", "0")
    monkeypatch.setitem(app.config, "SUPPORTERS_FEE_FIXED", {"PLN": 10000 + fee})  # no gift makes this total now

    email = queue_receipt(gift)

    assert email is not None
    for body in (email.body_text, text_of(email.body_html)):
        assert f"Amount: PLN{(10000 + fee) / 100:.2f}" in body
        assert "including the processing fee you chose to cover" in body
        assert "Your gift:" not in body


def test_a_corrected_receipt_carries_the_details_too(db: Any) -> None:
    gift = paid_gift(method=GiftMethod.BANK_TRANSFER)

    email = queue_corrected_receipt(gift, correction=1, replaces="2026-000001")

    assert email is not None
    for body in (email.body_text, text_of(email.body_html)):
        assert "NIP 526-025-02-74" in body and "Payment method: Bank transfer" in body


# --- Every e-mail links to the privacy page ------------------------------------------------


def every_kind_of_email(db: Any, language: str) -> list[OutboxEmail]:
    person = factories.supporter(language=language)
    receipt = queue_receipt(paid_gift(owner=person))
    notice = queue_cancellation_notice(paid_gift(owner=person))
    asked = paid_gift(owner=person)
    assert consent.request_newsletter(person, wording="Yes, send me the newsletter.", source="test", gift=asked)
    confirmation = queue_confirmation(asked)
    emails = [receipt, notice, confirmation]
    assert all(email is not None for email in emails)
    return emails  # type: ignore[return-value]


@pytest.mark.parametrize("language", ["en", "pl"])
def test_every_email_links_to_the_privacy_page_in_its_language_and_names_the_organisation(
    app: Flask, db: Any, language: str
) -> None:
    link = app.config["SUPPORTERS_PUBLIC_URL"].rstrip("/") + f"/privacy?lang={language}"

    for email in every_kind_of_email(db, language):
        assert link in email.body_text, email.kind
        assert f'href="{link}"' in email.body_html, email.kind
        for body in (email.body_text, text_of(email.body_html)):
            assert "Fundacja Przykładowa, ul. Wiejska 1, 00-001 Warszawa" in body
            assert "kontakt@fundacja.example.org" in body


def test_the_privacy_link_in_an_email_opens_the_privacy_page(app: Flask, client: Any, db: Any) -> None:
    email = queue_receipt(paid_gift())
    assert email is not None
    found = re.search(r"(https?://\S+/privacy\?lang=\w+)", email.body_text)
    assert found is not None

    response = client.get(found.group(1).removeprefix(app.config["SUPPORTERS_PUBLIC_URL"].rstrip("/")))

    assert response.status_code == 200 and "Fundacja Przykładowa" in response.get_data(as_text=True)


# --- Reply-To ------------------------------------------------------------------------------


def sent(db: Any) -> list[EmailMessage]:
    send_due()
    return list(outbox.sent_messages)


def test_every_email_can_be_answered_replies_go_to_the_contact_address(db: Any) -> None:
    kinds = every_kind_of_email(db, "en")

    messages = sent(db)

    assert len(messages) == len(kinds)
    assert {message["Reply-To"] for message in messages} == {"kontakt@fundacja.example.org"}


def test_mail_reply_to_sends_replies_elsewhere(app: Flask, db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "MAIL_REPLY_TO", "darczyncy@fundacja.example.org")
    assert queue_receipt(paid_gift()) is not None

    [message] = sent(db)

    assert message["Reply-To"] == "darczyncy@fundacja.example.org"


def test_a_receipt_that_invites_a_reply_names_the_address_it_goes_to(db: Any) -> None:
    person = factories.supporter()
    plan = factories.plan(person)
    email = queue_receipt(paid_gift(owner=person, kind=GiftKind.RECURRING, recurring_plan_id=plan.id))
    assert email is not None and "reply to this e-mail" in email.body_text

    [message] = sent(db)

    assert message["Reply-To"] == "kontakt@fundacja.example.org"
    assert "kontakt@fundacja.example.org" in email.body_text
