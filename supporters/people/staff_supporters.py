"""Dashboard: the supporters list (search, filters, sort, pages), its CSV export,
one supporter's story, and the edits staff make to it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import get_timezone
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from wtforms import EmailField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Email, Length

from supporters.dashboard.access import acting_staff, fetch, requires
from supporters.extensions import db
from supporters.giving import currency, plan_changes
from supporters.lib.dates import in_order, swapped_note
from supporters.lib.errors import Refused
from supporters.lib.exporting import csv_response
from supporters.lib.forms import (
    Form,
    choices,
    country_choices,
    no_control_characters,
    show_refusal,
    strip,
)
from supporters.lib.i18n import current_locale
from supporters.lib.paging import page_count, page_number
from supporters.lib.tags import TAG_MAX, split_tags, tidy_tag
from supporters.models import (
    Campaign,
    Consent,
    Gift,
    PlanStatus,
    RecurringPlan,
    SavedSearch,
    StaffUser,
    Supporter,
    SupporterNote,
    utcnow,
)
from supporters.models.supporter import NEWSLETTER
from supporters.people import consent, duplicates, edits, merging, queries, saved_searches
from supporters.people.queries import SupporterFilters

bp = Blueprint("supporters", __name__, url_prefix="/supporters")

PER_PAGE = 50
#: the list counts matching supporters up to this many, as the gift list counts its gifts
COUNT_CAP = 10_000
#: longer searches are cut: no name or e-mail prefix is longer
Q_MAX = 200
#: dates the period filter accepts (outside them a day is surely a typing slip)
EARLIEST, LATEST = date(1900, 1, 1), date(2999, 12, 31)


# --- Reading the list's filters ---------------------------------------------------


def parse_filters(args: Mapping[str, str]) -> tuple[SupporterFilters, list[str]]:
    """The filters in the query string, and a note for each value that was ignored as invalid."""
    notes: list[str] = []
    # Flask-Babel gives a pytz zone, which datetime.combine() would read at its 1880s offset.
    values: dict[str, Any] = {"timezone": ZoneInfo(str(get_timezone() or "UTC"))}

    def ignored(label: Any, raw: str) -> None:
        shown = raw if len(raw) <= 40 else raw[:40] + "…"
        notes.append(_("%(filter)s: “%(value)s” is not a valid value and was ignored.", filter=label, value=shown))

    values["q"] = " ".join(args.get("q", "").split())[:Q_MAX]
    recurring = args.get("recurring", "").strip()
    if recurring == "active":
        values["recurring_active"] = True
    elif recurring:
        ignored(_("Recurring"), recurring)
    for name, label in (("gave_from", _("Gave from")), ("gave_to", _("Gave until"))):
        raw = args.get(name, "").strip()
        if raw:
            day = _day(raw)
            if day is None:
                ignored(label, raw)
            values[name] = day
    values["gave_from"], values["gave_to"], swapped = in_order(values.get("gave_from"), values.get("gave_to"))
    if swapped:
        notes.append(swapped_note())
    country = args.get("country", "").strip()
    if country:
        if len(country) == 2 and country.isascii() and country.isalpha():
            values["country"] = country.upper()
        else:
            ignored(_("Country"), country)
    tag = " ".join(args.get("tag", "").split())
    if len(tag) > TAG_MAX:
        ignored(_("Tag"), tag)
    elif tag:
        values["tag"] = tag
    newsletter = args.get("newsletter", "").strip()
    if newsletter in ("yes", "no"):
        values["newsletter"] = newsletter == "yes"
    elif newsletter:
        ignored(_("Newsletter"), newsletter)
    sort = args.get("sort", "").strip() or "last_gift"
    if sort not in queries.SORTS:
        ignored(_("Sort by"), sort)
        sort = "last_gift"
    values["sort"] = sort
    direction = args.get("dir", "").strip()
    if direction in ("asc", "desc"):
        values["descending"] = direction == "desc"
    else:
        if direction:
            ignored(_("Order"), direction)
        values["descending"] = queries.DEFAULT_DESCENDING[sort]
    return SupporterFilters(**values), notes


def _day(raw: str) -> date | None:
    if len(raw) != 10:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        return None
    return day if EARLIEST <= day <= LATEST else None


# --- The list and its export -------------------------------------------------------


@bp.get("/")
@requires("view")
def index() -> ResponseReturnValue:
    """Supporters, 50 a page: search, filters and sort from the query string.

    The same five queries whatever the page holds: the page (its ids, then its rows),
    the count (up to COUNT_CAP), which of the page's supporters give every month or year, and the tags in use.
    """
    return _list_page()


def _list_page(save_form: SaveSearchForm | None = None, status: int = 200) -> ResponseReturnValue:
    filters, notes = parse_filters(request.args)
    page = page_number(request.args, notes)
    skipped = (page - 1) * PER_PAGE
    rows = queries.supporter_page(filters, PER_PAGE + 1, skipped)
    more = len(rows) > PER_PAGE
    rows = rows[:PER_PAGE]
    total = queries.count_supporters_up_to(filters, COUNT_CAP)
    if total is None and rows and not more:  # the last page: the total is known after all
        total = skipped + len(rows)
    args = filters.as_args()
    # past COUNT_CAP the number of pages is not known: the page links to the next while there is one
    pages = page_count(total, PER_PAGE) if total is not None else None
    return render_template(
        "dashboard/supporters/index.html",
        supporters=rows,
        recurring=queries.with_active_plan([row.id for row in rows]),
        total=total,
        count_cap=COUNT_CAP,
        page=page,
        pages=pages,
        more=more,
        first=skipped + 1,
        last=skipped + len(rows),
        prev_page=min(page - 1, pages) if pages else page - 1,
        filters=filters,
        args=args,
        notes=notes,
        sort_links=_sort_links(filters, args),
        countries=[("", _("Any country")), *country_choices()[1:]],
        tags=queries.tags_in_use(),
        saved_searches=[
            (search, saved_searches.may_delete(acting_staff(), search)) for search in saved_searches.saved_searches()
        ],
        save_form=save_form or SaveSearchForm(formdata=None),
    ), status


def _sort_links(filters: SupporterFilters, args: dict[str, str]) -> dict[str, dict[str, Any]]:
    """For each sortable column: the address that sorts by it (or flips it), and its aria-sort."""
    links = {}
    for key in queries.SORTS:
        current = key == filters.sort
        descending = not filters.descending if current else queries.DEFAULT_DESCENDING[key]
        target: dict[str, Any] = dict(args, sort=key, dir="desc" if descending else "asc")
        links[key] = {
            "url": url_for(".index", **target),
            "aria": ("descending" if filters.descending else "ascending") if current else None,
        }
    return links


# --- Saved searches ------------------------------------------------------------------------


class SaveSearchForm(Form):
    """A name for the list's current filters (they travel in the address)."""

    name = StringField(_l("Save these filters as"), validators=[Length(max=5000), no_control_characters])


