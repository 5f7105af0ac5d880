"""What each row of an import will do, read in chunks: new supporter, matches supporter N
by e-mail, already imported, or an error and why; and for gifts, which supporter they
are of. Nothing is written here; `preview.py` counts and pages it, `committing.py`
writes what it says.

The checks are the app's: an e-mail is found again by `normalise_email` (as
`people.edits.find_or_create_supporter` finds it), an amount is read by
`lib.money.parse_amount` and held to the offline-gift limits
(`giving.offline_gifts.check_amount_and_date`: more than zero, at most the largest
offline gift, not in the future, not before the organisation was founded), tags are
tidied by `lib.tags`.

The rows are checked a chunk at a time (one query per chunk finds the supporters, the
rows imported before and the receipt numbers taken; `lib.sql.one_of`, as each
database plans a long list well), so memory holds one chunk whatever the file's size.
What the pass must remember of the rows before (to find duplicates within the file,
and the supporter of each gift) it keeps in a temporary table of its own connection
(`Seen`), looked up a chunk at a time: nothing of it is written to the app's tables,
and nothing is left there after the pass (PostgreSQL also empties it at the
transaction's end).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from functools import lru_cache
from itertools import islice
from typing import Any

import sqlalchemy as sa
from babel import Locale
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_babel import gettext as _

from supporters.extensions import db
from supporters.giving.currency import base_currency
from supporters.giving.offline_gifts import check_amount_and_date
from supporters.imports.mapping import SUPPORTER_FIELDS
from supporters.imports.reading import Table
from supporters.lib.errors import Refused
from supporters.lib.forms import NOT_COUNTRIES, has_control_characters
from supporters.lib.money import MoneyError, minor_unit_exponent, parse_amount
from supporters.lib.sql import one_of
from supporters.lib.tags import too_long, unique_tags
from supporters.models import (
    Campaign,
    Gift,
    GiftMethod,
    ImportedRow,
    ImportMapping,
    Supporter,
    normalise_email,
    sort_key,
)
from supporters.models.bulk import insert_rows

#: rows checked (and written) together
CHUNK = 1000
#: the supporter an address leads to: its holder, or the one a merged-away holder was merged into
SURVIVOR_ID = sa.func.coalesce(Supporter.merged_into_id, Supporter.id)

#: outcomes of a row
NEW, MATCH, KNOWN, ERROR = "new", "match", "known", "error"

#: the longest value of each supporter field (the columns' sizes)
_LENGTHS = {"name": 200, "address_line1": 200, "address_line2": 200, "postal_code": 20, "city": 100}
_YES = {"1", "yes", "y", "true", "t", "x", "tak", "✓", "on", "prawda"}
_NO = {"", "0", "no", "n", "false", "f", "nie", "off", "falsz", "-"}
_METHODS = {
    GiftMethod.BANK_TRANSFER: {"", "bank transfer", "bank_transfer", "transfer", "przelew", "przelew bankowy", "bank"},
    GiftMethod.CASH: {"cash", "gotowka", "wplata gotowkowa"},
    GiftMethod.CHEQUE: {"cheque", "check", "czek"},
}
_DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d-%m-%Y", "%d/%m/%Y", "%Y/%m/%d", "%Y.%m.%d")
#: receipt numbers as this app gives them: the year and its sequence number (six digits,
#: more past 999,999)
OUR_RECEIPT = re.compile(r"^(\d{4})-(\d{6,9})$")


@dataclass
class Row:
    """One row and what it will do."""

    kind: str
    number: int
    outcome: str
    #: what the row is, for the page: the name and e-mail, or the amount and date
    label: str
    messages: list[str] = field(default_factory=list)
    #: the cleaned values to write
    values: dict[str, Any] = field(default_factory=dict)
    identity_key: str = ""
    row_hash: str = ""
    #: the supporter it matches (MATCH), was imported as (KNOWN), or was created as (NEW, once
    #: the import wrote it); for a gift, its supporter
    supporter_id: int | None = None
    #: a gift's supporter when that is a new supporter of the same import (its key)
    supporter_key: str | None = None


@dataclass
class Source:
    """What an import reads: the supporters file, perhaps a gifts file, and the mapping."""

    mapping: ImportMapping
    supporters: Table
    gifts: Table | None = None


#: what a pass over an import has seen so far: (kind, key) -> the row that had it first and,
#: for a supporter's key, what it gives its gifts (see `_supporter_ref`). A temporary table
#: of the connection, so it is in no migration and in no other connection's view.
_SEEN = sa.Table(
    "import_seen",
    sa.MetaData(),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("row_number", sa.Integer, nullable=False),
    sa.Column("supporter_id", sa.Integer),
)


class Seen:
    """The keys a pass over an import has seen, in the `import_seen` temporary table."""

    def __init__(self) -> None:
        connection = db.session.connection()
        at_end = collate = ""
        if connection.dialect.name == "postgresql":
            # keys compared byte by byte (SQLite's way already): under the server's
            # locale each of a chunk's thousand look-ups costs two and a half times more
            at_end, collate = " ON COMMIT DELETE ROWS", ' COLLATE "C"'
            _room_for_temporary_tables()
        connection.execute(
            sa.text(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS import_seen (kind VARCHAR(16){collate} NOT NULL, "
                f"key TEXT{collate} NOT NULL, row_number INTEGER NOT NULL, supporter_id INTEGER, "
                "PRIMARY KEY (kind, key))" + at_end
            )
        )
        self.clear()

    def clear(self) -> None:
        """Forget everything seen (the pass is over, or begins)."""
        db.session.connection().execute(sa.delete(_SEEN))

    def first(self, kind: str, entries: list[tuple[str, int, int | None]]) -> dict[str, int]:
        """For each key of this chunk's (key, row number, supporter) entries, the row that
        had it first: one before this chunk, or the first in it. The new keys are kept."""
        if not entries:
            return {}
        connection = db.session.connection()
        keys = sorted({key for key, _number, _supporter in entries})
        first: dict[str, int] = dict(
            connection.execute(
                sa.select(_SEEN.c.key, _SEEN.c.row_number).where(_SEEN.c.kind == kind, one_of(_SEEN.c.key, keys))
            ).all()
        )
        new: list[dict[str, Any]] = []
        for key, number, supporter in entries:
            if key not in first:
                first[key] = number
                new.append({"kind": kind, "key": key, "row_number": number, "supporter_id": supporter})
        # one COPY on PostgreSQL, not a statement a key
        insert_rows(connection, _SEEN, new)
        return first

    def supporters(self, keys: set[str]) -> dict[str, int]:
        """What the supporter rows seen with these keys give their gifts (`_supporter_ref`)."""
        if not keys:
            return {}
        return dict(
            db.session.connection()
            .execute(
                sa.select(_SEEN.c.key, _SEEN.c.supporter_id).where(
                    _SEEN.c.kind == "supporter", one_of(_SEEN.c.key, sorted(keys))
                )
            )
            .all()
        )


#: the local buffers of a connection's temporary tables on PostgreSQL, while a pass uses
#: them: room for the keys of a file of 100,000 supporters and 300,000 gifts (about 150
#: MB). The server's default, 8 MB, holds a tenth of it, and every look-up of a key then
#: reads its pages back from the operating system: four times slower.
TEMP_BUFFERS = "256MB"


def _room_for_temporary_tables() -> None:
    """Let this connection's temporary tables use TEMP_BUFFERS. PostgreSQL takes it only
    before the connection first uses one (its buffers are then sized once for its life):
    a connection that used one before keeps what it had."""
    try:
        with db.session.begin_nested():
            db.session.execute(sa.text(f"SET LOCAL temp_buffers = '{TEMP_BUFFERS}'"))
    except sa.exc.DBAPIError:
        pass


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _identity(source_id: str, row_hash: str) -> str:
    return _hash(f"id:{source_id}") if source_id else _hash(f"row:{row_hash}")


def _chunks(rows: Iterator[tuple[int, dict[str, str]]]) -> Iterator[list[tuple[int, dict[str, str]]]]:
    while chunk := list(islice(rows, CHUNK)):
        yield chunk


def _mapped(values: dict[str, str], columns: dict[str, str]) -> dict[str, str]:
    return {field: values.get(header, "").strip() for field, header in columns.items()}


def parse_date(text: str) -> date | None:
    """A date as spreadsheets write it: 2024-03-05, 05.03.2024, 05/03/2024 (day first),
    with or without a time after it; None when it is none of these."""
    text = text.strip().split(" ")[0].split("T")[0]
    if len(text) == 10 and text[4] == "-":
        try:
            return date.fromisoformat(text)
        except ValueError:
            return None
    for pattern in _DATE_FORMATS[1:]:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


def consent_moment(day: date) -> datetime:
    """A consent known only by its day counts from noon UTC of that day (as an offline gift)."""
    return datetime.combine(day, time(12), UTC)


def _countries() -> dict[str, str]:
    names: dict[str, str] = {}
    for language in ("en", "pl"):
        for code, name in Locale.parse(language).territories.items():
            if len(code) == 2 and code.isalpha() and code not in NOT_COUNTRIES:
                names[code.lower()] = code
                names[sort_key(name)] = code
    return names


def _languages() -> dict[str, str]:
    found: dict[str, str] = {}
    for code in current_app.config["SUPPORTERS_LOCALES"]:
        locale = Locale.parse(code)
        for spelling in (
            code,
            locale.get_display_name("en"),
            locale.get_display_name(code),
            locale.get_display_name("pl"),
        ):
            if spelling:
                found[sort_key(spelling)] = code
        found[sort_key(f"{code}_{code.upper()}")] = code
        found[sort_key(f"{code}-{code.upper()}")] = code
    return found


@lru_cache(maxsize=1024)
def _method(text: str) -> GiftMethod | None:
    key = sort_key(text).replace("_", " ")
    for method, spellings in _METHODS.items():
        if key in spellings:
            return method
    return None


@lru_cache(maxsize=4096)
def _amount(text: str, currency: str) -> int:
    """`parse_amount`, once for each spelling: a file of gifts repeats its amounts (a
    refusal, MoneyError, is not kept and is raised again)."""
    return parse_amount(text, currency)


#: what a supporter row gives its gifts besides a supporter's id (`_supporter_ref`)
CREATED, HAS_ERROR, ERASED = -1, 0, -2


def _supporter_ref(row: Row) -> int:
    """What a supporter row gives its gifts: the supporter's id (of a new supporter too,
    once written), CREATED for a supporter this import would create (the preview),
    HAS_ERROR for none (the row has an error), ERASED for a row
    imported before whose supporter's data was erased since."""
    if row.outcome == NEW:
        return row.supporter_id or CREATED
    if row.outcome == ERROR:
        return HAS_ERROR
    return row.supporter_id or ERASED


