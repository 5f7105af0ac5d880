"""Changing supporters: finding or creating one by e-mail, and the edits staff make to
a profile, its notes (their author edits and deletes them) and its tags, one supporter
or every supporter the list's filters match at once. Each edit flushes and writes its
own audit row; the request commits once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError

from supporters.extensions import db
from supporters.lib import audit
from supporters.lib.audit import Actor
from supporters.lib.errors import Refused
from supporters.lib.tags import TAG_MAX, tidy_tag, too_long, unique_tags
from supporters.models import (
    Supporter,
    SupporterNote,
    SupporterTag,
    normalise_email,
    sort_key,
    utcnow,
)
from supporters.people.queries import SupporterFilters, filter_conditions

NOTE_MAX = 2000
#: the fields of a supporter that staff may change on the profile form
PROFILE_FIELDS = ("name", "email", "country", "language", "address_line1", "address_line2", "postal_code", "city")
_OPTIONAL_FIELDS = frozenset({"country", "address_line1", "address_line2", "postal_code", "city"})
_EMAIL_IN_USE = _l("Another supporter already has this e-mail address.")


def _refuse_if_erased(supporter: Supporter) -> None:
    """An erased supporter's record is kept for the books and never changed again; one
    merged into another is changed through that one."""
    if supporter.anonymised_at is not None:
        raise Refused(_l("This supporter's data was erased on request; it cannot be changed."), status=409)
    if supporter.merged_into_id is not None:
        raise Refused(
            _l("This supporter was merged into supporter #%(id)s: change that one."),
            status=409,
            id=supporter.merged_into_id,
        )


def update_profile(
    actor: Actor | None, supporter: Supporter, *, actor_name: str | None = None, **fields: Any
) -> dict[str, tuple[Any, Any]]:
    """Change the named profile fields and audit the change; returns {field: (old, new)}
    of what really changed (nothing is audited when nothing changed). `actor_name` names
    who acted when it is no staff member (a donor on their own page: donors.web.actor_name).

    Text is trimmed, empty optional fields become None, the country is upper case.
    Refuses (on the field `email`), changing nothing, when another supporter has the
    new e-mail, a required field left empty, and an erased supporter (409).
    """
    _refuse_if_erased(supporter)
    unknown = set(fields) - set(PROFILE_FIELDS)
    if unknown:
        raise TypeError(f"not a profile field: {', '.join(sorted(unknown))}")
    wanted: dict[str, Any] = {}
    for name, value in fields.items():
        value = value.strip() if isinstance(value, str) else value
        if name in _OPTIONAL_FIELDS and not value:
            value = None
        if name == "country" and value:
            value = value.upper()
        if name not in _OPTIONAL_FIELDS and not value:
            raise Refused(_l("This field is required."), field=name)
        wanted[name] = value
    changes = {
        name: (getattr(supporter, name), value) for name, value in wanted.items() if getattr(supporter, name) != value
    }
    if not changes:
        return {}
    if "email" in changes:
        holder = _email_holder(normalise_email(changes["email"][1]), supporter.id)
        if holder is not None:
            # `other_id`: the page offers to merge the two instead (people/merging.py)
            raise Refused(_EMAIL_IN_USE, field="email", other_id=holder if holder != supporter.id else None)
    try:
        # A savepoint, so that another supporter taking the address at this very
        # moment (the unique index refuses the second) leaves this one unchanged.
        with db.session.begin_nested():
            for name, (_old, new) in changes.items():
                setattr(supporter, name, new)
            if "name" in changes:
                supporter.name_sort = sort_key(supporter.name)
            if "email" in changes:
                supporter.email_normalised = normalise_email(supporter.email)
    except IntegrityError as exc:
        if "email" not in changes:
            raise
        raise Refused(_EMAIL_IN_USE, field="email") from exc
    audit.record(
        actor,
        "supporter.edit_profile",
        "supporter",
        supporter.id,
        actor_name=actor_name,
        changes={name: {"old": old, "new": new} for name, (old, new) in changes.items()},
    )
    return changes


def _email_holder(email_key: str, supporter_id: int) -> int | None:
    """The other supporter this address leads to (through a merged-away one), if any."""
    holder = db.session.execute(
        select(Supporter).where(Supporter.email_normalised == email_key, Supporter.id != supporter_id)
    ).scalar_one_or_none()
    if holder is None:
        return None
    return surviving(holder).id


def surviving(supporter: Supporter) -> Supporter:
    """The supporter to act on: itself, or the one it was merged into (people/merging.py)."""
    if supporter.merged_into_id is None:
        return supporter
    survivor = db.session.get(Supporter, supporter.merged_into_id)
    assert survivor is not None and survivor.merged_into_id is None, "a merge re-points older tombstones"
    return survivor


def _note_body(body: str) -> str:
    """The note's text trimmed; refused (on the field `body`) unless 1 to NOTE_MAX characters."""
    body = body.strip()
    if not 1 <= len(body) <= NOTE_MAX:
        raise Refused(_l("A note has 1 to %(max)s characters."), field="body", max=NOTE_MAX)
    return body


