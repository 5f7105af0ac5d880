"""A signed Stripe event pays a gift only when it is the payment we asked for: the checkout
session opened for the gift, the payment intent linked to it, the plan's subscription,
each for the gift's (or plan's) amount and currency. Anything else is kept, counted
nowhere and shown to staff on "Payments to review". A signed event of any shape is
acknowledged and kept, never a 500; only a failure a retry can mend is a 500."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from supporters.dashboard import overview as figures
from supporters.extensions import db as _db
from supporters.giving import lifecycle, stripe_events
from supporters.lib.forms import MAX_ID
from supporters.mail import receipts as mail_receipts
from supporters.models import (
    AuditEvent,
    Gift,
    GiftKind,
    GiftStatus,
    OutboxEmail,
    PlanStatus,
    RecurringPlan,
    StripeEvent,
    Supporter,
)
from supporters.payments import PaymentsUnavailable, gateway
from tests import factories
from tests import stripe_events as se
from tests.fakes import FakeGateway

Deliver = Callable[..., Any]
REVIEW_PAGE = "/dashboard/payments-to-review/"


@pytest.fixture
def secret(app: Flask, db: Any) -> str:
    return gateway().webhook_secret


@pytest.fixture
def deliver(client: Any, secret: str) -> Deliver:
    """Sign and POST an event; assert the status (200 unless told); return the JSON reply."""

    def _deliver(evt: Any, expect: int = 200) -> dict[str, Any]:
        body = evt if isinstance(evt, bytes) else se.encode(evt)
        response = se.post_raw(client, body, se.sign(body, secret))
        assert response.status_code == expect, response.get_data(as_text=True)[:500]
        return response.get_json()

    return _deliver


def pledged_gift(amount_minor: int = 2500, currency: str = "PLN", **fields: Any) -> Gift:
    """A pending one-time gift of 25.00 PLN whose checkout the app opened, as the donation
    form leaves it (committed: a rolled-back request cannot take it away)."""
    gift = factories.gift(amount_minor=amount_minor, amount_base_minor=amount_minor, currency=currency, **fields)
    gift.stripe_checkout_session_id = se.checkout_session_id(gift.id)
    _db.session.commit()
    return gift


def pledged_plan(amount_minor: int = 3000, **plan_fields: Any) -> tuple[RecurringPlan, Gift]:
    """An incomplete monthly plan of 30.00 PLN and the gift made on the form."""
    plan = factories.plan(amount_minor=amount_minor, **plan_fields)
    gift = factories.gift(
        _db.session.get(Supporter, plan.supporter_id),
        amount_minor=amount_minor,
        amount_base_minor=amount_minor,
        kind=GiftKind.RECURRING,
        recurring_plan_id=plan.id,
    )
    gift.stripe_checkout_session_id = se.checkout_session_id(gift.id)
    _db.session.commit()
    return plan, gift


def fresh(row: Any) -> Any:
    _db.session.expire_all()
    return _db.session.get(type(row), row.id)


def receipts() -> int:
    return _db.session.scalar(select(func.count()).select_from(OutboxEmail).filter_by(kind=mail_receipts.RECEIPT)) or 0


def event_row(evt_id: str) -> StripeEvent:
    _db.session.expire_all()
    row = _db.session.get(StripeEvent, evt_id)
    assert row is not None
    return row


def rows() -> list[StripeEvent]:
    _db.session.expire_all()
    return list(_db.session.scalars(select(StripeEvent)))


def staff_client(app: Flask, role: str) -> Any:
    client = app.test_client()
    assert factories.sign_in(client, factories.staff(role)).status_code == 303
    return client


def assert_not_counted(gift: Gift) -> None:
    """The gift is still unpaid and nothing counted it: no status, receipt, total or figure."""
    now = fresh(gift)
    assert now.status is GiftStatus.PENDING and now.paid_at is None and now.receipt_number is None
    person = _db.session.get(Supporter, gift.supporter_id)
    assert (person.gift_count, person.lifetime_total_minor) == (0, 0)
    assert receipts() == 0


# --- Payments that are not the ones we asked for ----------------------------------------------


def _intent_for_one_grosz(gift: Gift) -> Any:
    return se.event("payment_intent.succeeded", se.payment_intent(gift.id, "succeeded", id="pi_linked", amount=1))


def _intent_in_yen(gift: Gift) -> Any:
    return se.event(
        "payment_intent.succeeded", se.payment_intent(gift.id, "succeeded", id="pi_linked", currency="jpy", amount=2500)
    )


def _session_someone_else_opened(gift: Gift) -> Any:
    # A Payment Link in the same Stripe account, with ?client_reference_id=<the gift's number>.
    session = se.checkout_session(gift.id, id="cs_test_payment_link", amount_total=2500)
    session["metadata"] = {}
    return se.event("checkout.session.completed", session)


def _session_for_another_amount(gift: Gift) -> Any:
    return se.event("checkout.session.completed", se.checkout_session(gift.id, amount_total=100))


def _session_in_another_currency(gift: Gift) -> Any:
    return se.event("checkout.session.completed", se.checkout_session(gift.id, amount_total=2500, currency="eur"))


def _session_without_a_currency(gift: Gift) -> Any:
    return se.event("checkout.session.completed", se.checkout_session(gift.id, amount_total=2500, currency=""))


def _intent_not_linked_to_the_gift(gift: Gift) -> Any:
    return se.event("payment_intent.succeeded", se.payment_intent(gift.id, "succeeded", id="pi_other", amount=2500))


NOT_AS_ASKED: dict[str, tuple[Callable[[Gift], Any], str]] = {
    "intent_for_1_grosz": (_intent_for_one_grosz, "amount 0.01 PLN, expected 25.00 PLN"),
    "intent_in_jpy": (_intent_in_yen, "amount 2500 JPY, expected 25.00 PLN"),
    "session_from_a_payment_link": (_session_someone_else_opened, "checkout session cs_test_payment_link is not"),
    "session_amount_total_differs": (_session_for_another_amount, "amount 1.00 PLN, expected 25.00 PLN"),
    "session_in_eur": (_session_in_another_currency, "amount 25.00 EUR, expected 25.00 PLN"),
    "session_with_empty_currency": (_session_without_a_currency, "expected 25.00 PLN"),
    "intent_not_the_linked_one": (_intent_not_linked_to_the_gift, "payment intent pi_other is not the one linked"),
}


@pytest.mark.parametrize("build,reason", NOT_AS_ASKED.values(), ids=NOT_AS_ASKED.keys())
def test_a_payment_that_is_not_the_one_asked_for_is_kept_for_review_and_not_counted(
    app: Flask, deliver: Deliver, build: Callable[[Gift], Any], reason: str
) -> None:
    gift = pledged_gift(stripe_payment_intent_id="pi_linked")
    # the figures up to a moment after anything this test does (the overview ends its period "now")
    later = datetime.now(UTC) + timedelta(hours=1)
    before = figures.overview(now=later)
    evt = build(gift)

    reply = deliver(evt)

    assert reply["outcome"].startswith("needs review") and reason in reply["outcome"]
    assert_not_counted(gift)
    assert figures.overview(now=later) == before
    row = event_row(evt["id"])
    assert row.needs_review and reason in (row.review_reason or "")
    assert row.gift_id == gift.id and row.payload == evt
    page = staff_client(app, "viewer").get(REVIEW_PAGE)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert evt["id"] in text and f"/dashboard/gifts/{gift.id}" in text


def test_a_first_invoice_of_usd_1_does_not_pay_a_pln_30_plan(app: Flask, deliver: Deliver) -> None:
    plan, gift = pledged_plan()
    evt = se.event(
        "invoice.paid",
        se.invoice("sub_usd", 100, "usd", "in_usd", se.gift_metadata(gift.id, plan.id), "subscription_create"),
    )

    reply = deliver(evt)

    assert reply["outcome"] == f"needs review: invoice in_usd of plan {plan.id}: amount 1.00 USD, expected 30.00 PLN"
    assert_not_counted(gift)
    assert fresh(plan).status is PlanStatus.INCOMPLETE
    assert _db.session.scalar(select(func.count()).select_from(Gift).filter_by(recurring_plan_id=plan.id)) == 1
    row = event_row(evt["id"])
    assert row.needs_review and row.plan_id == plan.id
    assert evt["id"] in staff_client(app, "viewer").get(REVIEW_PAGE).get_data(as_text=True)
    assert fresh(plan).stripe_subscription_id is None  # not tied to a subscription that is not its own

    meta = se.gift_metadata(gift.id, plan.id)
    deliver(se.event("invoice.paid", se.invoice("sub_pln", 3000, "pln", "in_pln", meta, "subscription_create")))
    assert fresh(gift).status is GiftStatus.SUCCEEDED and fresh(plan).stripe_subscription_id == "sub_pln"


def test_a_renewal_for_another_amount_records_no_gift(deliver: Deliver) -> None:
    plan, gift = pledged_plan()
    meta = se.gift_metadata(gift.id, plan.id)
    deliver(se.event("invoice.paid", se.invoice("sub_r", 3000, "pln", "in_r1", meta, "subscription_create")))

    reply = deliver(se.event("invoice.paid", se.invoice("sub_r", 1, "pln", "in_r2", meta)))

    assert reply["outcome"].startswith("needs review") and "amount 0.01 PLN, expected 30.00 PLN" in reply["outcome"]
    assert _db.session.scalar(select(func.count()).select_from(Gift).filter_by(recurring_plan_id=plan.id)) == 1
    assert receipts() == 1


def test_an_invoice_naming_a_plan_of_another_subscription_is_kept_for_review(deliver: Deliver) -> None:
    plan, gift = pledged_plan(stripe_subscription_id="sub_ours")
    evt = se.event(
        "invoice.paid",
        se.invoice("sub_theirs", 3000, "pln", "in_theirs", se.gift_metadata(gift.id, plan.id), "subscription_create"),
    )

    reply = deliver(evt)

    assert "names plan" in reply["outcome"] and event_row(evt["id"]).needs_review
    assert_not_counted(gift)


def test_checkout_intent_arriving_before_its_session_waits_and_the_session_pays(deliver: Deliver) -> None:
    gift = pledged_gift()
    early = deliver(
        se.event("payment_intent.succeeded", se.payment_intent(gift.id, "succeeded", id="pi_co", amount=2500))
    )
    assert early["outcome"] == "waiting for payment intent pi_co (its checkout session links it)"
    assert fresh(gift).status is GiftStatus.PENDING

    deliver(
        se.event("checkout.session.completed", se.checkout_session(gift.id, payment_intent="pi_co", amount_total=2500))
    )

    assert fresh(gift).status is GiftStatus.SUCCEEDED and receipts() == 1
    assert not any(row.needs_review for row in rows())


def test_the_session_we_opened_for_the_amount_we_asked_pays_the_gift(deliver: Deliver) -> None:
    gift = pledged_gift()

    reply = deliver(se.event("checkout.session.completed", se.checkout_session(gift.id, amount_total=2500)))

    assert reply["outcome"] == f"gift {gift.id} succeeded"
    assert fresh(gift).status is GiftStatus.SUCCEEDED and receipts() == 1
    assert _db.session.get(Supporter, gift.supporter_id).lifetime_total_minor == 2500


def test_the_linked_intent_for_the_amount_we_asked_pays_the_gift(deliver: Deliver) -> None:
    gift = pledged_gift(stripe_payment_intent_id="pi_ok")

    reply = deliver(
        se.event("payment_intent.succeeded", se.payment_intent(gift.id, "succeeded", id="pi_ok", amount=2500))
    )

    assert reply["outcome"] == f"gift {gift.id} succeeded" and receipts() == 1


def test_a_plans_invoices_for_its_amount_pay_the_first_gift_and_record_renewals(deliver: Deliver) -> None:
    plan, gift = pledged_plan()
    meta = se.gift_metadata(gift.id, plan.id)

    deliver(se.event("invoice.paid", se.invoice("sub_ok", 3000, "pln", "in_ok1", meta, "subscription_create")))
    deliver(se.event("invoice.paid", se.invoice("sub_ok", 3000, "PLN", "in_ok2", meta)))

    assert fresh(gift).status is GiftStatus.SUCCEEDED and fresh(plan).status is PlanStatus.ACTIVE
    assert _db.session.scalar(select(func.count()).select_from(Gift).filter_by(recurring_plan_id=plan.id)) == 2
    assert not any(row.needs_review for row in rows())


def test_an_expiry_of_a_session_we_did_not_open_cancels_nothing(deliver: Deliver) -> None:
    gift = pledged_gift()

    deliver(se.event("checkout.session.expired", se.checkout_session(gift.id, id="cs_link", payment_status="unpaid")))

    assert fresh(gift).status is GiftStatus.PENDING


@pytest.mark.parametrize("amount,currency", [(1, "pln"), (2500, "jpy"), (2500, "usd")])
def test_reconcile_settles_a_pending_gift_only_for_the_amount_asked(
    cli: Any, fake_stripe: FakeGateway, amount: int, currency: str
) -> None:
    gift = pledged_gift(stripe_payment_intent_id="pi_recon")
    fake_stripe.intents["pi_recon"] = {
        **se.payment_intent(gift.id, "succeeded", id="pi_recon", amount=amount, currency=currency),
    }

    result = cli.invoke(args=["stripe", "reconcile", "--since", "2020-01-01"])

    assert "settled from Stripe: 0" in result.output
    assert_not_counted(gift)


def test_reconcile_settles_a_pending_gift_paid_as_asked(cli: Any, fake_stripe: FakeGateway) -> None:
    gift = pledged_gift(stripe_payment_intent_id="pi_recon_ok")
    fake_stripe.intents["pi_recon_ok"] = se.payment_intent(gift.id, "succeeded", id="pi_recon_ok", amount=2500)

    result = cli.invoke(args=["stripe", "reconcile", "--since", "2020-01-01"])

    assert "settled from Stripe: 1" in result.output
    assert fresh(gift).status is GiftStatus.SUCCEEDED


# --- Ids from events: ASCII digits only, 18 at most ---------------------------------------------


def _full_width(number: int) -> str:
    return "".join(chr(ord("０") + int(digit)) for digit in str(number))


@pytest.mark.parametrize(
    "spelling",
    [
        pytest.param(_full_width, id="full_width"),
        pytest.param(lambda n: "".join(chr(0x1369 + int(d) - 1) if d != "0" else "0" for d in str(n)), id="ethiopic"),
        pytest.param(lambda n: f" {n}", id="leading_space"),
        pytest.param(lambda n: f"{n}\n", id="trailing_newline"),
        pytest.param(lambda n: f"+{n}", id="plus_sign"),
        pytest.param(lambda n: "0" * 25 + str(n), id="25_digits"),
    ],
)
def test_a_gift_id_not_written_in_ascii_digits_names_no_gift(deliver: Deliver, spelling: Callable[[int], str]) -> None:
    gift = pledged_gift(stripe_payment_intent_id="pi_fw")
    intent = se.payment_intent(None, "succeeded", id="pi_fw", amount=2500)
    intent["metadata"] = {"gift_id": spelling(gift.id)}
    evt = se.event("payment_intent.succeeded", intent)

    reply = deliver(evt)

    assert reply["outcome"].startswith("needs review") and "is not a gift number" in reply["outcome"]
    assert_not_counted(gift)
    assert event_row(evt["id"]).gift_id is None


def test_a_plan_id_in_full_width_digits_names_no_plan(deliver: Deliver) -> None:
    plan, gift = pledged_plan()
    evt = se.event(
        "invoice.paid",
        se.invoice("sub_fw", 3000, "pln", "in_fw", {"recurring_plan_id": _full_width(plan.id)}, "subscription_create"),
    )

    reply = deliver(evt)

    assert "is not a plan number" in reply["outcome"]
    assert fresh(plan).stripe_subscription_id is None and fresh(gift).status is GiftStatus.PENDING


@pytest.mark.parametrize(
    "raw", ["１２", "፩", "0", "-1", "1e3", "12.0", str(MAX_ID + 1), "9" * 19, True, 12.0, [12], {"id": 12}]
)
def test_only_ascii_digits_up_to_the_largest_id_are_an_id(raw: Any) -> None:
    assert stripe_events.number(raw) is None


@pytest.mark.parametrize("raw,number", [("1", 1), ("000042", 42), (str(MAX_ID), MAX_ID), (42, 42)])
def test_ascii_digits_are_an_id(raw: Any, number: int) -> None:
    assert stripe_events.number(raw) == number


# --- Signed events of any shape: acknowledged, kept, never a 500 ---------------------------------


_DROP: Any = object()


def _with(obj: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """`obj` with `changes`; a field changed to `_DROP` is left out."""
    return {key: value for key, value in {**obj, **changes}.items() if value is not _DROP}


def _session(gift: Gift, **changes: Any) -> Any:
    return se.event("checkout.session.completed", _with(se.checkout_session(gift.id, amount_total=2500), **changes))


def _intent(gift: Gift, **changes: Any) -> Any:
    obj = se.payment_intent(gift.id, "succeeded", id="pi_shape", amount=2500)
    return se.event("payment_intent.succeeded", _with(obj, **changes))


def _invoice(gift: Gift, **changes: Any) -> Any:
    obj = se.invoice("sub_shape", 2500, "pln", "in_shape", {"recurring_plan_id": "1"}, "subscription_create")
    return se.event("invoice.paid", _with(obj, **changes))


def _envelope(gift: Gift, **changes: Any) -> Any:
    return _with(se.event("checkout.session.completed", se.checkout_session(gift.id, amount_total=2500)), **changes)


def _deep(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"deeper": value}
    return value


ODD_SHAPES: dict[str, Callable[[Gift], Any]] = {
    "metadata_a_string": lambda g: _intent(g, metadata=f"gift_id={g.id}"),
    "metadata_a_list": lambda g: _intent(g, metadata=[str(g.id)]),
    "session_metadata_a_string": lambda g: _session(g, metadata="x", client_reference_id=None),
    "gift_id_of_25_digits": lambda g: _intent(g, metadata={"gift_id": "1" * 25}),
    "gift_id_an_int_of_25_digits": lambda g: _intent(g, metadata={"gift_id": 10**25}),
    "gift_id_an_object": lambda g: _intent(g, metadata={"gift_id": {"id": g.id}}),
    "client_reference_id_huge": lambda g: _session(g, metadata={}, client_reference_id="9" * 1000),
    "currency_empty": lambda g: _intent(g, currency=""),
    "currency_missing": lambda g: _intent(g, currency=_DROP),
    "currency_a_number": lambda g: _session(g, currency=985),
    "currency_not_iso": lambda g: _session(g, currency="zł\u0000"),
    "amount_a_string": lambda g: _intent(g, amount="2500", amount_received="2500"),
    "amount_negative": lambda g: _intent(g, amount=-2500, amount_received=-2500),
    "amount_true": lambda g: _session(g, amount_total=True),
    "amount_a_float": lambda g: _session(g, amount_total=2500.0),
    "amount_huge": lambda g: _session(g, amount_total=10**30),
    "session_id_an_object_list": lambda g: _session(g, id=[1, 2]),
    "payment_status_an_object": lambda g: _session(g, payment_status={"paid": True}),
    "invoice_amount_a_string": lambda g: _invoice(g, amount_paid="2500"),
    "invoice_parent_a_string": lambda g: _invoice(g, parent="sub_shape"),
    "invoice_lines_a_string": lambda g: _invoice(g, lines="none"),
    "invoice_lines_data_of_strings": lambda g: _invoice(g, lines={"data": ["x", 1, None]}),
    "invoice_payments_a_list": lambda g: _invoice(g, payments=["x"]),
    "invoice_transitions_a_list": lambda g: _invoice(g, status_transitions=[1]),
    "subscription_items_a_string": lambda g: se.event(
        "customer.subscription.updated",
        _with(se.subscription("sub_x", "active", {"recurring_plan_id": "1"}), items="x"),
    ),
    "subscription_cancellation_a_list": lambda g: se.event(
        "customer.subscription.deleted",
        _with(se.subscription("sub_x", "canceled", {"recurring_plan_id": "1"}), cancellation_details=["x"]),
    ),
    "charge_refunded_true": lambda g: se.event("charge.refunded", se.charge("ch_x", "pi_of_the_gift", 2500, True)),
    "charge_ids_of_10_kb": lambda g: se.event("charge.refunded", se.charge("c" * 10_000, "p" * 10_000, 2500, 100)),
    "dispute_charge_an_object_of_lists": lambda g: se.event(
        "charge.dispute.created", _with(se.dispute(None, None, "needs_response"), charge={"id": []})
    ),
    "timestamp_a_string": lambda g: _invoice(g, status_transitions={"paid_at": "yesterday"}),
    "timestamp_past_year_9999": lambda g: _invoice(g, status_transitions={"paid_at": 10**15}),
    "object_missing": lambda g: _envelope(g, data={}),
    "object_a_list": lambda g: _envelope(g, data={"object": [1]}),
    "object_a_string": lambda g: _envelope(g, data={"object": "cs_1"}),
    "object_null": lambda g: _envelope(g, data={"object": None}),
    "data_a_string": lambda g: _envelope(g, data="x"),
    "event_id_of_10_kb": lambda g: _envelope(g, id="evt_" + "x" * 10_000),
    "event_id_missing": lambda g: _envelope(g, id=_DROP),
    "event_id_a_number": lambda g: _envelope(g, id=12345),
    "event_id_with_nul": lambda g: _envelope(g, id="evt_\u0000nul"),
    "event_type_of_101_chars": lambda g: _envelope(g, type="checkout.session.completed" + "x" * 80),
    "event_type_a_number": lambda g: _envelope(g, type=7),
    "event_type_missing": lambda g: _envelope(g, type=_DROP),
    "nul_and_lone_surrogate_in_strings": lambda g: _intent(
        g, description="a\u0000b\ud800c", metadata={"gift_id": str(g.id), "note": "\u0000"}
    ),
    "metadata_nested_400_deep": lambda g: _intent(g, metadata={"gift_id": str(g.id), "nested": _deep(400)}),
}


@pytest.mark.parametrize("build", ODD_SHAPES.values(), ids=ODD_SHAPES.keys())
def test_a_signed_event_of_odd_shape_is_acknowledged_and_kept_never_a_500(
    deliver: Deliver, build: Callable[[Gift], Any]
) -> None:
    gift = pledged_gift(stripe_payment_intent_id="pi_of_the_gift")

    reply = deliver(build(gift))

    assert reply["received"] is True
    [row] = rows()
    assert row.payload and row.processed_at is not None and row.outcome
    assert len(row.id) <= 255 and len(row.type) <= 100
    assert fresh(gift).status is GiftStatus.PENDING and receipts() == 0


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[" * 1001, id="1001_brackets"),
        pytest.param(b'{"id": "evt_1", "data": {' + b'{"a":' * 5000, id="deep_unclosed_object"),
        pytest.param(b'{"deeper":' * 5000 + b"1" + b"}" * 5000, id="5000_deep_object"),
        pytest.param(b'"just a string"', id="a_json_string"),
        pytest.param(b"null", id="null"),
        pytest.param(b"", id="empty_body"),
    ],
)
def test_a_signed_body_that_is_no_event_is_kept_for_review(deliver: Deliver, body: bytes) -> None:
    reply = deliver(body)
    again = deliver(body)

    assert reply["outcome"].startswith("needs review") and again["duplicate"] is True
    [row] = rows()
    assert row.needs_review and row.id.startswith("unreadable_") and "unreadable" in row.payload


def test_an_event_id_too_long_to_store_is_kept_under_a_shortened_id_and_stays_one_event(deliver: Deliver) -> None:
    gift = pledged_gift()
    evt = _envelope(gift, id="evt_" + "x" * 10_000)
    other = _envelope(gift, id="evt_" + "x" * 9_999 + "y")

    deliver(evt)
    assert deliver(evt)["duplicate"] is True
    deliver(other)

    stored = rows()
    assert len(stored) == 2 and all(len(row.id) <= 255 and row.needs_review for row in stored)
    assert {row.payload["id"] for row in stored} == {evt["id"], other["id"]}
    assert fresh(gift).status is GiftStatus.PENDING


def test_a_handler_meeting_an_unexpected_shape_changes_nothing_and_keeps_the_event(
    deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    gift = pledged_gift()
    original = lifecycle.mark_paid

    def paid_then_surprised(paying: Gift, **ids: Any) -> bool:
        original(paying, **ids)
        raise TypeError("an odd shape")

    monkeypatch.setattr(lifecycle, "mark_paid", paid_then_surprised)
    reply = deliver(_session(gift))

    assert reply["outcome"] == "needs review: the event could not be read (TypeError)"
    assert_not_counted(gift)
    [row] = rows()
    assert row.needs_review and row.gift_id is None


# --- What a retry can mend still answers 500 ----------------------------------------------------


def test_stripe_unreachable_is_a_500_and_records_nothing(deliver: Deliver, monkeypatch: pytest.MonkeyPatch) -> None:
    gift = pledged_gift(stripe_payment_intent_id=None)

    def down(intent: str) -> dict[str, str]:
        raise PaymentsUnavailable("Stripe did not answer")

    monkeypatch.setattr(gateway(), "payment_reference", down)
    deliver(se.event("charge.refunded", se.charge("ch_unknown", "pi_unknown", 2500, 2500)), expect=500)

    assert rows() == [] and fresh(gift).status is GiftStatus.PENDING


def test_the_database_failing_is_a_500_and_records_nothing(deliver: Deliver, monkeypatch: pytest.MonkeyPatch) -> None:
    gift = pledged_gift()

    def database_down(gift: Gift) -> Gift:
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(lifecycle, "lock", database_down)
    deliver(_session(gift), expect=500)

    assert rows() == [] and fresh(gift).status is GiftStatus.PENDING


# --- Staff's review ----------------------------------------------------------------------------


def held_event(deliver: Deliver) -> tuple[Gift, str]:
    gift = pledged_gift(stripe_payment_intent_id="pi_linked")
    evt = _intent_for_one_grosz(gift)
    deliver(evt)
    return gift, evt["id"]


def test_the_gifts_page_links_to_its_events_to_review(app: Flask, deliver: Deliver) -> None:
    gift, evt_id = held_event(deliver)
    other = pledged_gift(stripe_payment_intent_id="pi_other_gift")
    viewer = staff_client(app, "viewer")

    page = viewer.get(f"/dashboard/gifts/{gift.id}").get_data(as_text=True)
    assert f"{REVIEW_PAGE}?gift={gift.id}" in page
    assert f"{REVIEW_PAGE}?gift={other.id}" not in viewer.get(f"/dashboard/gifts/{other.id}").get_data(as_text=True)

    listed = viewer.get(f"{REVIEW_PAGE}?gift={gift.id}").get_data(as_text=True)
    assert evt_id in listed and "expected 25.00 PLN" in listed and "amount_received" in listed
    assert evt_id not in viewer.get(f"{REVIEW_PAGE}?gift={other.id}").get_data(as_text=True)


def test_staff_who_may_write_mark_an_event_reviewed_with_a_note_and_it_is_audited(app: Flask, deliver: Deliver) -> None:
    gift, evt_id = held_event(deliver)
    fundraiser = staff_client(app, "fundraiser")
    form = fundraiser.get(REVIEW_PAGE).get_data(as_text=True)
    assert "Mark reviewed" in form

    response = fundraiser.post(f"{REVIEW_PAGE}reviewed", data={"event_id": evt_id, "note": "Refunded in Stripe."})

    assert response.status_code == 303
    row = event_row(evt_id)
    assert not row.needs_review and row.reviewed_at is not None and row.review_note == "Refunded in Stripe."
    audit = _db.session.scalars(select(AuditEvent).filter_by(action="stripe_event.reviewed")).one()
    assert audit.target_id == evt_id and audit.details["note"] == "Refunded in Stripe."
    assert evt_id not in fundraiser.get(REVIEW_PAGE).get_data(as_text=True)
    done = fundraiser.get(f"{REVIEW_PAGE}?show=reviewed").get_data(as_text=True)
    assert evt_id in done and "Refunded in Stripe." in done
    assert fresh(gift).status is GiftStatus.PENDING  # reviewing counts nothing

    again = fundraiser.post(f"{REVIEW_PAGE}reviewed", data={"event_id": evt_id, "note": "Twice."})
    assert again.status_code == 409
    assert event_row(evt_id).review_note == "Refunded in Stripe."


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"note": "   "}, id="blank_note"),
        pytest.param({"note": "x" * 501}, id="note_too_long"),
        pytest.param({"note": "ok\u0000"}, id="nul_in_note"),
        pytest.param({"note": "ok", "event_id": "evt_nobody"}, id="unknown_event"),
        pytest.param({"note": "ok", "event_id": "e" * 300}, id="event_id_too_long"),
        pytest.param({"note": "ok", "event_id": "evt_\u0000"}, id="nul_in_event_id"),
        pytest.param({"note": "ok", "event_id": "１２"}, id="full_width_event_id"),
        pytest.param({"note": (io.BytesIO(b"Refunded"), "note.txt")}, id="note_as_a_file"),
    ],
)
def test_a_review_that_cannot_be_recorded_is_refused_and_changes_nothing(
    app: Flask, deliver: Deliver, data: dict[str, Any]
) -> None:
    _, evt_id = held_event(deliver)
    fundraiser = staff_client(app, "fundraiser")

    response = fundraiser.post(f"{REVIEW_PAGE}reviewed", data={"event_id": evt_id, **data})  # type: ignore[dict-item]

    assert 400 <= response.status_code < 500
    assert event_row(evt_id).needs_review
    assert (
        _db.session.scalar(select(func.count()).select_from(AuditEvent).filter_by(action="stripe_event.reviewed")) == 0
    )


def test_a_viewer_sees_the_list_but_cannot_mark_reviewed(app: Flask, deliver: Deliver) -> None:
    _, evt_id = held_event(deliver)
    viewer = staff_client(app, "viewer")

    assert "Mark reviewed" not in viewer.get(REVIEW_PAGE).get_data(as_text=True)
    assert viewer.post(f"{REVIEW_PAGE}reviewed", data={"event_id": evt_id, "note": "x"}).status_code == 403
    assert event_row(evt_id).needs_review


@pytest.mark.parametrize("query", ["?gift=１２", "?gift=" + "9" * 30, "?page=-1", "?show=%00", "?gift=%0d%0a"])
def test_the_review_list_reads_any_address_without_a_500(app: Flask, db: Any, query: str) -> None:
    assert staff_client(app, "viewer").get(REVIEW_PAGE + query).status_code == 200
