"""Dashboard: likely duplicate supporters (the review list, "not a duplicate", a new
scan), merging two or more supporters field by field, and a merge's page with its undo."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from supporters.dashboard.access import acting_staff, fetch, requires
from supporters.lib.errors import Refused
from supporters.lib.forms import whole_number
from supporters.lib.paging import page_count, page_number
from supporters.models import Supporter, SupporterMerge
from supporters.people import duplicates, merging
from supporters.people.edits import PROFILE_FIELDS

bp = Blueprint("duplicates", __name__, url_prefix="/duplicates")

PER_PAGE = 25
_BAD_IDS = _l("Choose the supporters to merge: two to %(max)s supporter numbers.")
_BAD_CHOICE = _l("Choose which supporter stays, and a value for each field.")


def field_labels() -> dict[str, str]:
    """The merge page's names of the profile fields."""
    return {
        "name": _("Full name"),
        "email": _("E-mail"),
        "country": _("Country"),
        "language": _("Language"),
        "address_line1": _("Street and number"),
        "address_line2": _("Address, second line"),
        "postal_code": _("Postal code"),
        "city": _("City"),
    }


def moved_labels() -> dict[str, str]:
    """The merge record's names of what moved (merging.MOVED)."""
    return {
        "gifts": _("Gifts"),
        "plans": _("Recurring gifts"),
        "consents": _("Consents"),
        "consent_requests": _("Newsletter requests waiting for confirmation"),
        "notes": _("Notes"),
        "donor_sign_ins": _("Donor sign-ins"),
        "bank_lines": _("Bank statement lines"),
    }


@bp.get("/")
@requires("view")
def index() -> ResponseReturnValue:
    """The pairs to review, the surest first, 25 a page, each with both people and why."""
    notes: list[str] = []
    page = page_number(request.args, notes)
    total = duplicates.pair_count()
    pages = page_count(total, PER_PAGE)
    return render_template(
        "dashboard/duplicates/index.html",
        pairs=duplicates.pair_page(PER_PAGE, (page - 1) * PER_PAGE),
        reason_text=duplicates.reason_text,
        total=total,
        page=page,
        pages=pages,
        notes=notes,
        last_scan=duplicates.last_scan(),
    )


@bp.post("/scan")
@requires("write")
def scan() -> ResponseReturnValue:
    """Look for duplicates again now (a cron runs `flask duplicates scan` too)."""
    found = duplicates.scan()
    flash(_("Scan finished: %(count)s possible duplicate pairs.", count=found), "success")
    return redirect(url_for(".index"), 303)


def _two_supporters(form: Mapping[str, str]) -> tuple[Supporter, Supporter]:
    ids = [whole_number(form.get(name)) for name in ("first", "second")]
    if None in ids or ids[0] == ids[1]:
        raise Refused(_l("Choose two different supporters."))
    first, second = (fetch(Supporter, supporter_id) for supporter_id in ids if supporter_id is not None)
    return first, second


@bp.post("/dismiss")
@requires("write")
def dismiss() -> ResponseReturnValue:
    """Not a duplicate: the pair is remembered as two people and never shown again; audited."""
    first, second = _two_supporters(request.form)
    duplicates.dismiss(acting_staff(), first, second)
    flash(_("Marked as two different people: this pair will not be suggested again."), "success")
    page = page_number(request.args)
    return redirect(url_for(".index", page=page) if page > 1 else url_for(".index"), 303)


def _others(supporter: Supporter, args: Mapping[str, str]) -> list[int]:
    """Who to merge `supporter` with: the supporter numbers in the address
    (`?others=40,41`), or else the possible duplicates the last scan found."""
    raw = (args.get("others") or "").strip()
    if not raw:
        return duplicates.possible_duplicates(supporter.id)[: merging.MERGE_MAX - 1]
    ids = [whole_number(part.strip()) for part in raw.split(",") if part.strip()]
    others = {supporter_id for supporter_id in ids if supporter_id is not None} - {supporter.id}
    if None in ids or not 1 <= len(others) < merging.MERGE_MAX:
        raise Refused(_BAD_IDS, max=merging.MERGE_MAX)
    return sorted(others)


