"""The webhook handlers against Stripe's own objects.

Stripe's example object of every resource, at its current API version, is in
../shared/stripe/fixtures3.json (beside the project, never copied into it). These
tests check that every field the handlers read is still in Stripe's object, that
the fields read only for localstripe's older shape are really gone from Stripe's,
and that the handlers accept the real objects when they arrive as signed events.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import stripe
from flask import Flask

from supporters.extensions import db as _db
from supporters.models import (
    Gift,
    GiftKind,
    GiftStatus,
    PlanStatus,
    RecurringPlan,
    StripeEvent,
    Supporter,
)
from supporters.payments import gateway
from tests import factories
from tests import stripe_events as se

FIXTURES = Path(__file__).parents[2].parent / "shared/stripe/fixtures3.json"
if not FIXTURES.is_file():
    pytest.skip(
        f"Stripe's fixture objects are not at {FIXTURES} (a clone without shared/ beside it); "
        "the contract with Stripe's object shapes is not checked",
        allow_module_level=True,
    )
STRIPE: dict[str, Any] = json.loads(FIXTURES.read_text(encoding="utf-8"))["resources"]

#: every field path supporters/webhooks/handlers.py (and views.py, through verify_event) reads,
#: per Stripe object type. "a.b" is a nested key; "a[]" means every element of the list a.
READ: dict[str, list[str]] = {
    "event": ["id", "type", "livemode", "data.object"],
    "checkout.session": [
        "id",
        "metadata",
        "client_reference_id",
        "mode",
        "payment_status",
        "payment_intent",
        "customer",
        "subscription",
        "invoice",
    ],
    "payment_intent": ["id", "metadata", "latest_charge", "customer"],
    "invoice": [
        "id",
        "amount_paid",
        "currency",
        "status_transitions.paid_at",
        "parent.subscription_details.subscription",
        "parent.subscription_details.metadata",
        "lines.data",
        "lines.data[].metadata",
        "lines.data[].period.end",
    ],
    "subscription": [
        "id",
        "status",
        "metadata",
        "canceled_at",
        "cancellation_details.comment",
        "cancellation_details.feedback",
        "cancellation_details.reason",
        # the plan's terms (stripe_events.subscription_terms) and the donor's changes (stripe_api)
        "items.data[].id",
        "items.data[].price.unit_amount",
        "items.data[].price.currency",
        "items.data[].price.recurring.interval",
        "items.data[].price.product",
        "pause_collection",
        "pause_collection.resumes_at",
        "customer",
        "default_payment_method",
    ],
    # payments/stripe_gateway.py card_update_url: where the donor's browser goes
    "billing_portal.session": ["url"],
    "charge": ["id", "payment_intent", "amount_refunded", "balance_transaction"],
    "dispute": ["id", "charge", "payment_intent", "status"],
    # payments/stripe_api.py balance_of_payment: the charge's, expanded from the payment intent
    "balance_transaction": ["id", "amount", "fee", "net", "currency"],
}

#: fields the handlers read only as a fallback for localstripe, which still sends the shape
#: of API versions before 2025-03-31 ("basil"). Stripe's current objects no longer have them:
#: the subscription of an invoice is parent.subscription_details.subscription, its payment is
#: in invoice payments, and a subscription's period is on its items.
LEGACY_ONLY: dict[str, list[str]] = {
    "invoice": ["subscription", "subscription_details", "payment_intent", "charge"],
    "subscription": ["current_period_end"],
}

#: fields the handlers read that Stripe sends only when asked to expand them (never in a webhook).
INCLUDABLE_ONLY: dict[str, list[str]] = {
    "invoice": ["payments"],  # payments.data[].payment.payment_intent
}

#: Stripe's own typed classes for the same objects (stripe-python, at its pinned API version)
SDK_CLASSES = {"invoice": stripe.Invoice, "subscription": stripe.Subscription}


def values_at(obj: Any, path: str) -> list[Any]:
    """The values at `path` in `obj` (a list for "x[]" steps); raises KeyError if a key is missing."""
    found = [obj]
    for step in path.split("."):
        each = step.endswith("[]")
        key = step.removesuffix("[]")
        next_found = []
        for value in found:
            if not isinstance(value, dict) or key not in value:
                raise KeyError(path)
            if each:
                if not value[key]:
                    raise KeyError(f"{path}: {key} is empty, nothing to check")
                next_found.extend(value[key])
            else:
                next_found.append(value[key])
        found = next_found
    return found


def has_path(obj: Any, path: str) -> bool:
    try:
        values_at(obj, path)
    except KeyError:
        return False
    return True


# --- The fields -----------------------------------------------------------------------


@pytest.mark.parametrize("kind,path", [(kind, path) for kind, paths in READ.items() for path in paths])
def test_every_field_the_handlers_read_is_in_stripes_current_object(kind: str, path: str) -> None:
    assert has_path(STRIPE[kind], path), f"Stripe's {kind} object has no {path}; the handlers read it"


@pytest.mark.parametrize("kind,path", [(kind, path) for kind, paths in LEGACY_ONLY.items() for path in paths])
def test_legacy_only_fields_are_really_gone_from_stripes_current_object(kind: str, path: str) -> None:
    # Stripe's fixture still lists invoice.subscription (always null there); the typed SDK has no such field.
    assert not has_path(STRIPE[kind], path) or values_at(STRIPE[kind], path) == [None]
    assert path.split(".")[0] not in SDK_CLASSES[kind].__annotations__
    # the same checks find what Stripe's object and class do have
    assert STRIPE[kind]["object"] == kind and has_path(STRIPE[kind], "id") and values_at(STRIPE[kind], "id") != [None]
    assert "id" in SDK_CLASSES[kind].__annotations__ and "metadata" in SDK_CLASSES[kind].__annotations__


def test_subscription_period_now_lives_on_its_items() -> None:
    assert has_path(STRIPE["subscription"], "items.data[].current_period_end")


@pytest.mark.parametrize("kind,path", [(kind, path) for kind, paths in INCLUDABLE_ONLY.items() for path in paths])
def test_includable_fields_are_not_in_stripes_default_object(kind: str, path: str) -> None:
    assert not has_path(STRIPE[kind], path)
    assert has_path(STRIPE[kind], "id"), "the same check finds a field Stripe's object does have"
    assert path in SDK_CLASSES[kind].__annotations__
    assert has_path(STRIPE["invoice_payment"], "payment.type")  # what an expanded entry looks like


# --- Stripe's objects through the handlers -----------------------------------------------


@pytest.fixture
def deliver(client: Any, app: Flask, db: Any):
    """Wrap a Stripe object in Stripe's own event envelope, sign it and POST it; return the outcome."""
    secret = gateway().webhook_secret

    def _deliver(event_type: str, obj: dict[str, Any], event_id: str | None = None) -> str:
        evt = copy.deepcopy(STRIPE["event"])
        evt.update(id=event_id or se.new_id("evt"), type=event_type, data={"object": obj}, livemode=False)
        response = se.post_event(client, evt, secret)
        assert response.status_code == 200, response.get_data(as_text=True)
        row = _db.session.get(StripeEvent, evt["id"])
        assert row is not None and row.processed_at is not None
        return str(response.get_json()["outcome"])

    return _deliver


