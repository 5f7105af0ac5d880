"""The processing fee a donor may choose to cover: what the form adds to the gift, and
the gift and the fee told apart again afterwards (the receipt shows them apart).

The estimate is SUPPORTERS_FEE_PERCENT of the total plus SUPPORTERS_FEE_FIXED per
currency, so that after the processor's fee the whole gift arrives. Only the total is
stored (gift.amount_minor, with gift.covers_fee); `split_covered_fee` finds the gift
back from it, the one amount that the estimate turns into that total.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from flask import current_app


def _percent_and_fixed(currency: str) -> tuple[Decimal, int]:
    percent = Decimal(current_app.config["SUPPORTERS_FEE_PERCENT"]) / 100
    fixed = int(current_app.config["SUPPORTERS_FEE_FIXED"].get(currency, 0))
    return percent, fixed


def estimate_fee(amount_minor: int, currency: str) -> int:
    """What to add to `amount_minor` so that, after the estimated processing fee
    (SUPPORTERS_FEE_PERCENT + SUPPORTERS_FEE_FIXED), the full amount arrives."""
    percent, fixed = _percent_and_fixed(currency)
    gross = ((Decimal(amount_minor) + fixed) / (1 - percent)).to_integral_value(rounding=ROUND_CEILING)
    return int(gross) - amount_minor


def split_covered_fee(total_minor: int, currency: str) -> tuple[int, int] | None:
    """(gift, fee) of a total the form made by adding `estimate_fee` to a gift; None when
    no gift gives this total under the fee settings in force (they changed since, or the
    total was typed by hand). The estimate only grows with the gift, so at most one does."""
    percent, fixed = _percent_and_fixed(currency)
    near = Decimal(total_minor) * (1 - percent) - fixed
    low = int(near.to_integral_value(rounding=ROUND_FLOOR))
    for gift in range(low - 1, low + 3):
        if 0 < gift <= total_minor and gift + estimate_fee(gift, currency) == total_minor:
            return gift, total_minor - gift
    return None
