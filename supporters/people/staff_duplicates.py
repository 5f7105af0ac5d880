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


def _merge_ids(args: Mapping[str, str]) -> list[int]:
    """The supporters named in the address (`?ids=12,40`), or refused."""
    raw = (args.get("ids") or "").split(",")
    ids = [whole_number(part.strip()) for part in raw if part.strip()]
    if not 2 <= len(ids) <= merging.MERGE_MAX or None in ids:
        raise Refused(_BAD_IDS, max=merging.MERGE_MAX)
    return sorted({supporter_id for supporter_id in ids if supporter_id is not None})


def _merge_page(people: list[Supporter], status: int = 200, error: str | None = None) -> ResponseReturnValue:
    default = max(people, key=lambda person: (person.gift_count, -person.id))
    return render_template(
        "dashboard/duplicates/merge.html",
        people=people,
        default=default,
        fields=PROFILE_FIELDS,
        labels=field_labels(),
        ids=",".join(str(person.id) for person in people),
        error=error,
    ), status


@bp.get("/merge")
@requires("write")
def merge_page() -> ResponseReturnValue:
    """Merge these supporters (`?ids=…`): which one stays, and each field's surviving value."""
    return _merge_page(merging.merge_candidates(_merge_ids(request.args)))


@bp.post("/merge")
@requires("write")
def merge() -> ResponseReturnValue:
    """Merge them as chosen; all or nothing, audited. Then the survivor's page."""
    ids = _merge_ids(request.args)
    people = merging.merge_candidates(ids)
    survivor = whole_number(request.form.get("survivor"))
    choices = {name: whole_number(request.form.get(f"field_{name}")) for name in PROFILE_FIELDS}
    if survivor not in ids or any(chosen is not None and chosen not in ids for chosen in choices.values()):
        return _merge_page(people, 400, str(_BAD_CHOICE))
    try:
        entry = merging.merge(
            acting_staff(),
            ids,
            survivor,
            {name: chosen for name, chosen in choices.items() if chosen is not None},
        )
    except Refused as refused:
        if refused.status == 400:
            return _merge_page(people, 400, refused.message())
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
