"""Real Stripe (test mode, or live when explicitly allowed): hosted Checkout Sessions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import stripe
from stripe.params.checkout import SessionCreateParams

from supporters.payments import stripe_api
from supporters.payments.base import (
    Balance,
    CheckoutRequest,
    CheckoutSession,
    PaymentsUnavailable,
    RefundResult,
)

#: Checkout's own languages that Supporters also speaks
CHECKOUT_LOCALES = {"en", "pl", "de", "fr", "cs", "lt", "lv", "et", "sk", "sv"}
REFUND_REASONS = {"duplicate", "fraudulent", "requested_by_customer"}


def checkout_params(request: CheckoutRequest) -> SessionCreateParams:
    """The Checkout Session for one gift, typed against Stripe's own definitions."""
    metadata = request.all_metadata
    product_data: Any = {"name": request.description}
    price_data: Any = {
        "currency": request.currency.lower(),
        "unit_amount": request.amount_minor,
        "product_data": product_data,
    }
    params: SessionCreateParams = {
        "line_items": [{"quantity": 1, "price_data": price_data}],
        "client_reference_id": str(request.gift_id),
        "metadata": metadata,
        "success_url": request.success_url,
        "cancel_url": request.cancel_url,
        "locale": request.locale if request.locale in CHECKOUT_LOCALES else "auto",
        # Since API version 2026-09-30.endive Checkout takes no `payment_method_types`: this list
        # filters the methods turned on in Stripe's dashboard, so a method the setting names but
        # the dashboard has off is left out rather than refused. Only methods Stripe supports for
        # the gift's currency and mode are named (methods.py).
        "allowed_payment_method_types": list(request.payment_methods),
    }
    if request.interval is None:
        params["mode"] = "payment"
        params["submit_type"] = "donate"
        params["payment_intent_data"] = {"metadata": metadata, "description": request.description}
    else:
        params["mode"] = "subscription"
        price_data["recurring"] = {"interval": request.interval}
        params["subscription_data"] = {"metadata": metadata, "description": request.description}
    if request.customer_id:
        params["customer"] = request.customer_id
    else:
        params["customer_email"] = request.email
        if request.interval is None:
            params["customer_creation"] = "always"
    return params


class StripeGateway:
    """Stripe's API with the configured key; Checkout hosts the payment page.

    A `PaymentGateway` by shape (see `base.py`); the calls it shares with the offline
    gateway are the functions in `stripe_api`.
    """

    offline = False
    #: a Checkout Session's `url` is on Stripe's hosted Checkout (https://checkout.stripe.com/…, as in
    #: Stripe's fixtures)
    checkout_origins: tuple[str, ...] = ("https://checkout.stripe.com",)
    #: a Customer Portal session's `url` is on https://billing.stripe.com (Stripe's fixture): the
    #: card update of the donor's plan page; only that page allows it (core/headers.py)
    card_update_origins: tuple[str, ...] = ("https://billing.stripe.com",)

    def __init__(self, secret_key: str, webhook_secret: str) -> None:
        self.client = stripe.StripeClient(secret_key, max_network_retries=2)
        self.webhook_secret = webhook_secret
        self.livemode = secret_key.startswith(("sk_live_", "rk_live_"))
        self.test_mode = not self.livemode

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        try:
            session = self.client.v1.checkout.sessions.create(
                checkout_params(request), {"idempotency_key": f"gift-{request.gift_id}-checkout"}
            )
        except stripe.StripeError as exc:
            raise PaymentsUnavailable(exc.user_message or str(exc)) from exc
        return CheckoutSession(id=session.id, url=str(session.url))

    def verify_event(self, payload: bytes, signature: str | None, tolerance: int = 300) -> dict[str, Any]:
        return stripe_api.verify_event(payload, signature, self.webhook_secret, self.livemode, tolerance)

    def refund(self, payment_intent_id: str, amount_minor: int, reason: str, idempotency_key: str) -> RefundResult:
        stripe_reason = reason if reason in REFUND_REASONS else None
        return stripe_api.refund(self.client, payment_intent_id, amount_minor, reason, idempotency_key, stripe_reason)

    def cancel_subscription(self, subscription_id: str) -> None:
        stripe_api.cancel_subscription(self.client, subscription_id)

    def delete_customer(self, customer_id: str) -> None:
        stripe_api.delete_customer(self.client, customer_id)

    def change_subscription(
        self,
        subscription_id: str,
        *,
        amount_minor: int,
        currency: str,
        interval: str,
        idempotency_key: str,
        next_charge_at: datetime | None = None,
    ) -> dict[str, Any]:
        item_id, product_id = stripe_api.subscription_item(self.client, subscription_id)
        params = stripe_api.price_change_params(item_id, product_id, amount_minor, currency, interval, next_charge_at)
        return stripe_api.update_subscription(self.client, subscription_id, params, idempotency_key)

    def pause_subscription(self, subscription_id: str, resumes_at: datetime, idempotency_key: str) -> dict[str, Any]:
        return stripe_api.update_subscription(
            self.client, subscription_id, stripe_api.pause_params(resumes_at), idempotency_key
        )

    def resume_subscription(self, subscription_id: str, idempotency_key: str) -> dict[str, Any]:
        return stripe_api.update_subscription(self.client, subscription_id, stripe_api.resume_params(), idempotency_key)

    def card_update_url(self, subscription_id: str, return_url: str, locale: str) -> str:
        """A Customer Portal session on billing.stripe.com that only updates the card (the
        portal sets the new card as the customer's and its subscriptions' default)."""
        customer_id, _method = stripe_api.subscription_customer(self.client, subscription_id)
        try:
            session = self.client.v1.billing_portal.sessions.create(
                stripe_api.portal_params(customer_id, return_url, locale)
            )
        except stripe.StripeError as exc:
            raise PaymentsUnavailable(exc.user_message or str(exc)) from exc
        return str(session.url)

    def default_payment_method(self, subscription_id: str) -> str | None:
        return stripe_api.subscription_customer(self.client, subscription_id)[1]

    def events_since(self, since: datetime) -> Iterator[dict[str, Any]]:
        return stripe_api.events_since(self.client, since)

    def payment_reference(self, payment_intent_id: str) -> dict[str, str]:
        return stripe_api.payment_reference(self.client, payment_intent_id)

    def retrieve_payment_intent(self, payment_intent_id: str) -> dict[str, Any]:
        return stripe_api.retrieve_payment_intent(self.client, payment_intent_id)

    def balance_of_payment(self, payment_intent_id: str) -> Balance | None:
        return stripe_api.balance_of_payment(self.client, payment_intent_id)