@bp.post("/saved-searches")
@requires("write")
def save_search() -> ResponseReturnValue:
    """Keep the list's current filters under a name the whole team sees; audited."""
    filters, _notes = parse_filters(request.args)
    form = SaveSearchForm()
    if not form.validate_on_submit():
        return _list_page(form, 400)
    try:
        saved = saved_searches.save_search(acting_staff(), filters, form.name.data or "")
    except Refused as refused:
        message = show_refusal(form, refused)
        if message:
            flash(message, "error")
        return _list_page(form, refused.status)
    flash(_("The search “%(name)s” was saved for the whole team.", name=saved.name), "success")
    back: dict[str, Any] = filters.as_args()
    return redirect(url_for(".index", **back), 303)


@bp.post("/saved-searches/<int:saved_search_id>/delete")
@requires("write")
def delete_saved_search(saved_search_id: int) -> ResponseReturnValue:
    """Delete a saved search: whoever saved it, or an admin; audited."""
    saved = fetch(SavedSearch, saved_search_id)
    name = saved.name
    saved_searches.delete_search(acting_staff(), saved)
    flash(_("The saved search “%(name)s” was deleted.", name=name), "success")
    return redirect(url_for(".index"), 303)


# --- A tag for every supporter the list shows ----------------------------------------------


class BulkTagForm(Form):
    """The tag to add to (or remove from) every supporter the list's filters match."""

    bulk_tag = StringField(_l("Tag"), validators=[Length(max=5000), no_control_characters])
    change = SelectField(
        _l("Change"), choices=choices([("add", _l("Add the tag")), ("remove", _l("Remove the tag"))]), default="add"
    )


def _bulk_refused(form: BulkTagForm, filters: SupporterFilters, refused: Refused | None = None) -> ResponseReturnValue:
    """The confirmation page again, with what was wrong, and 400."""
    if refused is not None:
        show_refusal(form, refused)
    return render_template(
        "dashboard/supporters/bulk_tags.html", form=form, filters=filters, args=filters.as_args(), preview=None
    ), 400


