"""The Checkout Sessions we ask Stripe for, checked as Stripe would receive them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import stripe

from supporters.payments import CheckoutRequest, build_gateway, offline_webhook_secret
from supporters.payments.offline import OfflineGateway
from supporters.payments.stripe_gateway import StripeGateway, checkout_params

ROOT = Path(__file__).parents[2]


def request(**changes: Any) -> CheckoutRequest:
    values: dict[str, Any] = {
        "gift_id": 42,
        "amount_minor": 5000,
        "currency": "PLN",
        "interval": None,
        "email": "ada@example.org",
        "name": "Ada",
        "locale": "pl",
        "description": "Gift to the demo foundation",
        "success_url": "https://app.example/donate/thanks?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://app.example/donate/cancelled?session_id={CHECKOUT_SESSION_ID}",
    }
    values.update(changes)
    return CheckoutRequest(**values)


def test_one_time_gift_is_a_donate_payment_with_the_gift_id_everywhere() -> None:
    params = checkout_params(request())
    assert params["mode"] == "payment"
    assert params["submit_type"] == "donate"
    assert params["client_reference_id"] == "42"
    assert params["metadata"] == {"gift_id": "42"}
    assert params["payment_intent_data"]["metadata"] == {"gift_id": "42"}
    [item] = params["line_items"]
    assert item["quantity"] == 1
    assert item["price_data"] == {
        "currency": "pln",
        "unit_amount": 5000,
        "product_data": {"name": "Gift to the demo foundation"},
    }
    assert "subscription_data" not in params
    assert params["customer_email"] == "ada@example.org" and params["customer_creation"] == "always"
    assert params["locale"] == "pl"
    assert params["success_url"].endswith("session_id={CHECKOUT_SESSION_ID}")


@pytest.mark.parametrize("interval", ["month", "year"])
def test_recurring_gift_is_a_subscription_with_a_recurring_price(interval: str) -> None:
    params = checkout_params(request(interval=interval, recurring_plan_id=7, customer_id="cus_1"))
    assert params["mode"] == "subscription"
    assert "submit_type" not in params and "payment_intent_data" not in params
    [item] = params["line_items"]
    assert item["price_data"]["recurring"] == {"interval": interval}
    assert params["subscription_data"]["metadata"] == {"gift_id": "42", "recurring_plan_id": "7"}
    assert params["customer"] == "cus_1" and "customer_email" not in params


def test_unknown_language_lets_checkout_choose() -> None:
    assert checkout_params(request(locale="xx"))["locale"] == "auto"


class RecordingClient(stripe.HTTPClient):
    """Stripe's own HTTP layer, stopped at the wire: records what would be sent."""

    name = "recording"

    def __init__(self, reply: dict[str, Any]) -> None:
        super().__init__()
        self.reply = reply
        self.calls: list[tuple[str, str, dict[str, str], str]] = []

    def request(self, method: str, url: str, headers: Any, post_data: Any = None, *, _usage: Any = None) -> Any:
        self.calls.append((method, url, dict(headers or {}), post_data or ""))
        return json.dumps(self.reply), 200, {}


def test_stripe_gateway_sends_the_session_with_an_idempotency_key_per_gift() -> None:
    gateway = StripeGateway("sk_test_" + "a" * 24, "whsec_x")
    wire = RecordingClient(
        {"id": "cs_test_1", "object": "checkout.session", "url": "https://checkout.stripe.com/c/pay/cs_test_1"}
    )
    gateway.client = stripe.StripeClient("sk_test_" + "a" * 24, http_client=wire)
    session = gateway.create_checkout(request())
    assert (session.id, session.url) == ("cs_test_1", "https://checkout.stripe.com/c/pay/cs_test_1")
    [(method, url, headers, body)] = wire.calls
    assert method == "post" and url.endswith("/v1/checkout/sessions")
    assert headers["Idempotency-Key"] == "gift-42-checkout"
    form = parse_qs(body)
    assert form["mode"] == ["payment"] and form["submit_type"] == ["donate"]
    assert form["payment_intent_data[metadata][gift_id]"] == ["42"]
    assert form["line_items[0][price_data][unit_amount]"] == ["5000"]


