"""Offline payments: localstripe on 127.0.0.1 stands in for Stripe, and a local
test-payment page stands in for Checkout (localstripe has no Checkout).

The page creates the same objects Checkout would (Customer and PaymentIntent, or
Product, Plan and Subscription) in localstripe, which then sends real signed
webhooks to /webhooks/stripe. From there on it is the same code as with Stripe.

The page offers the methods Checkout would offer the gift (`methods.for_gift`).
localstripe makes card and SEPA Direct Debit payment methods only (its PaymentMethod
refuses any other type), so:

- a card and a SEPA debit are what they are: a debit stays `processing` for half a
  second, then succeeds or (Stripe's failing test IBAN) fails, each by a signed event;
- a BLIK code or a Przelewy24 bank is charged as a test card standing in for it: BLIK
  and P24 are confirmed by the donor at once, as a card is, and succeed or fail at
  once. The stand-in's events are localstripe's own (`payment_intent.succeeded`,
  `payment_failed`), handled as Stripe's are; only the payment method's type in them
  says "card".
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
import stripe
from flask import url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer

from supporters.payments import stripe_api
from supporters.payments.base import (
    Balance,
    CheckoutRequest,
    CheckoutSession,
    PaymentsUnavailable,
    RefundResult,
)
from supporters.payments.methods import Method

#: the cards the test-payment page offers, and what each does
TEST_CARDS = {
    "4242424242424242": "succeeds",
    "4000000000000341": "declined",
    "4000002500003155": "3ds",
}
#: BLIK codes the page explains, and what each does; any other six digits are refused, as a wrong code is
TEST_BLIK_CODES = {"777123": "succeeds", "500500": "refused", "700700": "times_out"}
#: Przelewy24's banks the page lists (Stripe's bank codes and names), and the one whose payment fails
TEST_P24_BANKS = {
    "pbac_z_ipko": "PKO Bank Polski",
    "mbank_mtransfer": "mBank",
    "ing": "ING Bank Śląski",
    "bank_pekao_sa": "Bank Pekao",
    "santander_przelew24": "Santander Bank Polska",
    "noble_pay": "Noble Pay",
}
P24_FAILING_BANK = "noble_pay"
#: Stripe's test IBANs (localstripe fails the second one too): debited, or failing later
TEST_IBANS = {"DE89370400440532013000": "succeeds", "DE62370400440532013001": "fails_later"}
#: the test cards localstripe charges for a BLIK or Przelewy24 payment it cannot make itself
STAND_IN_SUCCEEDS = "4242424242424242"
STAND_IN_DECLINED = "4000000000000341"
OFFLINE_KEY = "sk_test_offline_supporters"
#: how long the offline card page's link works (the portal session's is about as short)
CARD_PAGE_SECONDS = 3600


@dataclass(frozen=True)
class OfflineChoice:
    """How the donor paid on the test page: a method and its one detail (the card number,
    the BLIK code, the bank or the IBAN), already checked by the page."""

    method: Method
    value: str

    def payment_method(self, name: str, email: str) -> dict[str, Any]:
        """The localstripe PaymentMethod that makes this payment (see the module's docstring)."""
        if self.method == "sepa_debit":
            return {
                "type": "sepa_debit",
                "sepa_debit": {"iban": self.value},
                "billing_details": {"name": name, "email": email},
            }
        number = self.value
        if self.method == "blik":
            number = STAND_IN_SUCCEEDS if TEST_BLIK_CODES.get(self.value) == "succeeds" else STAND_IN_DECLINED
        elif self.method == "p24":
            number = STAND_IN_DECLINED if self.value == P24_FAILING_BANK else STAND_IN_SUCCEEDS
        return {"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2035, "cvc": "123"}}

    @property
    def declined_because(self) -> str:
        """Why a declined payment of this choice was declined, for the page to say:
        "card", "blik_refused", "blik_timed_out" or "bank"."""
        if self.method == "blik":
            return "blik_timed_out" if TEST_BLIK_CODES.get(self.value) == "times_out" else "blik_refused"
        return "bank" if self.method == "p24" else "card"


@dataclass(frozen=True)
class OfflinePayment:
    """What happened when the donor paid on the test page."""

    #: "succeeded", "processing" (a debit that settles later), "requires_action" (3-D Secure) or "declined"
    status: str
    customer_id: str
    payment_intent_id: str | None = None
    client_secret: str | None = None
    subscription_id: str | None = None
    message: str = ""


class OfflineGateway:
    """The gateway against localstripe. Never reaches the internet.

    A `PaymentGateway` by shape (see `base.py`); the calls it shares with the Stripe
    gateway are the functions in `stripe_api`. Only this gateway has `pay()`,
    `authenticate()`, `register_webhook()` and `is_up()`: the test-payment page and
    `flask dev serve` reach them after checking `isinstance(..., OfflineGateway)`.
    """

    offline = True
    livemode = False
    test_mode = True
    #: the test-payment page is one of the app's own pages ('self')
    checkout_origins: tuple[str, ...] = ()
    #: the offline card page is one of the app's own pages too
    card_update_origins: tuple[str, ...] = ()

    def __init__(self, base_url: str, webhook_secret: str) -> None:
        self.client = stripe.StripeClient(OFFLINE_KEY, base_addresses={"api": base_url}, max_network_retries=0)
        self.webhook_secret = webhook_secret
        self.base_url = base_url.rstrip("/")

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        digest = hmac.new(self.webhook_secret.encode(), f"gift:{request.gift_id}".encode(), hashlib.sha256)
        session_id = f"cs_offline_{digest.hexdigest()[:32]}"
        return CheckoutSession(id=session_id, url=url_for("offline_pay.page", session_id=session_id))

    def verify_event(self, payload: bytes, signature: str | None, tolerance: int = 300) -> dict[str, Any]:
        return stripe_api.verify_event(payload, signature, self.webhook_secret, self.livemode, tolerance)

    def refund(self, payment_intent_id: str, amount_minor: int, reason: str, idempotency_key: str) -> RefundResult:
        return stripe_api.refund(self.client, payment_intent_id, amount_minor, reason, idempotency_key)

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
        """As with Stripe, but localstripe takes a plan, not `price_data`: a new plan of the
        same product, with no proration (the wrapper in localstripe_server.py keeps the
        paid period and charges nothing now, as Stripe does)."""
        item_id, product_id = stripe_api.subscription_item(self.client, subscription_id)
        try:
            plan = self.client.v1.plans.create(
                {"amount": amount_minor, "currency": currency.lower(), "interval": interval, "product": product_id},
                {"idempotency_key": f"{idempotency_key}:plan"},
            )
        except stripe.StripeError as exc:
            raise PaymentsUnavailable(exc.user_message or str(exc)) from exc
        params: Any = {"items": [{"id": item_id, "plan": plan.id}], "proration_behavior": "none"}
        if next_charge_at is not None:
            params["trial_end"] = int(next_charge_at.timestamp())
        return stripe_api.update_subscription(self.client, subscription_id, params, idempotency_key)

    def pause_subscription(self, subscription_id: str, resumes_at: datetime, idempotency_key: str) -> dict[str, Any]:
        return stripe_api.update_subscription(
            self.client, subscription_id, stripe_api.pause_params(resumes_at), idempotency_key
        )

    def resume_subscription(self, subscription_id: str, idempotency_key: str) -> dict[str, Any]:
        return stripe_api.update_subscription(self.client, subscription_id, stripe_api.resume_params(), idempotency_key)

    def card_update_url(self, subscription_id: str, return_url: str, locale: str) -> str:
        """The offline card page (test_payment.py), signed for this subscription and return."""
        stripe_api.subscription_customer(self.client, subscription_id)  # it exists (as the portal asks)
        token = self._card_serializer().dumps({"s": subscription_id, "r": return_url})
        return url_for("offline_pay.card", token=token, lang=locale)

    def read_card_token(self, token: str) -> tuple[str, str] | None:
        """The subscription and the return address of a card page's token; None if not ours or old."""
        try:
            data = self._card_serializer().loads(token, max_age=CARD_PAGE_SECONDS)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("s"), str) or not isinstance(data.get("r"), str):
            return None
        return data["s"], data["r"]

    def attach_test_card(self, subscription_id: str, number: str) -> str:
        """Make test card `number` the subscription's card (and its customer's default), as
        the portal's card update does; returns the payment method's id."""
        try:
            customer_id, _method = stripe_api.subscription_customer(self.client, subscription_id)
            method = self.client.v1.payment_methods.create(
                {"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2035, "cvc": "123"}}
            )
            self.client.v1.payment_methods.attach(method.id, {"customer": customer_id})
            self.client.v1.customers.update(customer_id, {"invoice_settings": {"default_payment_method": method.id}})
            self.client.v1.subscriptions.update(subscription_id, {"default_payment_method": method.id})
        except stripe.StripeError as exc:
            raise PaymentsUnavailable(exc.user_message or str(exc)) from exc
        return method.id

    def default_payment_method(self, subscription_id: str) -> str | None:
        return stripe_api.subscription_customer(self.client, subscription_id)[1]

    def _card_serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self.webhook_secret, salt="supporters.offline-card")

    def events_since(self, since: datetime) -> Iterator[dict[str, Any]]:
        return stripe_api.events_since(self.client, since)

    def payment_reference(self, payment_intent_id: str) -> dict[str, str]:
        return stripe_api.payment_reference(self.client, payment_intent_id)

    def retrieve_payment_intent(self, payment_intent_id: str) -> dict[str, Any]:
        return stripe_api.retrieve_payment_intent(self.client, payment_intent_id)

    def balance_of_payment(self, payment_intent_id: str) -> Balance | None:
        return stripe_api.balance_of_payment(self.client, payment_intent_id)

    def register_webhook(self, url: str) -> None:
        """Tell localstripe where to send its signed events (it forgets on restart)."""
        try:
            response = requests.post(
                f"{self.base_url}/_config/webhooks/supporters",
                json={"url": url, "secret": self.webhook_secret},
                timeout=10,
            )
            response.raise_for_status()
        except requests.RequestException as exc:
            raise PaymentsUnavailable(f"localstripe at {self.base_url} did not answer: {exc}") from exc

    def is_up(self) -> bool:
        """True when localstripe answers."""
        try:
            return requests.get(f"{self.base_url}/v1/customers", auth=(OFFLINE_KEY, ""), timeout=2).ok
        except requests.RequestException:
            return False

    def standing_attempt(self, payment_intent_id: str | None) -> str | None:
        """What an earlier attempt to pay still is, when it is not over: "succeeded",
        "processing" or "requires_action" (3-D Secure waiting for the donor). None when
        there was none, or it failed or was canceled, so a new attempt may charge."""
        if not payment_intent_id:
            return None
        status = stripe_api.retrieve_payment_intent(self.client, payment_intent_id).get("status")
        return status if status in ("succeeded", "processing", "requires_action") else None

    def pay(self, request: CheckoutRequest, choice: OfflineChoice, attempt: str) -> OfflinePayment:
        """Pay for the gift as the donor chose (a test card, a BLIK code, a bank, an IBAN), as
        Checkout would after the donor clicks Pay.

        `attempt` names this attempt (the gift and the attempt before it): every object
        created for it carries an idempotency key made from it, as Checkout makes one
        payment per session. (localstripe ignores the keys; the page also takes turns
        on the gift's row and asks `standing_attempt` first.)
        """
        try:
            customer_id = self._customer(request, attempt)
            method = self.client.v1.payment_methods.create(
                choice.payment_method(request.name, request.email)  # type: ignore[arg-type]
            )
            if request.interval is None:
                return self._pay_once(request, customer_id, method.id, attempt)
            return self._subscribe(request, customer_id, method.id, attempt)
        except stripe.CardError as exc:
            return OfflinePayment("declined", customer_id="", message=exc.user_message or "Your card was declined.")
        except stripe.StripeError as exc:
            raise PaymentsUnavailable(exc.user_message or str(exc)) from exc

    def _customer(self, request: CheckoutRequest, attempt: str) -> str:
        if request.customer_id:
            try:
                return self.client.v1.customers.retrieve(request.customer_id).id
            except stripe.InvalidRequestError:
                pass  # localstripe keeps nothing across restarts
        customer = self.client.v1.customers.create(
            {"email": request.email, "name": request.name, "metadata": request.all_metadata},
            {"idempotency_key": f"{attempt}:customer"},
        )
        return customer.id

    def _pay_once(self, request: CheckoutRequest, customer_id: str, method_id: str, attempt: str) -> OfflinePayment:
        intent = self.client.v1.payment_intents.create(
            {
                "amount": request.amount_minor,
                "currency": request.currency.lower(),
                "customer": customer_id,
                "payment_method": method_id,
                "metadata": request.all_metadata,
            },
            {"idempotency_key": f"{attempt}:payment_intent"},
        )
        try:
            intent = self.client.v1.payment_intents.confirm(
                intent.id, options={"idempotency_key": f"{attempt}:confirm"}
            )
        except stripe.CardError as exc:
            return OfflinePayment(
                "declined", customer_id, intent.id, message=exc.user_message or "Your card was declined."
            )
        status = intent.status if intent.status in ("requires_action", "processing") else "succeeded"
        return OfflinePayment(status, customer_id, intent.id, client_secret=intent.client_secret)

    def _subscribe(self, request: CheckoutRequest, customer_id: str, method_id: str, attempt: str) -> OfflinePayment:
        interval = request.interval
        assert interval is not None, "only recurring gifts subscribe"
        self.client.v1.payment_methods.attach(method_id, {"customer": customer_id})
        self.client.v1.customers.update(customer_id, {"invoice_settings": {"default_payment_method": method_id}})
        product = self.client.v1.products.create({"name": request.description})
        plan = self.client.v1.plans.create(
            {
                "amount": request.amount_minor,
                "currency": request.currency.lower(),
                "interval": interval,
                "product": product.id,
            }
        )
        subscription = self.client.v1.subscriptions.create(
            {
                "customer": customer_id,
                "items": [{"plan": plan.id}],
                "metadata": request.all_metadata,
                "expand": ["latest_invoice.payment_intent"],
            },
            {"idempotency_key": f"{attempt}:subscription"},
        )
        data: dict[str, Any] = subscription.to_dict()
        intent = (data.get("latest_invoice") or {}).get("payment_intent") or {}
        intent_id = intent.get("id") if isinstance(intent, dict) else intent
        if isinstance(intent, dict) and intent.get("status") == "processing":
            # a SEPA debit: the subscription is active already, its first payment settles later
            return OfflinePayment("processing", customer_id, intent_id, subscription_id=subscription.id)
        if data.get("status") == "active":
            return OfflinePayment("succeeded", customer_id, intent_id, subscription_id=subscription.id)
        if isinstance(intent, dict) and intent.get("status") == "requires_action":
            return OfflinePayment(
                "requires_action", customer_id, intent_id, intent.get("client_secret"), subscription_id=subscription.id
            )
        return OfflinePayment(
            "declined", customer_id, intent_id, subscription_id=subscription.id, message="Your card was declined."
        )

    def authenticate(self, payment_intent_id: str, client_secret: str, approve: bool) -> str:
        """Finish a 3-D Secure challenge: "succeeded", "declined" or "failed" (authentication refused)."""
        try:
            response = requests.post(
                f"{self.base_url}/v1/payment_intents/{payment_intent_id}/_authenticate",
                data={"client_secret": client_secret, "success": "true" if approve else "false"},
                auth=(OFFLINE_KEY, ""),
                timeout=10,
            )
        except requests.RequestException as exc:
            raise PaymentsUnavailable(str(exc)) from exc
        if response.status_code == 402:
            return "declined"
        if not response.ok:
            raise PaymentsUnavailable(f"localstripe refused the authentication: {response.text[:200]}")
        return "succeeded" if response.json().get("status") == "succeeded" else "failed"
