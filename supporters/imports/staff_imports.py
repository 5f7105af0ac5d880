"""Dashboard: importing supporters and their gifts. Upload a supporters file (and a gifts
file), say which column holds what (guessed, or a source's saved mapping), see what each
row will do, then import it all at once; look at any import again."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import defer
from werkzeug.datastructures import FileStorage
from wtforms import FileField, HiddenField, SelectField, StringField
from wtforms.validators import Length

from supporters.dashboard.access import acting_staff, fetch, requires
from supporters.extensions import db
from supporters.imports import mapping as mappings
from supporters.imports import operations
from supporters.imports.preview import SHOWS, preview
from supporters.imports.reading import MAX_FILE_BYTES
from supporters.lib.errors import Refused
from supporters.lib.forms import Form, choices, no_control_characters, show_refusal, strip, whole_number
from supporters.lib.paging import page_count, page_number
from supporters.models import ImportMapping, ImportRun, ImportStatus

bp = Blueprint("imports", __name__, url_prefix="/imports")

PER_PAGE = 30
ROWS_PER_PAGE = 100


class UploadForm(Form):
    """The supporters file and, optionally, their gifts."""

    file = FileField(_l("Supporters file (CSV or XLSX)"))
    gifts_file = FileField(_l("Their gifts (optional, CSV or XLSX)"))


class ImportForm(Form):
    """Confirm the import of what the preview showed."""

    preview_key = HiddenField()


def mapping_form(headers: list[str], gift_headers: list[str] | None, formdata: Any = None) -> Form:
    """The mapping page's form: for each of our fields, a column of the file (or none)."""
    column = [("", _l("— not in the file —")), *((header, header) for header in headers)]
    fields: dict[str, Any] = {
        "name": StringField(_l("Source name"), filters=[strip], validators=[Length(max=100), no_control_characters]),
    }
    for field, label in mappings.SUPPORTER_FIELDS.items():
        fields[f"s_{field}"] = SelectField(label, choices=choices(column))
    if gift_headers is not None:
        fields["gifts_by"] = SelectField(_l("Gifts name their supporter"), choices=choices(mappings.GIFTS_BY.items()))
        gift_column = [("", _l("— not in the file —")), *((header, header) for header in gift_headers)]
        for field, label in mappings.GIFT_FIELDS.items():
            fields[f"g_{field}"] = SelectField(label, choices=choices(gift_column))
    form_class = type("MappingForm", (Form,), fields)
    form: Form = form_class(formdata=formdata) if formdata is not None else form_class()
    return form


def _render_index(form: UploadForm, status: int = 200, error: str | None = None) -> ResponseReturnValue:
    notes: list[str] = []
    page = page_number(request.args, notes)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(ImportRun)) or 0
    runs = db.session.scalars(
        sa.select(ImportRun)
        .options(defer(ImportRun.content), defer(ImportRun.gifts_content))
        .order_by(ImportRun.id.desc())
        .limit(PER_PAGE)
        .offset((page - 1) * PER_PAGE)
    ).all()
    return (
        render_template(
            "dashboard/imports/index.html",
            form=form,
            runs=runs,
            page=page,
            pages=page_count(total, PER_PAGE),
            notes=notes,
            error=error,
            max_mb=MAX_FILE_BYTES // (1024 * 1024),
        ),
        status,
    )


@bp.get("/")
@requires("write")
def index() -> ResponseReturnValue:
    """The imports, newest first, and the upload form."""
    return _render_index(UploadForm())


def _read(file: Any) -> bytes | None:
    if not isinstance(file, FileStorage) or not file.filename:
        return None
    return file.read(MAX_FILE_BYTES + 1)


