"""The Stripe API calls both real gateways make the same way, as plain functions.

`StripeGateway` (real Stripe) and `OfflineGateway` (localstripe) speak the same API
through a `stripe.StripeClient`; they differ in how a checkout opens and in a few
parameters. Rather than inherit these calls from a common base class, each gateway
implements every member of the `PaymentGateway` Protocol itself, in one line that
hands its own client, secret and mode to the function here. So each gateway class
shows all it does, and nothing is shared by accident.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import stripe

from supporters.payments.base import InvalidEvent, PaymentsUnavailable, RefundResult


def verify_event(payload: bytes, signature: str | None, secret: str, livemode: bool, tolerance: int) -> dict[str, Any]:
    """The event in `payload` if signed with `secret` less than `tolerance` seconds ago
    and its `livemode` is `livemode`; raises InvalidEvent otherwise."""
    try:
        stripe.WebhookSignature.verify_header(payload.decode("utf-8"), signature, secret, tolerance)
        event = json.loads(payload)
    except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidEvent(str(exc) or "invalid signature") from None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        raise InvalidEvent("not a Stripe event")
    if not isinstance(event.get("data"), dict) or not isinstance(event["data"].get("object"), dict):
        raise InvalidEvent("event without an object")
    if bool(event.get("livemode")) != livemode:
        raise InvalidEvent("event mode does not match the configured key")
    return event


def refund(
    client: stripe.StripeClient,
    payment_intent_id: str,
    amount_minor: int,
    reason: str,
    idempotency_key: str,
    stripe_reason: str | None = None,
) -> RefundResult:
    """Refund `amount_minor` of a payment. The staff's `reason` goes into the refund's
    metadata; `stripe_reason`, one of Stripe's own reasons, into its `reason`."""
    params: dict[str, Any] = {
        "payment_intent": payment_intent_id,
        "amount": amount_minor,
        "metadata": {"reason": reason[:500]},
    }
    if stripe_reason is not None:
        params["reason"] = stripe_reason
    try:
        created = client.v1.refunds.create(params, {"idempotency_key": idempotency_key})  # type: ignore[arg-type]
    except stripe.StripeError as exc:
        raise PaymentsUnavailable(exc.user_message or str(exc)) from exc
    return RefundResult(id=created.id, amount_minor=created.amount, status=str(created.status))


def cancel_subscription(client: stripe.StripeClient, subscription_id: str) -> None:
    """End a subscription now; Stripe confirms with customer.subscription.deleted."""
    try:
        client.v1.subscriptions.cancel(subscription_id)
    except stripe.StripeError as exc:
        raise PaymentsUnavailable(exc.user_message or str(exc)) from exc


def events_since(client: stripe.StripeClient, since: datetime) -> Iterator[dict[str, Any]]:
    """Every event Stripe still keeps that was created at or after `since`, oldest first."""
    try:
        page = client.v1.events.list({"created": {"gte": int(since.timestamp())}, "limit": 100})
        events = [event.to_dict() for event in page.auto_paging_iter()]
    except stripe.StripeError as exc:
        raise PaymentsUnavailable(exc.user_message or str(exc)) from exc
    return iter(sorted(events, key=lambda event: (event.get("created", 0), event["id"])))


def payment_reference(client: stripe.StripeClient, payment_intent_id: str) -> dict[str, str]:
    """Which gift (`gift_id`, from its metadata) or invoice (`invoice_id`) a payment
    intent paid for, as Stripe knows it; empty when neither."""
    try:
        intent = client.v1.payment_intents.retrieve(payment_intent_id)
    except stripe.InvalidRequestError:
        return {}
    except stripe.StripeError as exc:
        raise PaymentsUnavailable(exc.user_message or str(exc)) from exc
    gift_id = intent.to_dict().get("metadata", {}).get("gift_id")
    if gift_id:
        return {"gift_id": str(gift_id)}
    try:
        payments = client.v1.invoice_payments.list(
            {"payment": {"type": "payment_intent", "payment_intent": payment_intent_id}, "limit": 1}
        )
    except stripe.InvalidRequestError:
        return {}
    except stripe.StripeError as exc:
        raise PaymentsUnavailable(exc.user_message or str(exc)) from exc
    for payment in payments.data:
        invoice = payment.invoice
        return {"invoice_id": invoice if isinstance(invoice, str) else invoice.id}
    return {}


def retrieve_payment_intent(client: stripe.StripeClient, payment_intent_id: str) -> dict[str, Any]:
    """The payment intent as Stripe sees it now."""
    try:
        return client.v1.payment_intents.retrieve(payment_intent_id).to_dict()
    except stripe.StripeError as exc:
        raise PaymentsUnavailable(exc.user_message or str(exc)) from exc