def add_note(actor: Actor | None, supporter: Supporter, body: str) -> SupporterNote:
    """Add a note to the supporter, signed by `actor`, and audit it; the body is 1 to
    NOTE_MAX characters (refused otherwise, on the field `body`)."""
    _refuse_if_erased(supporter)
    body = _note_body(body)
    note = SupporterNote(supporter_id=supporter.id, staff_user_id=actor.id if actor else None, body=body)
    db.session.add(note)
    db.session.flush()
    audit.record(actor, "supporter.add_note", "supporter", supporter.id, note_id=note.id, body=note.body)
    return note


def may_change_note(actor: Actor | None, note: SupporterNote) -> bool:
    """Only a note's author may edit or delete it (not an admin: a note says what its
    author saw; a note whose author's account is gone stays as it is)."""
    return actor is not None and note.staff_user_id is not None and note.staff_user_id == actor.id


def _refuse_unless_author(actor: Actor | None, supporter: Supporter, note: SupporterNote) -> None:
    _refuse_if_erased(supporter)
    if not may_change_note(actor, note):
        raise Refused(_l("Only the author of a note may change or delete it."), status=403)


def edit_note(actor: Actor | None, supporter: Supporter, note: SupporterNote, body: str) -> bool:
    """The author changes their note's text (refused, 403, for anyone else); marked edited
    and audited with the old and the new text. False, and nothing audited, when the text
    is the same."""
    _refuse_unless_author(actor, supporter, note)
    body = _note_body(body)
    if body == note.body:
        return False
    old, note.body, note.edited_at = note.body, body, utcnow()
    db.session.flush()
    audit.record(
        actor,
        "supporter.edit_note",
        "supporter",
        supporter.id,
        note_id=note.id,
        changes={"body": {"old": old, "new": body}},
    )
    return True


def delete_note(actor: Actor | None, supporter: Supporter, note: SupporterNote) -> None:
    """The author deletes their note (refused, 403, for anyone else); its text is kept in
    the audit log."""
    _refuse_unless_author(actor, supporter, note)
    audit.record(
        actor,
        "supporter.delete_note",
        "supporter",
        supporter.id,
        note_id=note.id,
        body=note.body,
        written_at=note.created_at.isoformat(),
    )
    db.session.delete(note)
    db.session.flush()


def set_tags(actor: Actor | None, supporter: Supporter, tags: Iterable[str]) -> tuple[list[str], list[str]]:
    """Make the supporter's tags exactly `tags` and audit the change; returns (added, removed).

    Tags are tidied and kept once (lib.tags); a tag longer than TAG_MAX characters is
    refused (on the field `tags`) and nothing changes.
    """
    _refuse_if_erased(supporter)
    wanted = unique_tags(tags)
    long_ones = too_long(wanted)
    if long_ones:
        raise Refused(
            _l("A tag has at most %(max)s characters: %(tag)s"),
            field="tags",
            max=TAG_MAX,
            tag=long_ones[0][:TAG_MAX] + "…",
        )
    old = sorted((row.tag for row in supporter.tags), key=str.casefold)
    current = {row.tag: row for row in supporter.tags}
    removed = sorted((tag for tag in current if tag not in wanted), key=str.casefold)
    added = [tag for tag in wanted if tag not in current]
    for tag in removed:
        supporter.tags.remove(current[tag])
    # Removals go first: a tag respelt ("board" -> "Board") is one removal and one addition.
    db.session.flush()
    supporter.tags.extend(SupporterTag(tag=tag) for tag in added)
    db.session.flush()
    added = sorted(added, key=str.casefold)
    if added or removed:
        new = sorted((row.tag for row in supporter.tags), key=str.casefold)
        audit.record(
            actor,
            "supporter.set_tags",
            "supporter",
            supporter.id,
            changes={"tags": {"old": old, "new": new}},
            added=added,
            removed=removed,
        )
    return added, removed


#: the tags' table, for the set-based statements below (no ORM rows)
_TAGS: sa.Table = SupporterTag.__table__  # type: ignore[assignment]
#: how many supporter ids one statement of a bulk tag change covers
BULK_BATCH = 5000


def _bulk_tag_name(tag: str) -> str:
    """The tag as kept (lib.tags); refused, on the field `bulk_tag`, when empty or too long."""
    tag = tidy_tag(tag or "")
    if not tag:
        raise Refused(_l("Type the tag to add or remove."), field="bulk_tag")
    if too_long([tag]):
        raise Refused(
            _l("A tag has at most %(max)s characters: %(tag)s"), field="bulk_tag", max=TAG_MAX, tag=tag[:TAG_MAX] + "…"
        )
    return tag


