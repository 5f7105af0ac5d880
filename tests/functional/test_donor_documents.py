"""The donor's documents at /my: each paid gift's receipt as a PDF, and the statement of a
year's or chosen days' gifts (the Polish one worded for the PIT/O annex), after the donor
has added or corrected their name and postal address (saved and audited).

The figures are read back from the PDFs' text (pypdf): each gift line, the totals per
currency, the name and address, the organisation's KRS and NIP, the Polish letters.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime
from typing import Any

import pypdf
import pytest
from flask import Flask
from sqlalchemy import select

from supporters.donors import statements
from supporters.giving.offline_gifts import correct_offline_gift, record_offline_gift
from supporters.lib.errors import Refused
from supporters.lib.money import format_amount
from supporters.lib.pdf import local_only_fetcher, render_pdf
from supporters.models import AuditEvent, Gift, GiftMethod, GiftStatus, Supporter, utcnow
from tests import factories
from tests.functional.test_donor_sign_in import signed_in_as

POLISH_LETTERS = "ąćęłńóśźż ĄĆĘŁŃÓŚŹŻ"
YEAR = 2025


@pytest.fixture(autouse=True)
def registry_numbers(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """The foundation's KRS and NIP, which the statement must show."""
    monkeypatch.setitem(app.config, "SUPPORTERS_ORG_KRS", "0000123456")
    monkeypatch.setitem(app.config, "SUPPORTERS_ORG_NIP", "5260250274")


def flat(text: str) -> str:
    """Text with every run of whitespace (non-breaking spaces, line breaks) as one space."""
    return " ".join(text.replace("\xa0", " ").split())


def pdf_text(response: Any) -> str:
    """The text of a PDF answer, flattened; the answer must be a PDF download."""
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Cache-Control"] == "no-store"
    disposition = response.headers["Content-Disposition"]
    assert re.fullmatch(r'attachment; filename="[A-Za-z0-9._-]+\.pdf"', disposition), disposition
    assert response.data.startswith(b"%PDF-")
    reader = pypdf.PdfReader(io.BytesIO(response.data))
    return flat("\n".join(page.extract_text() for page in reader.pages))


def money(minor: int, currency: str, locale: str = "en") -> str:
    return flat(format_amount(minor, currency, locale))


def at(month: int, day: int, year: int = YEAR, hour: int = 10) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def donor(**fields: Any) -> Supporter:
    values: dict[str, Any] = {
        "name": "Zażółć Gęślą Jaźń",
        "email": "jazn@example.org",
        "address_line1": "ul. Źródlana 5 m. 12",
        "postal_code": "90-001",
        "city": "Łódź",
        "country": "PL",
    }
    values.update(fields)
    return factories.supporter(**values)


def year_of_gifts(person: Supporter) -> dict[str, Gift]:
    """A year of one donor's gifts, of every kind a statement must list or leave out."""
    transfer = factories.paid_gift(
        person, receipt_number="2025-000011", method=GiftMethod.BANK_TRANSFER, paid_at=at(2, 3)
    )
    card = factories.paid_gift(
        person, receipt_number="2025-000012", amount_minor=12000, amount_base_minor=12000, paid_at=at(5, 3)
    )
    card.refunded_minor, card.status = 2000, GiftStatus.PARTIALLY_REFUNDED
    euro = factories.paid_gift(
        person,
        receipt_number="2025-000013",
        amount_minor=1000,
        currency="EUR",
        amount_base_minor=4300,
        paid_at=at(7, 3),
    )
    cash = factories.paid_gift(
        person, receipt_number="2025-000014", amount_minor=2000, method=GiftMethod.CASH, paid_at=at(9, 3)
    )
    refunded = factories.paid_gift(person, receipt_number="2025-000015", amount_minor=3000, paid_at=at(10, 1))
    refunded.refunded_minor, refunded.status = 3000, GiftStatus.REFUNDED
    voided = factories.paid_gift(
        person, receipt_number="2025-000016", method=GiftMethod.CASH, amount_minor=7000, paid_at=at(10, 2)
    )
    voided.status = GiftStatus.VOIDED
    disputed = factories.paid_gift(person, receipt_number="2025-000017", amount_minor=4000, paid_at=at(10, 3))
    disputed.status = GiftStatus.DISPUTED
    pending = factories.gift(person, amount_minor=9100)
    failed = factories.gift(person, amount_minor=9200)
    failed.status = GiftStatus.FAILED
    before = factories.paid_gift(person, receipt_number="2024-000099", amount_minor=6600, paid_at=at(6, 1, year=2024))
    # paid at 00:30 on 1 January in Warsaw: in 2025, not 2024
    new_year = factories.paid_gift(
        person,
        receipt_number="2025-000001",
        amount_minor=1500,
        method=GiftMethod.BANK_TRANSFER,
        paid_at=datetime(2024, 12, 31, 23, 30, tzinfo=UTC),
    )
    # paid at 00:30 on 1 January 2026 in Warsaw: in 2026
    next_year = factories.paid_gift(
        person, receipt_number="2026-000001", amount_minor=1600, paid_at=datetime(2025, 12, 31, 23, 30, tzinfo=UTC)
    )
    factories.paid_gift(factories.supporter(), receipt_number="2025-000099", amount_minor=8800, paid_at=at(3, 3))
    return {
        "transfer": transfer,
        "card": card,
        "euro": euro,
        "cash": cash,
        "refunded": refunded,
        "voided": voided,
        "disputed": disputed,
        "pending": pending,
        "failed": failed,
        "before": before,
        "new_year": new_year,
        "next_year": next_year,
    }


