"""The organisation's own details as people read them: on every page's footer, every
receipt and e-mail, the privacy page and the bank-transfer instructions.

The settings (supporters/config.py, `_organisation`) keep each identifier checked and
compact; this module only shows them: the IBAN in groups of four, the NIP with dashes.
`organisation()` is in every template's context as `organisation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from schwifty import IBAN
from stdnum.pl import nip


@dataclass(frozen=True)
class Organisation:
    """Who the donor gives to, ready to show; an empty string is a detail not set."""

    name: str
    #: the postal address, one line an item
    address: tuple[str, ...]
    email: str
    phone: str
    krs: str
    #: formatted: "526-025-02-74"
    nip: str
    regon: str
    #: formatted: "PL61 1090 1014 0000 0712 1981 2874"
    iban: str
    bic: str
    #: who answers questions about personal data: an e-mail address, or words
    privacy_contact: str

    @property
    def privacy_contact_is_email(self) -> bool:
        return "@" in self.privacy_contact and not any(c.isspace() for c in self.privacy_contact)

    @property
    def registry(self) -> tuple[tuple[str, str], ...]:
        """The register numbers that are set, as (label, number): KRS, NIP, REGON."""
        numbers = (("KRS", self.krs), ("NIP", self.nip), ("REGON", self.regon))
        return tuple((label, number) for label, number in numbers if number)


def format_iban(compact: str) -> str:
    """An IBAN in groups of four, as banks print it ("PL61 1090 1014 …"); "" stays ""."""
    return IBAN(compact).formatted if compact else ""


def format_nip(compact: str) -> str:
    """A Polish NIP with its dashes ("526-025-02-74"); "" stays ""."""
    return str(nip.format(compact)) if compact else ""


def organisation(config: Mapping[str, Any] | None = None) -> Organisation:
    """The organisation's details from the settings (default: the current app's)."""
    settings = current_app.config if config is None else config
    return Organisation(
        name=settings.get("SUPPORTERS_ORG_NAME", ""),
        address=tuple(settings.get("SUPPORTERS_ORG_ADDRESS") or ()),
        email=settings.get("SUPPORTERS_ORG_EMAIL", ""),
        phone=settings.get("SUPPORTERS_ORG_PHONE", ""),
        krs=settings.get("SUPPORTERS_ORG_KRS", ""),
        nip=format_nip(settings.get("SUPPORTERS_ORG_NIP", "")),
        regon=settings.get("SUPPORTERS_ORG_REGON", ""),
        iban=format_iban(settings.get("SUPPORTERS_ORG_IBAN", "")),
        bic=settings.get("SUPPORTERS_ORG_BIC", ""),
        privacy_contact=settings.get("SUPPORTERS_PRIVACY_CONTACT", "") or settings.get("SUPPORTERS_ORG_EMAIL", ""),
    )


def init_app(app: Flask) -> None:
    """Put `organisation` in every template's context (pages and e-mails)."""

    @app.context_processor
    def organisation_context() -> dict[str, object]:
        return {"organisation": organisation()}