class _Checker:
    """The state one pass over an import keeps: the lookups made once, the keys seen."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.mapping = source.mapping
        self.countries = _countries()
        self.languages = _languages()
        self.default_language = str(current_app.config["BABEL_DEFAULT_LOCALE"])
        self.base = base_currency()
        #: the e-mails, source ids, supporter keys, gift identities and receipt numbers seen
        self.seen = Seen()
        connection = db.session.connection()
        if connection.dialect.name == "postgresql":
            # psycopg prepares a statement run five times, and PostgreSQL then keeps one
            # generic plan for it, made while this transaction's imported_row and gift rows
            # were few: a scan of the table, each row tested against the chunk's 1,000 keys,
            # for every chunk after (seconds a chunk at 300,000 gifts). Each chunk planned
            # afresh uses the indexes. Until the transaction ends.
            connection.execute(sa.text("SET LOCAL plan_cache_mode = force_custom_plan"))
        #: whether this source has imported anything before this pass: if not, no row is
        #: "imported before" (a row twice in the file is found by `seen`), and the
        #: look-ups of the rows imported before are skipped (a tenth of a first import's time)
        self.imported_before = self.mapping.id is not None and bool(
            db.session.scalar(sa.select(sa.exists().where(ImportedRow.mapping_id == self.mapping.id)))
        )
        campaigns = db.session.execute(sa.select(Campaign.id, Campaign.slug, Campaign.name)).all()
        self.campaigns = {sort_key(slug): id_ for id_, slug, _name in campaigns}
        for id_, _slug, name in campaigns:
            self.campaigns.setdefault(sort_key(name), id_)

    # --- supporters ---------------------------------------------------------------------

    def supporter_key(self, values: dict[str, str]) -> str:
        if self.mapping.gifts_by == "email":
            return normalise_email(values.get("email", ""))
        return values.get("source_id", "")

    def supporter_rows(self) -> Iterator[list[Row]]:
        columns = self.mapping.supporter_columns
        for chunk in _chunks(self.source.supporters.rows()):
            rows = [self._supporter_row(number, _mapped(values, columns)) for number, values in chunk]
            self._same_supporters(rows)
            self._known(rows, "supporter")
            emails = {row.values["email_normalised"] for row in rows if row.outcome == NEW}
            found = (
                dict(
                    db.session.execute(
                        sa.select(Supporter.email_normalised, SURVIVOR_ID).where(
                            one_of(Supporter.email_normalised, sorted(emails))
                        )
                    ).all()
                )
                if emails
                else {}
            )
            for row in rows:
                if row.outcome == NEW and row.values["email_normalised"] in found:
                    row.outcome = MATCH
                    row.supporter_id = found[row.values["email_normalised"]]
            yield rows
            # after the chunk was written, if it was: its new supporters then have their ids
            self.seen.first(
                "supporter", [(row.values["key"], row.number, _supporter_ref(row)) for row in rows if row.values["key"]]
            )

    def _same_supporters(self, rows: list[Row]) -> None:
        """An e-mail (of a row with no other error) or a source id a row before had: an error."""
        emails = self.seen.first(
            "email", [(row.values["email_normalised"], row.number, None) for row in rows if row.values.get("unique")]
        )
        ids = self.seen.first(
            "id", [(row.values["source_id"], row.number, None) for row in rows if row.values["source_id"]]
        )
        for row in rows:
            errors: list[str] = []
            email, source_id = row.values["email_normalised"], row.values.pop("source_id")
            if row.values.pop("unique") and emails[email] != row.number:
                errors.append(_("The same e-mail address as row %(row)d.", row=emails[email]))
            if source_id and ids[source_id] != row.number:
                errors.append(_("The same id as row %(row)d.", row=ids[source_id]))
            # after the row's other errors, before its notes
            at = row.values.pop("errors")
            if errors:
                row.messages[at:at] = errors
                row.outcome = ERROR

    def _supporter_row(self, number: int, raw: dict[str, str]) -> Row:
        errors: list[str] = []
        notes: list[str] = []
        name = raw.get("name") or " ".join(part for part in (raw.get("first_name"), raw.get("last_name")) if part)
        name = " ".join(name.split())
        email = raw.get("email", "")
        row_hash = _hash(json.dumps(raw, sort_keys=True))
        source_id = raw.get("source_id", "")
        row = Row("supporter", number, NEW, f"{name} <{email}>", row_hash=row_hash)
        row.identity_key = _identity(source_id, row_hash)
        values: dict[str, Any] = {"name": name}
        if has_control_characters("".join(raw.values())):
            errors.append(_("It holds characters we cannot accept (control characters)."))
        if not email:
            errors.append(_("No e-mail address."))
        else:
            try:
                validate_email(email, check_deliverability=False)
            except EmailNotValidError:
                errors.append(_("The e-mail address “%(email)s” is not valid.", email=email))
            if len(email) > 254:
                errors.append(_("The e-mail address is too long."))
        email_key = normalise_email(email)
        values["email"], values["email_normalised"] = email, email_key
        if not name:
            errors.append(_("No name."))
        for key, longest in _LENGTHS.items():
            text = name if key == "name" else raw.get(key, "")
            if len(text) > longest:
                errors.append(
                    _("%(field)s is longer than %(max)d characters.", field=SUPPORTER_FIELDS[key], max=longest)
                )
            elif key != "name":
                values[key] = text or None
        country = raw.get("country", "")
        if country:
            code = self.countries.get(country.lower()) or self.countries.get(sort_key(country))
            if code is None:
                errors.append(_("Unknown country “%(country)s”: use a two-letter code such as PL.", country=country))
            values["country"] = code
        language = raw.get("language", "")
        values["language"] = self.languages.get(sort_key(language)) if language else self.default_language
        if values["language"] is None:
            errors.append(_("Unknown language “%(language)s”.", language=language))
        tags = unique_tags(re.split(r"[,;|]", raw.get("tags", "")))
        if too_long(tags):
            errors.append(_("A tag is longer than %(max)d characters.", max=50))
        values["tags"] = tags
        consent = sort_key(raw.get("newsletter", ""))
        if consent in _YES:
            day = parse_date(raw.get("consent_date", ""))
            source = " ".join(raw.get("consent_source", "").split())
            if day is None or not source:
                notes.append(_("Newsletter consent not imported: it needs its date and its source."))
            elif day > datetime.now(UTC).date():
                notes.append(_("Newsletter consent not imported: its date is in the future."))
            else:
                values["consent"] = (day.isoformat(), source[:80])
        elif consent not in _NO:
            notes.append(
                _("Newsletter consent not imported: “%(value)s” is neither yes nor no.", value=raw["newsletter"])
            )
        # the duplicates within the file are found a chunk at a time (_same_supporters)
        values["unique"] = bool(email and not errors)
        values["errors"] = len(errors)
        values["source_id"] = source_id
        values["key"] = self.supporter_key({"email": email, "source_id": source_id})
        row.values = values
        if errors:
            row.outcome = ERROR
        row.messages = errors + notes
        return row

    def _known(self, rows: list[Row], kind: str) -> None:
        """Rows imported from this source before: known, and unchanged or not."""
        keys = [row.identity_key for row in rows if row.outcome != ERROR]
        if not keys or not self.imported_before:
            return
        known = {
            key: (row_hash, supporter_id)
            for key, row_hash, supporter_id in db.session.execute(
                sa.select(ImportedRow.identity_key, ImportedRow.row_hash, ImportedRow.supporter_id).where(
                    ImportedRow.mapping_id == self.mapping.id,
                    ImportedRow.kind == kind,
                    one_of(ImportedRow.identity_key, keys),
                )
            )
        }
        for row in rows:
            if row.outcome != ERROR and row.identity_key in known:
                row_hash, supporter_id = known[row.identity_key]
                row.outcome = KNOWN
                row.supporter_id = supporter_id
                if kind == "supporter" and supporter_id is None:  # the erasure unlinked it
                    row.messages = [_("Imported before and erased since (a privacy request): not imported again.")]
                elif row_hash != row.row_hash:
                    row.messages = [_("Imported before; the file now says something else, which is not applied.")]
                else:
                    row.messages = []

    # --- gifts --------------------------------------------------------------------------

    def gift_rows(self) -> Iterator[list[Row]]:
        if self.source.gifts is None:
            return
        columns = self.mapping.gift_columns
        for chunk in _chunks(self.source.gifts.rows()):
            rows = [self._gift_row(number, _mapped(values, columns)) for number, values in chunk]
            self._same_gifts(rows)
            self._known(rows, "gift")
            self._find_supporters(rows)
            self._receipts_taken(rows)
            yield rows

    def _gift_row(self, number: int, raw: dict[str, str]) -> Row:
        errors: list[str] = []
        row_hash = _hash(json.dumps(raw, sort_keys=True))
        source_id = raw.get("source_id", "")
        row = Row("gift", number, NEW, f"{raw.get('amount', '')} {raw.get('currency', '')} · {raw.get('date', '')}")
        row.row_hash, row.identity_key = row_hash, _identity(source_id, row_hash)
        values: dict[str, Any] = {}
        if has_control_characters("".join(raw.values())):
            errors.append(_("It holds characters we cannot accept (control characters)."))
        key = raw.get("supporter_key", "")
        row.supporter_key = normalise_email(key) if self.mapping.gifts_by == "email" else key
        if not key:
            errors.append(_("No supporter named."))
        currency = (raw.get("currency") or self.base).upper()
        try:
            minor_unit_exponent(currency)
        except MoneyError:
            errors.append(_("Unknown currency “%(currency)s”.", currency=currency))
            currency = ""
        values["currency"] = currency
        day = parse_date(raw.get("date", ""))
        if day is None:
            errors.append(_("No date, or a date that cannot be read: write it as 2024-03-31 or 31.03.2024."))
        values["received_on"] = day
        amount = None
        if currency:
            try:
                amount = _amount(raw.get("amount", ""), currency)
            except MoneyError as exc:
                errors.append(
                    _(
                        "The amount “%(amount)s” cannot be read: %(reason)s",
                        amount=raw.get("amount", ""),
                        reason=_(exc.template, **exc.params),
                    )
                )
        values["amount_minor"] = amount
        if amount is not None and day is not None:
            try:
                check_amount_and_date(amount, currency, day, confirmed=True)
            except Refused as refused:
                errors.append(refused.message())
        method = _method(raw.get("method", ""))
        if method is None:
            errors.append(
                _("Unknown method “%(method)s”: bank transfer, cash or cheque.", method=raw.get("method", ""))
            )
        values["method"] = method
        receipt = raw.get("receipt_number", "")
        if len(receipt) > 32:
            errors.append(_("The receipt number is longer than %(max)d characters.", max=32))
        values["receipt_number"] = receipt or None
        campaign = raw.get("campaign", "")
        values["campaign_id"] = self.campaigns.get(sort_key(campaign)) if campaign else None
        if campaign and values["campaign_id"] is None:
            errors.append(_("No campaign is called “%(campaign)s”.", campaign=campaign))
        comment = raw.get("comment", "")
        if len(comment) > 500:
            errors.append(_("The comment is longer than %(max)d characters.", max=500))
        values["comment"] = comment or None
        values["reference"] = source_id[:200] or None
        values["source_id"] = source_id
        row.values = values
        if errors:
            row.outcome, row.messages = ERROR, errors
        return row

    def _same_gifts(self, rows: list[Row]) -> None:
        """A gift (by its identity) or a receipt number a row before had: an error."""
        gifts = self.seen.first("gift", [(row.identity_key, row.number, None) for row in rows])
        receipts = self.seen.first(
            "receipt",
            [
                (row.values["receipt_number"], row.number, None)
                for row in rows
                if row.values["receipt_number"] and len(row.values["receipt_number"]) <= 32
            ],
        )
        for row in rows:
            number = row.values["receipt_number"]
            if number in receipts and receipts[number] != row.number:
                row.messages.append(_("The same receipt number as row %(row)d.", row=receipts[number]))
            first, source_id = gifts[row.identity_key], row.values.pop("source_id")
            if first != row.number:
                row.messages.append(
                    _("The same gift id as row %(row)d.", row=first)
                    if source_id
                    else _("The same gift as row %(row)d (give each gift an id if both are real).", row=first)
                )
            if row.messages:
                row.outcome = ERROR

    def _find_supporters(self, rows: list[Row]) -> None:
        """Each gift's supporter: a row of the supporters file, a supporter imported from
        this source before (by id), or a supporter of the app (by e-mail)."""
        rows = [row for row in rows if row.outcome == NEW and row.supporter_key]
        seen = self.seen.supporters({row.supporter_key or "" for row in rows})
        missing = {row.supporter_key or "" for row in rows if row.supporter_key not in seen}
        found: dict[str, int] = {}
        if missing and self.mapping.gifts_by == "email":
            found = dict(
                db.session.execute(
                    sa.select(Supporter.email_normalised, SURVIVOR_ID).where(
                        one_of(Supporter.email_normalised, sorted(missing))
                    )
                ).all()
            )
        elif missing and self.imported_before:
            by_identity = {_hash(f"id:{key}"): key for key in missing}
            for identity, supporter_id in db.session.execute(
                sa.select(ImportedRow.identity_key, ImportedRow.supporter_id).where(
                    ImportedRow.mapping_id == self.mapping.id,
                    ImportedRow.kind == "supporter",
                    one_of(ImportedRow.identity_key, sorted(by_identity)),
                )
            ):
                found[by_identity[identity]] = ERASED if supporter_id is None else supporter_id
        for row in rows:
            key = row.supporter_key or ""
            supporter = seen.get(key, found.get(key))
            if supporter is None:
                row.outcome = ERROR
                row.messages.append(
                    _("No supporter with the e-mail “%(key)s”.", key=row.supporter_key)
                    if self.mapping.gifts_by == "email"
                    else _("No supporter with the id “%(key)s” in the supporters file.", key=row.supporter_key)
                )
            elif supporter == HAS_ERROR:
                row.outcome = ERROR
                row.messages.append(_("Its supporter's row has an error."))
            elif supporter == ERASED:
                row.outcome = ERROR
                row.messages.append(_("Its supporter's data was erased (a privacy request): the gift is not imported."))
            elif supporter > 0:
                row.supporter_id = supporter

    def _receipts_taken(self, rows: list[Row]) -> None:
        numbers = [
            row.values["receipt_number"] for row in rows if row.outcome == NEW and row.values.get("receipt_number")
        ]
        if not numbers:
            return
        taken = set(db.session.scalars(sa.select(Gift.receipt_number).where(one_of(Gift.receipt_number, numbers))))
        for row in rows:
            if row.outcome == NEW and row.values.get("receipt_number") in taken:
                row.outcome = ERROR
                row.messages.append(
                    _("The receipt number %(number)s is another gift's already.", number=row.values["receipt_number"])
                )


def checked_rows(source: Source) -> Iterator[list[Row]]:
    """Every row of the import, supporters first, then gifts, a chunk at a time.

    An import writes each chunk of supporters before asking for the next, and gives each
    new supporter's row its id (`Row.supporter_id`): the pass then records that id for the
    supporter's gifts. The preview writes nothing, and its new supporters' gifts find
    CREATED instead."""
    checker = _Checker(source)
    yield from checker.supporter_rows()
    yield from checker.gift_rows()
    checker.seen.clear()