def _has_tag(tag: str) -> ColumnElement[bool]:
    """The supporter has `tag`, in any case (as set_tags and the tag filter read it)."""
    return (
        select(SupporterTag.supporter_id)
        .where(SupporterTag.supporter_id == Supporter.id, func.lower(SupporterTag.tag) == func.lower(tag))
        .exists()
    )


def bulk_tag_preview(filters: SupporterFilters, tag: str) -> tuple[str, int, int]:
    """What `bulk_tag` would work on: the tag as it would be kept, how many supporters the
    filters match (erased ones aside: they are never changed) and how many of those have
    the tag already. Refuses a tag as `bulk_tag` does."""
    tag = _bulk_tag_name(tag)
    conditions = [*filter_conditions(filters), Supporter.anonymised_at.is_(None)]
    matched = db.session.scalar(select(func.count(Supporter.id)).where(*conditions)) or 0
    tagged = db.session.scalar(select(func.count(Supporter.id)).where(*conditions, _has_tag(tag))) or 0
    return tag, matched, tagged


def bulk_tag(actor: Actor | None, filters: SupporterFilters, tag: str, *, add: bool) -> int:
    """Add `tag` to (add=False: remove it from) every supporter the list's `filters` match,
    erased supporters aside; returns how many changed, audited as one entry with that
    count and the filters (none when nothing changed).

    Set-based: one INSERT … SELECT (or DELETE) per BULK_BATCH supporter ids, skipping
    those who have the tag in any case, so 100,000 supporters are a few statements and
    no ORM object each. Refuses (on the field `bulk_tag`) an empty or too long tag.
    """
    tag, matched, _tagged = bulk_tag_preview(filters, tag)
    conditions = [*filter_conditions(filters), Supporter.anonymised_at.is_(None)]
    low, high = db.session.execute(select(func.min(Supporter.id), func.max(Supporter.id))).one()
    changed = 0
    starts = range(low, high + 1, BULK_BATCH) if low is not None else range(0)
    for start in starts:
        in_batch = [*conditions, Supporter.id >= start, Supporter.id < start + BULK_BATCH]
        if add:
            # RETURNING counts what was inserted: psycopg reports no row count for INSERT … SELECT.
            inserted = db.session.execute(
                sa.insert(_TAGS)
                .from_select(
                    ["supporter_id", "tag"],
                    select(Supporter.id, sa.literal(tag, sa.String(TAG_MAX))).where(*in_batch, ~_has_tag(tag)),
                )
                .returning(_TAGS.c.supporter_id)
            )
            changed += len(inserted.all())
        else:
            deleted = db.session.execute(
                sa.delete(_TAGS).where(
                    func.lower(SupporterTag.tag) == func.lower(tag),
                    SupporterTag.supporter_id.in_(select(Supporter.id).where(*in_batch)),
                )
            )
            changed += int(deleted.rowcount or 0)  # type: ignore[attr-defined]
    # Supporters already in the session read their tags afresh.
    for row in list(db.session.identity_map.values()):
        if isinstance(row, Supporter):
            db.session.expire(row, ["tags"])
    if changed:
        audit.record(
            actor,
            "supporters.bulk_tag",
            tag=tag,
            change="add" if add else "remove",
            count=changed,
            matched=matched,
            filters=filters.as_args(),
        )
    return changed


#: the details a form may fill in on a known supporter, where they are still empty
ADDRESS_FIELDS = ("country", "address_line1", "address_line2", "postal_code", "city")


def find_or_create_supporter(
    email: str, name: str, language: str = "en", *, details: Mapping[str, str | None] | None = None
) -> Supporter:
    """The supporter with this e-mail, created with `name` and `language` if new; an
    address of a supporter merged into another finds the one it was merged into.

    Of a known supporter, only the `details` (ADDRESS_FIELDS) still empty are filled
    in, and the name is left as it is: anyone can type an address into a form.
    Two requests creating the same supporter at the same moment get the same one.
    """
    email_key = normalise_email(email)
    supporter = db.session.execute(select(Supporter).filter_by(email_normalised=email_key)).scalar_one_or_none()
    if supporter is None:
        try:
            with db.session.begin_nested():
                supporter = Supporter(email=email.strip(), name=name.strip(), language=language)
                db.session.add(supporter)
        except IntegrityError:
            # Someone else created the same supporter at this very moment.
            supporter = db.session.execute(select(Supporter).filter_by(email_normalised=email_key)).scalar_one()
    supporter = surviving(supporter)
    for field in ADDRESS_FIELDS:
        value = (details or {}).get(field)
        if value and getattr(supporter, field) is None:
            setattr(supporter, field, value)
    return supporter