# --- The statement's figures -------------------------------------------------------------------


def test_the_statement_lists_each_kept_gift_and_the_totals_per_currency(client: Any, db: Any) -> None:
    person = donor()
    year_of_gifts(person)
    signed_in_as(client, person)

    text = pdf_text(client.get(f"/my/statement.pdf?year={YEAR}&lang=en"))

    assert "Statement of donations" in text and f"Gifts received in {YEAR}" in text
    lines = [
        "1. Jan 1, 2025 PLN15.00 bank transfer 2025-000001",
        "2. Feb 3, 2025 PLN50.00 bank transfer 2025-000011",
        "3. May 3, 2025 PLN100.00 PLN20.00 refunded card or online payment 2025-000012",
        "4. Jul 3, 2025 €10.00 card or online payment 2025-000013",
        "5. Sep 3, 2025 PLN20.00 cash 2025-000014",
    ]
    for line in lines:
        assert line in text, text
    assert "6." not in text.split("2025-000014", 1)[1].split("Total", 1)[0]
    assert "Total in EUR €10.00" in text
    assert f"Total in PLN {money(1500 + 5000 + 10000 + 2000, 'PLN')}" in text
    # refunded in full, voided, disputed, pending, failed, another year, another donor: not there
    for number in ("2025-000015", "2025-000016", "2025-000017", "2024-000099", "2026-000001", "2025-000099"):
        assert number not in text
    for amount in (3000, 7000, 4000, 9100, 9200, 6600, 1600, 8800):
        assert money(amount, "PLN") not in text
    assert "Zażółć Gęślą Jaźń" in text and "ul. Źródlana 5 m. 12" in text and "90-001 Łódź" in text
    assert "Poland" in text
    assert "KRS 0000123456" in text and "NIP 526-025-02-74" in text
    assert "Supporters demo foundation" in text


def test_the_polish_statement_is_worded_for_the_pit_o_annex_and_marks_what_reached_the_bank(
    client: Any, db: Any
) -> None:
    person = donor(name=f"Zażółć Gęślą Jaźń {POLISH_LETTERS}", language="pl")
    year_of_gifts(person)
    signed_in_as(client, person)

    text = pdf_text(client.get(f"/my/statement.pdf?year={YEAR}&lang=pl"))

    assert "Zaświadczenie o darowiznach" in text and f"za rok {YEAR}" in text
    assert "darowizna na cele statutowe" in text
    assert "PIT/O" in text and "rachunek bankowy obdarowanego" in text
    assert "Darczyńca".upper() in text and "Obdarowany".upper() in text
    assert POLISH_LETTERS in text  # every Polish letter survives, in the font and the text
    assert "KRS 0000123456" in text and "NIP 526-025-02-74" in text
    assert "01.02.2025" not in text  # dates are day.month.year
    assert "03.02.2025 50,00 zł przelew bankowy wpłata na rachunek bankowy 2025-000011" in text
    assert (
        "03.05.2025 100,00 zł zwrócono 20,00 zł karta lub płatność online wpłata na rachunek bankowy 2025-000012"
        in text
    )
    assert "03.09.2025 20,00 zł gotówka nie na rachunek bankowy 2025-000014" in text
    assert "Razem (EUR) 10,00 €" in text
    assert f"Razem (PLN) {money(18500, 'PLN', 'pl')}" in text
    assert "(gotówka, czek) tego warunku nie spełniają" in text
    assert "Statement of donations" not in text


