"""Both real gateways check a webhook's signature the same way: our secret, not older
than the tolerance and not ahead of our clock by more than it, the configured mode; a
validly signed body that is no event is told apart, to be kept rather than refused."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from supporters.payments import InvalidEvent, PaymentGateway, UnreadableEvent
from supporters.payments.offline import OfflineGateway
from supporters.payments.stripe_gateway import StripeGateway
from tests import stripe_events as se

SECRET = "whsec_test_signatures"
GATEWAYS: dict[str, Callable[[], PaymentGateway]] = {
    "stripe": lambda: StripeGateway("sk_test_signatures", SECRET),
    "offline": lambda: OfflineGateway("http://127.0.0.1:9", SECRET),
}
BODY = se.encode(se.event("customer.created", {"id": "cus_1", "object": "customer"}))


@pytest.fixture(params=GATEWAYS.values(), ids=GATEWAYS.keys())
def gateway(request: pytest.FixtureRequest) -> PaymentGateway:
    build: Callable[[], PaymentGateway] = request.param
    return build()


@pytest.mark.parametrize("offset", [-4 * 60, 0, 4 * 60])
def test_a_signature_within_five_minutes_either_way_is_accepted(gateway: PaymentGateway, offset: int) -> None:
    event = gateway.verify_event(BODY, se.sign(BODY, SECRET, timestamp=int(time.time()) + offset))
    assert event["type"] == "customer.created"


@pytest.mark.parametrize("offset", [6 * 60, 24 * 3600, 10 * 365 * 24 * 3600])
def test_a_signature_from_the_future_is_refused(gateway: PaymentGateway, offset: int) -> None:
    with pytest.raises(InvalidEvent, match="future"):
        gateway.verify_event(BODY, se.sign(BODY, SECRET, timestamp=int(time.time()) + offset))


def test_a_signature_older_than_five_minutes_is_refused(gateway: PaymentGateway) -> None:
    with pytest.raises(InvalidEvent):
        gateway.verify_event(BODY, se.sign(BODY, SECRET, timestamp=int(time.time()) - 6 * 60))


@pytest.mark.parametrize("body", [b"[", b"[1]", b"null", b"[" * 1001, b'"evt"'])
def test_a_validly_signed_body_that_is_no_event_is_unreadable_not_invalid(gateway: PaymentGateway, body: bytes) -> None:
    with pytest.raises(UnreadableEvent) as caught:
        gateway.verify_event(body, se.sign(body, SECRET))
    assert caught.value.payload == body and not isinstance(caught.value, InvalidEvent)


def test_an_unsigned_body_that_is_no_event_is_invalid(gateway: PaymentGateway) -> None:
    with pytest.raises(InvalidEvent):
        gateway.verify_event(b"[" * 1001, se.sign(b"[" * 1001, "whsec_someone_else"))
