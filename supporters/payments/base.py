"""What the rest of the app knows about payments: plain data in, plain data out."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from supporters.payments.methods import Method


class InvalidEvent(ValueError):
    """A webhook whose signature, age or shape is wrong; nothing of it may be written."""


class UnreadableEvent(ValueError):
    """A webhook signed with our secret whose body is not a Stripe event at all (not JSON,
    nested too deeply, not an object). It can never be processed: keep `payload` for staff
    and acknowledge it, or Stripe retries it for three days."""

    def __init__(self, payload: bytes, reason: str) -> None:
        super().__init__(reason)
        self.payload = payload
        self.reason = reason


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
    #: the payment methods offered for this gift, card first (`methods.for_gift`)
    payment_methods: tuple[Method, ...] = ("card",)

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


@dataclass(frozen=True)
class Balance:
    """What a charge put in the account: Stripe's balance transaction for it."""

    id: str
    #: the gross amount, fee and net, in minor units of `currency` (the account's, upper case)
    amount_minor: int
    fee_minor: int
    net_minor: int
    currency: str


class PaymentGateway(Protocol):
    """What the app asks of a payment provider: exactly the members it uses, nothing more.

    A Protocol, so a gateway conforms by shape, not by inheritance: `StripeGateway`,
    `OfflineGateway` and the tests' `FakeGateway` each implement every member, and
    mypy checks them against this list (`build_gateway` returns the real ones as a
    `PaymentGateway`, `tests/fakes.py` assigns the fake to one). What only one gateway
    has (the offline one's `pay()` or `register_webhook()`) stays on that gateway.
    """

    @property
    def test_mode(self) -> bool:
        """True when no real money moves (test keys, or the offline stack)."""
        ...

    @property
    def livemode(self) -> bool:
        """What `livemode` every event must say."""
        ...

    @property
    def offline(self) -> bool:
        """True for the local test-payment page instead of Stripe Checkout."""
        ...

    @property
    def checkout_origins(self) -> tuple[str, ...]:
        """The origins (scheme://host[:port]) the donor's browser is sent to for paying:
        the pages with a form that leads there allow exactly these in `form-action`.
        Empty when the payment page is one of the app's own."""
        ...

    @property
    def card_update_origins(self) -> tuple[str, ...]:
        """The origins `card_update_url` sends the donor's browser to (Stripe's Customer
        Portal): the donor's plan page allows exactly these in `form-action`. Empty when
        the card page is one of the app's own."""
        ...

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        """Open a checkout for the gift; calling it again for the same gift gives the same session."""
        ...

    def verify_event(self, payload: bytes, signature: str | None, tolerance: int = 300) -> dict[str, Any]:
        """The event in `payload` if its signature is valid, neither too old nor ahead of our
        clock by more than `tolerance` seconds, and its mode matches.

        Raises InvalidEvent otherwise, and UnreadableEvent for a validly signed body that
        is not a JSON object. The result is plain JSON data, its fields not yet checked.
        """
        ...

    def refund(self, payment_intent_id: str, amount_minor: int, reason: str, idempotency_key: str) -> RefundResult:
        """Refund `amount_minor` of a payment; the same `idempotency_key` refunds once."""
        ...

    def cancel_subscription(self, subscription_id: str) -> None:
        """End a subscription now; Stripe confirms with customer.subscription.deleted."""
        ...

    def delete_customer(self, customer_id: str) -> None:
        """Delete a Stripe customer (an erasure): its name, e-mail, address and saved payment
        methods go with it; the payments stay in Stripe's books. One Stripe no longer has
        counts as deleted. Raises PaymentsUnavailable when Stripe does not answer."""
        ...

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
        """From the next charge on, charge `amount_minor` of `currency` every `interval`
        ("month" or "year"), with no proration: nothing is charged or credited now. With
        `next_charge_at` (an interval switch: the end of the period already paid) the next
        charge falls then and the new interval counts from it. Stripe confirms with
        customer.subscription.updated.

        Like the pause and resume, returns the subscription as Stripe has it afterwards (plain
        JSON data): what others changed before (Stripe's dashboard, the portal) comes with it,
        even when their events arrive late."""
        ...

    def pause_subscription(self, subscription_id: str, resumes_at: datetime, idempotency_key: str) -> dict[str, Any]:
        """Take no payment until `resumes_at` (invoices in between are voided, not owed)."""
        ...

    def resume_subscription(self, subscription_id: str, idempotency_key: str) -> dict[str, Any]:
        """End a pause now: the next charge is the subscription's next renewal."""
        ...

    def card_update_url(self, subscription_id: str, return_url: str, locale: str) -> str:
        """Where the donor's browser goes to give a new card for the subscription (Stripe's
        Customer Portal, or the offline card page); it comes back to `return_url`. Its
        origin is one of `checkout_origins`, or one of the app's own pages."""
        ...

    def default_payment_method(self, subscription_id: str) -> str | None:
        """The id of the payment method the subscription's next charge uses (its own default,
        else its customer's), None when it has none."""
        ...

    def events_since(self, since: datetime) -> Iterator[dict[str, Any]]:
        """Every event Stripe still keeps that was created at or after `since`, oldest first."""
        ...

    def payment_reference(self, payment_intent_id: str) -> dict[str, str]:
        """Which gift (`gift_id`, from its metadata) or invoice (`invoice_id`) a payment
        intent paid for, as Stripe knows it; empty when neither."""
        ...

    def retrieve_payment_intent(self, payment_intent_id: str) -> dict[str, Any]:
        """The payment intent as Stripe sees it now."""
        ...

    def balance_of_payment(self, payment_intent_id: str) -> Balance | None:
        """The balance transaction of the payment intent's charge: what reached the
        account, with the fee. None while Stripe has none (the charge is not settled yet)."""
        ...