def test_a_chosen_period_lists_only_its_days_even_typed_backwards(client: Any, db: Any) -> None:
    person = donor()
    year_of_gifts(person)
    signed_in_as(client, person)

    text = pdf_text(client.get("/my/statement.pdf?from=2025-09-30&to=2025-05-01&lang=en"))

    assert "Gifts received from May 1, 2025 to September 30, 2025" in text
    assert "2025-000012" in text and "2025-000013" in text and "2025-000014" in text
    assert "2025-000011" not in text and "2025-000001" not in text
    assert f"Total in PLN {money(12000, 'PLN')}" in text


def test_a_period_without_gifts_says_so(client: Any, db: Any) -> None:
    person = donor()
    signed_in_as(client, person)

    text = pdf_text(client.get("/my/statement.pdf?year=2024&lang=en"))

    assert "There are no donations from you in this period." in text
    assert "Total in" not in text


def test_the_statement_rule_leaves_out_what_is_not_kept(db: Any) -> None:
    person = donor()
    gifts = year_of_gifts(person)

    found = statements.statement(person, statements.year_period(YEAR))

    assert [line.gift.id for line in found.lines] == [
        gifts[name].id for name in ("new_year", "transfer", "card", "euro", "cash")
    ]
    assert [line.kept_minor for line in found.lines] == [1500, 5000, 10000, 1000, 2000]
    assert found.totals == {"EUR": 1000, "PLN": 18500}
    assert [line.to_bank_account for line in found.lines] == [True, True, True, True, False]
    assert statements.kept_minor(gifts["refunded"]) == 0 and statements.kept_minor(gifts["disputed"]) == 0
    assert statements.years_given(person) == [2026, 2025, 2024]


# --- The statement's address and the form -------------------------------------------------------


def test_the_form_is_prefilled_from_the_record_with_last_year_and_the_years_given(client: Any, db: Any) -> None:
    person = donor()
    year_of_gifts(person)
    signed_in_as(client, person)

    page = client.get("/my/statement")

    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert 'value="ul. Źródlana 5 m. 12"' in html and 'value="Łódź"' in html
    assert f'<option selected value="{statements.last_year()}">' in html
    assert '<option value="2024">' in html or '<option selected value="2024">' in html
    assert '<option selected value="PL">' in html


def test_the_corrected_address_is_saved_audited_and_on_the_statement(client: Any, db: Any) -> None:
    person = donor(address_line1=None, postal_code=None, city=None, country=None)
    year_of_gifts(person)
    signed_in_as(client, person)

    response = client.post(
        "/my/statement",
        data={
            "period": "year",
            "year": str(YEAR),
            "name": "Zażółć Gęślą-Jaźń",
            "address_line1": "ul. Świętokrzyska 11",
            "address_line2": "lok. 4",
            "postal_code": "00-950",
            "city": "Warszawa",
            "country": "PL",
        },
    )

    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/my/statement.pdf?year={YEAR}")
    db.session.expire_all()
    saved = db.session.get(Supporter, person.id)
    assert (saved.name, saved.address_line1, saved.address_line2, saved.postal_code, saved.city, saved.country) == (
        "Zażółć Gęślą-Jaźń",
        "ul. Świętokrzyska 11",
        "lok. 4",
        "00-950",
        "Warszawa",
        "PL",
    )
    (event,) = db.session.scalars(select(AuditEvent).filter_by(action="supporter.edit_profile")).all()
    assert event.actor == f"donor #{person.id}" and event.staff_user_id is None
    assert event.target_id == str(person.id)
    assert event.details["changes"]["city"] == {"old": None, "new": "Warszawa"}
    assert event.details["changes"]["name"] == {"old": "Zażółć Gęślą Jaźń", "new": "Zażółć Gęślą-Jaźń"}

    text = pdf_text(client.get(response.headers["Location"] + "&lang=en"))
    assert "Zażółć Gęślą-Jaźń ul. Świętokrzyska 11 lok. 4 00-950 Warszawa Poland" in text


