"""The staff dashboard's pages. Every view declares the permission it needs."""

from __future__ import annotations

from flask import Blueprint, Response, render_template
from flask.typing import ResponseReturnValue

from .access import can, check_access, requires

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")
bp.before_request(check_access)


@bp.after_request
def private(response: Response) -> Response:
    """Pages with personal data are never stored by browsers or proxies."""
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.context_processor
def permissions() -> dict[str, object]:
    return {"can": can}


@bp.get("/")
@requires("view")
def overview() -> ResponseReturnValue:
    """The first page staff see."""
    return render_template("dashboard/overview.html")
