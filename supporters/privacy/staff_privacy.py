"""Dashboard: privacy requests. The log (open first, by deadline), logging a request, one
request with its access export, erasure and answer; a supporter's privacy page, from
which an export or an erasure logs its own request (docs/privacy.md)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import DateField, EmailField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from supporters import payments
from supporters.dashboard.access import acting_staff, fetch, requires
from supporters.extensions import db
from supporters.lib.dates import org_today
from supporters.lib.errors import Refused
from supporters.lib.forms import Form, choices, no_control_characters, show_refusal, strip, whole_number
from supporters.models import PrivacyRequest, RequestKind, RequestStatus, Supporter
from supporters.privacy import access, erasure, operations, requests

bp = Blueprint("privacy", __name__, url_prefix="/privacy")

KIND_LABELS = {
    RequestKind.ACCESS: _l("Access (a copy of their data)"),
    RequestKind.ERASURE: _l("Erasure"),
    RequestKind.RECTIFICATION: _l("Rectification"),
    RequestKind.OBJECTION: _l("Objection"),
}


class RequestForm(Form):
    """A request as it arrived."""

    kind = SelectField(
        _l("What they ask for"), choices=choices((kind.value, label) for kind, label in KIND_LABELS.items())
    )
    received_on = DateField(_l("Received on"), validators=[InputRequired(_l("Enter the day it arrived."))])
    requester_name = StringField(
        _l("Their name, as given"), filters=[strip], validators=[Length(max=200), no_control_characters]
    )
    requester_email = EmailField(
        _l("Their e-mail address, as given"), filters=[strip], validators=[Length(max=320), no_control_characters]
    )
    supporter_id = StringField(_l("Supporter number (if known)"), filters=[strip], validators=[Length(max=12)])
    notes = TextAreaField(_l("Notes"), filters=[strip], validators=[Length(max=5000), no_control_characters])


class LinkForm(Form):
    supporter_id = StringField(
        _l("Supporter number"), filters=[strip], validators=[DataRequired(_l("Enter the supporter's number."))]
    )


class CloseForm(Form):
    outcome = TextAreaField(
        _l("What was done"),
        filters=[strip],
        validators=[DataRequired(_l("Say what was done.")), Length(max=5000), no_control_characters],
    )


class ExportForm(Form):
    """Shown beside the erasure form on one page: both are used with a prefix (export-, erase-)."""

    received_on = DateField(_l("Request received on"), validators=[Optional()])


class EraseForm(Form):
    received_on = DateField(_l("Request received on"), validators=[Optional()])
    confirmation = StringField(
        _l("Type the supporter's e-mail address to confirm"),
        filters=[strip],
        validators=[DataRequired(_l("Type the supporter's e-mail address to confirm.")), Length(max=320)],
    )


def _supporter_by_number(raw: str | None, field: str) -> Supporter | None:
    if not raw:
        return None
    number = whole_number(raw)
    supporter = db.session.get(Supporter, number) if number is not None else None
    if supporter is None:
        raise Refused(_l("There is no supporter with this number."), field=field)
    return supporter


def _zip(export: access.Export) -> Response:
    response = Response(export.content, mimetype="application/zip")
    response.headers["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    return response


@bp.get("/")
@requires("view")
def index() -> ResponseReturnValue:
    """The request log: open requests by deadline, then the closed ones."""
    raw = request.args.get("status", "")
    status = RequestStatus(raw) if raw in {item.value for item in RequestStatus} else None
    return render_template(
        "dashboard/privacy/index.html",
        rows=requests.requests_page(status),
        status=status,
        health=requests.open_request_health(),
        today=org_today(),
        kinds=KIND_LABELS,
    )


def _render_new(form: RequestForm, status: int = 200, error: str | None = None) -> ResponseReturnValue:
    return render_template("dashboard/privacy/new.html", form=form, error=error), status


@bp.get("/new")
@requires("write")
def new() -> ResponseReturnValue:
    """The form to log a request as it arrived."""
    return _render_new(RequestForm(formdata=None, data={"received_on": org_today()}))


@bp.post("/new")
@requires("write")
def create() -> ResponseReturnValue:
    form = RequestForm()
    if not form.validate():
        return _render_new(form, 400)
    try:
        logged = requests.log_request(
            acting_staff(),
            RequestKind(form.kind.data),
            received_on=form.received_on.data,
            requester_name=form.requester_name.data or "",
            requester_email=form.requester_email.data or "",
            supporter=_supporter_by_number(form.supporter_id.data, "supporter_id"),
            notes=form.notes.data or "",
        )
    except Refused as refused:
        return _render_new(form, refused.status, show_refusal(form, refused))
    flash(_("The request was logged. It is due on %(date)s.", date=logged.due_on.isoformat()), "info")
    return redirect(url_for(".detail", request_id=logged.id), 303)


def _render_detail(
    logged: PrivacyRequest,
    *,
    link_form: LinkForm | None = None,
    close_form: CloseForm | None = None,
    erase_form: EraseForm | None = None,
    status: int = 200,
    error: str | None = None,
) -> ResponseReturnValue:
    supporter = logged.supporter
    return render_template(
        "dashboard/privacy/detail.html",
        logged=logged,
        supporter=supporter,
        kinds=KIND_LABELS,
        today=org_today(),
        link_form=link_form or LinkForm(formdata=None, data={"supporter_id": logged.supporter_id or ""}),
        close_form=close_form or CloseForm(formdata=None),
        erase_form=erase_form or EraseForm(formdata=None, prefix="erase"),
        retained_until=erasure.retained_until(supporter) if supporter is not None else None,
        error=error,
    ), status


@bp.get("/<int:request_id>")
@requires("view")
def detail(request_id: int) -> ResponseReturnValue:
    """One request: who asked, when it is due, and what can be done about it."""
    return _render_detail(fetch(PrivacyRequest, request_id))


@bp.post("/<int:request_id>/supporter")
@requires("write")
def link(request_id: int) -> ResponseReturnValue:
    """Say which supporter the request is about."""
    logged = fetch(PrivacyRequest, request_id)
    form = LinkForm()
    if not form.validate():
        return _render_detail(logged, link_form=form, status=400)
    try:
        supporter = _supporter_by_number(form.supporter_id.data, "supporter_id")
        assert supporter is not None
        requests.link_supporter(acting_staff(), logged, supporter)
    except Refused as refused:
        return _render_detail(logged, link_form=form, status=refused.status, error=show_refusal(form, refused))
    return redirect(url_for(".detail", request_id=logged.id), 303)


@bp.post("/<int:request_id>/export")
@requires("export")
def export(request_id: int) -> ResponseReturnValue:
    """Download the supporter's data (a ZIP) for the request."""
    logged = fetch(PrivacyRequest, request_id)
    if not Form().validate():
        return _render_detail(logged, status=400, error=_("The form expired. Try again."))
    try:
        return _zip(operations.export_for_request(acting_staff(), logged))
    except Refused as refused:
        return _render_detail(logged, status=refused.status, error=refused.message())


