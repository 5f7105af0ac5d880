"""Changing supporters: finding or creating one by e-mail, and the edits staff make to
a profile, its notes and its tags. Each edit flushes and writes its own audit row;
the request commits once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from supporters.extensions import db
from supporters.lib import audit
from supporters.lib.audit import Actor
from supporters.lib.errors import Refused
from supporters.lib.tags import TAG_MAX, too_long, unique_tags
from supporters.models import (
    Supporter,
    SupporterNote,
    SupporterTag,
    normalise_email,
    sort_key,
)

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


def add_note(actor: Actor | None, supporter: Supporter, body: str) -> SupporterNote:
    """Add a note to the supporter, signed by `actor`, and audit it; the body is 1 to
    NOTE_MAX characters (refused otherwise, on the field `body`)."""
    _refuse_if_erased(supporter)
    body = body.strip()
    if not 1 <= len(body) <= NOTE_MAX:
        raise Refused(_l("A note has 1 to %(max)s characters."), field="body", max=NOTE_MAX)
    note = SupporterNote(supporter_id=supporter.id, staff_user_id=actor.id if actor else None, body=body)
    db.session.add(note)
    db.session.flush()
    audit.record(actor, "supporter.add_note", "supporter", supporter.id, note_id=note.id, body=note.body)
    return note


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