@bp.post("/upload")
@requires("write")
def upload() -> ResponseReturnValue:
    """Keep the uploaded files and ask which column holds what."""
    form = UploadForm()
    content, gifts = _read(form.file.data), _read(form.gifts_file.data)
    if not form.validate() or content is None:
        if content is None:
            form.file.errors = [*form.file.errors, _("Choose the supporters file to upload.")]
        return _render_index(form, 400)
    try:
        if len(content) > MAX_FILE_BYTES or (gifts is not None and len(gifts) > MAX_FILE_BYTES):
            raise Refused(_l("A file has at most %(mb)d MB."), field="file", mb=MAX_FILE_BYTES // (1024 * 1024))
        run = operations.upload(
            content,
            file_name=form.file.data.filename,
            gifts_content=gifts,
            gifts_file_name=form.gifts_file.data.filename if gifts is not None else None,
            actor=acting_staff(),
        )
    except Refused as refused:
        return _render_index(form, refused.status, show_refusal(form, refused))
    return redirect(url_for("dashboard.imports.columns", run_id=run.id), 303)


def _uploaded(run_id: int) -> ImportRun:
    run = fetch(ImportRun, run_id)
    if run.status is ImportStatus.IMPORTED:
        raise Refused(_l("This file was imported already."), status=409)
    return run


def _render_columns(run: ImportRun, form: Form, status: int = 200, error: str | None = None) -> ResponseReturnValue:
    supporters, gifts = operations.tables(run)
    return (
        render_template(
            "dashboard/imports/mapping.html",
            run=run,
            form=form,
            headers=supporters.headers,
            gift_headers=gifts.headers if gifts else None,
            saved=mappings.all_mappings(),
            supporter_fields=mappings.SUPPORTER_FIELDS,
            gift_fields=mappings.GIFT_FIELDS,
            error=error,
        ),
        status,
    )


@bp.get("/<int:run_id>/columns")
@requires("write")
def columns(run_id: int) -> ResponseReturnValue:
    """Which column holds what: a source's saved mapping (?source=), the one in use, or a guess."""
    run = _uploaded(run_id)
    supporters, gifts = operations.tables(run)
    form = mapping_form(supporters.headers, gifts.headers if gifts else None)
    chosen: ImportMapping | None = None
    source_id = whole_number(request.args.get("source"))
    if source_id is not None:
        chosen = db.session.get(ImportMapping, source_id)
    chosen = chosen or run.mapping
    if chosen is not None:
        supporter_columns, gift_columns = chosen.supporter_columns, chosen.gift_columns
        form["name"].data = chosen.name
        if "gifts_by" in form:
            form["gifts_by"].data = chosen.gifts_by
    else:
        supporter_columns = mappings.guess_supporters(supporters.headers)
        gift_columns = mappings.guess_gifts(gifts.headers) if gifts else {}
        if "gifts_by" in form:
            form["gifts_by"].data = "source_id" if "source_id" in supporter_columns else "email"
    for field, header in supporter_columns.items():
        if header in supporters.headers and f"s_{field}" in form:
            form[f"s_{field}"].data = header
    for field, header in gift_columns.items():
        if gifts and header in gifts.headers and f"g_{field}" in form:
            form[f"g_{field}"].data = header
    return _render_columns(run, form)


@bp.post("/<int:run_id>/columns")
@requires("write")
def save_columns(run_id: int) -> ResponseReturnValue:
    """Save the mapping under the source's name, and preview the file with it."""
    run = _uploaded(run_id)
    supporters, gifts = operations.tables(run)
    form = mapping_form(supporters.headers, gifts.headers if gifts else None, formdata=request.form)
    if not form.validate():
        return _render_columns(run, form, 400)
    data = form.data
    try:
        chosen = mappings.save_mapping(
            data["name"] or "",
            supporter_columns={field: data[f"s_{field}"] for field in mappings.SUPPORTER_FIELDS},
            gift_columns={field: data[f"g_{field}"] for field in mappings.GIFT_FIELDS} if gifts else {},
            gifts_by=data.get("gifts_by") or "source_id",
            actor=acting_staff(),
            supporter_headers=supporters.headers,
            gift_headers=gifts.headers if gifts else None,
        )
        operations.use_mapping(run, chosen)
    except Refused as refused:
        return _render_columns(run, form, refused.status, show_refusal(form, refused))
    return redirect(url_for("dashboard.imports.detail", run_id=run.id), 303)


@bp.get("/<int:run_id>")
@requires("write")
def detail(run_id: int) -> ResponseReturnValue:
    """Before the import, what it will do to each row (errors first); after, what it did."""
    run = fetch(ImportRun, run_id)
    if run.status is ImportStatus.IMPORTED:
        return render_template("dashboard/imports/done.html", run=run)
    if run.mapping is None:
        return redirect(url_for("dashboard.imports.columns", run_id=run.id), 303)
    notes: list[str] = []
    page = page_number(request.args, notes)
    source = operations.source_of(run)
    asked = request.args.get("show") or ""
    # errors first; with none, every row
    show = asked if asked in SHOWS else "auto"
    planned = preview(source, show=show, offset=(page - 1) * ROWS_PER_PAGE, limit=ROWS_PER_PAGE)
    form = ImportForm(formdata=None)
    form.preview_key.data = operations.key_of(run, source)
    return render_template(
        "dashboard/imports/preview.html",
        run=run,
        preview=planned,
        show=planned.show,
        shows=SHOWS,
        form=form,
        page=page,
        pages=page_count(planned.shown, ROWS_PER_PAGE),
        notes=notes,
    )


@bp.post("/<int:run_id>/import")
@requires("write")
def commit(run_id: int) -> ResponseReturnValue:
    """Import what the preview showed, all at once or not at all."""
    run = _uploaded(run_id)
    form = ImportForm()
    if not form.validate() or not form.preview_key.data:
        raise Refused(_l("Look at the preview, then import from it."))
    operations.import_run(run, operations.source_of(run), actor=acting_staff(), seen_key=form.preview_key.data)
    counts = run.counts
    flash(
        _(
            "Imported. New supporters: %(new)d; matched by e-mail: %(match)d; new gifts: %(gifts)d.",
            new=counts["supporters"]["new"],
            match=counts["supporters"]["match"],
            gifts=counts["gifts"]["new"],
        ),
        "success",
    )
    return redirect(url_for("dashboard.imports.detail", run_id=run.id), 303)
