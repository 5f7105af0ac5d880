"""What the dashboard's tests share: a person of each role, signed in, and a payments
gateway that stands in for Stripe."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask

from supporters.payments import PaymentsUnavailable, RefundResult
from tests import factories


def signed_in_as(client: Any, role: str) -> Any:
    user = factories.staff(role)
    assert factories.sign_in(client, user).status_code == 303
    return user


@pytest.fixture
def admin(client: Any, db: Any) -> Any:
    return signed_in_as(client, "admin")


@pytest.fixture
def fundraiser(client: Any, db: Any) -> Any:
    """May view, write and export, but not manage staff."""
    return signed_in_as(client, "fundraiser")


@pytest.fixture
def viewer(client: Any, db: Any) -> Any:
    return signed_in_as(client, "viewer")


@dataclass
class FakeGateway:
    """Stands in for Stripe: records each call, and refunds each idempotency key once."""

    offline: bool = True
    livemode: bool = False
    test_mode: bool = True
    fail: bool = False
    refunds: list[tuple[str, int, str, str]] = field(default_factory=list)
    canceled: list[str] = field(default_factory=list)
    by_key: dict[str, RefundResult] = field(default_factory=dict)

    def refund(self, payment_intent_id: str, amount_minor: int, reason: str, idempotency_key: str) -> RefundResult:
        if self.fail:
            raise PaymentsUnavailable("Stripe is not answering")
        if idempotency_key not in self.by_key:
            self.refunds.append((payment_intent_id, amount_minor, reason, idempotency_key))
            self.by_key[idempotency_key] = RefundResult(id=f"re_{len(self.refunds)}", amount_minor=amount_minor,
                                                        status="succeeded")
        return self.by_key[idempotency_key]

    def cancel_subscription(self, subscription_id: str) -> None:
        if self.fail:
            raise PaymentsUnavailable("Stripe is not answering")
        self.canceled.append(subscription_id)


@pytest.fixture
def gateway(app: Flask) -> Iterator[FakeGateway]:
    fake = FakeGateway()
    real = app.extensions["payments"]
    app.extensions["payments"] = fake
    try:
        yield fake
    finally:
        app.extensions["payments"] = real
