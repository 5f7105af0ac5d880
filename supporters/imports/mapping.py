"""Which column of a source's file holds which of our fields: guessed from the headers
(Polish and English), corrected by staff, saved under the source's name and offered
again for its next file. Saving is audited; functions flush, the caller commits."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from supporters.extensions import db
from supporters.lib import audit
from supporters.lib.errors import Refused
from supporters.models import ImportMapping, sort_key

#: our supporter fields, in the order the mapping page shows them
SUPPORTER_FIELDS: dict[str, Any] = {
    "source_id": _l("Id in the source"),
    "name": _l("Name (whole)"),
    "first_name": _l("First name"),
    "last_name": _l("Last name"),
    "email": _l("E-mail"),
    "country": _l("Country"),
    "language": _l("Language"),
    "address_line1": _l("Address line 1"),
    "address_line2": _l("Address line 2"),
    "postal_code": _l("Postal code"),
    "city": _l("City"),
    "tags": _l("Tags"),
    "newsletter": _l("Newsletter consent"),
    "consent_date": _l("Consent date"),
    "consent_source": _l("Consent source"),
}
#: our gift fields
GIFT_FIELDS: dict[str, Any] = {
    "source_id": _l("Gift id in the source"),
    "supporter_key": _l("Supporter (id in the source, or e-mail)"),
    "amount": _l("Amount"),
    "currency": _l("Currency"),
    "date": _l("Date received"),
    "method": _l("Method"),
    "receipt_number": _l("Receipt number"),
    "campaign": _l("Campaign"),
    "comment": _l("Comment"),
}
#: how a gift names its supporter
GIFTS_BY: dict[str, Any] = {
    "source_id": _l("by the supporters file's id"),
    "email": _l("by e-mail"),
}

#: header names (compared without case, accents, spaces or punctuation) for each field
_SUPPORTER_NAMES = {
    "source_id": ["id", "supporter id", "donor id", "contact id", "external id", "id darczyncy", "id kontaktu", "nr"],
    "name": ["name", "full name", "donor", "supporter", "imie i nazwisko", "nazwa", "darczynca", "imie nazwisko"],
    "first_name": ["first name", "given name", "firstname", "forename", "imie"],
    "last_name": ["last name", "surname", "family name", "lastname", "nazwisko"],
    "email": ["email", "e-mail", "e-mail address", "email address", "mail", "adres e-mail", "adres email"],
    "country": ["country", "country code", "kraj", "panstwo"],
    "language": ["language", "lang", "locale", "jezyk"],
    "address_line1": ["address", "address 1", "address line 1", "street", "adres", "ulica", "adres 1", "ulica i numer"],
    "address_line2": ["address 2", "address line 2", "adres 2", "adres cd"],
    "postal_code": ["postal code", "postcode", "zip", "zip code", "kod pocztowy", "kod"],
    "city": ["city", "town", "miasto", "miejscowosc", "poczta"],
    "tags": ["tags", "tag", "groups", "tagi", "etykiety", "grupy"],
    "newsletter": [
        "newsletter",
        "newsletter consent",
        "consent",
        "opt in",
        "zgoda",
        "zgoda newsletter",
        "zgoda na newsletter",
    ],
    "consent_date": ["consent date", "newsletter date", "opt in date", "data zgody", "data zgody newsletter"],
    "consent_source": ["consent source", "newsletter source", "opt in source", "zrodlo zgody"],
}
_GIFT_NAMES = {
    "source_id": [
        "gift id", "donation id", "transaction id", "payment id", "id", "id wplaty", "id darowizny", "nr wplaty",
    ],
    "supporter_key": [
        "supporter id", "donor id", "contact id", "id darczyncy", "id kontaktu", "email", "e-mail", "adres e-mail",
    ],
    "amount": ["amount", "value", "sum", "kwota", "wartosc", "suma", "kwota darowizny"],
    "currency": ["currency", "waluta"],
    "date": ["date", "gift date", "payment date", "received", "received on", "data", "data wplaty", "data darowizny"],
    "method": ["method", "payment method", "type", "metoda", "sposob platnosci", "forma platnosci", "forma wplaty"],
    "receipt_number": [
        "receipt", "receipt number", "receipt no", "nr potwierdzenia", "numer potwierdzenia", "numer pokwitowania",
    ],
    "campaign": ["campaign", "appeal", "fund", "kampania", "cel", "zbiorka"],
    "comment": ["comment", "note", "notes", "komentarz", "uwagi", "notatka", "opis"],
}  # fmt: skip


def _key(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", sort_key(header))


def guess(headers: list[str], names: Mapping[str, list[str]]) -> dict[str, str]:
    """{our field: header} for the headers that name one of our fields; each header
    serves one field, the first that names it."""
    by_key: dict[str, str] = {}
    for header in headers:
        by_key.setdefault(_key(header), header)
    found: dict[str, str] = {}
    taken: set[str] = set()
    for field, spellings in names.items():
        for spelling in spellings:
            seen = by_key.get(_key(spelling))
            if seen is not None and seen not in taken:
                found[field] = seen
                taken.add(seen)
                break
    return found


def guess_supporters(headers: list[str]) -> dict[str, str]:
    """Our supporter fields found among a supporters file's headers."""
    return guess(headers, _SUPPORTER_NAMES)


