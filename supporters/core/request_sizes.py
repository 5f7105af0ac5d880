"""How large a request body each route accepts, refused with 413 before it is read.

Each route has a natural size: a Stripe event is a few kilobytes (Stripe cuts the
lists inside an event at ten items), a beacon is four short strings, a form is what
its fields allow. A body declared larger (Content-Length) is refused before a byte
of it is read; a body without a declared length (chunked) is read up to the limit
and refused past it. Either way the worker never holds more than the route's limit.
"""

from __future__ import annotations

import io

from flask import Flask, abort, request

KIB = 1024
MIB = 1024 * KIB

#: every route not listed below: each form of the app (the donation form, sign-in,
#: the staff forms) fits many times over, with each character percent-encoded
DEFAULT_LIMIT = 64 * KIB

#: routes that need another size, by endpoint
LIMITS: dict[str, int] = {
    # Stripe's signed events: a few kilobytes (the lists inside an event stop at ten items)
    "webhooks.stripe_webhook": 512 * KIB,
    # navigator.sendBeacon from the widget: {"type", "campaign", "article", "variant"},
    # a few hundred bytes at most (three slugs of at most 200 characters and a type)
    "widget.event": 2 * KIB,
    # an article: up to 200,000 characters of Markdown (staff_articles.BODY_MAX), form-encoded
    "dashboard.articles.new": 2 * MIB,
    "dashboard.articles.update": 2 * MIB,
    # a bank statement file: up to 5 MB (bank/formats.py MAX_FILE_BYTES), with the
    # multipart framing and the form's two other fields
    "dashboard.bank.upload": 5 * MIB + 64 * KIB,
    # a supporters file and a gifts file: up to 16 MB each (imports/reading.py MAX_FILE_BYTES),
    # with the multipart framing
    "dashboard.imports.upload": 32 * MIB + 64 * KIB,
}


def limit_for(endpoint: str | None) -> int:
    """The largest body, in bytes, the route named `endpoint` accepts."""
    return LIMITS.get(endpoint or "", DEFAULT_LIMIT)


def readable_size(size: int) -> str:
    """64 kB, 2 MB: the limit as a person reads it."""
    return f"{size // MIB} MB" if size >= MIB and size % MIB == 0 else f"{max(1, size // KIB)} kB"


def init_app(app: Flask) -> None:
    """Apply the limits. Registered before every other hook (CSRF, the rate limits'
    e-mail key) so that none of them reads a body first."""
    # Whatever reads a body outside a request's own limit is held to the default
    # (Flask's own default is None: no limit at all).
    if app.config.get("MAX_CONTENT_LENGTH") is None:
        app.config["MAX_CONTENT_LENGTH"] = DEFAULT_LIMIT

    @app.before_request
    def limit_request_body() -> None:
        limit = limit_for(request.endpoint)
        # Werkzeug holds whatever reads the body to these (multipart text parts too).
        request.max_content_length = limit
        request.max_form_memory_size = limit
        if request.content_length is not None:
            if request.content_length > limit:
                abort(413)
        elif request.environ.get("wsgi.input_terminated"):
            _buffer_unsized_body(limit)


def _buffer_unsized_body(limit: int) -> None:
    """A body without a declared length (chunked): read it here, to one byte past the
    limit at most, and refuse it if it goes on. (Werkzeug's own limit would hand the
    views the first `limit` bytes of it as if they were the whole.)"""
    stream = request.environ["wsgi.input"]
    body = bytearray()
    while len(body) <= limit:
        chunk = stream.read(min(64 * KIB, limit + 1 - len(body)))
        if not chunk:
            break
        body += chunk
    if len(body) > limit:
        abort(413)
    request.environ["wsgi.input"] = io.BytesIO(bytes(body))
