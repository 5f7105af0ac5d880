"""Error pages: HTML for people, JSON for machine endpoints; never a traceback."""

from __future__ import annotations

from flask import Flask, current_app, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge

from supporters.core import request_sizes
from supporters.extensions import db
from supporters.lib.errors import Refused

MESSAGES = {
    400: (_l("Bad request"), _l("We could not understand that request. Please check what you sent and try again.")),
    403: (_l("Not allowed"), _l("You do not have permission to see this page.")),
    404: (_l("Page not found"), _l("There is no page at this address. It may have moved.")),
    405: (_l("Method not allowed"), _l("This page cannot be used that way.")),
    413: (
        _l("Too much data"),
        _l("What you sent is larger than this page accepts. Please send less (a shorter text) and try again."),
    ),
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


def _too_large() -> str:
    """The 413's message, with the route's limit; the refusal is logged (no body is)."""
    limit = request_sizes.limit_for(request.endpoint)
    current_app.logger.warning(
        "refused a body over %d bytes on %s %s (declared length: %s)",
        limit,
        request.method,
        request.path,
        request.content_length if request.content_length is not None else "none, chunked",
    )
    return _(
        "What you sent is larger than this page accepts (at most %(size)s). Please send less and try again.",
        size=request_sizes.readable_size(limit),
    )


def register(app: Flask) -> None:
    """Route every HTTP error and every unexpected exception to `render_error`."""

    @app.errorhandler(HTTPException)
    def handle_http(exc: HTTPException) -> ResponseReturnValue:
        code = exc.code or 500
        # Our own aborts carry a message meant for the user; werkzeug's defaults don't.
        detail = exc.description if exc.description != type(exc).description else None
        if code == RequestEntityTooLarge.code:
            detail = _too_large()
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
