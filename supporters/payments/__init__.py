"""Payments: the only package that imports `stripe`.

`build_gateway(config)` picks the real Stripe gateway (test or live keys) or the
offline one (localstripe on 127.0.0.1). The app builds it once in the factory;
code reaches it through `gateway()`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from flask import current_app

from supporters.payments.base import (
    Balance,
    CheckoutRequest,
    CheckoutSession,
    InvalidEvent,
    PaymentDeclined,
    PaymentGateway,
    PaymentsUnavailable,
    RefundResult,
    UnreadableEvent,
)

__all__ = [
    "Balance",
    "CheckoutRequest",
    "CheckoutSession",
    "InvalidEvent",
    "PaymentDeclined",
    "PaymentGateway",
    "PaymentsUnavailable",
    "RefundResult",
    "UnreadableEvent",
    "build_gateway",
    "gateway",
    "offline_webhook_secret",
]


def offline_webhook_secret(secret_key: str) -> str:
    """The signing secret shared with localstripe, derived from SECRET_KEY so it survives restarts."""
    digest = hmac.new(secret_key.encode(), b"localstripe webhook", hashlib.sha256).hexdigest()
    return f"whsec_offline_{digest[:32]}"


def build_gateway(config: Mapping[str, Any]) -> PaymentGateway:
    """The gateway the settings ask for: real Stripe when a secret key is set, else offline."""
    if config.get("STRIPE_SECRET_KEY"):
        from supporters.payments.stripe_gateway import StripeGateway

        return StripeGateway(
            secret_key=config["STRIPE_SECRET_KEY"],
            webhook_secret=config["STRIPE_WEBHOOK_SECRET"],
        )
    from supporters.payments.offline import OfflineGateway

    return OfflineGateway(
        base_url=config["LOCALSTRIPE_URL"],
        webhook_secret=offline_webhook_secret(config["SECRET_KEY"]),
    )


def gateway() -> PaymentGateway:
    """The current app's payment gateway."""
    current: PaymentGateway = current_app.extensions["payments"]
    return current
