"""Which of Stripe Checkout's payment methods a gift may be paid with.

What Stripe's documentation of Checkout says each method supports (checked for issue 12):

- `card`, with Apple Pay, Google Pay and Link: every currency, once and recurring; settles at once.
- `blik`: PLN, once ("Subscription mode: Not yet"); recurring only through Stripe's BLIK
  recurring preview (Model O mandates, PLN, up to 2,000 PLN a charge); settles at once.
- `p24` (Przelewy24): PLN and EUR, once only ("recurring subscription plans are not
  supported"); settles at once, sometimes later.
- `sepa_debit`: EUR, once and recurring; settles later (about 5 business days).

SEPA Direct Debit is offered for recurring EUR gifts only (a one-time gift in EUR has
P24 and cards). Checkout filters the named methods by those turned on in Stripe's
dashboard (`allowed_payment_method_types`): one the dashboard has off is not shown
(docs/payments.md, "Payment methods").
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

Method = Literal["card", "blik", "p24", "sepa_debit"]
#: every method the app knows, in the order Checkout lists them
KNOWN: tuple[Method, ...] = ("card", "blik", "p24", "sepa_debit")
#: BLIK's limit for one recurring (Model O) charge: 2,000.00 PLN
BLIK_RECURRING_MAX_MINOR = 200_000


def for_gift(
    enabled: Collection[str],
    currency: str,
    interval: str | None,
    amount_minor: int,
    *,
    blik_recurring: bool = False,
) -> tuple[Method, ...]:
    """The methods a gift of `amount_minor` `currency` (recurring every `interval`, or
    once when None) may be paid with, of those `enabled`: always the card, then what
    Stripe supports for that currency and kind. `blik_recurring` turns on the BLIK
    recurring preview for monthly and yearly PLN gifts."""
    if interval is None:
        allowed: dict[Method, bool] = {
            "card": True,
            "blik": currency == "PLN",
            "p24": currency in ("PLN", "EUR"),
            "sepa_debit": False,
        }
    else:
        allowed = {
            "card": True,
            "blik": blik_recurring and currency == "PLN" and amount_minor <= BLIK_RECURRING_MAX_MINOR,
            "p24": False,
            "sepa_debit": currency == "EUR",
        }
    return tuple(method for method in KNOWN if allowed[method] and (method == "card" or method in enabled))
