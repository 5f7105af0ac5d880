"""Dashboard: the exports page, which links to each list's CSV with its filters."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

from supporters.dashboard.access import requires

bp = Blueprint("exports", __name__, url_prefix="/exports")


@bp.get("/")
@requires("export")
def index() -> ResponseReturnValue:
    """Where to download supporters and gifts as CSV (filters are set on each list)."""
    return render_template("dashboard/exports/index.html")
