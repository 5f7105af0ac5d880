"""Merging supporters who are one person, and undoing a merge within 30 days.

The survivor keeps its id and takes, field by field, the values staff picked. Everything
that belongs to the others moves to it: gifts, recurring plans, consents and consent
requests, notes, donor sign-ins, bank lines, privacy requests, the imported rows that
name them (so a later import of the same source row finds the survivor), and the tags (a
union). The others are not
deleted: each stays as a tombstone (`Supporter.merged_into_id`), hidden from every list,
keeping its e-mail and Stripe customer, so that whatever still finds it (a gift given
with the old address, the donor's sign-in, a bank transfer's e-mail) is led to the
survivor (`edits.surviving`). Webhooks find their gift or plan by Stripe's ids, and those
rows moved. The supporters' totals and newsletter flags are recomputed.

What a merge changed is kept on its `SupporterMerge` row, with the values replaced and
the ids of the rows moved; undoing it moves exactly those rows back (what arrived since,
such as a gift given after the merge, stays with the survivor), gives back the fields
that still hold the merged values, and makes the tombstones people again.

Merge and undo lock the gifts first and then the supporters, in id order, as a gift's
status change does (gift, then its supporter): a second merge of the same people waits,
then finds them merged and is refused.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from supporters.extensions import db
from supporters.giving.totals import refresh_supporter_totals
from supporters.lib import audit
from supporters.lib.audit import Actor
from supporters.lib.errors import Refused
from supporters.lib.tags import unique_tags
from supporters.models import (
    BankLine,
    Consent,
    ConsentRequest,
    DonorSignIn,
    Gift,
    ImportedRow,
    PrivacyRequest,
    RecurringPlan,
    Supporter,
    SupporterMerge,
    SupporterNote,
    SupporterTag,
    sort_key,
    utcnow,
)
from supporters.models.supporter import newest_newsletter_decision
from supporters.people import duplicates
from supporters.people.edits import PROFILE_FIELDS

#: at most this many supporters in one merge (a page of radios per field stays readable)
MERGE_MAX = 5
#: how long a merge can be undone
UNDO_DAYS = 30
#: the rows that belong to a supporter and move with a merge, by name in the record. The
#: other references to a supporter stay: their search keys and the merge records (about
#: that supporter), the pairs of the duplicates tables (forgotten: `forget_pairs_of`).
MOVED: dict[str, Any] = {
    "gifts": Gift,
    "plans": RecurringPlan,
    "consents": Consent,
    "consent_requests": ConsentRequest,
    "notes": SupporterNote,
    "donor_sign_ins": DonorSignIn,
    "bank_lines": BankLine,
    "privacy_requests": PrivacyRequest,
    "imported_rows": ImportedRow,
}

_CHOOSE = _l("Choose at least two supporters to merge, at most %(max)s.")
_GONE = _l("Supporter #%(id)s does not exist.")
_MERGED = _l("Supporter #%(id)s was merged into another already: merge with that one instead.")
_ERASED = _l("Supporter #%(id)s was erased on request and cannot be merged.")
_SURVIVOR = _l("Choose which of the supporters stays.")
_CHOICE = _l("Choose a value from one of the supporters being merged.")
_UNDONE = _l("This merge was undone already.")
_TOO_OLD = _l("A merge can be undone for %(days)s days; this one is older.")
_LATER = _l("The supporter kept by this merge was merged or erased since; undo that first.")


def _lock_people(ids: list[int]) -> dict[int, Supporter]:
    """Lock the supporters' gifts, then the supporters, in id order (the order a gift's
    status change takes them), and read them as they now are."""
    db.session.flush()
    db.session.execute(
        sa.select(Gift.id).where(Gift.supporter_id.in_(ids)).order_by(Gift.id).with_for_update(key_share=True)
    )
    people = db.session.scalars(
        sa.select(Supporter)
        .where(Supporter.id.in_(ids))
        .order_by(Supporter.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    return {person.id: person for person in people}


def merge_candidates(ids: list[int]) -> list[Supporter]:
    """The supporters to merge, in id order, refused if fewer than two, too many, or any
    of them does not exist, was merged away or erased."""
    ids = sorted(set(ids))
    if not 2 <= len(ids) <= MERGE_MAX:
        raise Refused(_CHOOSE, max=MERGE_MAX)
    people = {person.id: person for person in db.session.scalars(sa.select(Supporter).where(Supporter.id.in_(ids)))}
    return [_mergeable(people, supporter_id) for supporter_id in ids]


def _mergeable(people: dict[int, Supporter], supporter_id: int) -> Supporter:
    person = people.get(supporter_id)
    if person is None:
        raise Refused(_GONE, status=404, id=supporter_id)
    if person.merged_into_id is not None:
        raise Refused(_MERGED, status=409, id=supporter_id)
    if person.anonymised_at is not None:
        raise Refused(_ERASED, status=409, id=supporter_id)
    return person


def merge(
    actor: Actor | None, ids: list[int], survivor_id: int, choices: dict[str, int] | None = None
) -> SupporterMerge:
    """Merge the supporters `ids` into `survivor_id`, each profile field taking the value
    of the supporter `choices[field]` names (the survivor's own when not named); audited
    with the values replaced and what moved. All or nothing; refused (changing nothing)
    when a supporter is missing (404), merged or erased (409), or a choice is not one of them."""
    ids = sorted(set(ids))
    if not 2 <= len(ids) <= MERGE_MAX:
        raise Refused(_CHOOSE, max=MERGE_MAX)
    if survivor_id not in ids:
        raise Refused(_SURVIVOR, field="survivor")
    choices = dict(choices or {})
    for name, chosen in choices.items():
        if name not in PROFILE_FIELDS:
            raise TypeError(f"not a profile field: {name}")
        if chosen not in ids:
            raise Refused(_CHOICE, field=name)
    people = _lock_people(ids)
    for supporter_id in ids:
        _mergeable(people, supporter_id)
    survivor = people[survivor_id]
    others = [people[supporter_id] for supporter_id in ids if supporter_id != survivor_id]
    other_ids = [person.id for person in others]
    record: dict[str, Any] = {"fields": {}, "moved": {}, "tags_added": [], "repointed": []}

    # The fields. An e-mail taken from another is swapped with it: the tombstone keeps the
    # survivor's old address, so both still lead to the survivor (the address is unique).
    for name in PROFILE_FIELDS:
        source = people[choices.get(name, survivor_id)]
        old, new = getattr(survivor, name), getattr(source, name)
        if old != new:
            record["fields"][name] = {"old": old, "new": new, "from": source.id}
    email_from = record["fields"].get("email", {}).get("from")
    if email_from is not None:
        _swap_emails(survivor, people[email_from])
        record["email_swapped_with"] = email_from
    for name, change in record["fields"].items():
        if name != "email":
            setattr(survivor, name, change["new"])
    if "name" in record["fields"]:
        survivor.name_sort = sort_key(survivor.name)

    # The Stripe customer: a survivor without one takes the first the others have (so
    # the next checkout reuses it); the others' stay on their tombstones.
    if survivor.stripe_customer_id is None:
        donor = next((person for person in others if person.stripe_customer_id), None)
        if donor is not None:
            record["customer_from"] = donor.id
            customer, donor.stripe_customer_id = donor.stripe_customer_id, None
            db.session.flush()
            survivor.stripe_customer_id = customer

    # The rows, each table in one statement; their ids are kept for the undo.
    for key, model in MOVED.items():
        moved: dict[str, list[int]] = {}
        for person in others:
            row_ids = list(db.session.scalars(sa.select(model.id).where(model.supporter_id == person.id)))
            if row_ids:
                moved[str(person.id)] = row_ids
        if moved:
            record["moved"][key] = moved
            _move(model, [row_id for row_ids in moved.values() for row_id in row_ids], survivor.id)
    have = {tag.tag for tag in survivor.tags}
    added = [tag for tag in unique_tags(tag.tag for person in others for tag in person.tags) if tag not in have]
    survivor.tags.extend(SupporterTag(tag=tag) for tag in added)
    record["tags_added"] = added

    # The tombstones: these, and any merged into them before, lead to the survivor.
    repointed = list(db.session.scalars(sa.select(Supporter.id).where(Supporter.merged_into_id.in_(other_ids))))
    if repointed:
        db.session.execute(
            sa.update(Supporter).where(Supporter.id.in_(repointed)).values(merged_into_id=survivor.id),
            execution_options={"synchronize_session": False},
        )
    record["repointed"] = repointed
    for person in others:
        person.merged_into_id = survivor.id
    duplicates.forget_pairs_of(other_ids)
    _after_moving(ids)
    entry = SupporterMerge(
        survivor_id=survivor.id, merged_ids=other_ids, staff_user_id=actor.id if actor else None, record=record
    )
    db.session.add(entry)
    db.session.flush()
    audit.record(
        actor,
        "supporter.merge",
        "supporter",
        survivor.id,
        merge_id=entry.id,
        merged=other_ids,
        changes={name: {"old": change["old"], "new": change["new"]} for name, change in record["fields"].items()},
        moved={key: sum(len(row_ids) for row_ids in moved.values()) for key, moved in record["moved"].items()},
        tags_added=added,
    )
    return entry


def _swap_emails(first: Supporter, second: Supporter) -> None:
    """Exchange two supporters' e-mail addresses (unique: through a placeholder)."""
    first_email, second_email = (first.email, first.email_normalised), (second.email, second.email_normalised)
    second.email_normalised = f"merging-{second.id}@invalid"
    db.session.flush()
    first.email, first.email_normalised = second_email
    db.session.flush()
    second.email, second.email_normalised = first_email
    db.session.flush()


def _move(model: Any, row_ids: list[int], supporter_id: int) -> None:
    for start in range(0, len(row_ids), 1000):
        db.session.execute(
            sa.update(model).where(model.id.in_(row_ids[start : start + 1000])).values(supporter_id=supporter_id),
            execution_options={"synchronize_session": False},
        )
    # Rows of these tables in the session now name their old supporter: read them again.
    for row in list(db.session.identity_map.values()):
        if isinstance(row, model):
            db.session.expire(row, ["supporter_id"])


def _after_moving(ids: list[int]) -> None:
    """The figures kept from the rows that moved: newsletter flags (from the consents) and
    giving totals, for everyone touched."""
    db.session.flush()
    db.session.execute(
        sa.update(Supporter)
        .where(Supporter.id.in_(ids))
        .values(newsletter=sa.func.coalesce(newest_newsletter_decision(Supporter.id), False)),
        execution_options={"synchronize_session": False},
    )
    for supporter_id in ids:
        person = db.session.get(Supporter, supporter_id)
        assert person is not None
        db.session.expire(person, ["newsletter"])
        refresh_supporter_totals(person)


# --- Undo ------------------------------------------------------------------------------


def can_undo(entry: SupporterMerge) -> bool:
    """Whether the merge may still be undone: it stands, and is at most UNDO_DAYS old."""
    return entry.undone_at is None and utcnow() - entry.merged_at <= timedelta(days=UNDO_DAYS)


def undo(actor: Actor | None, entry: SupporterMerge) -> list[str]:
    """Put the supporters back as they were before the merge: the rows it moved go back
    (those that arrived since stay with the survivor), the fields that still hold the
    merged values get their old ones, the tombstones are people again, and the totals
    follow. Returns the fields left as they are because they were changed since. Audited.
    Refused when undone already, older than UNDO_DAYS days, or the survivor was merged or
    erased since (409)."""
    locked = db.session.get(SupporterMerge, entry.id, with_for_update=True, populate_existing=True)
    assert locked is entry
    if entry.undone_at is not None:
        raise Refused(_UNDONE, status=409)
    if utcnow() - entry.merged_at > timedelta(days=UNDO_DAYS):
        raise Refused(_TOO_OLD, status=409, days=UNDO_DAYS)
    record = entry.record
    ids = sorted([entry.survivor_id, *entry.merged_ids])
    people = _lock_people(ids)
    survivor = people[entry.survivor_id]
    if survivor.merged_into_id is not None or survivor.anonymised_at is not None:
        raise Refused(_LATER, status=409)

    for key, moved in record.get("moved", {}).items():
        model = MOVED[key]
        for supporter_id, row_ids in moved.items():
            still = list(
                db.session.scalars(sa.select(model.id).where(model.id.in_(row_ids), model.supporter_id == survivor.id))
            )
            if still:
                _move(model, still, int(supporter_id))
    added = set(record.get("tags_added", []))
    for tag in [tag for tag in survivor.tags if tag.tag in added]:
        survivor.tags.remove(tag)

    kept: list[str] = []
    fields = record.get("fields", {})
    swapped = record.get("email_swapped_with")
    if swapped is not None:
        if survivor.email == fields["email"]["new"]:
            _swap_emails(survivor, people[swapped])
        else:
            kept.append("email")
    for name, change in fields.items():
        if name == "email":
            continue
        if getattr(survivor, name) == change["new"]:
            setattr(survivor, name, change["old"])
        else:
            kept.append(name)
    if "name" in fields:
        survivor.name_sort = sort_key(survivor.name)
    customer_from = record.get("customer_from")
    if customer_from is not None and people[customer_from].stripe_customer_id is None:
        customer, survivor.stripe_customer_id = survivor.stripe_customer_id, None
        db.session.flush()
        people[customer_from].stripe_customer_id = customer

    for supporter_id in entry.merged_ids:
        people[supporter_id].merged_into_id = None
    repointed = record.get("repointed", [])
    if repointed:
        # back to whom they were merged into before: the merges they belong to say so
        earlier = db.session.scalars(
            sa.select(SupporterMerge).where(
                SupporterMerge.survivor_id.in_(entry.merged_ids), SupporterMerge.undone_at.is_(None)
            )
        ).all()
        for earlier_entry in earlier:
            back = [row_id for row_id in earlier_entry.merged_ids if row_id in repointed]
            if back:
                db.session.execute(
                    sa.update(Supporter).where(Supporter.id.in_(back)).values(merged_into_id=earlier_entry.survivor_id),
                    execution_options={"synchronize_session": False},
                )
    _after_moving(ids)
    entry.undone_at = utcnow()
    entry.undone_by_id = actor.id if actor else None
    db.session.flush()
    audit.record(
        actor,
        "supporter.merge_undone",
        "supporter",
        survivor.id,
        merge_id=entry.id,
        restored=list(entry.merged_ids),
        kept=sorted(kept),
    )
    return sorted(kept)


def merges_of(supporter_id: int) -> list[SupporterMerge]:
    """The merges that kept this supporter, newest first."""
    return list(
        db.session.scalars(
            sa.select(SupporterMerge)
            .where(SupporterMerge.survivor_id == supporter_id)
            .order_by(SupporterMerge.merged_at.desc(), SupporterMerge.id.desc())
        )
    )
