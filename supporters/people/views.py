"""The pages behind the newsletter confirmation link (double opt-in) and a newsletter's
one-click unsubscribe link (RFC 8058).

Opening the link only shows a button: mail scanners and link previews open links
by themselves, so a GET must never subscribe anyone. Pressing the button (a POST)
confirms. A link that is not ours, was used, or has expired gets a page that says so,
with a 4xx status.
"""

from __future__ import annotations

from flask import Blueprint, make_response, render_template
from flask.typing import ResponseReturnValue

from supporters.extensions import csrf, db
from supporters.lib.errors import Refused
from supporters.models import Supporter
from supporters.people import consent

bp = Blueprint("newsletter", __name__, url_prefix="/newsletter")


def _page(template: str, status: int = 200, **context: object) -> ResponseReturnValue:
    response = make_response(render_template(template, **context), status)
    # The address holds the token: never cached, never sent on as a referrer.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _refused(refused: Refused) -> ResponseReturnValue:
    return _page("newsletter/link.html", refused.status, message=refused.message())


@bp.get("/confirm/<path:token>")
def confirm_page(token: str) -> ResponseReturnValue:
    """What the link opens: the wording the donor saw and a button; confirms nothing."""
    try:
        request_row = consent.open_request(token)
    except Refused as refused:
        return _refused(refused)
    supporter = db.session.get(Supporter, request_row.supporter_id)
    assert supporter is not None
    return _page("newsletter/confirm.html", request_row=request_row, email=supporter.email, token=token)


@bp.post("/confirm/<path:token>")
def confirm(token: str) -> ResponseReturnValue:
    """The button: records the confirmed consent, once."""
    try:
        recorded = consent.confirm_newsletter(token)
    except Refused as refused:
        return _refused(refused)
    supporter = db.session.get(Supporter, recorded.supporter_id)
    assert supporter is not None
    return _page("newsletter/confirmed.html", email=supporter.email)


@bp.get("/unsubscribe/<unsubscribe_token>")
def unsubscribe_page(unsubscribe_token: str) -> ResponseReturnValue:
    """What a newsletter's unsubscribe link opens in a browser: a button. A GET never
    unsubscribes: mail scanners and link previews open links by themselves."""
    try:
        supporter = consent.unsubscribing(unsubscribe_token)
    except Refused as refused:
        return _refused(refused)
    return _page(
        "newsletter/unsubscribe.html",
        email=supporter.email,
        token=unsubscribe_token,
        state=consent.newsletter_state(supporter.id),
    )


@bp.post("/unsubscribe/<unsubscribe_token>")
def unsubscribe(unsubscribe_token: str) -> ResponseReturnValue:
    """RFC 8058 one-click: the mail provider POSTs `List-Unsubscribe=One-Click` with no
    cookie and no CSRF token (the page's button sends the same). Withdraws the newsletter,
    once; answers 200 however often it is pressed."""
    try:
        supporter = consent.one_click_unsubscribe(unsubscribe_token)
    except Refused as refused:
        return _refused(refused)
    return _page("newsletter/unsubscribed.html", email=supporter.email)


# The one route without a CSRF token: the POST comes from the mail provider, which has no
# session and no form of ours; the signed token in the address is what authorises it.
csrf.exempt(unsubscribe)
