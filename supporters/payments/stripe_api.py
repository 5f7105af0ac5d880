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
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import stripe
from stripe.params import SubscriptionUpdateParams
from stripe.params.billing_portal import SessionCreateParams as PortalSessionParams

from supporters.payments.base import Balance, InvalidEvent, PaymentsUnavailable, RefundResult, UnreadableEvent


def verify_event(payload: bytes, signature: str | None, secret: str, livemode: bool, tolerance: int) -> dict[str, Any]:
    """The event in `payload` if signed with `secret` less than `tolerance` seconds ago (and
    not more than `tolerance` seconds ahead of our clock) and its `livemode` is `livemode`.

    Raises InvalidEvent for a bad signature, a time outside the tolerance or the other
    mode (nothing of it may be written), and UnreadableEvent for a body signed with our
    secret that is not a JSON object (keep it, acknowledge it: a retry cannot mend it).
    The event's own fields are not checked here: whoever handles it reads them warily.
    """
    try:
        text = payload.decode("utf-8")
        stripe.WebhookSignature.verify_header(text, signature, secret, tolerance)
    except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidEvent(str(exc) or "invalid signature") from None
    # stripe-python checks only the age of the signature; one made far ahead of our clock
    # could be replayed for as long as it is ahead.
    if _signed_at(signature) > time.time() + tolerance:
        raise InvalidEvent(f"Timestamp is in the future (more than {tolerance} seconds ahead)")
    try:
        event = json.loads(text)
    except (ValueError, RecursionError):
        raise UnreadableEvent(payload, "the body is not JSON, or nested too deeply") from None
    if not isinstance(event, dict):
        raise UnreadableEvent(payload, "the body is not a JSON object")
    if bool(event.get("livemode")) != livemode:
        raise InvalidEvent("event mode does not match the configured key")
    return event


def _signed_at(signature: str | None) -> int:
    """The `t=` of a Stripe-Signature header that stripe-python has already accepted."""
    for item in (signature or "").split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            return int(value)
    raise InvalidEvent("Unable to extract timestamp and signatures from header")


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


def delete_customer(client: stripe.StripeClient, customer_id: str) -> None:
    """Delete the customer and what Stripe keeps with it (payment methods, the billing
    details); a customer Stripe no longer has counts as deleted, so a retry is harmless."""
    try:
        client.v1.customers.delete(customer_id)
    except stripe.InvalidRequestError as exc:
        if exc.http_status != 404:
            raise PaymentsUnavailable(exc.user_message or str(exc)) from exc
    except stripe.StripeError as exc:
        raise PaymentsUnavailable(exc.user_message or str(exc)) from exc


def _unavailable(exc: stripe.StripeError) -> PaymentsUnavailable:
    return PaymentsUnavailable(exc.user_message or str(exc))


def subscription_item(client: stripe.StripeClient, subscription_id: str) -> tuple[str, str]:
    """The subscription's one item and the product its price is of (Stripe's shape, or
    localstripe's older one: a `plan` instead of a `price`)."""
    try:
        data = client.v1.subscriptions.retrieve(subscription_id).to_dict()
    except stripe.StripeError as exc:
        raise _unavailable(exc) from exc
    items = (data.get("items") or {}).get("data") or []
    if len(items) != 1 or not isinstance(items[0], dict):
        raise PaymentsUnavailable(f"subscription {subscription_id} has {len(items)} items, not one")
    item = items[0]
    price = item.get("price") or item.get("plan") or {}
    product = price.get("product") if isinstance(price, dict) else None
    if isinstance(product, dict):
        product = product.get("id")
    if not isinstance(product, str) or not isinstance(item.get("id"), str):
        raise PaymentsUnavailable(f"subscription {subscription_id}'s item names no product")
    return item["id"], product