@bp.get("/bulk-tags")
@requires("write")
def confirm_bulk_tags() -> ResponseReturnValue:
    """What adding or removing the tag for the list's current filters would do: how many
    supporters match and how many already have the tag; changes nothing. Without a tag
    in the address, the form to type one."""
    filters, _notes = parse_filters(request.args)
    form = BulkTagForm(formdata=request.args, meta={"csrf": False})
    if "bulk_tag" not in request.args:  # opened without a tag: the form to type one
        return render_template(
            "dashboard/supporters/bulk_tags.html", form=form, filters=filters, args=filters.as_args(), preview=None
        )
    if not form.validate():
        return _bulk_refused(form, filters)
    try:
        tag, matched, tagged = edits.bulk_tag_preview(filters, form.bulk_tag.data or "")
    except Refused as refused:
        return _bulk_refused(form, filters, refused)
    return render_template(
        "dashboard/supporters/bulk_tags.html",
        form=form,
        filters=filters,
        args=filters.as_args(),
        preview={"tag": tag, "matched": matched, "tagged": tagged, "add": form.change.data == "add"},
    )


@bp.post("/bulk-tags")
@requires("write")
def bulk_tags() -> ResponseReturnValue:
    """Add (or remove) the tag for every supporter the filters in the address match; audited once."""
    filters, _notes = parse_filters(request.args)
    form = BulkTagForm()
    if not form.validate_on_submit():
        return _bulk_refused(form, filters)
    add = form.change.data == "add"
    try:
        changed = edits.bulk_tag(acting_staff(), filters, form.bulk_tag.data or "", add=add)
    except Refused as refused:
        return _bulk_refused(form, filters, refused)
    tag = tidy_tag(form.bulk_tag.data or "")
    if add:
        flash(_("The tag “%(tag)s” was added to %(count)s supporters.", tag=tag, count=changed), "success")
    else:
        flash(_("The tag “%(tag)s” was removed from %(count)s supporters.", tag=tag, count=changed), "success")
    back: dict[str, Any] = filters.as_args()
    return redirect(url_for(".index", **back), 303)


@bp.post("/export.csv")
@requires("export")
def export() -> ResponseReturnValue:
    """The list's current filters and order (in the address) as CSV, every page, streamed;
    audited first. A POST with the CSRF token, so a link cannot start one."""
    filters, notes = parse_filters(request.args)
    bom = request.form.get("bom") == "1"
    rows = queries.export_supporters(acting_staff(), filters, ignored=notes, bom=bom)
    return csv_response(f"supporters-{utcnow():%Y%m%d-%H%M}.csv", queries.EXPORT_COLUMNS, rows, bom=bom)


# --- One supporter ----------------------------------------------------------------


class ProfileForm(Form):
    """What staff may change about a supporter."""

    name = StringField(
        _l("Full name"), filters=[strip], validators=[DataRequired(), Length(max=200), no_control_characters]
    )
    email = EmailField(
        _l("E-mail"),
        filters=[strip],
        validators=[DataRequired(), Length(max=254), no_control_characters, Email(_l("Enter a valid e-mail address."))],
    )
    country = SelectField(_l("Country"), choices=[])
    language = SelectField(_l("Language"), choices=[])
    address_line1 = StringField(
        _l("Street and number"), filters=[strip], validators=[Length(max=200), no_control_characters]
    )
    address_line2 = StringField(
        _l("Address, second line"), filters=[strip], validators=[Length(max=200), no_control_characters]
    )
    postal_code = StringField(_l("Postal code"), filters=[strip], validators=[Length(max=20), no_control_characters])
    city = StringField(_l("City"), filters=[strip], validators=[Length(max=100), no_control_characters])

    def setup(self, supporter: Supporter) -> None:
        """Fill the choices; a value the supporter already has is always one of them."""
        countries = country_choices()
        if supporter.country and supporter.country not in dict(countries):
            countries.append((supporter.country, supporter.country))
        self.country.choices = choices(countries)
        languages = [(code, language_name(code)) for code in current_app.config["SUPPORTERS_LOCALES"]]
        if supporter.language not in dict(languages):
            languages.append((supporter.language, language_name(supporter.language)))
        self.language.choices = choices(languages)

    def profile_fields(self) -> dict[str, Any]:
        """The submitted values, by profile field."""
        return {name: self[name].data or "" for name in edits.PROFILE_FIELDS}


class NoteForm(Form):
    body = TextAreaField(
        _l("New note"),
        filters=[strip],
        validators=[DataRequired(), Length(min=1, max=edits.NOTE_MAX), no_control_characters],
    )