def _stripe_failed(exc: Exception) -> str:
    current_app.logger.warning("erasure: deleting the Stripe customer failed: %s", exc)
    return _(
        "Stripe did not delete the customer (%(reason)s). Nothing was erased; you can try again in a minute.",
        reason=str(exc)[:300],
    )


@bp.post("/<int:request_id>/erase")
@requires("write")
def erase(request_id: int) -> ResponseReturnValue:
    """Erase the supporter an erasure request is about (the e-mail address typed to confirm)."""
    logged = fetch(PrivacyRequest, request_id)
    form = EraseForm(prefix="erase")
    if not form.validate():
        return _render_detail(logged, erase_form=form, status=400)
    try:
        operations.erase_for_request(acting_staff(), logged, payments.gateway(), form.confirmation.data or "")
    except Refused as refused:
        return _render_detail(logged, erase_form=form, status=refused.status, error=show_refusal(form, refused))
    except payments.PaymentsUnavailable as exc:
        return _render_detail(logged, erase_form=form, status=502, error=_stripe_failed(exc))
    flash(_("The supporter's personal data was erased and the request closed."), "info")
    return redirect(url_for(".detail", request_id=logged.id), 303)


@bp.post("/<int:request_id>/close")
@requires("write")
def close(request_id: int) -> ResponseReturnValue:
    """Answer the request: what was done."""
    logged = fetch(PrivacyRequest, request_id)
    form = CloseForm()
    if not form.validate():
        return _render_detail(logged, close_form=form, status=400)
    try:
        requests.close_request(acting_staff(), logged, form.outcome.data or "")
    except Refused as refused:
        return _render_detail(logged, close_form=form, status=refused.status, error=show_refusal(form, refused))
    flash(_("The request was closed."), "info")
    return redirect(url_for(".detail", request_id=logged.id), 303)


def _render_supporter(
    supporter: Supporter,
    *,
    export_form: ExportForm | None = None,
    erase_form: EraseForm | None = None,
    status: int = 200,
    error: str | None = None,
) -> ResponseReturnValue:
    today = org_today()
    return render_template(
        "dashboard/privacy/supporter.html",
        supporter=supporter,
        erased=supporter.anonymised_at is not None,
        logged=requests.requests_of(supporter),
        kinds=KIND_LABELS,
        export_form=export_form or ExportForm(formdata=None, prefix="export", data={"received_on": today}),
        erase_form=erase_form or EraseForm(formdata=None, prefix="erase", data={"received_on": today}),
        retained_until=erasure.retained_until(supporter),
        error=error,
    ), status


@bp.get("/supporters/<int:supporter_id>")
@requires("view")
def supporter_page(supporter_id: int) -> ResponseReturnValue:
    """A supporter's privacy requests, and their access export and erasure."""
    return _render_supporter(fetch(Supporter, supporter_id))


@bp.post("/supporters/<int:supporter_id>/export")
@requires("export")
def supporter_export(supporter_id: int) -> ResponseReturnValue:
    """Log an access request for the supporter and download their data."""
    supporter = fetch(Supporter, supporter_id)
    form = ExportForm(prefix="export")
    if not form.validate():
        return _render_supporter(supporter, export_form=form, status=400)
    try:
        export = operations.export_for_supporter(acting_staff(), supporter, form.received_on.data or org_today())
    except Refused as refused:
        return _render_supporter(supporter, export_form=form, status=refused.status, error=show_refusal(form, refused))
    return _zip(export)


@bp.post("/supporters/<int:supporter_id>/erase")
@requires("write")
def supporter_erase(supporter_id: int) -> ResponseReturnValue:
    """Log an erasure request for the supporter and carry it out."""
    supporter = fetch(Supporter, supporter_id)
    form = EraseForm(prefix="erase")
    if not form.validate():
        return _render_supporter(supporter, erase_form=form, status=400)
    try:
        logged, _done = operations.erase_for_supporter(
            acting_staff(),
            supporter,
            payments.gateway(),
            form.confirmation.data or "",
            form.received_on.data or org_today(),
        )
    except Refused as refused:
        return _render_supporter(supporter, erase_form=form, status=refused.status, error=show_refusal(form, refused))
    except payments.PaymentsUnavailable as exc:
        return _render_supporter(supporter, erase_form=form, status=502, error=_stripe_failed(exc))
    flash(_("The supporter's personal data was erased and the request closed."), "info")
    return redirect(url_for(".detail", request_id=logged.id), 303)