def test_downloading_without_changes_writes_no_audit_row(client: Any, db: Any) -> None:
    person = donor()
    signed_in_as(client, person)
    form = {name: getattr(person, name) or "" for name in statements.POSTAL_FIELDS}

    response = client.post(
        "/my/statement", data={**form, "period": "days", "date_from": "2025-01-01", "date_to": "2025-12-31"}
    )

    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/my/statement.pdf?year={YEAR}")  # a whole year is the year
    assert db.session.scalars(select(AuditEvent).filter_by(action="supporter.edit_profile")).all() == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "  "}, "Enter your name as it should be on the statement."),
        ({"period": "days", "date_from": "", "date_to": "2025-02-01"}, "Enter both dates, or choose a year."),
        ({"period": "days", "date_from": "1999-01-01", "date_to": "1999-02-01"}, "Enter the dates like 2026-01-31"),
        ({"year": "1999"}, "Choose a year from 2000 to"),
        ({"year": "٢٠٢٥"}, "Choose a year."),
        ({"period": "month"}, "Not a valid choice"),
        ({"country": "XX"}, "Not a valid choice"),
        ({"city": "Łódź\x00"}, "This contains characters we cannot accept."),
        ({"name": "Ada\x00"}, "This contains characters we cannot accept."),
        ({"postal_code": "1" * 21}, "Field cannot be longer than 20 characters."),
    ],
)
def test_a_bad_form_is_refused_with_its_message_and_saves_nothing(
    client: Any, db: Any, change: dict[str, str], message: str
) -> None:
    person = donor()
    factories.paid_gift(person, receipt_number="2025-000011", paid_at=at(2, 3))
    signed_in_as(client, person)
    form = {name: getattr(person, name) or "" for name in statements.POSTAL_FIELDS}
    form.update(period="year", year=str(YEAR), city="Kraków")
    form.update(change)

    response = client.post("/my/statement", data=form)

    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Supporter, person.id).city == "Łódź"
    assert db.session.scalars(select(AuditEvent).filter_by(action="supporter.edit_profile")).all() == []


@pytest.mark.parametrize(
    "query",
    [
        "",
        "year=",
        "year=abc",
        "year=1999",
        f"year={date.today().year + 1}",
        "year=٢٠٢٥",
        "year=2025&from=2025-01-01&to=2025-02-01",
        "from=2025-01-01",
        "to=2025-01-01",
        "from=2025-02-30&to=2025-03-01",
        "from=2025-1-1&to=2025-03-01",
        "from=20250101&to=20250301",
        "from=2025-01-01&to=9999-12-31",
        "from=0001-01-01&to=2025-01-01",
        "year=" + "9" * 400,
        "year=%00",
    ],
)
def test_a_bad_period_in_the_address_is_a_400_with_what_to_write(client: Any, db: Any, query: str) -> None:
    signed_in_as(client, donor())

    response = client.get(f"/my/statement.pdf?{query}")

    assert response.status_code == 400, query
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "Choose" in page or "Enter the dates like 2026-01-31" in page


ODD_VALUES = ["\x00", "9" * 30, "\u3000", "፩", "A" * 20_000, "{{ 7*7 }}", "٢٠٢٥-٠١-٠١", "2025-02-30", "-1", ""]


def test_odd_values_in_any_field_are_never_a_server_error_and_a_refusal_saves_nothing(client: Any, db: Any) -> None:
    person = donor()
    signed_in_as(client, person)
    valid = {name: getattr(person, name) or "" for name in statements.POSTAL_FIELDS}
    valid.update(period="days", year=str(YEAR), date_from="2025-01-01", date_to="2025-06-30")

    for name in valid:
        for value in ODD_VALUES:
            db.session.expire_all()
            before = {field: getattr(db.session.get(Supporter, person.id), field) for field in statements.POSTAL_FIELDS}
            audited = len(db.session.scalars(select(AuditEvent)).all())

            response = client.post("/my/statement", data={**valid, name: value})

            assert response.status_code in (303, 400), (name, value[:20], response.status_code)
            if response.status_code == 400:
                db.session.expire_all()
                after = db.session.get(Supporter, person.id)
                assert {field: getattr(after, field) for field in statements.POSTAL_FIELDS} == before
                assert len(db.session.scalars(select(AuditEvent)).all()) == audited