class NoteEditForm(Form):
    """A note's new text; its length is the rule's to refuse (edits.edit_note)."""

    body = TextAreaField(_l("Note"), filters=[strip], validators=[Length(max=20_000), no_control_characters])


class TagsForm(Form):
    tags = StringField(_l("Change tags"), validators=[Length(max=5000), no_control_characters])


def language_name(code: str) -> str:
    """A language's name in the current language ("pl" -> "Polish"), or its code."""
    try:
        return str(Locale.parse(code).get_display_name(current_locale()) or code)
    except (ValueError, TypeError):
        return code


def country_name(code: str | None) -> str:
    """A country's name in the current language ("PL" -> "Poland"), or its code."""
    if not code:
        return ""
    return str(Locale.parse(current_locale()).territories.get(code, code))


@bp.get("/<int:supporter_id>")
@requires("view")
def detail(supporter_id: int) -> ResponseReturnValue:
    """One supporter's story: profile, totals, gifts, recurring plans, consents, notes, tags.
    A supporter merged into another leads to that one."""
    supporter = fetch(Supporter, supporter_id)
    if supporter.merged_into_id is not None:
        flash(_("Supporter #%(id)s was merged into this one.", id=supporter.id))
        return redirect(url_for(".detail", supporter_id=supporter.merged_into_id), 303)
    return _detail_page(supporter)


def _detail_page(
    supporter: Supporter,
    *,
    profile_form: ProfileForm | None = None,
    note_form: NoteForm | None = None,
    tags_form: TagsForm | None = None,
    status: int = 200,
    merge_offer: int | None = None,
) -> ResponseReturnValue:
    gifts = db.session.execute(
        select(Gift, Campaign.name)
        .outerjoin(Campaign, Campaign.id == Gift.campaign_id)
        .where(Gift.supporter_id == supporter.id)
        .order_by(Gift.created_at.desc(), Gift.id.desc())
    ).all()
    plans = (
        db.session.execute(
            select(RecurringPlan)
            .where(RecurringPlan.supporter_id == supporter.id)
            .order_by(RecurringPlan.created_at.desc(), RecurringPlan.id.desc())
        )
        .scalars()
        .all()
    )
    consents = (
        db.session.execute(
            select(Consent)
            .where(Consent.supporter_id == supporter.id)
            .order_by(Consent.recorded_at.desc(), Consent.id.desc())
        )
        .scalars()
        .all()
    )
    notes = db.session.execute(
        select(SupporterNote, StaffUser.email)
        .outerjoin(StaffUser, StaffUser.id == SupporterNote.staff_user_id)
        .where(SupporterNote.supporter_id == supporter.id)
        .order_by(SupporterNote.created_at.desc(), SupporterNote.id.desc())
    ).all()
    current_consents: dict[str, Consent] = {}
    for decision in consents:
        current_consents.setdefault(decision.purpose, decision)
    tags = sorted((row.tag for row in supporter.tags), key=str.casefold)
    if profile_form is None:
        profile_form = ProfileForm(formdata=None, obj=supporter)
    profile_form.setup(supporter)
    note_form = note_form or NoteForm(formdata=None)
    tags_form = tags_form or TagsForm(formdata=None, data={"tags": ", ".join(tags)})
    erased = supporter.anonymised_at is not None
    town = " ".join(part for part in (supporter.postal_code, supporter.city) if part)
    return render_template(
        "dashboard/supporters/detail.html",
        supporter=supporter,
        erased=erased,
        display_name=_("Erased supporter #%(id)s", id=supporter.id) if erased else supporter.name,
        address=[line for line in (supporter.address_line1, supporter.address_line2, town) if line],
        problems=[field for form in (profile_form, note_form, tags_form) for field in form if field.errors],
        gifts=gifts,
        not_converted=currency.not_converted(supporter.id),
        plans=plans,
        plan_changes=plan_changes.changes_of([plan.id for plan in plans], current_locale()),
        consents=consents,
        newsletter=current_consents.get(NEWSLETTER),
        newsletter_requests=consent.pending_requests(supporter.id),
        notes=notes,
        my_notes={note.id for note, _author in notes if edits.may_change_note(acting_staff(), note)},
        tags=tags,
        recurring_active=any(plan.status is PlanStatus.ACTIVE for plan in plans),
        profile_form=profile_form,
        note_form=note_form,
        tags_form=tags_form,
        country=country_name(supporter.country),
        language=language_name(supporter.language),
        possible_duplicates=duplicates.possible_duplicates(supporter.id),
        merges=merging.merges_of(supporter.id),
        merge_offer=merge_offer,
    ), status