def guess_gifts(headers: list[str]) -> dict[str, str]:
    """Our gift fields found among a gifts file's headers."""
    return guess(headers, _GIFT_NAMES)


def mapping_named(name: str) -> ImportMapping | None:
    """The mapping saved under this source name, if any (names compare as typed, trimmed)."""
    return db.session.scalar(sa.select(ImportMapping).filter_by(name=(name or "").strip()))


def all_mappings() -> list[ImportMapping]:
    """Every saved mapping, by name."""
    return list(db.session.scalars(sa.select(ImportMapping).order_by(ImportMapping.name)))


def check_columns(
    supporter_columns: Mapping[str, str],
    gift_columns: Mapping[str, str],
    gifts_by: str,
    *,
    supporter_headers: list[str] | None = None,
    gift_headers: list[str] | None = None,
) -> None:
    """Refuse a mapping that cannot import anything: no e-mail, no name, gifts without
    an amount, a date or a supporter, or a column the file does not have."""
    if not supporter_columns.get("email"):
        raise Refused(_l("Choose the column with the e-mail address."), field="s_email")
    if not supporter_columns.get("name") and not (
        supporter_columns.get("first_name") or supporter_columns.get("last_name")
    ):
        raise Refused(_l("Choose the column with the name, or those with the first and last names."), field="s_name")
    if gifts_by not in GIFTS_BY:
        raise Refused(_l("Choose how a gift names its supporter."), field="gifts_by")
    if gifts_by == "source_id" and gift_columns and not supporter_columns.get("source_id"):
        raise Refused(
            _l("Gifts name their supporter by the supporters file's id: choose that file's id column."),
            field="s_source_id",
        )
    if gift_columns:
        for field in ("supporter_key", "amount", "date"):
            if not gift_columns.get(field):
                raise Refused(
                    _l("Choose the gifts file’s column for: %(name)s"), field=f"g_{field}", name=GIFT_FIELDS[field]
                )
    for columns, headers, prefix, known in (
        (supporter_columns, supporter_headers, "s_", SUPPORTER_FIELDS),
        (gift_columns, gift_headers, "g_", GIFT_FIELDS),
    ):
        unknown = set(columns) - set(known)
        if unknown:
            raise TypeError(f"not a field: {', '.join(sorted(unknown))}")
        if headers is None:
            continue
        for field, header in columns.items():
            if header and header not in headers:
                raise Refused(_l("The file has no column “%(header)s”."), field=prefix + field, header=header)


def save_mapping(
    name: str,
    *,
    supporter_columns: Mapping[str, str],
    gift_columns: Mapping[str, str],
    gifts_by: str,
    actor: Any,
    supporter_headers: list[str] | None = None,
    gift_headers: list[str] | None = None,
) -> ImportMapping:
    """Save (or replace) the mapping of the source `name`; audited with what changed."""
    name = " ".join((name or "").split())
    if not name:
        raise Refused(_l("Name the source, so that its next file is read the same way."), field="name")
    if len(name) > 100:
        raise Refused(_l("A source's name has at most %(max)s characters."), field="name", max=100)
    supporter_columns = {field: header for field, header in supporter_columns.items() if header}
    gift_columns = {field: header for field, header in gift_columns.items() if header}
    check_columns(
        supporter_columns,
        gift_columns,
        gifts_by,
        supporter_headers=supporter_headers,
        gift_headers=gift_headers,
    )
    row = mapping_named(name)
    who = actor.email if actor is not None else "cli"
    old = (
        {"supporter_columns": row.supporter_columns, "gift_columns": row.gift_columns, "gifts_by": row.gifts_by}
        if row
        else None
    )
    if row is None:
        row = ImportMapping(name=name, updated_by=who)
        db.session.add(row)
    row.supporter_columns = dict(supporter_columns)
    row.gift_columns = dict(gift_columns)
    row.gifts_by = gifts_by
    row.updated_by = who
    db.session.flush()
    new = {"supporter_columns": row.supporter_columns, "gift_columns": row.gift_columns, "gifts_by": row.gifts_by}
    if new != old:
        audit.record(
            actor,
            "import.mapping_saved",
            "import_mapping",
            row.id,
            actor_name=None if actor else "cli",
            name=name,
            changes={"old": old, "new": new},
        )
    return row
