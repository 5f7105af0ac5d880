"""Stand-ins for the app's outside services, type-checked against the real interfaces.

`FakeGateway` implements every member of `supporters.payments.PaymentGateway`. The
assignment at the bottom makes mypy check that (tests/unit/test_payment_gateway.py
runs it): a fake that drifts from the Protocol, or a Protocol that grows a member the
fake lacks, fails the build instead of passing tests against an interface that no
longer exists.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from supporters.payments import (
    Balance,
    CheckoutRequest,
    CheckoutSession,
    InvalidEvent,
    PaymentGateway,
    PaymentsUnavailable,
    RefundResult,
    UnreadableEvent,
)


@dataclass
class FakeGateway:
    """Stands in for Stripe: records each call, and refunds each idempotency key once.

    With `fail` set, every call that would reach Stripe raises PaymentsUnavailable.
    `events`, `references`, `intents` and `balances` are what Stripe "knows": set them in a test.
    Signatures are not checked: any event whose shape and mode are right is accepted.
    """

    offline: bool = True
    livemode: bool = False
    test_mode: bool = True
    fail: bool = False
    #: where create_checkout() sends the donor, and the origins the gateway declares for it
    checkout_base: str = "https://checkout.example"
    checkout_origins: tuple[str, ...] = ("https://checkout.example",)
    #: the origin of `portal_base`, where card_update_url() sends the donor
    card_update_origins: tuple[str, ...] = ("https://billing.stripe.com",)
    checkouts: list[CheckoutRequest] = field(default_factory=list)
    refunds: list[tuple[str, int, str, str]] = field(default_factory=list)
    canceled: list[str] = field(default_factory=list)
    #: the customers deleted, in order
    deleted_customers: list[str] = field(default_factory=list)
    by_key: dict[str, RefundResult] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    references: dict[str, dict[str, str]] = field(default_factory=dict)
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: payment intent id -> its charge's balance transaction; missing: not settled yet
    balances: dict[str, Balance] = field(default_factory=dict)
    balance_asked: list[str] = field(default_factory=list)
    #: every subscription change asked, in order: (what, subscription id, its details)
    subscription_changes: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    #: subscription id -> the subscription as Stripe has it (its shape): the changes update it and
    #: return a copy; a test may set what others changed (a pause in Stripe's dashboard)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: subscription id -> the payment method its next charge uses (set a new one to "update the card")
    cards: dict[str, str] = field(default_factory=dict)
    #: with `fail_next` set, only the next call that would reach Stripe fails (then it is cleared)
    fail_next: bool = False
    #: where card_update_url() sends the donor (Stripe's portal, or a page of the offline app)
    portal_base: str = "https://billing.stripe.com/p/session"

    def _reach_stripe(self) -> None:
        if self.fail_next:
            self.fail_next = False
            raise PaymentsUnavailable("Stripe is not answering")
        if self.fail:
            raise PaymentsUnavailable("Stripe is not answering")

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        self._reach_stripe()
        self.checkouts.append(request)
        session_id = "cs_fake_" + hashlib.sha256(f"gift:{request.gift_id}".encode()).hexdigest()[:24]
        return CheckoutSession(id=session_id, url=f"{self.checkout_base}/{session_id}")

    def verify_event(self, payload: bytes, signature: str | None, tolerance: int = 300) -> dict[str, Any]:
        try:
            event = json.loads(payload)
        except (ValueError, RecursionError):
            raise UnreadableEvent(payload, "the body is not JSON, or nested too deeply") from None
        if not isinstance(event, dict):
            raise UnreadableEvent(payload, "the body is not a JSON object")
        if bool(event.get("livemode")) != self.livemode:
            raise InvalidEvent("event mode does not match the configured key")
        return event

    def refund(self, payment_intent_id: str, amount_minor: int, reason: str, idempotency_key: str) -> RefundResult:
        self._reach_stripe()
        if idempotency_key not in self.by_key:
            self.refunds.append((payment_intent_id, amount_minor, reason, idempotency_key))
            self.by_key[idempotency_key] = RefundResult(
                id=f"re_{len(self.refunds)}", amount_minor=amount_minor, status="succeeded"
            )
        return self.by_key[idempotency_key]

    def cancel_subscription(self, subscription_id: str) -> None:
        self._reach_stripe()
        self.canceled.append(subscription_id)

    def delete_customer(self, customer_id: str) -> None:
        self._reach_stripe()
        self.deleted_customers.append(customer_id)

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
        self._reach_stripe()
        details = {
            "amount_minor": amount_minor,
            "currency": currency,
            "interval": interval,
            "idempotency_key": idempotency_key,
            "next_charge_at": next_charge_at,
        }
        self.subscription_changes.append(("change", subscription_id, details))
        price = {"unit_amount": amount_minor, "currency": currency.lower(), "recurring": {"interval": interval}}
        return self._updated(subscription_id, items={"object": "list", "data": [{"price": price}]})

    def pause_subscription(self, subscription_id: str, resumes_at: datetime, idempotency_key: str) -> dict[str, Any]:
        self._reach_stripe()
        self.subscription_changes.append(
            ("pause", subscription_id, {"resumes_at": resumes_at, "idempotency_key": idempotency_key})
        )
        pause = {"behavior": "void", "resumes_at": int(resumes_at.timestamp())}
        return self._updated(subscription_id, pause_collection=pause)

    def resume_subscription(self, subscription_id: str, idempotency_key: str) -> dict[str, Any]:
        self._reach_stripe()
        self.subscription_changes.append(("resume", subscription_id, {"idempotency_key": idempotency_key}))
        return self._updated(subscription_id, pause_collection=None)

    def _updated(self, subscription_id: str, **fields: Any) -> dict[str, Any]:
        subscription = self.subscriptions.setdefault(subscription_id, {"id": subscription_id, "object": "subscription"})
        subscription.update(fields)
        return copy.deepcopy(subscription)

    def card_update_url(self, subscription_id: str, return_url: str, locale: str) -> str:
        self._reach_stripe()
        self.subscription_changes.append(("card", subscription_id, {"return_url": return_url, "locale": locale}))
        return f"{self.portal_base}/{subscription_id}"

    def default_payment_method(self, subscription_id: str) -> str | None:
        self._reach_stripe()
        return self.cards.get(subscription_id)

    def events_since(self, since: datetime) -> Iterator[dict[str, Any]]:
        self._reach_stripe()
        start = int(since.timestamp())
        kept = [event for event in self.events if event.get("created", 0) >= start]
        return iter(sorted(kept, key=lambda event: (event.get("created", 0), event["id"])))

    def payment_reference(self, payment_intent_id: str) -> dict[str, str]:
        self._reach_stripe()
        return dict(self.references.get(payment_intent_id, {}))

    def retrieve_payment_intent(self, payment_intent_id: str) -> dict[str, Any]:
        self._reach_stripe()
        if payment_intent_id not in self.intents:
            raise PaymentsUnavailable(f"No such payment_intent: {payment_intent_id}")
        return dict(self.intents[payment_intent_id])

    def balance_of_payment(self, payment_intent_id: str) -> Balance | None:
        self._reach_stripe()
        self.balance_asked.append(payment_intent_id)
        return self.balances.get(payment_intent_id)


if TYPE_CHECKING:
    # mypy: the fake is a full PaymentGateway (see the module docstring).
    _: PaymentGateway = FakeGateway()
