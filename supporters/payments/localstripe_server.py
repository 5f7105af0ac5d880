"""Run localstripe on 127.0.0.1 only, keeping nothing on disk.

localstripe's own command listens on every interface and pickles its store to
/tmp/localstripe.pickle after each write; this wrapper does neither. It also gives
each charge's balance transaction a fee as Stripe's standard European card price
would (1.5 % plus a fixed amount), where localstripe's own is always 0: the fee and
net that staff see offline then look like Stripe's, and net = amount - fee holds.

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
    from aiohttp import web
    from localstripe.server import app

    logging.basicConfig(level=logging.WARNING, format="localstripe: %(message)s")
    web.run_app(app, host="127.0.0.1", port=args.port, print=lambda *_: None, access_log=None)


if __name__ == "__main__":
    main()
