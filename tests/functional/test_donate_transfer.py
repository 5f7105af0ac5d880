"""Giving by bank transfer from the donation form: a pledge with a unique transfer title,
the page and the e-mail with the account, amount and title (and a QR code banking apps
read), counted nowhere until the money is matched on a statement."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from supporters.extensions import db as _db
from supporters.giving import transfer_details
from supporters.giving.transfers import references_in
from supporters.lib import bank_qr
from supporters.models import Gift, GiftMethod, GiftStatus, OutboxEmail, Supporter, giving
from tests import factories
from tests.functional.test_donate import all_gifts, seed_campaigns, valid_form

IBAN_GROUPED = "PL61 1090 1014 0000 0712 1981 2874"


@pytest.fixture
def campaign(db: Any) -> Any:
    return seed_campaigns()


def pledge(client: Any, **changes: Any) -> Any:
    return client.post("/donate/", data=valid_form(payment="bank_transfer", **changes))


def instructions() -> list[OutboxEmail]:
    return list(_db.session.scalars(select(OutboxEmail).filter_by(kind="transfer_instructions")))


def test_the_form_offers_a_bank_transfer_when_the_organisation_has_an_account(
    client: Any, campaign: Any, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = client.get("/donate/").get_data(as_text=True)
    assert 'name="payment" type="radio" value="bank_transfer"' in page or 'value="bank_transfer"' in page
    monkeypatch.setitem(app.config, "SUPPORTERS_ORG_IBAN", "")
    page = client.get("/donate/").get_data(as_text=True)
    assert "bank_transfer" not in page
    # a transfer asked for (from a page shown before) without an account to send it to is refused
    response = pledge(client)
    assert response.status_code == 400 and "How you pay" in response.get_data(as_text=True)
    assert all_gifts() == []


def test_a_pledge_gets_a_title_a_page_and_an_e_mail_and_counts_nowhere(client: Any, campaign: Any) -> None:
    response = pledge(client, amount_choice="", custom_amount="100", covers_fee="y")
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith("/donate/transfer/")

    (gift,) = all_gifts()
    assert (gift.method, gift.status, gift.amount_minor, gift.currency) == (
        GiftMethod.BANK_TRANSFER,
        GiftStatus.PENDING,
        10000,  # no processing fee on a transfer of one's own, even with the box ticked
        "PLN",
    )
    assert not gift.covers_fee and gift.stripe_checkout_session_id is None and gift.checkout_url is None
    assert re.fullmatch(r"DAR 20\d\d \d{6} \d", gift.transfer_reference or "")
    assert [r.gift_id for r in references_in(gift.transfer_reference or "")] == [gift.id]
    supporter = _db.session.get(Supporter, gift.supporter_id)
    assert supporter.gift_count == 0 and supporter.lifetime_total_minor == 0
    assert giving.stored_totals(_db.session.connection()) == {}

    page = client.get(location).get_data(as_text=True)
    assert IBAN_GROUPED in page and gift.transfer_reference in page and "100.00" in page
    assert "Supporters demo foundation" in page and "ul. Przykładowa 1" in page
    assert 'src="data:image/svg+xml' in page  # the Polish banks' QR code

    (email,) = instructions()
    assert email.to_address == "ada@example.org"
    for text in (email.body_text, email.body_html):
        assert IBAN_GROUPED in text and gift.transfer_reference in text and "100.00" in text
        assert "http://127.0.0.1:5000/donate/transfer/" in text  # the public URL, never the request's host


def test_sending_the_same_form_again_gives_the_same_pledge_and_one_e_mail(client: Any, campaign: Any) -> None:
    first = pledge(client)
    again = pledge(client)
    assert first.headers["Location"] == again.headers["Location"]
    assert len(all_gifts()) == 1 and len(instructions()) == 1


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"frequency": "monthly"}, "A bank transfer is a gift made once"),
        ({"currency": "USD", "shown_currency": "USD", "amount_choice": "", "custom_amount": "50"}, "in PLN, EUR"),
    ],
)
def test_a_transfer_is_one_time_and_in_zloty_or_euro(client: Any, campaign: Any, changes: Any, says: str) -> None:
    response = pledge(client, **changes)
    assert response.status_code == 400 and says in response.get_data(as_text=True)
    assert all_gifts() == [] and instructions() == []


def test_a_euro_pledge_shows_the_sepa_qr_code(client: Any, campaign: Any) -> None:
    response = pledge(client, currency="EUR", shown_currency="EUR", amount_choice="", custom_amount="25")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "SEPA (EPC) QR code" in page and 'src="data:image/svg+xml' in page and "€25.00" in page


def test_the_page_follows_the_pledge_and_refuses_what_we_did_not_sign(client: Any, campaign: Any) -> None:
    location = pledge(client).headers["Location"]
    (gift,) = all_gifts()
    gift.status = GiftStatus.SUCCEEDED
    gift.paid_at = factories.paid_gift().paid_at
    gift.receipt_number = "2026-000777"
    _db.session.commit()
    page = client.get(location).get_data(as_text=True)
    assert "Your transfer has arrived" in page and "2026-000777" in page
    assert client.get(location[:-2] + ("xx" if not location.endswith("xx") else "yy")).status_code == 404
    assert client.get("/donate/transfer/not-a-token").status_code == 404
    card_gift = factories.gift()
    _db.session.commit()
    with client.application.test_request_context():
        assert client.get(f"/donate/transfer/{transfer_details.page_token(card_gift)}").status_code == 404


def test_the_polish_banks_qr_code_carries_the_fields_in_their_order() -> None:
    payload = bank_qr.polish_transfer(
        iban="PL61 1090 1014 0000 0712 1981 2874",
        amount_minor=10254,
        recipient="Fundacja Przykładowa im. Długiej Nazwy",
        title="DAR 2026 000153 0",
        nip="5260250274",
    )
    assert payload == "5260250274|PL|61109010140000071219812874|010254|Fundacja Przykładowa|DAR 2026 000153 0|||"
    assert (
        bank_qr.polish_transfer(iban="PL61109010140000071219812874", amount_minor=5000, recipient="A|B", title="x\ny")
        == "|PL|61109010140000071219812874|005000|A B|xy|||"
    )
    with pytest.raises(ValueError):
        bank_qr.polish_transfer(iban="DE89370400440532013000", amount_minor=100, recipient="A", title="t")


def test_pledges_never_reach_the_gateway(client: Any, campaign: Any, app: Flask) -> None:
    from tests.fakes import FakeGateway

    fake, real = FakeGateway(), app.extensions["payments"]
    app.extensions["payments"] = fake
    try:
        assert pledge(client).status_code == 303
    finally:
        app.extensions["payments"] = real
    assert fake.checkouts == []
    assert _db.session.scalar(select(func.count()).select_from(Gift)) == 1


def test_back_from_the_payment_page_the_form_keeps_the_e_mail_and_name(client: Any, campaign: Any) -> None:
    response = client.post("/donate/", data=valid_form(email="ewa@example.org", name="Ewa Zielińska"))
    session_id = response.headers["Location"].rsplit("/", 1)[1]
    back = client.get(f"/donate/cancelled?session_id={session_id}")
    assert back.status_code == 303 and "email" not in back.headers["Location"]  # never in the link
    page = client.get(back.headers["Location"]).get_data(as_text=True)
    assert 'value="ewa@example.org"' in page and 'value="Ewa Zielińska"' in page
    assert 'value="ewa@example.org"' not in client.get("/donate/").get_data(as_text=True)  # once only


def test_the_language_switch_carries_the_gift_s_choices_but_nothing_personal(client: Any, campaign: Any) -> None:
    page = client.get("/donate/?amount=100&frequency=one_time&article=baltic-grid&currency=PLN").get_data(as_text=True)
    switch = page.split('<form class="lang"', 1)[1].split("</form>", 1)[0]
    kept = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)" data-keep>', switch))
    assert kept == {
        "campaign": "general",
        "frequency": "one_time",
        "currency": "PLN",
        "amount": "100.00",
        "article": "baltic-grid",
    }
    again = client.get("/donate/?" + "&".join(f"{k}={v}" for k, v in kept.items()) + "&lang=pl").get_data(as_text=True)
    assert 'lang="pl"' in again
    tags = re.findall(r"<input[^>]*>", again)
    (chosen,) = [tag for tag in tags if 'name="amount_choice"' in tag and "checked" in tag]
    (own,) = [tag for tag in tags if 'name="custom_amount"' in tag]
    # 100 zł is not one of this campaign's suggestions: it comes back as the donor's own amount
    assert 'value="other"' in chosen and re.search(r'value="100[.,]00"', own)
    (often,) = [tag for tag in tags if 'name="frequency"' in tag and "checked" in tag]
    assert 'value="one_time"' in often


# --- The two halves meet: the form's pledge, paid by the bank statement ------------------------


def test_a_pledge_from_the_form_is_paid_by_the_statement_that_quotes_its_title(
    client: Any, campaign: Any, app: Flask, tmp_path: Any
) -> None:
    location = pledge(client, amount_choice="", custom_amount="150").headers["Location"]
    (gift,) = all_gifts()
    title = gift.transfer_reference
    # the donor's bank writes the title its own way: run together, in lower case
    statement = tmp_path / "statement.csv"
    written = "przelew " + title.replace(" ", "").lower()
    statement.write_text(
        "date,amount,currency,name,account,title,reference\n"
        f"2026-12-01,150.00,PLN,Ada Lovelace,PL27114020040000300201355387,{written},B-9\n",
        encoding="utf-8",
    )
    _db.session.commit()
    result = app.test_cli_runner().invoke(
        args=["bank", "import", str(statement), "--format", "csv", "--preset", "generic"]
    )
    assert result.exit_code == 0, result.output
    assert "pledges paid 1" in result.output

    paid = _db.session.get(Gift, gift.id, populate_existing=True)
    assert paid.status is GiftStatus.SUCCEEDED and paid.receipt_number
    assert paid.paid_at is not None and paid.paid_at.date().isoformat() == "2026-12-01"
    supporter = _db.session.get(Supporter, paid.supporter_id, populate_existing=True)
    assert (supporter.gift_count, supporter.lifetime_total_minor) == (1, 15000)
    receipts = list(_db.session.scalars(select(OutboxEmail).filter_by(kind="receipt")))
    assert len(receipts) == 1 and "bank transfer" in receipts[0].body_text.lower()
    page = client.get(location).get_data(as_text=True)
    assert "Your transfer has arrived" in page and paid.receipt_number in page


def test_back_from_the_payment_page_the_form_shows_what_this_browser_typed_not_the_stored_name(
    client: Any, campaign: Any, app: Flask
) -> None:
    victim = factories.supporter(email="victim@example.org", name="Real Name Of Victim")
    _db.session.commit()
    response = client.post("/donate/", data=valid_form(email="victim@example.org", name="Someone Else"))
    session_id = response.headers["Location"].rsplit("/", 1)[1]
    page = client.get(client.get(f"/donate/cancelled?session_id={session_id}").headers["Location"])
    text = page.get_data(as_text=True)
    assert 'value="Someone Else"' in text and victim.name not in text
