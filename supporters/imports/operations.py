"""Importing supporters and their gifts: an upload kept as it came (nothing applied), read
with a source's mapping, previewed (preview.py), then imported in one transaction or not
at all. Functions flush; the caller (the request, the CLI) commits once.

What an import writes goes through the app's own rows and listeners: supporters are
created as `people.edits.find_or_create_supporter` creates them (the search keys follow
in the same flush) and a known supporter only has their empty details filled in; a
newsletter consent is a row of the consent log (the supporter's flag follows it); a gift
is an offline gift as `giving.offline_gifts` records it (paid at noon UTC of its date,
converted, numbered, counted in the giving totals at commit), but with no receipt
e-mail; each supporter given gifts has their totals recomputed once, at the end
(`giving.totals.refresh_many_supporter_totals`: the same figures by the same rule). The
rows are written a chunk at a time and let go of once flushed, so memory does not grow
with the file.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import IO, Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from supporters.extensions import db
from supporters.giving.currency import base_amount
from supporters.giving.offline_gifts import paid_at_for
from supporters.giving.totals import refresh_many_supporter_totals
from supporters.imports.preview import preview_key
from supporters.imports.reading import Table, bytes_opener, read_table
from supporters.imports.rows import (
    ERROR,
    KNOWN,
    MATCH,
    NEW,
    OUR_RECEIPT,
    Row,
    Source,
    checked_rows,
    consent_moment,
)
from supporters.lib import audit
from supporters.lib.dates import org_timezone
from supporters.lib.errors import Refused
from supporters.lib.sql import one_of
from supporters.models import (
    GIFT_TRANSITIONS,
    Gift,
    GiftKind,
    GiftMethod,
    GiftStatus,
    ImportedRow,
    ImportMapping,
    ImportRun,
    ImportStatus,
    ReceiptSequence,
    Supporter,
    SupporterTag,
    utcnow,
)
from supporters.models.base import check_transition
from supporters.models.bulk import insert_rows, insert_rows_with_ids
from supporters.models.gift import GIFT_INITIAL
from supporters.models.giving import count_inserted
from supporters.models.supporter import NEWSLETTER, add_consents, add_supporters
from supporters.people.edits import ADDRESS_FIELDS

#: how long an upload never imported is kept (`flask privacy purge` removes it then)
UPLOAD_KEPT_DAYS = 7


#: the columns a new supporter is written with (the rest take their defaults)
_SUPPORTER_COLUMNS = ("email", "email_normalised", "name", "name_sort", "language", *ADDRESS_FIELDS)


@dataclass(frozen=True)
class _OfflineGift:
    """An imported gift's values as the conversion reads a gift's (`currency.GiftAmounts`)."""

    method: GiftMethod
    amount_minor: int
    currency: str
    paid_at: datetime | None
    balance_currency: str | None = None
    fee_minor: int | None = None
    net_minor: int | None = None
    created_at: datetime | None = None


_GIFT_COLUMNS = (
    "supporter_id",
    "amount_minor",
    "currency",
    "amount_base_minor",
    "base_rate_table",
    "status",
    "kind",
    "method",
    "campaign_id",
    "source_article",
    "offline_reference",
    "comment",
    "receipt_number",
    "paid_at",
    "refunded_minor",
)

#: what an imported consent says of the wording the supporter saw: the source knows it, we do not
IMPORTED_WORDING = "Not known: consent given before the import, as the source “{source}” recorded it."


def _who(actor: Any) -> str:
    return actor.email if actor is not None else "cli"


def _sha256(opener: Callable[[], IO[bytes]]) -> str:
    digest = hashlib.sha256()
    with opener() as stream:
        while block := stream.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def _file_name(name: str | None, default: str) -> str:
    return (name or default).strip()[:255] or default


def upload(
    content: bytes,
    *,
    file_name: str,
    gifts_content: bytes | None = None,
    gifts_file_name: str | None = None,
    actor: Any,
) -> ImportRun:
    """Keep an uploaded supporters file (and gifts file) for its mapping, preview and
    import; refused, keeping nothing, when one cannot be read. Audited."""
    read_table(bytes_opener(content), file_name)
    if gifts_content is not None:
        try:
            read_table(bytes_opener(gifts_content), gifts_file_name or "")
        except Refused as refused:
            refused.field = "gifts_file"
            raise
    run = ImportRun(
        staff_user_id=actor.id if actor is not None else None,
        uploaded_by=_who(actor),
        file_name=_file_name(file_name, "supporters"),
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
        gifts_file_name=_file_name(gifts_file_name, "gifts") if gifts_content is not None else None,
        gifts_sha256=hashlib.sha256(gifts_content).hexdigest() if gifts_content is not None else None,
        gifts_content=gifts_content,
        counts={},
    )
    db.session.add(run)
    db.session.flush()
    audit.record(
        actor,
        "import.uploaded",
        "import_run",
        run.id,
        actor_name=None if actor else "cli",
        file_name=run.file_name,
        sha256=run.sha256,
        gifts_file_name=run.gifts_file_name,
        gifts_sha256=run.gifts_sha256,
    )
    return run


def tables(run: ImportRun) -> tuple[Table, Table | None]:
    """The uploaded files as tables (their headers, their rows)."""
    if run.content is None:
        raise Refused(_l("This import's files are not kept: it was run from the command line."), status=409)
    supporters = read_table(bytes_opener(run.content), run.file_name)
    gifts = (
        read_table(bytes_opener(run.gifts_content), run.gifts_file_name or "")
        if run.gifts_content is not None
        else None
    )
    return supporters, gifts


def use_mapping(run: ImportRun, mapping: ImportMapping) -> None:
    """Read the upload with this source's mapping from now on (its preview changes with it)."""
    if run.status is ImportStatus.IMPORTED:
        raise Refused(_l("This file was imported already."), status=409)
    run.mapping_id = mapping.id
    run.mapping = mapping
    db.session.flush()


