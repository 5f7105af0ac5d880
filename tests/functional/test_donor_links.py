"""The links in a donor's e-mails: a receipt opens the donor's own page, signed in.

Signed, not stored; valid LINK_DAYS; as often as opened; only for the address it was
sent to; never off the donor's area; one that ran out e-mails a fresh sign-in link.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select

from supporters.donors import links
from supporters.extensions import db as _db
from supporters.mail.receipts import queue_receipt
from supporters.models import OutboxEmail, Supporter, utcnow
from tests import factories

LINK = re.compile(r"https?://\S+?(/my/open/[A-Za-z0-9_.\-]+)")


def receipt_link(supporter: Supporter) -> str:
    gift = factories.paid_gift(supporter, receipt_number="2026-000777")
    queue_receipt(gift)
    _db.session.commit()
    email = _db.session.scalars(select(OutboxEmail).filter_by(to_address=supporter.email, kind="receipt")).one()
    found = LINK.search(email.body_text)
    assert found, email.body_text
    assert found.group(1) in (email.body_html or "")
    return found.group(1)


def test_the_receipts_link_opens_the_donors_page_after_a_button_as_often_as_needed(client: Any, db: Any) -> None:
    ada = factories.supporter(email="ada@example.org", name="Ada Lovelace")
    path = receipt_link(ada)

    opened = client.get(path)  # a mail scanner's visit signs nobody in
    assert opened.status_code == 200 and "<button" in opened.get_data(as_text=True)
    assert opened.headers["Cache-Control"] == "no-store" and opened.headers["Referrer-Policy"] == "no-referrer"
    assert client.get("/my/gifts").status_code == 302

    signed = client.post(path)
    assert signed.status_code == 303 and urlsplit(signed.headers["Location"]).path == "/my/gifts"
    assert "2026-000777" in client.get("/my/gifts").get_data(as_text=True)
    # Signed in already: the link goes straight to its page.
    assert client.get(path).status_code == 303

    client.post("/my/sign-out")
    assert client.post(path).status_code == 303  # not single-use: a receipt is read again


def test_a_link_speaks_only_for_the_address_it_was_sent_to(client: Any, db: Any) -> None:
    ada = factories.supporter(email="ada@example.org", name="Ada Lovelace")
    path = receipt_link(ada)
    ada.email, ada.email_normalised = "ada@new.example.org", "ada@new.example.org"
    db.session.commit()

    for response in (client.get(path), client.post(path)):
        assert response.status_code == 404 and "not valid" in response.get_data(as_text=True)
    assert client.get("/my/gifts").status_code == 302


def test_an_erased_supporters_link_opens_nothing(client: Any, db: Any) -> None:
    ada = factories.supporter(email="ada@example.org", name="Ada Lovelace")
    path = receipt_link(ada)
    ada.anonymised_at = utcnow()
    db.session.commit()
    assert client.post(path).status_code == 404
    assert client.post(path + "/new").status_code == 404


def test_tampered_and_foreign_tokens_are_refused(app: Any, client: Any, db: Any) -> None:
    ada = factories.supporter(email="ada@example.org", name="Ada Lovelace")
    db.session.commit()
    path = receipt_link(ada)
    token = path.rsplit("/", 1)[1]
    assert client.post(f"/my/open/{token[:-2]}xx").status_code == 404
    other_key = URLSafeTimedSerializer("another secret", salt="supporters.donor-link")
    forged = other_key.dumps({"s": ada.id, "t": "/my/gifts", "a": "0" * 16})
    assert client.post(f"/my/open/{forged}").status_code == 404
    assert client.get("/my/open/" + "a" * 3000).status_code in (404, 414)


@pytest.mark.parametrize("target", ["//evil.example/my/", "https://evil.example/", "/dashboard/", "/my/../x"])
def test_a_link_never_leads_off_the_donors_area(app: Any, client: Any, db: Any, target: str) -> None:
    ada = factories.supporter(email="ada@example.org", name="Ada Lovelace")
    db.session.commit()
    with pytest.raises(ValueError):
        links.make_token(ada, target)
    # Even signed with our key, a target off the area is refused when read.
    with app.test_request_context():
        signed = links._serializer().dumps({"s": ada.id, "t": target, "a": links._address_digest(ada)})
    response = client.post(f"/my/open/{signed}")
    assert response.status_code == 404 and "Location" not in response.headers


def test_a_link_that_ran_out_offers_a_fresh_sign_in_link_by_e_mail(
    app: Any, client: Any, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = factories.supporter(email="ada@example.org", name="Ada Lovelace")
    db.session.commit()
    written = time.time() - (links.LINK_DAYS * 86400 + 60)
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(written))
    with app.test_request_context():
        token = links.make_token(ada, "/my/gifts")
    monkeypatch.undo()

    for response in (client.get(f"/my/open/{token}"), client.post(f"/my/open/{token}")):
        assert response.status_code == 410 and f"{links.LINK_DAYS} days" in response.get_data(as_text=True)
    assert client.get("/my/gifts").status_code == 302

    renewed = client.post(f"/my/open/{token}/new")
    assert renewed.status_code == 200 and "new sign-in link is on its way" in renewed.get_data(as_text=True)
    sent = db.session.scalars(select(OutboxEmail).filter_by(to_address="ada@example.org", kind="donor_sign_in")).all()
    assert len(sent) == 1 and "/my/sign-in/" in sent[0].body_text


def test_every_email_links_to_the_donors_page_and_the_sign_in_one_plainly(client: Any, db: Any) -> None:
    factories.supporter(email="ada@example.org", name="Ada Lovelace")
    db.session.commit()
    client.post("/my/", data={"email": "ada@example.org"})
    email = db.session.scalars(select(OutboxEmail).filter_by(kind="donor_sign_in")).one()
    assert re.search(r"https?://\S+/my/(\?lang=\w+)?\s", email.body_text), email.body_text
    assert "/my/open/" not in email.body_text