def stripe_object(kind: str, **changes: Any) -> dict[str, Any]:
    obj = copy.deepcopy(STRIPE[kind])
    obj.update(changes)
    return obj


def pending_gift(**fields: Any) -> Gift:
    gift = factories.gift(**fields)
    _db.session.commit()
    return gift


def fresh(row: Any) -> Any:
    _db.session.expire_all()
    return _db.session.get(type(row), row.id)


def paid_by_stripes_checkout_session(deliver: Any) -> Gift:
    """A gift of 50.00 PLN whose checkout session (Stripe's fixture) the app opened, paid by it."""
    gift = pending_gift(stripe_checkout_session_id=STRIPE["checkout.session"]["id"])
    session = stripe_object(
        "checkout.session",
        metadata=se.gift_metadata(gift.id),
        client_reference_id=str(gift.id),
        mode="payment",
        payment_status="paid",
        status="complete",
        amount_total=5000,
        currency="pln",
    )
    assert deliver("checkout.session.completed", session) == f"gift {gift.id} succeeded"
    return gift


def test_stripes_checkout_session_pays_the_gift(deliver: Any) -> None:
    gift = paid_by_stripes_checkout_session(deliver)

    paid = fresh(gift)
    assert paid.status is GiftStatus.SUCCEEDED and paid.receipt_number
    assert paid.stripe_payment_intent_id == STRIPE["checkout.session"]["payment_intent"]
    assert paid.stripe_checkout_session_id == STRIPE["checkout.session"]["id"]


