"""POST /webhooks/stripe: the only proof of payment."""

from __future__ import annotations

import logging

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from ..extensions import csrf, db, limiter
from ..payments import InvalidEvent, gateway
from .handlers import DuplicateEvent, process_event

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
csrf.exempt(bp)  # Stripe's signature protects this blueprint instead
limiter.exempt(bp)


@bp.post("/stripe")
def stripe_webhook() -> ResponseReturnValue:
    """Verify, record once, apply, commit; any failure rolls back and asks Stripe to retry."""
    payload = request.get_data(cache=False)
    try:
        event = gateway().verify_event(payload, request.headers.get("Stripe-Signature"))
    except InvalidEvent as exc:
        return {"error": "invalid event", "message": str(exc)}, 400
    try:
        outcome = process_event(event)
        db.session.commit()
    except DuplicateEvent:
        db.session.rollback()
        return {"received": True, "duplicate": True}, 200
    except Exception:
        db.session.rollback()
        log.exception("Stripe event %s (%s) failed; Stripe will retry", event["id"], event["type"])
        return {"error": "handling failed; retry later"}, 500
    return {"received": True, "outcome": outcome}, 200
