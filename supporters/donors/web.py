"""What every page of the donor's own area shares: its headers and the signed-in check.

The donor's pages are split by topic (`views.py`: signing in and the gift list;
`documents.py`: receipts and statements; `plan_views.py`: a recurring gift's changes;
`contact_views.py`: consent, the quiet ask and e-mailed links), each a blueprint under
/my registered by the factory. They all answer through `page()` and find their donor
with `donor_required`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec

from flask import g, make_response, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from supporters.donors import signin
from supporters.models import Supporter

P = ParamSpec("P")


def page(template: str, status: int = 200, **context: Any) -> ResponseReturnValue:
    """A donor page: never cached (it shows personal data), never sent on as a referrer
    (its address may hold a token)."""
    response = make_response(render_template(template, **context), status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def donor_required(view: Callable[P, ResponseReturnValue]) -> Callable[P, ResponseReturnValue]:
    """Only for a signed-in donor (found in `g.donor`); anyone else goes to the sign-in form.
    A staff session grants nothing here."""

    @wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
        supporter = signin.signed_in_supporter()
        if supporter is None:
            return redirect(url_for("donors.ask_page"))
        g.donor = supporter
        return view(*args, **kwargs)

    return wrapped


def current_donor() -> Supporter:
    """The donor `donor_required` found for this request."""
    donor: Supporter = g.donor
    return donor


def actor_name(supporter: Supporter) -> str:
    """How the audit log and a record's history name a donor acting on their own page
    (`audit.record(None, ..., actor_name=actor_name(donor))`): by number, so erasing the
    person leaves no address behind in the log."""
    return f"donor #{supporter.id}"
