"""POST /webhooks/stripe: the only proof of payment."""

from __future__ import annotations

import logging

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from supporters.extensions import csrf, limiter
from supporters.giving.stripe_events import DuplicateEvent, process_event, record_unreadable
from supporters.lib.transactions import commit_now
from supporters.payments import InvalidEvent, UnreadableEvent, gateway

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
csrf.exempt(bp)  # Stripe's signature protects this blueprint instead
limiter.exempt(bp)


@bp.post("/stripe")
def stripe_webhook() -> ResponseReturnValue:
    """Verify, record once, apply and commit (200), or any failure, at commit too, rolls
    everything back (500) and Stripe retries.

    A signed event that can never be processed (not an event, an odd shape, a payment
    that is not the one we asked for) is kept for staff's review and acknowledged: a
    retry would change nothing. Only a failure a retry can mend answers 500.
    """
    payload = request.get_data(cache=False)
    try:
        event = gateway().verify_event(payload, request.headers.get("Stripe-Signature"))
    except InvalidEvent as exc:
        return {"error": "invalid event", "message": str(exc)}, 400
    except UnreadableEvent as unreadable:
        try:
            return {"received": True, "outcome": record_unreadable(payload, unreadable.reason)}, 200
        except DuplicateEvent:
            return {"received": True, "duplicate": True}, 200
    try:
        outcome = process_event(event)
        # Committed here, inside the try: what happens at commit (the receipt numbered and
        # queued, the giving totals written) can fail too, and that is a failure a retry
        # mends, answered like any other (transactions.commit_now, a named exception).
        commit_now()
    except DuplicateEvent:
        return {"received": True, "duplicate": True}, 200
    except Exception:
        log.exception("Stripe event %.80r (%.80r) failed; Stripe will retry", event.get("id"), event.get("type"))
        return {"error": "handling failed; retry later"}, 500
    return {"received": True, "outcome": outcome}, 200