def source_of(run: ImportRun) -> Source:
    """The upload and its mapping, to preview or import; refused while it has no mapping."""
    if run.mapping is None:
        raise Refused(_l("Choose which column holds what first."), status=409)
    supporters, gifts = tables(run)
    return Source(run.mapping, supporters, gifts)


def key_of(run: ImportRun, source: Source) -> str:
    """The preview key of this upload read with its mapping."""
    return preview_key(run.sha256, run.gifts_sha256, source)


def run_for_files(
    supporters: Callable[[], IO[bytes]],
    file_name: str,
    gifts: Callable[[], IO[bytes]] | None,
    gifts_file_name: str | None,
    mapping: ImportMapping,
) -> tuple[ImportRun, Source]:
    """An import of files on disk (the command line): hashed, read with `mapping`, no
    copy kept. The run is added to the session; it is written only with the import."""
    source = Source(
        mapping, read_table(supporters, file_name), read_table(gifts, gifts_file_name or "") if gifts else None
    )
    run = ImportRun(
        uploaded_by="cli",
        file_name=_file_name(file_name, "supporters"),
        sha256=_sha256(supporters),
        gifts_file_name=_file_name(gifts_file_name, "gifts") if gifts else None,
        gifts_sha256=_sha256(gifts) if gifts else None,
        mapping_id=mapping.id,
        mapping=mapping,
        counts={},
    )
    return run, source


def remove_stale_uploads(today: date, actor_name: str = "cli") -> int:
    """Remove the uploads never imported and uploaded more than UPLOAD_KEPT_DAYS before
    `today` (their files hold names and addresses); how many. Audited, each; the
    caller commits."""
    cutoff = datetime.combine(today - timedelta(days=UPLOAD_KEPT_DAYS), time(), UTC)
    stale = db.session.scalars(
        sa.select(ImportRun).where(ImportRun.status == ImportStatus.UPLOADED, ImportRun.created_at < cutoff)
    ).all()
    for run in stale:
        audit.record(
            None,
            "import.upload_removed",
            "import_run",
            run.id,
            actor_name=actor_name,
            sha256=run.sha256,
            gifts_sha256=run.gifts_sha256,
            days=UPLOAD_KEPT_DAYS,
        )
        db.session.delete(run)
    db.session.flush()
    return len(stale)