def test_stripe_errors_become_a_clear_unavailable_error() -> None:
    from supporters.payments import PaymentsUnavailable

    gateway = StripeGateway("sk_test_" + "a" * 24, "whsec_x")

    class Failing(RecordingClient):
        def request(self, *args: Any, **kwargs: Any) -> Any:
            return json.dumps({"error": {"message": "Invalid currency", "type": "invalid_request_error"}}), 400, {}

    gateway.client = stripe.StripeClient("sk_test_" + "a" * 24, http_client=Failing({}))
    with pytest.raises(PaymentsUnavailable, match="Invalid currency"):
        gateway.create_checkout(request())


def test_gateway_follows_the_keys() -> None:
    base = {"LOCALSTRIPE_URL": "http://127.0.0.1:1", "SECRET_KEY": "k" * 40, "STRIPE_WEBHOOK_SECRET": "whsec_x"}
    offline = build_gateway({**base, "STRIPE_SECRET_KEY": ""})
    assert isinstance(offline, OfflineGateway) and offline.test_mode and not offline.livemode
    assert offline.webhook_secret == offline_webhook_secret("k" * 40)
    test = build_gateway({**base, "STRIPE_SECRET_KEY": "sk_test_" + "a" * 24})
    assert isinstance(test, StripeGateway) and test.test_mode and not test.livemode
    live = build_gateway({**base, "STRIPE_SECRET_KEY": "sk_live_" + "a" * 24})
    assert live.livemode and not live.test_mode


def test_offline_checkout_is_the_same_for_the_same_gift(app: Any) -> None:
    gateway = build_gateway({"LOCALSTRIPE_URL": "http://127.0.0.1:1", "SECRET_KEY": "k" * 40, "STRIPE_SECRET_KEY": ""})
    with app.test_request_context():
        first, again, other = (gateway.create_checkout(request(gift_id=n)) for n in (1, 1, 2))
    assert first == again and first.id != other.id
    assert first.url == f"/pay/test/{first.id}"


def _mypy(*paths: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mypy", *paths], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_payments_package_type_checks_against_stripes_own_definitions() -> None:
    result = _mypy("supporters/payments")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_type_check_catches_a_misspelt_checkout_parameter(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong_params.py"
    wrong.write_text(
        "from stripe.params.checkout import SessionCreateParams\n"
        "params: SessionCreateParams = {'mode': 'payment', 'submit_typo': 'donate'}\n"
    )
    result = _mypy(str(wrong))
    assert result.returncode != 0 and "submit_typo" in result.stdout


def test_the_test_fakes_are_full_payment_gateways() -> None:
    """tests/fakes.py assigns a FakeGateway to a PaymentGateway; mypy checks it, strictly."""
    result = _mypy("tests/fakes.py")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("real", "drifted", "member"),
    [
        pytest.param(
            "def cancel_subscription(self, subscription_id: str) -> None:",
            "def cancel_subscription(self, subscription_id: str, at_period_end: bool) -> None:",
            "cancel_subscription",
            id="changed-signature",
        ),
        pytest.param("def payment_reference(", "def payment_ref(", "payment_reference", id="missing-member"),
    ],
)
def test_the_type_check_catches_a_fake_that_drifts_from_the_gateway(
    tmp_path: Path, real: str, drifted: str, member: str
) -> None:
    source = (ROOT / "tests" / "fakes.py").read_text()
    assert source.count(real) == 1, "the fake no longer has the line this test changes"
    copy = tmp_path / "drifted_fakes.py"
    copy.write_text(source.replace(real, drifted))
    result = _mypy(str(copy))
    assert result.returncode != 0, result.stdout + result.stderr
    [error] = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert '"FakeGateway"' in error and '"PaymentGateway"' in error, result.stdout
    assert member in result.stdout, result.stdout
