"""Error pages: HTML for people, JSON for machine endpoints; never a traceback."""

from __future__ import annotations

from flask import Flask, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException, InternalServerError

from supporters.extensions import db
from supporters.lib.errors import Refused

MESSAGES = {
    400: (_l("Bad request"), _l("We could not understand that request. Please check what you sent and try again.")),
    403: (_l("Not allowed"), _l("You do not have permission to see this page.")),
    404: (_l("Page not found"), _l("There is no page at this address. It may have moved.")),
    405: (_l("Method not allowed"), _l("This page cannot be used that way.")),
    429: (
        _l("Too many requests"),
        _l("You have made too many requests in a short time. Please wait a while and try again."),
    ),
    500: (
        _l("Something went wrong"),
        _l(
            "Something went wrong on our side. If you were giving, you have not been charged twice; "
            "please try again in a moment."
        ),
    ),
}

JSON_PREFIXES = ("/webhooks/", "/widget/", "/healthz", "/api/")


def _wants_json() -> bool:
    if request.path.startswith(JSON_PREFIXES):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def render_error(code: int, description: str | None = None) -> ResponseReturnValue:
    """The error response for `code`, in the form the client asked for."""
    title, message = MESSAGES.get(code, MESSAGES[500] if code >= 500 else MESSAGES[400])
    if _wants_json():
        return {"error": str(title), "message": description or str(message)}, code
    return render_template("errors/error.html", code=code, title=title, message=message, detail=description), code


def register(app: Flask) -> None:
    """Route every HTTP error and every unexpected exception to `render_error`."""

    @app.errorhandler(HTTPException)
    def handle_http(exc: HTTPException) -> ResponseReturnValue:
        code = exc.code or 500
        # Our own aborts carry a message meant for the user; werkzeug's defaults don't.
        detail = exc.description if exc.description != type(exc).description else None
        response = render_error(code, detail)
        return response

    @app.errorhandler(Refused)
    def handle_refused(refused: Refused) -> ResponseReturnValue:
        # A rule said no and no view put the reason next to a field: the reason, on its own page.
        db.session.rollback()
        return render_error(refused.status, refused.message())

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception) -> ResponseReturnValue:
        if isinstance(exc, HTTPException):
            return handle_http(exc)
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        db.session.rollback()
        return render_error(InternalServerError.code)
