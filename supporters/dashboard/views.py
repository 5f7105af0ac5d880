"""The staff dashboard's pages. Every view declares the permission it needs."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template, request
from flask.typing import ResponseReturnValue

from supporters.articles import staff_articles
from supporters.bank import staff_bank
from supporters.campaigns import staff_campaigns
from supporters.dashboard import exports, labels
from supporters.dashboard import overview as figures
from supporters.dashboard.access import can, check_access, requires
from supporters.giving import staff_gifts, staff_health, staff_payment_review, staff_plans
from supporters.imports import staff_imports
from supporters.people import staff_duplicates, staff_supporters
from supporters.privacy import requests as privacy_requests
from supporters.privacy import staff_privacy
from supporters.staff import staff_accounts, staff_audit_log

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")
# Runs for every page of the dashboard, the nested blueprints' included.
bp.before_request(check_access)
for area in (
    staff_supporters,
    staff_duplicates,
    staff_gifts,
    staff_plans,
    staff_payment_review,
    staff_health,
    staff_bank,
    staff_imports,
    staff_campaigns,
    staff_articles,
    exports,
    staff_accounts,
    staff_audit_log,
    staff_privacy,
):
    bp.register_blueprint(area.bp)


@bp.after_request
def private(response: Response) -> Response:
    """Pages with personal data are never stored by browsers or proxies."""
    response.headers["Cache-Control"] = "no-store"
    return response


bp.app_context_processor(labels.in_templates)


@bp.app_context_processor
def permissions() -> dict[str, object]:
    return {"can": can, "has_page": may_open}


def may_open(endpoint: str) -> bool:
    """True when the page exists and the signed-in person's role may open it."""
    view = current_app.view_functions.get(endpoint)
    return view is not None and can(getattr(view, "permission", "staff"))


@bp.get("/")
@requires("view")
def overview() -> ResponseReturnValue:
    """Giving in the period chosen against a year before, recurring income, giving per
    day, month or year, top sources."""
    span, notes = figures.read_period(request.args)
    report = figures.overview(span)
    return render_template(
        "dashboard/overview.html",
        report=report,
        span=span,
        notes=notes,
        periods=figures.PERIODS,
        chart=figures.bar_chart(report.series, current_app.config["SUPPORTERS_BASE_CURRENCY"]),
        privacy_requests=privacy_requests.open_request_health(),
    )