def paid_by_stripes_payment_intent(deliver: Any) -> Gift:
    """A gift of 50.00 PLN paid by the payment intent linked to it (Stripe's fixture)."""
    gift = pending_gift(stripe_payment_intent_id=STRIPE["payment_intent"]["id"])
    intent = stripe_object(
        "payment_intent",
        metadata=se.gift_metadata(gift.id),
        status="succeeded",
        amount=5000,
        amount_received=5000,
        currency="pln",
        latest_charge=STRIPE["charge"]["id"],
    )
    assert deliver("payment_intent.succeeded", intent) == f"gift {gift.id} succeeded"
    return gift


def test_stripes_payment_intent_pays_the_gift(deliver: Any) -> None:
    gift = paid_by_stripes_payment_intent(deliver)

    paid = fresh(gift)
    assert paid.status is GiftStatus.SUCCEEDED
    assert (paid.stripe_payment_intent_id, paid.stripe_charge_id) == (
        STRIPE["payment_intent"]["id"],
        STRIPE["charge"]["id"],
    )


def test_stripes_charge_refunded_refunds_the_gift(deliver: Any) -> None:
    gift = paid_by_stripes_checkout_session(deliver)
    charge = stripe_object(
        "charge",
        payment_intent=fresh(gift).stripe_payment_intent_id,
        amount=5000,
        amount_captured=5000,
        amount_refunded=1000,
    )

    deliver("charge.refunded", charge)

    refunded = fresh(gift)
    assert (refunded.status, refunded.refunded_minor) == (GiftStatus.PARTIALLY_REFUNDED, 1000)
    assert refunded.stripe_charge_id == STRIPE["charge"]["id"]
    assert fresh(gift).supporter.lifetime_total_minor == 4000


def test_stripes_dispute_disputes_the_gift_until_won(deliver: Any) -> None:
    gift = paid_by_stripes_payment_intent(deliver)  # its charge is the one Stripe's dispute names

    deliver("charge.dispute.created", stripe_object("dispute"))
    assert fresh(gift).status is GiftStatus.DISPUTED
    deliver("charge.dispute.closed", stripe_object("dispute", status="won"))
    assert fresh(gift).status is GiftStatus.SUCCEEDED


def monthly_plan() -> tuple[RecurringPlan, Gift]:
    plan = factories.plan(amount_minor=3000)
    gift = factories.gift(
        _db.session.get(Supporter, plan.supporter_id),
        amount_minor=3000,
        amount_base_minor=3000,
        kind=GiftKind.RECURRING,
        recurring_plan_id=plan.id,
    )
    _db.session.commit()
    return plan, gift


def stripes_paid_invoice(plan: RecurringPlan, gift: Gift, **changes: Any) -> dict[str, Any]:
    """Stripe's invoice fixture, paid, its parent pointing at the plan's subscription (what Checkout makes)."""
    invoice = stripe_object(
        "invoice",
        status="paid",
        amount_paid=3000,
        amount_remaining=0,
        currency="pln",
        billing_reason="subscription_create",
        **changes,
    )
    invoice["parent"] = {
        **invoice["parent"],
        "type": "subscription_details",
        "quote_details": None,
        "subscription_details": {"subscription": "sub_fixture", "metadata": se.gift_metadata(gift.id, plan.id)},
    }
    invoice["status_transitions"] = {**invoice["status_transitions"], "paid_at": se.T0}
    return invoice


def test_stripes_invoice_pays_the_first_gift_of_the_plan(deliver: Any) -> None:
    plan, gift = monthly_plan()

    deliver("invoice.paid", stripes_paid_invoice(plan, gift))

    paid = fresh(gift)
    assert paid.status is GiftStatus.SUCCEEDED and paid.stripe_invoice_id == STRIPE["invoice"]["id"]
    active = fresh(plan)
    assert active.status is PlanStatus.ACTIVE and active.stripe_subscription_id == "sub_fixture"
    assert int(active.current_period_end.timestamp()) == STRIPE["invoice"]["lines"]["data"][0]["period"]["end"]


