"""Dashboard: the payments' health. Is money flowing, and what needs a person? The
last webhook and its lag, events kept for review or waiting for an object, gifts
pending too long, plans past due, and what `stripe reconcile` would change (asked of
Stripe on demand, never on page load: listing a week of events is slow), with a
button that applies it."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from supporters.dashboard.access import acting_staff, requires
from supporters.giving import health, reconcile
from supporters.giving.staff_gifts import stripe_dashboard_url
from supporters.lib.forms import Form
from supporters.models import utcnow

bp = Blueprint("health", __name__, url_prefix="/health")


class ReconcileForm(Form):
    """Apply what reconcile found (the form carries only its CSRF token)."""


def _render(
    preview: reconcile.Report | None = None, status: int = 200, error: str | None = None
) -> ResponseReturnValue:
    report = health.health()
    events = [*report.to_review.rows, *report.waiting.rows, *report.mismatches.rows, *report.paid_twice.rows]
    events += [due.last_failure for due in report.past_due.rows if due.last_failure is not None]
    if report.last_webhook is not None:
        events.append(report.last_webhook.event)
    payments = [change.reference for change in preview.changes if change.kind == "gift"] if preview else []
    references = [change.reference for change in preview.changes if change.kind == "event"] if preview else []
    return render_template(
        "dashboard/health/index.html",
        report=report,
        preview=preview,
        window_days=reconcile.PAGE_WINDOW.days,
        page_limit=reconcile.PAGE_LIMIT,
        stripe_urls={
            reference: stripe_dashboard_url("events", reference)
            for reference in [event.id for event in events] + references
            if reference.startswith("evt_")
        }
        | {reference: stripe_dashboard_url("payments", reference) for reference in payments},
        error=error,
    ), status


@bp.get("/")
@requires("finance")
def index() -> ResponseReturnValue:
    """The payments' health, read from our own records."""
    return _render()


@bp.get("/reconcile")
@requires("finance")
def preview() -> ResponseReturnValue:
    """The page with what reconcile would change for the last 7 days: a dry run, nothing changed."""
    since = utcnow() - reconcile.PAGE_WINDOW
    return _render(reconcile.reconcile(since, dry_run=True, actor=None, limit=reconcile.PAGE_LIMIT))


@bp.post("/reconcile")
@requires("finance")
def apply() -> ResponseReturnValue:
    """Apply reconcile for the last 7 days (audited), and say what it did."""
    form = ReconcileForm()
    if not form.validate():
        return _render(status=400, error=_("The form expired; check with Stripe again, then apply."))
    since = utcnow() - reconcile.PAGE_WINDOW
    done = reconcile.reconcile(since, dry_run=False, actor=acting_staff(), limit=reconcile.PAGE_LIMIT)
    if done.stripe_error is not None:
        said = _("Stripe could not be reached (%(reason)s); what was done before is kept.", reason=done.stripe_error)
        flash(said, "error")
    flash(
        _(
            "Reconcile done. Events applied: %(applied)s; pending gifts settled: %(settled)s; "
            "events failed: %(failed)s.",
            applied=done.applied,
            settled=done.settled,
            failed=done.failed,
        ),
        "info",
    )
    return redirect(url_for(".index"), 303)