# --- The import -------------------------------------------------------------------------


def _refuse_row(row: Row, run: ImportRun) -> Refused:
    name = run.file_name if row.kind == "supporter" else run.gifts_file_name
    return Refused(
        _l("Nothing was imported: row %(row)d of %(file)s has an error (%(reason)s). Correct it, upload again."),
        status=409,
        row=row.number,
        file=name or "",
        reason="; ".join(row.messages),
    )


def _raise_sequence(years: dict[int, int]) -> None:
    """Make each year's receipt sequence at least the highest number the import brings in
    our own form (2019-000042): the numbers given after it then never meet one imported."""
    if not years:
        return
    connection = db.session.connection()
    table = ReceiptSequence.__table__
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    for year, number in sorted(years.items()):
        statement = dialect.insert(table).values(year=year, last_number=number)
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=[table.c.year],
                set_={
                    "last_number": sa.case(
                        (statement.excluded.last_number > table.c.last_number, statement.excluded.last_number),
                        else_=table.c.last_number,
                    )
                },
            )
        )


def _given_receipts(source: Source) -> dict[int, int]:
    """The highest receipt number in our form per year, among the gifts file's."""
    header = source.mapping.gift_columns.get("receipt_number")
    highest: dict[int, int] = {}
    if source.gifts is None or not header:
        return highest
    for _number, values in source.gifts.rows():
        match = OUR_RECEIPT.match(values.get(header, "").strip())
        if match:
            year, number = int(match.group(1)), int(match.group(2))
            highest[year] = max(highest.get(year, 0), number)
    return highest


def take_receipt_numbers(year: int, count: int) -> list[str]:
    """The next `count` receipt numbers of `year`, taken at once from its sequence: what
    `giving.lifecycle.receipt_number` takes one at a time, for many gifts."""
    connection = db.session.connection()
    table = ReceiptSequence.__table__
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    connection.execute(
        dialect.insert(table).values(year=year, last_number=0).on_conflict_do_nothing(index_elements=[table.c.year])
    )
    last = connection.execute(
        sa.update(ReceiptSequence)
        .where(ReceiptSequence.year == year)
        .values(last_number=ReceiptSequence.last_number + count)
        .returning(ReceiptSequence.last_number)
    ).scalar_one()
    return [f"{year}-{number:06d}" for number in range(last - count + 1, last + 1)]


def _held(supporter_id: int) -> bool:
    """The supporter is in the session already: someone there holds it, so it stays."""
    return db.session.identity_map.get(sa.inspect(Supporter).identity_key_from_primary_key((supporter_id,))) is not None


