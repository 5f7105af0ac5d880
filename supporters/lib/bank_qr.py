"""QR codes a banking app reads to fill in a transfer.

- In złoty: the Polish banks' two-dimensional code (Związek Banków Polskich,
  "Rekomendacja dotycząca standardu 2D", 2013): nine fields separated by "|":
  the recipient's NIP, the country "PL", the 26-digit account number (NRB), the
  amount in grosze (at least six digits), the recipient's name (20 characters), the
  title (32 characters), and three reserved fields left empty. Read by the apps of
  the Polish banks.
- In euro: the European Payments Council's "EPC QR" (EPC069-12), made by segno.

Pure: payloads and SVG data URIs, no database, no request.
"""

from __future__ import annotations

import re
from decimal import Decimal

import segno
from segno import helpers

#: what the Polish format's fields may hold (letters with Polish diacritics, digits, a few signs)
_ALLOWED = re.compile(r"[^0-9A-Za-zĄĆĘŁŃÓŚŹŻąćęłńóśźż ,./\\@#&*_-]")


def _field(value: str | None, length: int) -> str:
    return _ALLOWED.sub("", (value or "").replace("|", " ")).strip()[:length]


def polish_transfer(*, iban: str, amount_minor: int, recipient: str, title: str, nip: str | None = None) -> str:
    """The payload of the Polish banks' transfer code for a PLN transfer to a Polish IBAN."""
    compact = iban.replace(" ", "").upper()
    if not (compact.startswith("PL") and len(compact) == 28 and compact[2:].isdigit()):
        raise ValueError("the Polish transfer code needs a Polish account (PL and 26 digits)")
    if amount_minor < 0 or amount_minor > 999_999_999:
        raise ValueError("the amount does not fit the Polish transfer code")
    fields = [
        _field(nip, 10),
        "PL",
        compact[2:],
        f"{amount_minor:06d}",
        _field(recipient, 20),
        _field(title, 32),
        "",
        "",
        "",
    ]
    return "|".join(fields)


def epc_transfer(*, iban: str, bic: str | None, amount_minor: int, recipient: str, title: str) -> segno.QRCode:
    """The EPC QR code of a SEPA credit transfer in euro."""
    return helpers.make_epc_qr(
        name=recipient[:70],
        iban=iban.replace(" ", ""),
        amount=Decimal(amount_minor) / 100,
        text=title[:140],
        bic=bic or None,
    )


def svg_data_uri(code: segno.QRCode | str) -> str:
    """The code as an SVG data URI (img-src allows data:), dark on light, with its quiet zone."""
    qr = segno.make(code, error="m", micro=False) if isinstance(code, str) else code
    return str(qr.svg_data_uri(scale=5, border=4, dark="#111", light="#fff"))
