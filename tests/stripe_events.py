"""Stripe events for tests: small builders of the objects Stripe sends, signed like Stripe signs them.

The shapes follow Stripe's current API (the reference is Stripe's own fixture file,
../shared/stripe/fixtures3.json, which the contract test checks against); each
builder writes only the fields the handlers read plus a few realistic ones.
`legacy_invoice()` and `subscription(..., legacy=True)` build the older shape
that localstripe still sends (top-level `subscription`, `payment_intent`,
`charge`, `current_period_end`).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import uuid
from typing import Any

Obj = dict[str, Any]

#: a fixed, realistic moment (2026-03-01 12:00 UTC) for `created` and period timestamps
T0 = 1772366400
MONTH = 30 * 24 * 3600

_serial = itertools.count(1)


def new_id(prefix: str) -> str:
    """A fresh Stripe-looking id, e.g. "evt_test_3f9a…" (unique across the run)."""
    return f"{prefix}_test_{uuid.uuid4().hex[:20]}{next(_serial)}"


def gift_metadata(gift_id: int | None, plan_id: int | None = None) -> dict[str, str]:
    """What the app puts on every Stripe object of a gift (CheckoutRequest.all_metadata)."""
    data: dict[str, str] = {}
    if gift_id is not None:
        data["gift_id"] = str(gift_id)
    if plan_id is not None:
        data["recurring_plan_id"] = str(plan_id)
    return data


def checkout_session_id(gift_id: int) -> str:
    """The id of the checkout session the app opened for gift `gift_id`, in these tests:
    `checkout_session(gift_id)` is that session unless given another `id`."""
    return f"cs_test_gift_{gift_id}"


# --- The envelope ------------------------------------------------------------------


def event(type: str, obj: Obj, id: str | None = None, livemode: bool = False, created: int | None = None) -> Obj:
    """A Stripe event wrapping `obj` (an object built below)."""
    return {
        "id": id or new_id("evt"),
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": created if created is not None else int(time.time()),
        "data": {"object": obj},
        "livemode": livemode,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type,
    }


# --- One-time payments -------------------------------------------------------------

_DEFAULT: Any = object()


def checkout_session(
    gift_id: int | None,
    mode: str = "payment",
    payment_status: str = "paid",
    payment_intent: str | None = _DEFAULT,
    subscription: str | None = None,
    invoice: str | None = None,
    customer: str | None = None,
    *,
    plan_id: int | None = None,
    id: str | None = None,
    amount_total: int = 5000,
    currency: str = "pln",
    status: str | None = None,
) -> Obj:
    """A checkout.session: by default the one opened for the gift (`checkout_session_id`).
    In payment mode it has a payment intent (one is made up unless given); in
    subscription mode a subscription and the first invoice, no payment intent."""
    if payment_intent is _DEFAULT:
        payment_intent = new_id("pi") if mode == "payment" else None
    return {
        "id": id or (checkout_session_id(gift_id) if gift_id is not None else new_id("cs")),
        "object": "checkout.session",
        "amount_subtotal": amount_total,
        "amount_total": amount_total,
        "client_reference_id": str(gift_id) if gift_id is not None else None,
        "created": T0,
        "currency": currency,
        "customer": customer,
        "customer_details": {"email": "donor@example.org", "name": "Donor"},
        "expires_at": T0 + 24 * 3600,
        "invoice": invoice,
        "livemode": False,
        "metadata": gift_metadata(gift_id, plan_id),
        "mode": mode,
        "payment_intent": payment_intent,
        "payment_status": payment_status,
        "status": status or ("expired" if payment_status == "unpaid" else "complete"),
        "submit_type": "donate" if mode == "payment" else None,
        "subscription": subscription,
        "url": None,
    }


def payment_intent(
    gift_id: int | None,
    status: str,
    *,
    id: str | None = None,
    latest_charge: str | None = None,
    customer: str | None = None,
    amount: int = 5000,
    currency: str = "pln",
    plan_id: int | None = None,
) -> Obj:
    """A payment_intent in `status` ("succeeded", "requires_payment_method" after a decline…)."""
    failed = status == "requires_payment_method"
    return {
        "id": id or new_id("pi"),
        "object": "payment_intent",
        "amount": amount,
        "amount_received": amount if status == "succeeded" else 0,
        "created": T0,
        "currency": currency,
        "customer": customer,
        "last_payment_error": {"code": "card_declined", "decline_code": "generic_decline", "type": "card_error"}
        if failed
        else None,
        "latest_charge": latest_charge,
        "livemode": False,
        "metadata": gift_metadata(gift_id, plan_id),
        "status": status,
    }


# --- Recurring gifts -----------------------------------------------------------------


def _line(amount: int, currency: str, period_end: int, subscription_id: str | None, metadata: Obj) -> Obj:
    return {
        "id": new_id("il"),
        "object": "line_item",
        "amount": amount,
        "currency": currency,
        "description": "1 × Monthly gift",
        "metadata": metadata,
        "period": {"start": period_end - MONTH, "end": period_end},
        "quantity": 1,
        "parent": {
            "type": "subscription_item_details",
            "subscription_item_details": {
                "subscription": subscription_id,
                "subscription_item": "si_test_item",
                "proration": False,
                "invoice_item": None,
            },
        },
    }


def invoice(
    subscription_id: str | None,
    amount_paid: int,
    currency: str,
    invoice_id: str | None = None,
    plan_metadata: Obj | None = None,
    billing_reason: str = "subscription_cycle",
    *,
    payment_intent: str | None = _DEFAULT,
    paid_at: int | None = T0,
    period_end: int | None = None,
    customer: str | None = "cus_test_donor",
    status: str = "paid",
) -> Obj:
    """An invoice in Stripe's current shape: the subscription in `parent.subscription_details`,
    the payment in `payments.data[].payment.payment_intent`, no top-level `subscription`,
    `payment_intent` or `charge`. `currency` is lower case, as Stripe sends it."""
    if payment_intent is _DEFAULT:
        payment_intent = new_id("pi") if status == "paid" else None
    period_end = period_end or T0 + MONTH
    paid = status == "paid"
    return {
        "id": invoice_id or new_id("in"),
        "object": "invoice",
        "amount_due": amount_paid,
        "amount_paid": amount_paid if paid else 0,
        "amount_remaining": 0 if paid else amount_paid,
        "attempt_count": 1,
        "attempted": True,
        "billing_reason": billing_reason,
        "collection_method": "charge_automatically",
        "created": T0,
        "currency": currency.lower(),
        "customer": customer,
        "livemode": False,
        "metadata": {},
        "lines": {
            "object": "list",
            "data": [_line(amount_paid, currency.lower(), period_end, subscription_id, {})],
            "has_more": False,
        },
        "parent": {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {"subscription": subscription_id, "metadata": dict(plan_metadata or {})},
        },
        "payments": {
            "object": "list",
            "data": [
                {
                    "id": new_id("inpay"),
                    "object": "invoice_payment",
                    "amount_paid": amount_paid if paid else None,
                    "currency": currency.lower(),
                    "is_default": True,
                    "payment": {"type": "payment_intent", "payment_intent": payment_intent},
                    "status": "paid" if paid else "open",
                }
            ]
            if payment_intent
            else [],
            "has_more": False,
        },
        "period_start": period_end - MONTH,
        "period_end": period_end,
        "status": status,
        "status_transitions": {
            "finalized_at": T0,
            "paid_at": paid_at if paid else None,
            "marked_uncollectible_at": None,
            "voided_at": None,
        },
        "total": amount_paid,
    }


def legacy_invoice(
    subscription_id: str | None,
    amount_paid: int,
    currency: str,
    invoice_id: str | None = None,
    plan_metadata: Obj | None = None,
    billing_reason: str = "subscription_cycle",
    *,
    payment_intent: str | None = _DEFAULT,
    charge: str | None = None,
    paid_at: int | None = T0,
    period_end: int | None = None,
    status: str = "paid",
) -> Obj:
    """An invoice in the older shape localstripe sends: top-level `subscription`,
    `payment_intent` and `charge`; the subscription's metadata on the line item."""
    if payment_intent is _DEFAULT:
        payment_intent = new_id("pi") if status == "paid" else None
    period_end = period_end or T0 + MONTH
    paid = status == "paid"
    line = _line(amount_paid, currency.lower(), period_end, subscription_id, dict(plan_metadata or {}))
    del line["parent"]
    line["subscription"] = subscription_id
    line["type"] = "subscription"
    return {
        "id": invoice_id or new_id("in"),
        "object": "invoice",
        "amount_due": amount_paid,
        "amount_paid": amount_paid if paid else 0,
        "billing_reason": billing_reason,
        "charge": charge,
        "created": T0,
        "currency": currency.lower(),
        "customer": "cus_test_donor",
        "lines": {"object": "list", "data": [line], "has_more": False},
        "livemode": False,
        "metadata": {},
        "paid": paid,
        "payment_intent": payment_intent,
        "period_end": period_end,
        "status": status,
        "status_transitions": {"paid_at": paid_at if paid else None},
        "subscription": subscription_id,
    }


