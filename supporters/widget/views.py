"""The Support Us widget: its script, its data, its counters and its iframe.

Only these routes may be read cross-origin, and only /widget/frame/* may be framed.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import force_locale
from werkzeug.exceptions import BadRequest

from supporters.extensions import csrf, limiter
from supporters.widget import service

bp = Blueprint("widget", __name__)
csrf.exempt(bp)  # beacons carry no session and change nothing but anonymous counters

SCRIPT = Path(__file__).parent / "widget.js"
#: the quiet ask's buttons on our own pages (donors/contact_views.py): sets the flag widget.js reads
QUIET_SCRIPT = Path(__file__).parent / "quiet.js"
CROSS_ORIGIN = {
    "Access-Control-Allow-Origin": "*",
    "Cross-Origin-Resource-Policy": "cross-origin",
    "Timing-Allow-Origin": "*",
}


def _lang() -> str:
    lang = (request.args.get("lang") or "").lower()
    if lang in current_app.config["SUPPORTERS_LOCALES"]:
        return lang
    return request.accept_languages.best_match(current_app.config["SUPPORTERS_LOCALES"]) or "en"


@bp.get("/widget.js")
@limiter.exempt
def script() -> ResponseReturnValue:
    """The widget script: small, cacheable, no cookies."""
    response = Response(SCRIPT.read_bytes(), mimetype="text/javascript")
    response.headers.update(CROSS_ORIGIN)
    response.cache_control.public = True
    response.cache_control.max_age = 300
    response.set_etag(hashlib.sha256(response.get_data()).hexdigest()[:32])
    return response.make_conditional(request)


@bp.get("/widget/quiet.js")
@limiter.exempt
def quiet_script() -> ResponseReturnValue:
    """The script of the "I've given" buttons, for our own pages (a page's CSP runs only
    scripts from files of ours)."""
    response = Response(QUIET_SCRIPT.read_bytes(), mimetype="text/javascript")
    response.cache_control.public = True
    response.cache_control.max_age = 300
    response.set_etag(hashlib.sha256(response.get_data()).hexdigest()[:32])
    return response.make_conditional(request)


@bp.get("/widget/config/<slug>.json")
@limiter.exempt
def config(slug: str) -> ResponseReturnValue:
    """The appeal, suggested amounts and progress of a campaign, as JSON for any origin."""
    data = service.widget_config(slug, _lang())
    if data is None:
        abort(404, "No active campaign with that name.")
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    response = Response(body, mimetype="application/json")
    response.headers.update(CROSS_ORIGIN)
    response.cache_control.public = True
    response.cache_control.max_age = 60
    response.set_etag(hashlib.sha256(body).hexdigest()[:32])
    response.vary.add("Accept-Language")
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
def frame(slug: str) -> ResponseReturnValue:
    """The card as a page of its own, for sites that can only embed an iframe."""
    lang = _lang()
    data = service.widget_config(slug, lang)
    if data is None:
        abort(404, "No active campaign with that name.")
    with force_locale(lang):
        html = render_template(
            "widget/frame.html",
            slug=slug,
            lang=lang,
            article=(request.args.get("article") or "")[:200],
            theme="dark" if request.args.get("theme") == "dark" else "light",
        )
    response = Response(html, mimetype="text/html")
    origins = " ".join(["'self'", *current_app.config["WIDGET_ALLOWED_ORIGINS"]])
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        f"base-uri 'none'; object-src 'none'; form-action 'self'; frame-ancestors {origins}"
    )
    return response