class _Writer:
    """One import's writes, a chunk at a time."""

    def __init__(self, run: ImportRun, mapping: ImportMapping) -> None:
        self.run = run
        self.mapping = mapping
        self.given_gifts: set[int] = set()
        self.consents = 0

    def _let_go(self, rows: Iterable[object]) -> None:
        for row in rows:
            if row in db.session:  # (new supporters written by COPY never were)
                db.session.expunge(row)

    def _record(self, row: Row, kind: str, supporter_id: int | None, gift_id: int | None = None) -> dict[str, Any]:
        return {
            "mapping_id": self.mapping.id,
            "kind": kind,
            "identity_key": row.identity_key,
            "row_hash": row.row_hash,
            "run_id": self.run.id,
            "supporter_id": supporter_id,
            "gift_id": gift_id,
        }

    def _remember(self, records: list[dict[str, Any]]) -> None:
        """The rows imported, at once (nothing is derived from them)."""
        insert_rows(db.session.connection(), ImportedRow.__table__, records)

    def supporters_chunk(self, rows: list[Row]) -> None:
        made: list[tuple[Row, Supporter]] = []
        for row in rows:
            if row.outcome != NEW:
                continue
            values = row.values
            supporter = Supporter(
                email=values["email"],
                name=values["name"],
                language=values["language"],
                **{name: values.get(name) for name in ADDRESS_FIELDS},
            )
            made.append((row, supporter))
        matched_ids = [row.supporter_id for row in rows if row.outcome == MATCH and row.supporter_id]
        # supporters someone in this session holds already are theirs to keep; the rest are let go
        held = {supporter_id for supporter_id in matched_ids if _held(supporter_id)}
        known = {
            supporter.id: supporter
            for supporter in (
                db.session.scalars(sa.select(Supporter).where(one_of(Supporter.id, matched_ids))) if matched_ids else ()
            )
        }
        add_supporters(db.session(), [supporter for _row, supporter in made], _SUPPORTER_COLUMNS)
        for row in rows:
            if row.outcome == MATCH:
                supporter = known[row.supporter_id or 0]
                # as find_or_create_supporter: a known supporter's empty details filled in, the name kept
                for name in ADDRESS_FIELDS:
                    if row.values.get(name) and getattr(supporter, name) is None:
                        setattr(supporter, name, row.values[name])
                have = {tag.tag.casefold() for tag in supporter.tags}
                supporter.tags.extend(SupporterTag(tag=tag) for tag in row.values["tags"] if tag.casefold() not in have)
                made.append((row, supporter))
        db.session.flush()
        consents: list[dict[str, Any]] = []
        records: list[dict[str, Any]] = []
        tags: list[dict[str, Any]] = []
        for row, supporter in made:
            if row.outcome == NEW:
                # the checker records the new supporter's id once the chunk is written (rows.Seen)
                row.supporter_id = supporter.id
                tags.extend({"supporter_id": supporter.id, "tag": tag} for tag in row.values["tags"])
            if "consent" in row.values:
                day, where = row.values["consent"]
                consents.append(
                    {
                        "supporter_id": supporter.id,
                        "purpose": NEWSLETTER,
                        "granted": True,
                        "recorded_at": consent_moment(date.fromisoformat(day)),
                        "source": f"import ({self.mapping.name}): {where}"[:100],
                        "wording": IMPORTED_WORDING.format(source=self.mapping.name),
                    }
                )
                self.consents += 1
            records.append(self._record(row, "supporter", supporter.id))
        # the new supporters' tags at once (nothing is derived from them); a known
        # supporter's go through its loaded tags above
        insert_rows(db.session.connection(), SupporterTag.__table__, tags)
        # the consents too, the newsletter flags following them (as for one added to the session)
        add_consents(db.session(), consents)
        self._remember(records)
        self._let_go([supporter for _row, supporter in made if supporter.id not in held])

    def gifts_chunk(self, rows: list[Row]) -> None:
        """The chunk's new gifts in one INSERT: each a paid offline gift, converted by the
        rule of any gift (`giving.currency.base_amount`), numbered from the year's
        sequence, and counted in the giving totals as the flush listeners count a gift
        flushed (`models.giving.count_inserted`). Rows, not ORM objects: a `Gift` made
        only to read its values back was a tenth of an import's time."""
        check_transition("gift", GIFT_TRANSITIONS, GIFT_INITIAL, None, GiftStatus.SUCCEEDED)
        made: list[tuple[Row, dict[str, Any]]] = []
        unnumbered: dict[int, list[dict[str, Any]]] = {}
        for row in rows:
            if row.outcome != NEW:
                continue
            values = row.values
            supporter_id = row.supporter_id or 0
            assert supporter_id > 0, "a new supporter's gift comes after its supporter (and its id)"
            paid_at = paid_at_for(values["received_on"])
            conversion = base_amount(
                _OfflineGift(values["method"], values["amount_minor"], values["currency"], paid_at)
            )
            written = {
                "supporter_id": supporter_id,
                "amount_minor": values["amount_minor"],
                "currency": values["currency"],
                "amount_base_minor": conversion.amount_minor if conversion else None,
                "base_rate_table": conversion.table if conversion else None,
                "status": GiftStatus.SUCCEEDED,
                "kind": GiftKind.ONE_TIME,
                "method": values["method"],
                "campaign_id": values["campaign_id"],
                "source_article": None,
                "offline_reference": values["reference"],
                "comment": values["comment"],
                "receipt_number": values["receipt_number"],
                "paid_at": paid_at,
                "refunded_minor": 0,
            }
            if written["receipt_number"] is None:
                unnumbered.setdefault(paid_at.astimezone(org_timezone()).year, []).append(written)
            made.append((row, written))
            self.given_gifts.add(supporter_id)
        if not made:
            return
        for year, waiting in sorted(unnumbered.items()):
            for written, number in zip(waiting, take_receipt_numbers(year, len(waiting)), strict=True):
                written["receipt_number"] = number
        gift_rows = [written for _row, written in made]
        connection = db.session.connection()
        given = insert_rows_with_ids(connection, Gift.__table__, gift_rows)
        if given is not None:
            ids = {written["receipt_number"]: id_ for written, id_ in zip(gift_rows, given, strict=True)}
        else:
            # every imported gift has its receipt number (unique): the ids are found by it
            numbers = [written["receipt_number"] for written in gift_rows]
            ids = dict(
                connection.execute(
                    sa.select(Gift.receipt_number, Gift.id).where(one_of(Gift.receipt_number, numbers))
                ).all()
            )
        count_inserted(db.session(), gift_rows)
        self._remember(
            [
                self._record(row, "gift", written["supporter_id"], ids[written["receipt_number"]])
                for row, written in made
            ]
        )

    def refresh_totals(self) -> None:
        """Each supporter given gifts: their totals recomputed once, by the app's rule."""
        refresh_many_supporter_totals(self.given_gifts)