# --- Receipts -----------------------------------------------------------------------------------


def test_a_paid_gift_s_receipt_pdf_says_what_the_receipt_e_mail_says(client: Any, db: Any) -> None:
    person = donor()
    gift = factories.paid_gift(
        person, receipt_number="2025-000012", amount_minor=10320, covers_fee=True, paid_at=at(5, 3)
    )
    signed_in_as(client, person)

    response = client.get(f"/my/gifts/{gift.id}/receipt.pdf?lang=en")

    text = pdf_text(response)
    assert response.headers["Content-Disposition"] == 'attachment; filename="receipt-2025-000012.pdf"'
    assert "Receipt from Supporters demo foundation" in text
    assert "Thank you for your gift, Zażółć Gęślą Jaźń!" in text
    assert "Receipt number: 2025-000012" in text
    assert "Your gift: PLN100.65 Processing fee you covered: PLN2.55 Total paid: PLN103.20" in text
    assert "Purpose: Donation for statutory purposes" in text
    assert "Payment method: Online payment through Stripe" in text
    assert "Date paid: May 3, 2025" in text
    assert "Received by: Supporters demo foundation" in text
    assert "KRS 0000123456 · NIP 526-025-02-74" in text
    assert "Stripe test mode" in text
    assert "This e-mail" not in text


def test_a_polish_receipt_of_a_partly_refunded_transfer(client: Any, db: Any) -> None:
    person = donor(language="pl")
    gift = factories.paid_gift(
        person, receipt_number="2025-000011", method=GiftMethod.BANK_TRANSFER, amount_minor=5000, paid_at=at(2, 3)
    )
    gift.refunded_minor, gift.status = 1000, GiftStatus.PARTIALLY_REFUNDED
    signed_in_as(client, person)

    text = pdf_text(client.get(f"/my/gifts/{gift.id}/receipt.pdf?lang=pl"))

    assert "Potwierdzenie darowizny" in text and "Numer potwierdzenia: 2025-000011" in text
    assert "Forma płatności: Przelew bankowy" in text and "Cel: Darowizna na cele statutowe" in text
    assert "Kwota: 50,00 zł" in text and "zwrócono 10,00 zł · Pozostało: 40,00 zł" in text
    assert "Zażółć Gęślą Jaźń" in text


def test_a_corrected_gift_s_receipt_says_which_receipt_it_replaces(client: Any, db: Any) -> None:
    person = donor()
    staff = factories.staff("admin")
    gift = record_offline_gift(
        person,
        amount_minor=5000,
        currency="PLN",
        method=GiftMethod.CASH,
        received_on=date(2025, 3, 1),
        staff_user=staff,
        send_receipt=False,
    )
    first_number = gift.receipt_number
    correct_offline_gift(
        gift,
        amount_minor=6000,
        received_on=date(2024, 12, 30),  # another year: another number
        method=GiftMethod.BANK_TRANSFER,
        reference=None,
        reason="Typo",
        staff_user=staff,
        notify=False,
    )
    signed_in_as(client, person)

    text = pdf_text(client.get(f"/my/gifts/{gift.id}/receipt.pdf?lang=en"))

    assert "This is a corrected receipt from Supporters demo foundation." in text
    assert f"It replaces receipt {first_number}, which we sent earlier and which is no longer valid." in text
    assert f"Receipt number: {gift.receipt_number}" in text and "Amount: PLN60.00" in text


def test_the_gift_list_links_each_receipt_and_the_statements(client: Any, db: Any) -> None:
    person = donor()
    gifts = year_of_gifts(person)
    signed_in_as(client, person)

    page = client.get("/my/gifts").get_data(as_text=True)

    for name in ("transfer", "card", "euro", "cash", "disputed", "before", "new_year", "next_year"):
        assert f"/my/gifts/{gifts[name].id}/receipt.pdf" in page, name
    for name in ("refunded", "voided", "pending", "failed"):
        assert f"/my/gifts/{gifts[name].id}/receipt.pdf" not in page, name
    assert page.count("Receipt (PDF)") == 8
    assert 'href="/my/statement"' in page and "Statements" in page


