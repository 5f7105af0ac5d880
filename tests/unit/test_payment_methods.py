"""Which payment methods a gift is offered: what Stripe supports, of what the setting turns on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import pytest

from supporters.config import ConfigError, load_config
from supporters.payments import CheckoutRequest
from supporters.payments.methods import BLIK_RECURRING_MAX_MINOR, KNOWN, Method, for_gift
from supporters.payments.stripe_gateway import checkout_params

ALL = KNOWN
FIXTURES = Path(__file__).parents[2].parent / "shared/stripe/fixtures3.json"


@pytest.mark.parametrize(
    "currency,expected",
    [("PLN", ("card", "blik", "p24")), ("EUR", ("card", "p24")), ("USD", ("card",)), ("GBP", ("card",))],
)
def test_a_one_time_gift_offers_blik_in_pln_and_przelewy24_in_pln_and_eur(currency: str, expected: tuple) -> None:
    assert for_gift(ALL, currency, None, 5000) == expected


@pytest.mark.parametrize("interval", ["month", "year"])
@pytest.mark.parametrize("currency,expected", [("PLN", ("card",)), ("EUR", ("card", "sepa_debit")), ("USD", ("card",))])
def test_a_recurring_gift_offers_cards_and_sepa_direct_debit_in_eur(
    interval: str, currency: str, expected: tuple
) -> None:
    assert for_gift(ALL, currency, interval, 5000) == expected


def test_blik_recurring_is_offered_only_when_its_preview_is_on_and_up_to_2000_zloty() -> None:
    assert for_gift(ALL, "PLN", "month", 5000) == ("card",)
    assert for_gift(ALL, "PLN", "month", 5000, blik_recurring=True) == ("card", "blik")
    assert for_gift(ALL, "PLN", "month", BLIK_RECURRING_MAX_MINOR, blik_recurring=True) == ("card", "blik")
    assert for_gift(ALL, "PLN", "month", BLIK_RECURRING_MAX_MINOR + 1, blik_recurring=True) == ("card",)
    assert for_gift(ALL, "EUR", "month", 5000, blik_recurring=True) == ("card", "sepa_debit")


def test_methods_the_setting_leaves_out_are_not_offered_but_the_card_always_is() -> None:
    assert for_gift(["card"], "PLN", None, 5000) == ("card",)
    assert for_gift(["card", "p24"], "PLN", None, 5000) == ("card", "p24")
    assert for_gift(["p24", "card"], "EUR", "month", 5000) == ("card",)
    assert for_gift([], "EUR", None, 5000) == ("card",)


def test_every_method_is_one_stripes_checkout_accepts() -> None:
    from stripe.params.checkout import SessionCreateParams

    annotation = SessionCreateParams.__annotations__["allowed_payment_method_types"]
    assert "payment_method_types" not in SessionCreateParams.__annotations__  # removed in 2026-09-30.endive
    accepted = set(get_args(get_args(get_args(get_args(annotation)[0])[0])[0]))
    assert set(get_args(Method)) == set(KNOWN) and set(KNOWN) <= accepted


def request(**changes: Any) -> CheckoutRequest:
    values: dict[str, Any] = {
        "gift_id": 42,
        "amount_minor": 5000,
        "currency": "PLN",
        "interval": None,
        "email": "ada@example.org",
        "name": "Ada",
        "locale": "pl",
        "description": "Gift",
        "success_url": "https://app.example/donate/thanks?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://app.example/donate/cancelled?session_id={CHECKOUT_SESSION_ID}",
    }
    values.update(changes)
    return CheckoutRequest(**values)


def test_the_checkout_session_names_the_gifts_methods() -> None:
    assert checkout_params(request())["allowed_payment_method_types"] == ["card"]
    params = checkout_params(request(payment_methods=("card", "blik", "p24")))
    assert params["allowed_payment_method_types"] == ["card", "blik", "p24"]
    recurring = checkout_params(request(currency="EUR", interval="month", payment_methods=("card", "sepa_debit")))
    assert recurring["mode"] == "subscription" and recurring["allowed_payment_method_types"] == ["card", "sepa_debit"]


def test_stripes_checkout_session_reports_the_methods_it_offered() -> None:
    """The session Stripe returns lists what the filter left (`payment_method_types`)."""
    if not FIXTURES.is_file():
        pytest.skip(f"Stripe's fixture objects are not at {FIXTURES}")
    session = json.loads(FIXTURES.read_text(encoding="utf-8"))["resources"]["checkout.session"]
    assert set(session["payment_method_types"]) <= set(KNOWN)
    assert session["payment_status"] in ("paid", "unpaid", "no_payment_required")


def test_every_method_is_on_by_default_but_blik_recurring(tmp_path: Path) -> None:
    config = load_config(tmp_path, env={})
    assert config["SUPPORTERS_PAYMENT_METHODS"] == ["card", "blik", "p24", "sepa_debit"]
    assert config["SUPPORTERS_BLIK_RECURRING"] is False


def test_the_methods_setting_is_read_and_checked(tmp_path: Path) -> None:
    config = load_config(
        tmp_path, env={"SUPPORTERS_PAYMENT_METHODS": " Card, p24 ,card", "SUPPORTERS_BLIK_RECURRING": ""}
    )
    assert config["SUPPORTERS_PAYMENT_METHODS"] == ["card", "p24"]
    with pytest.raises(ConfigError, match="'ideal' is not one of card, blik, p24, sepa_debit"):
        load_config(tmp_path, env={"SUPPORTERS_PAYMENT_METHODS": "card,ideal"})
    with pytest.raises(ConfigError, match="must include card"):
        load_config(tmp_path, env={"SUPPORTERS_PAYMENT_METHODS": "blik,p24"})
    with pytest.raises(ConfigError, match="needs blik"):
        load_config(tmp_path, env={"SUPPORTERS_PAYMENT_METHODS": "card,p24", "SUPPORTERS_BLIK_RECURRING": "1"})
    on = load_config(tmp_path, env={"SUPPORTERS_BLIK_RECURRING": "1"})
    assert on["SUPPORTERS_BLIK_RECURRING"] is True
