"""Run localstripe on 127.0.0.1 only, keeping nothing on disk.

localstripe's own command listens on every interface and pickles its store to
/tmp/localstripe.pickle after each write; this wrapper does neither. It also gives
each charge's balance transaction a fee as Stripe's standard European card price
would (1.5 % plus a fixed amount), where localstripe's own is always 0: the fee and
net that staff see offline then look like Stripe's, and net = amount - fee holds.

And a SEPA Direct Debit settles later, as with Stripe: localstripe reports a debit that
will succeed as succeeded at once (only its events wait half a second) and keeps only a
failing one pending. Here every debit stays pending (its payment intent `processing`)
until localstripe settles it, and is reported with `payment_intent.processing`, which
Stripe sends and localstripe does not: the offline page's debits are processing first,
by a signed event, then succeed or fail by localstripe's own.

And a subscription changes as the donor's page changes it with Stripe (`subscription_changes`):
localstripe's update takes a new plan in `items` but always credits the unused time and,
for a new interval, invoices at once; it has no `pause_collection`, no
`proration_behavior`, no `default_payment_method`, and sends no
`customer.subscription.updated`. Here `proration_behavior="none"` leaves the period paid
as it is (no credit, no invoice now: the next charge is at the period's end, or at
`trial_end`), `pause_collection` is kept on the subscription as Stripe keeps it (set, or
cleared with ""), `default_payment_method` too, and every update is reported with
`customer.subscription.updated`, so the offline stack shows a change exactly as Stripe would.

    python -m supporters.payments.localstripe_server --port 8420
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

#: the fixed part of a card payment's fee, in minor units of the charge's currency
FIXED_FEE = {"pln": 100, "eur": 25, "usd": 30, "gbp": 20}


def card_fee(amount: int, currency: str) -> int:
    """Stripe's standard fee for a European card: 1.5 % (rounded half up) plus the fixed part."""
    return min(amount, (amount * 15 + 500) // 1000 + FIXED_FEE.get(currency.lower(), 0))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="localstripe bound to 127.0.0.1, in memory only")
    parser.add_argument("--port", type=int, default=8420)
    args = parser.parse_args(argv)

    from localstripe import resources

    # Patch the class before the server module builds its store and middleware.
    resources.Store.dump_to_disk = lambda self: None
    resources.Store.try_load_from_disk = lambda self: None
    original = resources.BalanceTransaction.__init__

    def with_fee(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if self.type == "charge":
            self.fee = card_fee(self.amount, self.currency)
            self.fee_details = [{"amount": self.fee, "currency": self.currency, "type": "stripe_fee"}]

    resources.BalanceTransaction.__init__ = with_fee
    create_charge = resources.PaymentIntent._create_charge

    def reporting_processing(self: Any, on_failure_now: Any) -> None:
        create_charge(self, on_failure_now)
        if self.status == "processing":
            resources.schedule_webhook(resources.Event("payment_intent.processing", self))

    resources.PaymentIntent._create_charge = reporting_processing
    initialize_charge = resources.Charge._initialize_charge

    def settling_later(self: Any, *args: Any, **kwargs: Any) -> None:
        initialize_charge(self, *args, **kwargs)
        if self.status == "succeeded" and self.balance_transaction is None and self._is_async_payment_method():
            self.status = "pending"  # until _trigger_payment's callback settles it, half a second on

    resources.Charge._initialize_charge = settling_later
    subscription_changes(resources)
    from aiohttp import web
    from localstripe.server import app

    logging.basicConfig(level=logging.WARNING, format="localstripe: %(message)s")
    web.run_app(app, host="127.0.0.1", port=args.port, print=lambda *_: None, access_log=None)


def subscription_changes(resources: Any) -> None:
    """Teach localstripe's Subscription the updates the donor's page makes (see the docstring)."""
    subscription = resources.Subscription
    original_init = subscription.__init__
    original_update = subscription._update

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.pause_collection = None
        self.default_payment_method = None

    def update(
        self: Any,
        proration_behavior: Any = None,
        pause_collection: Any = None,
        default_payment_method: Any = None,
        **data: Any,
    ) -> None:
        if proration_behavior not in (None, "none", "create_prorations"):
            raise resources.UserError(400, "Bad request")
        if pause_collection not in (None, "") and not (
            isinstance(pause_collection, dict) and pause_collection.get("behavior") in ("void", "keep_as_draft")
        ):
            raise resources.UserError(400, "Bad request")
        if default_payment_method is not None:
            resources.PaymentMethod._api_retrieve(default_payment_method)  # 404 if unknown
        pending = {item.id for item in resources.InvoiceItem._api_list_all(None, limit=99)._list}
        if proration_behavior == "none":
            self._create_invoice = lambda: None  # the next charge stays where it was
        try:
            original_update(self, **data)
        finally:
            self.__dict__.pop("_create_invoice", None)
        if proration_behavior == "none":
            for item in resources.InvoiceItem._api_list_all(None, limit=99)._list:
                if item.id not in pending and item.invoice is None:
                    resources.InvoiceItem._api_delete(item.id)
        if pause_collection == "":
            self.pause_collection = None
        elif pause_collection is not None:
            resumes_at = pause_collection.get("resumes_at")
            self.pause_collection = {
                "behavior": pause_collection["behavior"],
                "resumes_at": int(resumes_at) if resumes_at not in (None, "") else None,
            }
        if default_payment_method is not None:
            self.default_payment_method = default_payment_method
        resources.schedule_webhook(resources.Event("customer.subscription.updated", self))

    subscription.__init__ = init
    subscription._update = update


if __name__ == "__main__":
    main()