def price_change_params(
    item_id: str, product_id: str, amount_minor: int, currency: str, interval: str, next_charge_at: datetime | None
) -> SubscriptionUpdateParams:
    """A new price from the next charge on, nothing prorated; a new interval starts at
    `next_charge_at` (the end of the period paid): until then a trial, so nothing is charged
    now and the paid period is kept."""
    params: SubscriptionUpdateParams = {
        "items": [
            {
                "id": item_id,
                "price_data": {
                    "currency": currency.lower(),
                    "product": product_id,
                    "unit_amount": amount_minor,
                    "recurring": {"interval": interval},
                },
            }
        ],
        "proration_behavior": "none",
    }
    if next_charge_at is not None:
        params["trial_end"] = int(next_charge_at.timestamp())
    return params


def pause_params(resumes_at: datetime) -> SubscriptionUpdateParams:
    """No payment until `resumes_at`: invoices in between are voided."""
    return {"pause_collection": {"behavior": "void", "resumes_at": int(resumes_at.timestamp())}}


def resume_params() -> SubscriptionUpdateParams:
    """The pause cleared (Stripe clears a field set to "")."""
    return {"pause_collection": ""}


def update_subscription(
    client: stripe.StripeClient, subscription_id: str, params: SubscriptionUpdateParams, idempotency_key: str
) -> dict[str, Any]:
    """One update of a subscription; the same `idempotency_key` updates once. Returns the
    subscription as Stripe has it afterwards (with what others changed before)."""
    try:
        updated = client.v1.subscriptions.update(subscription_id, params, {"idempotency_key": idempotency_key})
    except stripe.StripeError as exc:
        raise _unavailable(exc) from exc
    return updated.to_dict()


def portal_params(customer_id: str, return_url: str, locale: str) -> PortalSessionParams:
    """A Customer Portal session that only updates the card, then comes back to `return_url`."""
    return {
        "customer": customer_id,
        "return_url": return_url,
        "locale": locale if locale in PORTAL_LOCALES else "auto",
        "flow_data": {
            "type": "payment_method_update",
            "after_completion": {"type": "redirect", "redirect": {"return_url": return_url}},
        },
    }


#: the Customer Portal's languages that Supporters also speaks
PORTAL_LOCALES = {"en", "pl", "de", "fr", "cs", "lt", "lv", "et", "sk", "sv"}


def subscription_customer(client: stripe.StripeClient, subscription_id: str) -> tuple[str, str | None]:
    """The subscription's customer, and the payment method its next charge uses."""
    try:
        data = client.v1.subscriptions.retrieve(subscription_id, {"expand": ["customer"]}).to_dict()
    except stripe.StripeError as exc:
        raise _unavailable(exc) from exc
    customer = data.get("customer")
    customer_id = customer.get("id") if isinstance(customer, dict) else customer
    if not isinstance(customer_id, str):
        raise PaymentsUnavailable(f"subscription {subscription_id} has no customer")
    method = _id_of(data.get("default_payment_method"))
    if method is None and isinstance(customer, dict):
        method = _id_of((customer.get("invoice_settings") or {}).get("default_payment_method"))
    return customer_id, method


def _id_of(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


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


def balance_of_payment(client: stripe.StripeClient, payment_intent_id: str) -> Balance | None:
    """The balance transaction of the payment intent's latest charge, in one request
    (expanded); None while the charge has none (not settled yet, or no charge)."""
    try:
        intent = client.v1.payment_intents.retrieve(
            payment_intent_id, {"expand": ["latest_charge.balance_transaction"]}
        ).to_dict()
    except stripe.StripeError as exc:
        raise PaymentsUnavailable(exc.user_message or str(exc)) from exc
    charge = intent.get("latest_charge")
    txn = charge.get("balance_transaction") if isinstance(charge, dict) else None
    if not isinstance(txn, dict):
        return None
    try:
        amount, fee, net = (int(txn[name]) for name in ("amount", "fee", "net"))
        currency = str(txn["currency"]).upper()
        txn_id = str(txn["id"])
    except (KeyError, TypeError, ValueError):
        raise PaymentsUnavailable(f"Stripe's balance transaction for {payment_intent_id} is not readable") from None
    if amount <= 0 or fee < 0 or net != amount - fee or len(currency) != 3:
        raise PaymentsUnavailable(f"Stripe's balance transaction for {payment_intent_id} does not add up")
    return Balance(id=txn_id, amount_minor=amount, fee_minor=fee, net_minor=net, currency=currency)