def _refused(supporter: Supporter, refused: Refused, **forms: Any) -> ResponseReturnValue:
    """The page again with the refusal next to its field, or at the top, and its status."""
    [form] = forms.values()
    message = show_refusal(form, refused)
    if message:
        flash(message, "error")
    # an e-mail another supporter has: the page offers to merge the two instead
    return _detail_page(supporter, status=refused.status, merge_offer=refused.params.get("other_id"), **forms)


def _back(supporter: Supporter) -> ResponseReturnValue:
    return redirect(url_for(".detail", supporter_id=supporter.id), 303)


@bp.post("/<int:supporter_id>/profile")
@requires("write")
def edit_profile(supporter_id: int) -> ResponseReturnValue:
    """Change name, e-mail, country, language and postal address; audited with old and new values."""
    supporter = fetch(Supporter, supporter_id)
    form = ProfileForm()
    form.setup(supporter)
    if not form.validate_on_submit():
        return _detail_page(supporter, profile_form=form, status=400)
    try:
        changes = edits.update_profile(acting_staff(), supporter, **form.profile_fields())
    except Refused as refused:
        return _refused(supporter, refused, profile_form=form)
    if not changes:
        flash(_("Nothing was changed."))
        return _back(supporter)
    flash(_("The profile was saved."), "success")
    return _back(supporter)


@bp.post("/<int:supporter_id>/notes")
@requires("write")
def add_note(supporter_id: int) -> ResponseReturnValue:
    """Add a note signed by the staff member; audited."""
    supporter = fetch(Supporter, supporter_id)
    form = NoteForm()
    if not form.validate_on_submit():
        return _detail_page(supporter, note_form=form, status=400)
    try:
        edits.add_note(acting_staff(), supporter, form.body.data or "")
    except Refused as refused:
        return _refused(supporter, refused, note_form=form)
    flash(_("The note was added."), "success")
    return _back(supporter)


def _note_of(supporter: Supporter, note_id: int) -> SupporterNote:
    """The note `note_id` of this supporter, or 404 (a note is never reached through another)."""
    note = fetch(SupporterNote, note_id)
    if note.supporter_id != supporter.id:
        abort(404)
    return note


@bp.post("/<int:supporter_id>/notes/<int:note_id>/edit")
@requires("write")
def edit_note(supporter_id: int, note_id: int) -> ResponseReturnValue:
    """Change a note's text: its author only; marked edited, audited with the old text."""
    supporter = fetch(Supporter, supporter_id)
    note = _note_of(supporter, note_id)
    form = NoteEditForm()
    if not form.validate_on_submit():
        flash(_("The note was not saved: %(reason)s", reason=_form_error(form)), "error")
        return _detail_page(supporter, status=400)
    try:
        changed = edits.edit_note(acting_staff(), supporter, note, form.body.data or "")
    except Refused as refused:
        flash(refused.message(), "error")
        return _detail_page(supporter, status=refused.status)
    flash(_("The note was saved.") if changed else _("Nothing was changed."), "success" if changed else "info")
    return _back(supporter)


@bp.post("/<int:supporter_id>/notes/<int:note_id>/delete")
@requires("write")
def delete_note(supporter_id: int, note_id: int) -> ResponseReturnValue:
    """Delete a note: its author only; its text stays in the audit log."""
    supporter = fetch(Supporter, supporter_id)
    note = _note_of(supporter, note_id)
    try:
        edits.delete_note(acting_staff(), supporter, note)
    except Refused as refused:
        flash(refused.message(), "error")
        return _detail_page(supporter, status=refused.status)
    flash(_("The note was deleted."), "success")
    return _back(supporter)


def _form_error(form: Form) -> str:
    return next((str(error) for field in form for error in field.errors), _("the form could not be read."))


@bp.post("/<int:supporter_id>/tags")
@requires("write")
def set_tags(supporter_id: int) -> ResponseReturnValue:
    """Replace the supporter's tags with the comma-separated list; audited with old and new tags."""
    supporter = fetch(Supporter, supporter_id)
    form = TagsForm()
    if not form.validate_on_submit():
        return _detail_page(supporter, tags_form=form, status=400)
    try:
        added, removed = edits.set_tags(acting_staff(), supporter, split_tags(form.tags.data or ""))
    except Refused as refused:
        return _refused(supporter, refused, tags_form=form)
    if not added and not removed:
        flash(_("Nothing was changed."))
        return _back(supporter)
    flash(_("The tags were saved."), "success")
    return _back(supporter)