@pytest.mark.parametrize(
    ("which", "status", "message"),
    [
        ("refunded", 410, "refunded in full"),
        ("voided", 410, "its receipt was cancelled"),
        ("pending", 404, "only a paid gift with a receipt number has one"),
        ("failed", 404, "only a paid gift with a receipt number has one"),
        ("another", 404, "There is no such gift on your page."),
        ("unknown", 404, "There is no such gift on your page."),
    ],
)
def test_a_gift_without_a_receipt_of_its_donor_gets_a_clear_4xx(
    client: Any, db: Any, which: str, status: int, message: str
) -> None:
    person = donor()
    gifts = year_of_gifts(person)
    other = factories.paid_gift(factories.supporter(), receipt_number="2025-000077", paid_at=at(3, 3))
    ids = {**{name: gift.id for name, gift in gifts.items()}, "another": other.id, "unknown": 2**31 - 1}
    signed_in_as(client, person)

    response = client.get(f"/my/gifts/{ids[which]}/receipt.pdf")

    assert response.status_code == status
    assert response.mimetype == "text/html" and message in response.get_data(as_text=True)
    assert b"2025-000077" not in response.data


# --- Who may download ---------------------------------------------------------------------------


def _paths(gift: Gift) -> list[tuple[str, str]]:
    return [
        ("GET", f"/my/gifts/{gift.id}/receipt.pdf"),
        ("GET", "/my/statement"),
        ("POST", "/my/statement"),
        ("GET", f"/my/statement.pdf?year={YEAR}"),
    ]


def test_without_a_donor_session_every_document_sends_to_the_sign_in(client: Any, db: Any) -> None:
    person = donor()
    gift = factories.paid_gift(person, receipt_number="2025-000011", paid_at=at(2, 3))

    for method, path in _paths(gift):
        response = client.open(path, method=method, data={"name": "Mallory", "period": "year", "year": str(YEAR)})
        assert response.status_code == 302 and response.headers["Location"].endswith("/my/"), path
    assert db.session.get(Supporter, person.id).name == "Zażółć Gęślą Jaźń"


def test_a_staff_session_grants_nothing_here(client: Any, db: Any) -> None:
    person = donor()
    gift = factories.paid_gift(person, receipt_number="2025-000011", paid_at=at(2, 3))
    admin = factories.staff("admin")
    assert factories.sign_in(client, admin).status_code in (302, 303)

    for method, path in _paths(gift):
        response = client.open(path, method=method, data={"name": "Mallory", "period": "year", "year": str(YEAR)})
        assert response.status_code == 302 and response.headers["Location"].endswith("/my/"), path


def test_an_erased_supporter_has_no_documents(client: Any, db: Any) -> None:
    person = donor()
    gift = factories.paid_gift(person, receipt_number="2025-000011", paid_at=at(2, 3))
    signed_in_as(client, person)
    person.anonymised_at = utcnow()
    db.session.flush()

    for method, path in _paths(gift):
        assert client.open(path, method=method).status_code == 302, path
    for rule in (
        lambda: statements.statement(person, statements.year_period(YEAR)),
        lambda: statements.receipt_gift(person, gift.id),
        lambda: statements.correct_postal_details(person, city="Kraków"),
    ):
        with pytest.raises(Refused) as refused:
            rule()
        assert refused.value.status == 403


# --- The PDF maker ------------------------------------------------------------------------------


def test_a_pdf_fetches_nothing_from_outside() -> None:
    fetcher = local_only_fetcher()
    for url in ("http://127.0.0.1:9/x.png", "https://example.org/a.css", "file:///etc/passwd", "ftp://x/y"):
        with pytest.raises(ValueError, match="fetches nothing"):
            fetcher.fetch(url)
    assert fetcher.refused == [
        "http://127.0.0.1:9/x.png",
        "https://example.org/a.css",
        "file:///etc/passwd",
        "ftp://x/y",
    ]
    assert fetcher.fetch("data:text/plain,hello").read() == b"hello"

    pdf = render_pdf(
        "<html><body style=\"font-family: 'DejaVu Sans'\"><p>Zażółć ĄĆĘŁŃÓŚŹŻ</p>"
        '<img src="http://127.0.0.1:9/tracker.png"><link rel="stylesheet" href="file:///etc/passwd"></body></html>'
    )
    assert flat(pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()) == "Zażółć ĄĆĘŁŃÓŚŹŻ"
