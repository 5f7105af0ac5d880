"""Dashboard: bank statements. Upload a statement (MT940 or a bank's CSV), see what
importing it would do, import it, look at any import again, and decide about the lines
left for a person: a gift of a supporter (suggested, found by e-mail, or new), or not a
gift."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import FileStorage
from wtforms import EmailField, FileField, HiddenField, SelectField, StringField
from wtforms.validators import DataRequired, Email, Length, Optional

from supporters.bank import imports, queries
from supporters.bank.formats import MAX_FILE_BYTES, layouts
from supporters.dashboard.access import acting_staff, fetch, requires
from supporters.extensions import db
from supporters.lib.errors import Refused
from supporters.lib.forms import Form, choices, no_control_characters, show_refusal, strip, whole_number
from supporters.lib.paging import page_count, page_number
from supporters.models import BankLine, BankStatement, LineStatus, StatementStatus, Supporter, normalise_email
from supporters.people import edits

bp = Blueprint("bank", __name__, url_prefix="/bank")

PER_PAGE = 30
LINES_PER_PAGE = 100

FORMAT_CHOICES = [("mt940", _l("MT940")), ("csv", _l("CSV"))]


class StatementUploadForm(Form):
    """A statement file, its format, and for CSV the bank whose layout it has."""

    file = FileField(_l("Statement file"))
    format = SelectField(_l("Format"), choices=choices(FORMAT_CHOICES))
    preset = SelectField(_l("Bank (for CSV)"), choices=[])


class ImportForm(Form):
    """Confirm the import of the statement previewed."""


class LineGiftForm(Form):
    """Whose gift a line is: the suggested supporter, one found by e-mail, or a new one."""

    supporter_id = HiddenField()
    email = EmailField(
        _l("Supporter's e-mail"),
        filters=[strip],
        validators=[Optional(), Length(max=254), no_control_characters, Email(_l("Enter a valid e-mail address."))],
    )
    name = StringField(
        _l("Name (for a new supporter)"), filters=[strip], validators=[Length(max=200), no_control_characters]
    )


class NotAGiftForm(Form):
    reason = StringField(
        _l("What is it?"),
        filters=[strip],
        validators=[DataRequired(_l("Say what the money is.")), Length(max=500), no_control_characters],
    )


def _upload_form() -> StatementUploadForm:
    form = StatementUploadForm()
    form.preset.choices = choices((key, layout.label) for key, layout in layouts().items())
    return form


def _render_index(form: StatementUploadForm, status: int = 200, error: str | None = None) -> ResponseReturnValue:
    notes: list[str] = []
    page = page_number(request.args, notes)
    statements, total = queries.statements_page(page, PER_PAGE)
    return (
        render_template(
            "bank/index.html",
            form=form,
            statements=statements,
            total=total,
            page=page,
            pages=page_count(total, PER_PAGE),
            notes=notes,
            error=error,
            open_lines=imports.open_lines_count(),
            max_mb=MAX_FILE_BYTES // (1024 * 1024),
        ),
        status,
    )


@bp.get("/")
@requires("finance")
def index() -> ResponseReturnValue:
    """The imports, newest first, and the upload form."""
    return _render_index(_upload_form())


@bp.post("/upload")
@requires("write")
def upload() -> ResponseReturnValue:
    """Keep the uploaded file and show what importing it would do."""
    form = _upload_form()
    file = form.file.data
    if not form.validate() or not isinstance(file, FileStorage) or not file.filename:
        if not isinstance(file, FileStorage) or not file.filename:
            form.file.errors = [*form.file.errors, _("Choose the statement file to upload.")]
        return _render_index(form, 400)
    content = file.read(MAX_FILE_BYTES + 1)
    try:
        statement = imports.upload_statement(
            content,
            file_name=file.filename,
            file_format=form.format.data or "",
            preset=form.preset.data,
            actor=acting_staff(),
        )
    except Refused as refused:
        return _render_index(form, refused.status, show_refusal(form, refused))
    return redirect(url_for("dashboard.bank.statement", statement_id=statement.id), 303)


@bp.get("/statements/<int:statement_id>")
@requires("finance")
def statement(statement_id: int) -> ResponseReturnValue:
    """Before the import, what it would do to each line; after, each line and what became of it."""
    row = fetch(BankStatement, statement_id)
    notes: list[str] = []
    page = page_number(request.args, notes)
    if row.status is StatementStatus.UPLOADED:
        try:
            planned = imports.statement_preview(row)
        except Refused as refused:  # a preset configured then removed, say
            return render_template("bank/statement.html", statement=row, error=refused.message()), 409
        proposals = planned.proposals[(page - 1) * LINES_PER_PAGE : page * LINES_PER_PAGE]
        return render_template(
            "bank/preview.html",
            statement=row,
            preview=planned,
            proposals=proposals,
            form=ImportForm(),
            page=page,
            pages=page_count(len(planned.proposals), LINES_PER_PAGE),
            notes=notes,
        )
    show = request.args.get("show") or "all"
    show = show if show in queries.SHOWS else "all"
    lines, total = queries.lines_page(row.id, show, page, LINES_PER_PAGE)
    return render_template(
        "bank/statement.html",
        statement=row,
        lines=lines,
        show=show,
        total=total,
        page=page,
        pages=page_count(total, LINES_PER_PAGE),
        notes=notes,
    )


@bp.post("/statements/<int:statement_id>/import")
@requires("write")
def import_statement(statement_id: int) -> ResponseReturnValue:
    """Import the previewed statement: sure matches paid, the rest left for staff."""
    row = fetch(BankStatement, statement_id)
    imports.import_statement(row, actor=acting_staff())
    flash(
        _(
            "Imported. New lines: %(new)d; pledges paid: %(paid)d; waiting for you: %(open)d.",
            new=row.new_count,
            paid=row.paid_count,
            open=row.open_count,
        ),
        "success",
    )
    return redirect(url_for("dashboard.bank.statement", statement_id=row.id, show="open"), 303)


def _render_line(
    line: BankLine,
    gift_form: LineGiftForm | None = None,
    not_gift_form: NotAGiftForm | None = None,
    status: int = 200,
    error: str | None = None,
) -> ResponseReturnValue:
    return (
        render_template(
            "bank/line.html",
            line=line,
            gift_form=gift_form or LineGiftForm(formdata=None),
            not_gift_form=not_gift_form or NotAGiftForm(formdata=None),
            error=error,
            decidable=line.status in (LineStatus.OPEN, LineStatus.SKIPPED),
        ),
        status,
    )


@bp.get("/lines/<int:line_id>")
@requires("finance")
def line(line_id: int) -> ResponseReturnValue:
    """One line: what the bank says, what the matching found, and what staff may decide."""
    return _render_line(fetch(BankLine, line_id))


def _supporter_for(form: LineGiftForm) -> Supporter | None:
    """The supporter the form names (by id, else by e-mail; created with the name if new),
    or None with the reason at the field."""
    supporter_id = whole_number(form.supporter_id.data)
    if supporter_id is not None:
        found = db.session.get(Supporter, supporter_id)
        if found is not None:
            return found
    if not form.email.data:
        form.email.errors = [*form.email.errors, _("Enter the supporter's e-mail address.")]
        return None
    known = db.session.scalar(sa.select(Supporter).filter_by(email_normalised=normalise_email(form.email.data)))
    if known is not None:
        return edits.surviving(known)
    if not form.name.data:
        form.name.errors = [
            *form.name.errors,
            _("There is no supporter with this e-mail yet: enter their name to add them."),
        ]
        return None
    return edits.find_or_create_supporter(form.email.data, form.name.data)


@bp.post("/lines/<int:line_id>/gift")
@requires("write")
def record_gift(line_id: int) -> ResponseReturnValue:
    """Record the line as an offline gift of the supporter chosen."""
    row = fetch(BankLine, line_id)
    form = LineGiftForm()
    if not form.validate():
        return _render_line(row, gift_form=form, status=400)
    supporter = _supporter_for(form)
    if supporter is None:
        return _render_line(row, gift_form=form, status=400)
    try:
        imports.record_line_as_gift(row, supporter, actor=acting_staff())
    except Refused as refused:
        return _render_line(row, gift_form=form, status=refused.status, error=show_refusal(form, refused))
    flash(_("Recorded as a gift of %(name)s; the receipt is on its way.", name=supporter.name), "success")
    return redirect(_back_to(row), 303)


@bp.post("/lines/<int:line_id>/not-a-gift")
@requires("write")
def not_a_gift(line_id: int) -> ResponseReturnValue:
    """Mark the line as no gift (interest, a refund, a fee), saying what it is."""
    row = fetch(BankLine, line_id)
    form = NotAGiftForm()
    if not form.validate():
        return _render_line(row, not_gift_form=form, status=400)
    try:
        imports.mark_not_a_gift(row, reason=form.reason.data or "", actor=acting_staff())
    except Refused as refused:
        return _render_line(row, not_gift_form=form, status=refused.status, error=show_refusal(form, refused))
    flash(_("Marked as not a gift."), "success")
    return redirect(_back_to(row), 303)


def _back_to(line: BankLine) -> Any:
    return url_for("dashboard.bank.statement", statement_id=line.statement_id, show="open")