def test_stripes_subscription_cancels_the_plan(deliver: Any) -> None:
    plan, gift = monthly_plan()
    deliver("invoice.paid", stripes_paid_invoice(plan, gift))
    subscription = stripe_object(
        "subscription",
        id="sub_fixture",
        status="canceled",
        metadata=se.gift_metadata(gift.id, plan.id),
        cancellation_details={"comment": None, "feedback": "too_expensive", "reason": None},
    )

    deliver("customer.subscription.deleted", subscription)

    ended = fresh(plan)
    assert ended.status is PlanStatus.CANCELED
    assert int(ended.canceled_at.timestamp()) == STRIPE["subscription"]["canceled_at"]
    assert ended.cancel_reason == "too_expensive"


def test_stripes_subscription_update_moves_the_paid_up_period(deliver: Any) -> None:
    plan, gift = monthly_plan()
    subscription = stripe_object(
        "subscription", id="sub_period", status="active", metadata=se.gift_metadata(gift.id, plan.id)
    )

    deliver("customer.subscription.updated", subscription)

    period_end = STRIPE["subscription"]["items"]["data"][0]["current_period_end"]
    assert fresh(plan).current_period_end is not None
    assert int(fresh(plan).current_period_end.timestamp()) == period_end


def test_refund_of_an_instalment_paid_under_the_current_api_is_applied(deliver: Any) -> None:
    plan, gift = monthly_plan()
    invoice = stripes_paid_invoice(plan, gift)
    deliver("invoice.paid", invoice)
    deliver(
        "invoice_payment.paid",
        stripe_object(
            "invoice_payment",
            invoice=invoice["id"],
            amount_paid=3000,
            currency="pln",
            status="paid",
            payment={"type": "payment_intent", "payment_intent": "pi_instalment"},
            livemode=False,
        ),
    )

    deliver(
        "charge.refunded",
        stripe_object("charge", id="ch_instalment", payment_intent="pi_instalment", amount=3000, amount_refunded=3000),
    )

    assert fresh(gift).status is GiftStatus.REFUNDED


def test_stripes_event_envelope_is_what_verify_event_accepts(app: Flask, db: Any) -> None:
    evt = copy.deepcopy(STRIPE["event"])
    body = json.dumps(evt).encode()
    secret = gateway().webhook_secret
    assert gateway().verify_event(body, se.sign(body, secret)) == evt


# --- The balance transaction, asked of a second origin standing in for api.stripe.com ----------


def test_the_fee_and_net_are_read_from_stripes_expanded_payment_intent() -> None:
    """balance_of_payment asks for the payment intent with its charge's balance transaction
    expanded, in one request, and reads Stripe's own objects: here served from a local
    port in Stripe's shape, since the tests never reach Stripe."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlsplit

    from supporters.payments import Balance, PaymentsUnavailable, stripe_api

    txn = dict(STRIPE["balance_transaction"], amount=5000, fee=175, net=4825, currency="pln")
    charge = dict(STRIPE["charge"], balance_transaction=txn)
    intent = dict(STRIPE["payment_intent"], latest_charge=charge)
    unsettled = dict(STRIPE["payment_intent"], id="pi_unsettled", latest_charge=dict(charge, balance_transaction=None))
    asked: list[tuple[str, dict[str, list[str]]]] = []

    class StripeApi(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            asked.append((url.path, parse_qs(url.query)))
            found = {f"/v1/payment_intents/{intent['id']}": intent, "/v1/payment_intents/pi_unsettled": unsettled}
            body = json.dumps(found.get(url.path, {"error": {"type": "invalid_request_error", "message": "No such"}}))
            self.send_response(200 if url.path in found else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), StripeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = stripe.StripeClient(
            "sk_test_contract", base_addresses={"api": f"http://127.0.0.1:{server.server_address[1]}"}
        )
        assert stripe_api.balance_of_payment(client, intent["id"]) == Balance(
            id=txn["id"], amount_minor=5000, fee_minor=175, net_minor=4825, currency="PLN"
        )
        assert asked[0] == (
            f"/v1/payment_intents/{intent['id']}",
            {"expand[0]": ["latest_charge.balance_transaction"]},
        )
        assert stripe_api.balance_of_payment(client, "pi_unsettled") is None
        with pytest.raises(PaymentsUnavailable):
            stripe_api.balance_of_payment(client, "pi_unknown")
    finally:
        server.shutdown()
        server.server_close()
