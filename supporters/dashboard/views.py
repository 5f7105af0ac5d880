"""The staff dashboard's pages. Every view declares the permission it needs."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template, request
from flask.typing import ResponseReturnValue

from .. import reports
from . import articles, audit_log, campaigns, exports, gifts, labels, plans, staff, supporters
from .access import can, check_access, requires

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")
# Runs for every page of the dashboard, the nested blueprints' included.
bp.before_request(check_access)
for area in (supporters, gifts, plans, campaigns, articles, exports, staff, audit_log):
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
    """This month and year against last year, recurring income, giving per month, top sources."""
    months = 24 if request.args.get("months") == "24" else 12
    report = reports.overview(months=months)
    return render_template("dashboard/overview.html", report=report, months=months,
                           chart=reports.bar_chart(report.by_month))
