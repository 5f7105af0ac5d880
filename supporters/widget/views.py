"""The Support Us widget: its script, its data, its counters and its iframe.

Only these routes may be read cross-origin, and only /widget/frame/* may be framed.
"""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, current_app, has_request_context, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import force_locale
from werkzeug.exceptions import BadRequest

from supporters.extensions import csrf, limiter
from supporters.lib import caching
from supporters.lib.caching import public
from supporters.lib.i18n import language_asked
from supporters.widget import service

bp = Blueprint("widget", __name__)
csrf.exempt(bp)  # beacons carry no session and change nothing but anonymous counters

#: how long browsers and CDNs may keep the scripts' plain addresses
SCRIPT_MAX_AGE = 300
#: the widget's versioned address (`/widget.js?v=<its ETag>`) may be kept this long, unchanged
IMMUTABLE_SECONDS = 365 * 24 * 3600
CROSS_ORIGIN = {
    "Access-Control-Allow-Origin": "*",
    "Cross-Origin-Resource-Policy": "cross-origin",
    "Timing-Allow-Origin": "*",
}


class ScriptFile:
    """A script of ours, read and hashed once per process, and again when the file's
    modification time changes (an edit in development shows at the next request)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._read: tuple[int, bytes, str] | None = None

    def current(self) -> tuple[bytes, str]:
        """The file's bytes and their entity tag."""
        mtime = self.path.stat().st_mtime_ns
        read = self._read
        if read is None or read[0] != mtime:
            with self._lock:
                body = self.path.read_bytes()
                read = self._read = (mtime, body, hashlib.sha256(body).hexdigest()[:32])
        return read[1], read[2]


SCRIPT = ScriptFile(Path(__file__).parent / "widget.js")
#: the quiet ask's buttons on our own pages (donors/contact_views.py): sets the flag widget.js reads
QUIET_SCRIPT = ScriptFile(Path(__file__).parent / "quiet.js")
_PLAIN = caching.cache_control(SCRIPT_MAX_AGE)
_VERSIONED = caching.cache_control(IMMUTABLE_SECONDS, immutable=True)
#: the widget config's address; widget/answers.py recognises it before Flask does
CONFIG_PATH = "/widget/config/<slug>.json"
#: our own public pages, rendered again at least every minute: they link the versioned widget.js
VERSIONED_ON = frozenset({"articles.show", "articles.index", "widget.frame"})


@bp.url_defaults
def versioned_script(endpoint: str, values: dict[str, Any]) -> None:
    """On our own public pages, `url_for("widget.script")` is `/widget.js?v=<ETag>`, an
    address whose content never changes (a year in any cache). The snippet other
    sites copy (the dashboard's) keeps the plain address, which changes with releases."""
    if endpoint == "widget.script" and "v" not in values and has_request_context() and request.endpoint in VERSIONED_ON:
        values["v"] = SCRIPT.current()[1]


def _lang() -> str:
    lang, from_header = service.language(
        language_asked(), request.headers.get("Accept-Language"), current_app.config["SUPPORTERS_LOCALES"]
    )
    if from_header:
        caching.language_from_header()
    return lang


def _script_response(script: ScriptFile, headers: dict[str, str]) -> ResponseReturnValue:
    body, etag = script.current()
    response = Response(body, mimetype="text/javascript", headers=headers)
    response.headers["Cache-Control"] = _VERSIONED if request.args.get("v") == etag else _PLAIN
    response.set_etag(etag)
    return response.make_conditional(request)


@bp.get("/widget.js")
@limiter.exempt
@public(max_age=SCRIPT_MAX_AGE)
def script() -> ResponseReturnValue:
    """The widget script: small, cacheable, no cookies; `?v=<its ETag>` (our own pages'
    address) may be kept for a year."""
    return _script_response(SCRIPT, CROSS_ORIGIN)


@bp.get("/widget/quiet.js")
@limiter.exempt
@public(max_age=SCRIPT_MAX_AGE)
def quiet_script() -> ResponseReturnValue:
    """The script of the "I've given" buttons, for our own pages (a page's CSP runs only
    scripts from files of ours)."""
    return _script_response(QUIET_SCRIPT, {})


@bp.get(CONFIG_PATH)
@limiter.exempt
@public(max_age=60)
def config(slug: str) -> ResponseReturnValue:
    """The appeal, suggested amounts and progress of a campaign, as JSON for any origin."""
    found = service.encoded_config(slug, _lang())
    if found is None:
        abort(404, "No active campaign with that name.")
    response = Response(found.body, mimetype="application/json")
    response.headers.update(CROSS_ORIGIN)
    response.set_etag(found.etag)
    return response.make_conditional(request)


def _event_limit() -> str:
    return str(current_app.config["WIDGET_EVENT_LIMIT"])


def _read_event() -> object:
    """The beacon's JSON. Its size is held to the route's limit before the view runs
    (core/request_sizes.py: 413); a body that is not JSON (bytes that are no UTF-8,
    nesting deeper than the parser goes) is a 400."""
    try:
        return json.loads(request.get_data(cache=False))
    except (ValueError, RecursionError):
        raise BadRequest("The event is not JSON.") from None


@bp.post("/widget/event")
@limiter.limit(_event_limit)
def event() -> ResponseReturnValue:
    """Take an impression or a click sent by sendBeacon or fetch, its JSON as text/plain
    (a request that needs no CORS preflight) or application/json.
    Always 204 for well-formed events, counted or not, written within seconds (see
    service.record_event); nothing identifies the reader."""
    payload = _read_event()
    if not isinstance(payload, dict) or not all(
        isinstance(payload.get(k, ""), str) for k in ("type", "campaign", "article", "variant")
    ):
        raise BadRequest("The event is not a widget event.")
    counted = service.record_event(
        payload.get("type", ""),
        payload.get("campaign", ""),
        payload.get("article", ""),
        payload.get("variant", ""),
        datetime.now(UTC).date(),
    )
    if not counted:
        raise BadRequest("Unknown event, campaign, article or variant.")
    response = Response(status=204)
    response.headers.update(CROSS_ORIGIN)
    return response


@bp.get("/widget/frame/<slug>")
@public(max_age=60)
def frame(slug: str) -> ResponseReturnValue:
    """The card as a page of its own, for sites that can only embed an iframe."""
    lang = _lang()
    data = service.widget_config(slug, lang)
    if data is None:
        abort(404, "No active campaign with that name.")
    # ?page= is the embedding page's address (the frame's referrer is only an origin): attribution only
    page = (request.args.get("page") or "")[:2000]
    with force_locale(lang):
        html = render_template(
            "widget/frame.html",
            slug=slug,
            lang=lang,
            article=(request.args.get("article") or "")[:200],
            page=page if page.lower().startswith(("https://", "http://")) else "",
            theme="dark" if request.args.get("theme") == "dark" else "light",
        )
    response = Response(html, mimetype="text/html")
    origins = " ".join(["'self'", *current_app.config["WIDGET_ALLOWED_ORIGINS"]])
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        f"base-uri 'none'; object-src 'none'; form-action 'self'; frame-ancestors {origins}"
    )
    return response
