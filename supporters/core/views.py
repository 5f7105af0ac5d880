"""The public home page, the privacy page and the health check."""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from supporters.extensions import db, limiter

bp = Blueprint("core", __name__)


@bp.before_app_request
def refuse_nul_in_paths() -> None:
    """No page has a NUL in its address (and no database stores one in text).
    Query values are cleaned where they are used: a link with junk in its
    attribution still shows the page."""
    if "\x00" in request.path:
        abort(404)


@bp.get("/")
def home() -> ResponseReturnValue:
    return render_template("home.html")


@bp.get("/privacy")
def privacy() -> ResponseReturnValue:
    """The information clause (GDPR art. 13, in Polish RODO): who holds a donor's data, why,
    on what legal basis, who receives it, for how long, the donor's rights and where to
    complain. The organisation's details come from the settings (lib/organisation.py)."""
    return render_template("privacy.html")


@bp.get("/healthz")
@limiter.exempt
def healthz() -> ResponseReturnValue:
    """200 when the database answers a query, 503 (with the reason's kind) when not."""
    try:
        db.session.execute(text("SELECT 1")).scalar_one()
    except SQLAlchemyError as exc:
        return jsonify(status="unavailable", database="error", error=type(exc).__name__), 503
    return jsonify(status="ok", database="ok")
