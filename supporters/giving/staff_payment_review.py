"""Dashboard: payments to review. Stripe events that were kept but counted nowhere (a
payment that is not the session, intent, amount or currency we asked for; an event we
could not read), what was expected and what came, and marking one reviewed."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, TextAreaField
from wtforms.validators import DataRequired, Length

from supporters.dashboard.access import acting_staff, requires
from supporters.giving import payment_review
from supporters.giving.staff_gifts import stripe_dashboard_url
from supporters.lib.errors import Refused
from supporters.lib.forms import Form, no_control_characters, whole_number
from supporters.lib.paging import page_count, page_number

bp = Blueprint("payment_review", __name__, url_prefix="/payments-to-review")

PER_PAGE = 50


class ReviewForm(Form):
    """Close the review of one event, saying what was done about it."""

    event_id = HiddenField(validators=[DataRequired(), Length(max=255), no_control_characters])
    note = TextAreaField(
        _l("What did you do?"),
        validators=[
            DataRequired(_l("Say what you did about this event.")),
            Length(max=payment_review.NOTE_LENGTH),
            no_control_characters,
        ],
    )


def _filters(notes: list[str]) -> payment_review.ReviewFilters:
    raw = (request.args.get("gift") or "").strip()
    gift_id = whole_number(raw) if raw else None
    if raw and gift_id is None:
        notes.append(_("Ignored the gift “%(value)s”: showing the events of every gift.", value=raw[:40]))
    return payment_review.ReviewFilters(reviewed=request.args.get("show") == "reviewed", gift_id=gift_id)


def _render(form: ReviewForm | None = None, status: int = 200, error: str | None = None) -> ResponseReturnValue:
    notes: list[str] = []
    filters = _filters(notes)
    page = page_number(request.args, notes)
    total = payment_review.count_to_review(filters)
    pages = page_count(total, PER_PAGE)
    page = min(page, pages)
    events = payment_review.events_to_review(filters, PER_PAGE, (page - 1) * PER_PAGE)
    return render_template(
        "dashboard/payments/review.html",
        events=events,
        received={event.id: payment_review.received(event) for event in events},
        stripe_urls={
            event.id: stripe_dashboard_url("events", event.id) for event in events if event.id.startswith("evt_")
        },
        reviewers=payment_review.reviewers(events),
        filters=filters,
        notes=notes,
        total=total,
        page=page,
        pages=pages,
        form=form,
        error=error,
    ), status


@bp.get("/")
@requires("view")
def index() -> ResponseReturnValue:
    """The events waiting for review, newest first (or those reviewed, with who and why)."""
    return _render()


@bp.post("/reviewed")
@requires("write")
def reviewed() -> ResponseReturnValue:
    """Mark one event reviewed, with a note of what was done."""
    form = ReviewForm()
    if not form.validate():
        return _render(form, 400, error=_("Say what you did about this event (at most 500 characters)."))
    try:
        payment_review.mark_reviewed(form.event_id.data or "", form.note.data or "", acting_staff())
    except Refused as refused:
        return _render(form, refused.status, error=refused.message())
    flash(_("The event was marked reviewed."), "info")
    return redirect(url_for(".index", gift=request.args.get("gift") or None), 303)
