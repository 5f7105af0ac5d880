"""What a donor who pledged a bank transfer is told: to whom, which account, how much,
with which title, and a QR code their banking app reads. One function for the page
after the form and the e-mail, so the two never disagree."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from supporters.extensions import db
from supporters.lib import bank_qr
from supporters.lib.money import format_amount, plain
from supporters.lib.web import public_url
from supporters.models import Gift, GiftMethod

_SALT = "bank-transfer-pledge"


def _signer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def page_token(gift: Gift) -> str:
    """The unguessable part of the address of a pledge's instructions page."""
    return str(_signer().dumps(gift.id))


def page_url(gift: Gift) -> str:
    """The absolute address of the pledge's instructions (for the e-mail)."""
    return public_url("donate.transfer", token=page_token(gift))


def pledge_for_token(token: str) -> Gift | None:
    """The bank-transfer gift a page token names; None for a token we did not sign."""
    try:
        gift_id = _signer().loads(token)
    except BadSignature:
        return None
    if not isinstance(gift_id, int) or isinstance(gift_id, bool) or not 0 < gift_id < 2**31:
        return None
    gift = db.session.get(Gift, gift_id)
    return gift if gift is not None and gift.method is GiftMethod.BANK_TRANSFER else None


@dataclass(frozen=True)
class TransferDetails:
    recipient: str
    address: list[str]
    #: the account in groups of four ("PL61 1090 1014 …"), and compact for copying
    iban: str
    iban_compact: str
    bic: str
    amount: str
    #: the amount as a banking app's field wants it ("102.54")
    amount_plain: str
    currency: str
    title: str
    #: the QR code as an SVG data URI, and which standard it follows; None for a currency without one
    qr: str | None
    qr_kind: str | None


def grouped(iban: str) -> str:
    """An IBAN in groups of four, as printed on paper."""
    compact = iban.replace(" ", "")
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def details(gift: Gift, locale: str, *, with_qr: bool = False) -> TransferDetails:
    """The transfer instructions of a bank-transfer pledge."""
    config = current_app.config
    iban = config["SUPPORTERS_ORG_IBAN"]
    recipient = config["SUPPORTERS_ORG_NAME"]
    title = gift.transfer_reference or ""
    qr = kind = None
    if with_qr and iban:
        if gift.currency == "PLN" and iban.startswith("PL"):
            payload = bank_qr.polish_transfer(
                iban=iban,
                amount_minor=gift.amount_minor,
                recipient=recipient,
                title=title,
                nip=config.get("SUPPORTERS_ORG_NIP") or None,
            )
            qr, kind = bank_qr.svg_data_uri(payload), "zbp"
        elif gift.currency == "EUR":
            code = bank_qr.epc_transfer(
                iban=iban,
                bic=config.get("SUPPORTERS_ORG_BIC"),
                amount_minor=gift.amount_minor,
                recipient=recipient,
                title=title,
            )
            qr, kind = bank_qr.svg_data_uri(code), "epc"
    return TransferDetails(
        recipient=recipient,
        address=list(config.get("SUPPORTERS_ORG_ADDRESS") or []),
        iban=grouped(iban),
        iban_compact=iban,
        bic=config.get("SUPPORTERS_ORG_BIC") or "",
        amount=format_amount(gift.amount_minor, gift.currency, locale),
        amount_plain=plain(gift.amount_minor, gift.currency),
        currency=gift.currency,
        title=title,
        qr=qr,
        qr_kind=kind,
    )