def import_run(run: ImportRun, source: Source, *, actor: Any, seen_key: str | None = None) -> ImportRun:
    """Import what the preview of `source` shows: new supporters created, matched ones
    given their empty details, tags and consent, gifts recorded as paid on their date (no
    receipt e-mails), everything counted. All or nothing: a row with an error refuses
    the whole import (409), writing nothing. A row imported before from this source
    changes nothing. Audited once, with the counts, the file names and their hashes.

    `seen_key` is the preview key staff saw (`key_of`): another file or mapping since is
    refused (409), so only what the preview showed is imported.
    """
    if run.id is not None:
        db.session.flush()
        db.session.refresh(run, with_for_update=True)
    if run.status is ImportStatus.IMPORTED:
        raise Refused(_l("This file was imported already."), status=409)
    if seen_key is not None and seen_key != preview_key(run.sha256, run.gifts_sha256, source):
        raise Refused(_l("The file or its mapping changed since the preview: look at the new preview."), status=409)
    mapping = source.mapping
    if run.id is None:
        db.session.add(run)
        db.session.flush()
    _raise_sequence(_given_receipts(source))
    chunks = checked_rows(source)
    writer = _Writer(run, mapping)
    counts: dict[str, Counter[str]] = {"supporters": Counter(), "gifts": Counter()}
    try:
        for chunk in chunks:
            for row in chunk:
                if row.outcome == ERROR:
                    raise _refuse_row(row, run)
                counts["supporters" if row.kind == "supporter" else "gifts"][row.outcome] += 1
            if chunk[0].kind == "supporter":
                writer.supporters_chunk(chunk)
            else:
                writer.gifts_chunk(chunk)
    except IntegrityError:
        raise Refused(
            _l("Another import of the same rows ran at this moment: look at the preview again."), status=409
        ) from None
    writer.refresh_totals()
    run.status = ImportStatus.IMPORTED
    # the files hold personal data and are not needed once imported: the run keeps its counts
    run.content = run.gifts_content = None
    run.imported_at = utcnow()
    run.imported_by = _who(actor)
    run.counts = {
        "supporters": {outcome: counts["supporters"][outcome] for outcome in (NEW, MATCH, KNOWN)},
        "gifts": {outcome: counts["gifts"][outcome] for outcome in (NEW, KNOWN)},
        "consents": writer.consents,
    }
    db.session.flush()
    audit.record(
        actor,
        "import.committed",
        "import_run",
        run.id,
        actor_name=None if actor else "cli",
        source=mapping.name,
        file_name=run.file_name,
        sha256=run.sha256,
        gifts_file_name=run.gifts_file_name,
        gifts_sha256=run.gifts_sha256,
        **run.counts,
    )
    return run