def _merge_page(
    supporter: Supporter, people: list[Supporter], status: int = 200, error: str | None = None
) -> ResponseReturnValue:
    default = max(people, key=lambda person: (person.gift_count, -person.id)) if people else supporter
    # a choice only where the records differ; what they share stays as it is
    values = {name: {getattr(person, name) or "" for person in people} for name in PROFILE_FIELDS}
    return render_template(
        "dashboard/duplicates/merge.html",
        supporter=supporter,
        people=people,
        default=default,
        fields=[name for name in PROFILE_FIELDS if len(values[name]) > 1],
        same=[
            (name, next(iter(values[name])))
            for name in PROFILE_FIELDS
            if values[name] - {""} and len(values[name]) == 1
        ],
        missing=[name for name in PROFILE_FIELDS if values[name] == {""}],
        labels=field_labels(),
        others=",".join(str(person.id) for person in people if person.id != supporter.id),
        error=error,
        max_others=merging.MERGE_MAX - 1,
    ), status


@bp.get("/merge/<int:supporter_id>")
@requires("write")
def merge_page(supporter_id: int) -> ResponseReturnValue:
    """Merge this supporter with others (`?others=…`, or its possible duplicates): which one
    stays, and each field's surviving value. With no one to merge with, asks for numbers."""
    supporter = fetch(Supporter, supporter_id)
    others = _others(supporter, request.args)
    people = merging.merge_candidates([supporter.id, *others]) if others else []
    return _merge_page(supporter, people)


def _picked(form: Mapping[str, str], name: str, ids: list[int]) -> int | None:
    """The supporter a radio names: None when it was not sent; refused when it names
    someone who is not being merged."""
    raw = form.get(name)
    if raw is None:
        return None
    picked = whole_number(raw)
    if picked not in ids:
        raise Refused(_BAD_CHOICE)
    return picked


@bp.post("/merge/<int:supporter_id>")
@requires("write")
def merge(supporter_id: int) -> ResponseReturnValue:
    """Merge them as chosen; all or nothing, audited. Then the survivor's page."""
    supporter = fetch(Supporter, supporter_id)
    others = _others(supporter, request.args)
    if not others:
        raise Refused(_BAD_IDS, max=merging.MERGE_MAX)
    people = merging.merge_candidates([supporter.id, *others])
    ids = [person.id for person in people]
    try:
        survivor = _picked(request.form, "survivor", ids)
        if survivor is None:
            raise Refused(_BAD_CHOICE)
        choices = {name: _picked(request.form, f"field_{name}", ids) for name in PROFILE_FIELDS}
        entry = merging.merge(
            acting_staff(), ids, survivor, {name: chosen for name, chosen in choices.items() if chosen is not None}
        )
    except Refused as refused:
        if refused.status == 400:
            return _merge_page(supporter, people, 400, refused.message())
        raise
    flash(_("Merged: %(count)s supporters are now one.", count=len(ids)), "success")
    return redirect(url_for("dashboard.supporters.detail", supporter_id=entry.survivor_id), 303)


@bp.get("/merges/<int:merge_id>")
@requires("view")
def merge_record(merge_id: int) -> ResponseReturnValue:
    """What a merge did: who stayed, who was merged, the values replaced, what moved; undo."""
    entry = fetch(SupporterMerge, merge_id)
    return render_template(
        "dashboard/duplicates/merge_record.html",
        entry=entry,
        labels=field_labels(),
        moved_labels=moved_labels(),
        can_undo=merging.can_undo(entry),
        undo_days=merging.UNDO_DAYS,
    )


@bp.post("/merges/<int:merge_id>/undo")
@requires("write")
def undo(merge_id: int) -> ResponseReturnValue:
    """Undo a merge (within 30 days): both people as they were; audited."""
    entry = fetch(SupporterMerge, merge_id)
    kept = merging.undo(acting_staff(), entry)
    if kept:
        labels = field_labels()
        flash(
            _(
                "The merge was undone. Changed since the merge, so left as they are: %(fields)s.",
                fields=", ".join(labels.get(name, name) for name in kept),
            ),
            "success",
        )
    else:
        flash(_("The merge was undone."), "success")
    return redirect(url_for(".merge_record", merge_id=entry.id), 303)