def subscription(
    id: str,
    status: str,
    metadata: Obj | None = None,
    cancellation_details: Obj | None = None,
    *,
    canceled_at: int | None = None,
    period_end: int | None = None,
    legacy: bool = False,
    customer: str | None = "cus_test_donor",
    amount: int = 3000,
) -> Obj:
    """A subscription of `amount` (minor units of PLN) a month. Stripe now keeps the period on
    each item (`items.data[].current_period_end`); `legacy=True` also puts it at the top level,
    as localstripe and older API versions do."""
    period_end = period_end or T0 + MONTH
    if status == "canceled" and canceled_at is None:
        canceled_at = T0 + 7 * 24 * 3600
    obj: Obj = {
        "id": id,
        "object": "subscription",
        "cancel_at_period_end": False,
        "canceled_at": canceled_at,
        "cancellation_details": cancellation_details or {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": T0,
        "currency": "pln",
        "customer": customer,
        "ended_at": canceled_at if status == "canceled" else None,
        "items": {
            "object": "list",
            "data": [
                {
                    "id": "si_test_item",
                    "object": "subscription_item",
                    "current_period_start": period_end - MONTH,
                    "current_period_end": period_end,
                    "price": {
                        "id": "price_test",
                        "object": "price",
                        "currency": "pln",
                        "unit_amount": amount,
                        "recurring": {"interval": "month", "interval_count": 1},
                    },
                    "quantity": 1,
                    "subscription": id,
                }
            ],
            "has_more": False,
        },
        "latest_invoice": None,
        "livemode": False,
        "metadata": dict(metadata or {}),
        "start_date": T0,
        "status": status,
    }
    if legacy:
        obj["current_period_start"] = period_end - MONTH
        obj["current_period_end"] = period_end
    return obj


# --- Refunds and disputes ------------------------------------------------------------


def charge(
    id: str,
    payment_intent: str | None,
    amount: int,
    amount_refunded: int,
    *,
    currency: str = "pln",
) -> Obj:
    """A charge, e.g. as charge.refunded carries it: `amount_refunded` is the total refunded so far."""
    return {
        "id": id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": amount_refunded,
        "captured": True,
        "created": T0,
        "currency": currency,
        "customer": "cus_test_donor",
        "disputed": False,
        "livemode": False,
        "metadata": {},
        "paid": True,
        "payment_intent": payment_intent,
        "refunded": amount_refunded >= amount,
        "status": "succeeded",
    }


def dispute(
    charge: str | None,
    payment_intent: str | None,
    status: str,
    *,
    id: str | None = None,
    amount: int = 5000,
    currency: str = "pln",
    reason: str = "fraudulent",
) -> Obj:
    """A dispute ("needs_response" when created; "won" or "lost" when closed)."""
    return {
        "id": id or new_id("dp"),
        "object": "dispute",
        "amount": amount,
        "charge": charge,
        "created": T0,
        "currency": currency,
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "payment_intent": payment_intent,
        "reason": reason,
        "status": status,
    }


# --- Signing and delivering ----------------------------------------------------------


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header for `body`: t=<unix time>,v1=<HMAC-SHA256(secret, "t.body")>."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def encode(evt: Obj) -> bytes:
    return json.dumps(evt, separators=(",", ":")).encode()


def post_raw(client: Any, body: bytes, signature: str | None) -> Any:
    """POST `body` to the webhook as Stripe would, with `signature` (or no header at all)."""
    headers = {"Stripe-Signature": signature} if signature is not None else {}
    return client.post("/webhooks/stripe", data=body, headers=headers, content_type="application/json")


def post_event(client: Any, event: Obj, secret: str, **sign_kwargs: Any) -> Any:
    """Encode, sign and POST `event` to /webhooks/stripe; returns the response."""
    body = encode(event)
    return post_raw(client, body, sign(body, secret, **sign_kwargs))
