"""The donor's contact choices on /my: the newsletter withdrawn or given again, and the
quiet ask (the Support Us card hidden on our own pages for a while, "I've given").

Both newsletter buttons are POSTs of a signed-in donor; each records a consent-log row
with the time, the words shown and the source "donor page" (people/consent.py). The
quiet ask is a page anyone may open (a receipt links to it): its buttons set a flag in
this browser's storage for our origin, which widget.js reads on our own pages only. No
cookie and nothing on the server.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, url_for
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l

from supporters.donors import web
from supporters.donors.web import current_donor, donor_required, page
from supporters.models import Supporter
from supporters.people import consent

bp = Blueprint("donor_contact", __name__, url_prefix="/my")

#: how long the donor may hide the Support Us card: days, and the button's words
QUIET_CHOICES = ((30, _l("For 30 days")), (90, _l("For 90 days")), (365, _l("For a year")))


def contact_context(supporter: Supporter) -> dict[str, Any]:
    """What the contact section of /my/gifts shows (templates/donors/_contact.html)."""
    return {
        "newsletter_state": consent.newsletter_state(supporter.id),
        "give_wording": consent.GIVE_WORDING,
        "withdraw_wording": consent.WITHDRAW_WORDING,
        "quiet_choices": QUIET_CHOICES,
    }


@bp.post("/newsletter/withdraw")
@donor_required
def withdraw_newsletter() -> ResponseReturnValue:
    """Withdraw the newsletter: recorded with the words next to the button."""
    donor = current_donor()
    recorded = consent.withdraw_newsletter(
        donor, wording=str(consent.WITHDRAW_WORDING), source=consent.DONOR_PAGE, actor_name=web.actor_name(donor)
    )
    flash(_l("You will receive no more newsletters.") if recorded else _l("Nothing changed: you are not subscribed."))
    return redirect(url_for("donors.gifts", _anchor="contact"), 303)


@bp.post("/newsletter/give")
@donor_required
def give_newsletter() -> ResponseReturnValue:
    """Give the newsletter again: granted at once (the sign-in proved the address)."""
    donor = current_donor()
    recorded = consent.give_newsletter(donor, wording=str(consent.GIVE_WORDING), actor_name=web.actor_name(donor))
    flash(_l("Thank you: you will receive our newsletter.") if recorded else _l("You are already subscribed."))
    return redirect(url_for("donors.gifts", _anchor="contact"), 303)


@bp.get("/quiet")
def quiet_page() -> ResponseReturnValue:
    """Hide the Support Us card on our own pages in this browser, for a while; or show it
    again. Public: a receipt links here, and a donor need not sign in for it."""
    return page("donors/quiet.html", quiet_choices=QUIET_CHOICES)
