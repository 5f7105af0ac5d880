"""What the rest of the app knows about payments: plain data in, plain data out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import stripe


class InvalidEvent(ValueError):
    """A webhook whose signature, age or shape is wrong; nothing of it may be written."""


class PaymentsUnavailable(RuntimeError):
    """The payment provider could not be reached or refused the request; safe to retry."""


class PaymentDeclined(RuntimeError):
    """The donor's payment was declined; the message is fit to show them."""


@dataclass(frozen=True)
class CheckoutRequest:
    """Everything a checkout needs to know about one gift."""

    gift_id: int
    amount_minor: int
    currency: str
    #: None for a one-time gift, "month" or "year" for a recurring one
    interval: str | None
    email: str
    name: str
    locale: str
    description: str
    success_url: str
    cancel_url: str
    customer_id: str | None = None
    recurring_plan_id: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def all_metadata(self) -> dict[str, str]:
        """Metadata on every Stripe object of this gift: how events find the gift again."""
        data = {"gift_id": str(self.gift_id), **self.metadata}
        if self.recurring_plan_id is not None:
            data["recurring_plan_id"] = str(self.recurring_plan_id)
        return data


@dataclass(frozen=True)
class CheckoutSession:
    """Where to send the donor to pay."""

    id: str
    url: str


@dataclass(frozen=True)
class RefundResult:
    """A refund Stripe accepted."""

    id: str
    amount_minor: int
    status: str


class PaymentGateway:
    """The operations Supporters needs from Stripe. Subclasses talk to real Stripe or localstripe."""

    #: True when no real money moves (test keys, or the offline stack)
    test_mode: bool = True
    #: what `livemode` every event must say
    livemode: bool = False
    #: True for the local test-payment page instead of Stripe Checkout
    offline: bool = False

    def __init__(self, client: stripe.StripeClient, webhook_secret: str) -> None:
        self.client = client
        self.webhook_secret = webhook_secret

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        """Open a checkout for the gift; calling it again for the same gift gives the same session."""
        raise NotImplementedError

    def verify_event(self, payload: bytes, signature: str | None, tolerance: int = 300) -> dict[str, Any]:
        """The event in `payload` if its signature is valid and recent and its mode matches.

        Raises InvalidEvent otherwise. The result is plain JSON data.
        """
        try:
            stripe.WebhookSignature.verify_header(payload.decode("utf-8"), signature, self.webhook_secret, tolerance)
            event = json.loads(payload)
        except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError) as exc:
            raise InvalidEvent(str(exc) or "invalid signature") from None
        if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
            raise InvalidEvent("not a Stripe event")
        if not isinstance(event.get("data"), dict) or not isinstance(event["data"].get("object"), dict):
            raise InvalidEvent("event without an object")
        if bool(event.get("livemode")) != self.livemode:
            raise InvalidEvent("event mode does not match the configured key")
        return event

    def refund(self, payment_intent_id: str, amount_minor: int, reason: str, idempotency_key: str) -> RefundResult:
        """Refund `amount_minor` of a payment."""
        params: dict[str, Any] = {"payment_intent": payment_intent_id, "amount": amount_minor}
        params.update(self._refund_extras(reason))
        try:
            refund = self.client.v1.refunds.create(params, {"idempotency_key": idempotency_key})  # type: ignore[arg-type]
        except stripe.StripeError as exc:
            raise PaymentsUnavailable(exc.user_message or str(exc)) from exc
        return RefundResult(id=refund.id, amount_minor=refund.amount, status=str(refund.status))

    def _refund_extras(self, reason: str) -> dict[str, Any]:
        return {"metadata": {"reason": reason[:500]}}

    def cancel_subscription(self, subscription_id: str) -> None:
        """End a subscription now; Stripe confirms with customer.subscription.deleted."""
        try:
            self.client.v1.subscriptions.cancel(subscription_id)
        except stripe.StripeError as exc:
            raise PaymentsUnavailable(exc.user_message or str(exc)) from exc

    def events_since(self, since: datetime) -> Iterator[dict[str, Any]]:
        """Every event Stripe still keeps that was created at or after `since`, oldest first."""
        try:
            page = self.client.v1.events.list({"created": {"gte": int(since.timestamp())}, "limit": 100})
            events = [event.to_dict() for event in page.auto_paging_iter()]
        except stripe.StripeError as exc:
            raise PaymentsUnavailable(exc.user_message or str(exc)) from exc
        return iter(sorted(events, key=lambda event: (event.get("created", 0), event["id"])))

    def payment_reference(self, payment_intent_id: str) -> dict[str, str]:
        """Which gift (`gift_id`, from its metadata) or invoice (`invoice_id`) a payment
        intent paid for, as Stripe knows it; empty when neither."""
        try:
            intent = self.client.v1.payment_intents.retrieve(payment_intent_id)
        except stripe.InvalidRequestError:
            return {}
        except stripe.StripeError as exc:
            raise PaymentsUnavailable(exc.user_message or str(exc)) from exc
        gift_id = intent.to_dict().get("metadata", {}).get("gift_id")
        if gift_id:
            return {"gift_id": str(gift_id)}
        try:
            payments = self.client.v1.invoice_payments.list(
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

    def retrieve_payment_intent(self, payment_intent_id: str) -> dict[str, Any]:
        """The payment intent as Stripe sees it now."""
        try:
            return self.client.v1.payment_intents.retrieve(payment_intent_id).to_dict()
        except stripe.StripeError as exc:
            raise PaymentsUnavailable(exc.user_message or str(exc)) from exc
