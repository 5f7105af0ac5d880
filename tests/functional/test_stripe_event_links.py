"""A Stripe event's row names the gift and the plan it was about (`stripe_event.gift_id`,
`plan_id`), and a gift's or plan's history is read by those links, never from the text
of the outcome."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from supporters.extensions import db
from supporters.giving.stripe_events import process_event
from supporters.models import Gift, GiftKind, RecurringPlan, StripeEvent, Supporter
from tests import factories
from tests import stripe_events as se


def handled(evt: dict[str, Any]) -> StripeEvent:
    """Process `evt` as the webhook does; its row as recorded."""
    process_event(evt)
    row = db.session.get(StripeEvent, evt["id"])
    assert row is not None
    return row


def opened(gift: Gift) -> Gift:
    """`gift` with the checkout session the app opened for it (`se.checkout_session_id`)."""
    gift.stripe_checkout_session_id = se.checkout_session_id(gift.id)
    db.session.flush()
    return gift


def links(row: StripeEvent) -> tuple[int | None, int | None]:
    return row.gift_id, row.plan_id


def monthly_plan() -> tuple[RecurringPlan, Gift]:
    """An incomplete monthly plan and the pending gift made on the form."""
    plan = factories.plan(amount_minor=3000)
    person = db.session.get(Supporter, plan.supporter_id)
    gift = factories.gift(
        person, amount_minor=3000, amount_base_minor=3000, kind=GiftKind.RECURRING, recurring_plan_id=plan.id
    )
    return plan, opened(gift)


def page(client: Any, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


def sign_in_staff(client: Any) -> None:
    assert factories.sign_in(client, factories.staff("fundraiser")).status_code == 303


# --- What each event is recorded as being about ------------------------------------------


def test_an_event_about_a_gift_names_the_gift_and_no_plan(db: Any) -> None:
    gift = factories.gift(stripe_payment_intent_id="pi_link_1")
    row = handled(se.event("payment_intent.succeeded", se.payment_intent(gift.id, "succeeded", id="pi_link_1")))
    assert row.outcome == f"gift {gift.id} succeeded"
    assert links(row) == (gift.id, None)


def test_every_event_of_a_one_time_gift_names_it(db: Any) -> None:
    gift = opened(factories.gift(stripe_payment_intent_id="pi_one", stripe_charge_id="ch_one"))
    outcomes = {}
    for evt in [
        se.event("checkout.session.completed", se.checkout_session(gift.id, payment_intent="pi_one")),
        se.event("payment_intent.succeeded", se.payment_intent(gift.id, "succeeded", id="pi_one")),
        se.event("charge.refunded", se.charge("ch_one", "pi_one", 5000, 1000)),
        se.event("charge.dispute.created", se.dispute("ch_one", "pi_one", "needs_response")),
        se.event("charge.dispute.closed", se.dispute("ch_one", "pi_one", "won")),
    ]:
        row = handled(evt)
        outcomes[evt["type"]] = row.outcome
        assert links(row) == (gift.id, None), row.outcome
    assert outcomes["payment_intent.succeeded"] == f"gift {gift.id} unchanged (succeeded)"
    assert outcomes["charge.dispute.closed"] == f"gift {gift.id} dispute won"


def test_failed_expired_and_declined_payments_name_their_gift(db: Any) -> None:
    for evt_type, build in [
        ("checkout.session.expired", lambda g: se.checkout_session(g.id, payment_status="unpaid")),
        ("checkout.session.async_payment_failed", lambda g: se.checkout_session(g.id, payment_status="unpaid")),
        ("payment_intent.payment_failed", lambda g: se.payment_intent(g.id, "requires_payment_method")),
    ]:
        gift = opened(factories.gift())
        row = handled(se.event(evt_type, build(gift)))
        assert row.outcome.startswith(f"gift {gift.id} ")
        assert links(row) == (gift.id, None)


def test_every_event_of_a_plan_names_the_plan_and_an_instalments_its_gift_too(db: Any) -> None:
    plan, first = monthly_plan()
    meta = se.gift_metadata(first.id, plan.id)
    paid = handled(
        se.event(
            "invoice.paid",
            se.invoice("sub_link", 3000, "pln", "in_link1", meta, "subscription_create", payment_intent=None),
        )
    )
    checkout = handled(
        se.event(
            "checkout.session.completed",
            se.checkout_session(
                first.id,
                mode="subscription",
                payment_intent=None,
                subscription="sub_link",
                invoice="in_link1",
                plan_id=plan.id,
                amount_total=3000,
            ),
        )
    )
    linked = handled(
        se.event(
            "invoice_payment.paid",
            {
                "id": "inpay_link",
                "object": "invoice_payment",
                "invoice": "in_link1",
                "payment": {"type": "payment_intent", "payment_intent": "pi_link_first"},
            },
        )
    )
    updated = handled(se.event("customer.subscription.updated", se.subscription("sub_link", "active", meta)))
    renewal = handled(se.event("invoice.paid", se.invoice("sub_link", 3000, "pln", "in_link2", meta)))
    again = handled(se.event("invoice.payment_succeeded", se.invoice("sub_link", 3000, "pln", "in_link2", meta)))
    failed = handled(
        se.event("invoice.payment_failed", se.invoice("sub_link", 3000, "pln", "in_link3", meta, status="open"))
    )
    deleted = handled(se.event("customer.subscription.deleted", se.subscription("sub_link", "canceled", meta)))

    second = db.session.scalars(sa.select(Gift).filter_by(stripe_invoice_id="in_link2")).one()
    assert second.id != first.id
    assert paid.outcome == f"gift {first.id} succeeded (plan {plan.id})" and links(paid) == (first.id, plan.id)
    assert checkout.outcome == f"gift {first.id} unchanged (succeeded)" and links(checkout) == (first.id, plan.id)
    assert links(linked) == (first.id, None)
    assert updated.outcome == f"plan {plan.id} unchanged (active)" and links(updated) == (None, plan.id)
    assert renewal.outcome == f"gift {second.id} succeeded (plan {plan.id})"
    assert links(renewal) == (second.id, plan.id)
    # About the plan, though the outcome does not name it: the history shows it all the same.
    assert again.outcome == "invoice in_link2 already recorded" and links(again) == (None, plan.id)
    assert failed.outcome == f"plan {plan.id} past due" and links(failed) == (None, plan.id)
    assert deleted.outcome == f"plan {plan.id} canceled" and links(deleted) == (None, plan.id)


def test_a_failed_first_invoice_names_the_form_gift_and_its_plan(db: Any) -> None:
    plan, gift = monthly_plan()
    row = handled(
        se.event(
            "invoice.payment_failed",
            se.invoice(
                "sub_link_f",
                3000,
                "pln",
                "in_link_f",
                se.gift_metadata(gift.id, plan.id),
                "subscription_create",
                status="open",
            ),
        )
    )
    assert row.outcome == f"gift {gift.id} failed"
    assert links(row) == (gift.id, plan.id)


def test_events_about_nothing_we_know_name_nothing(db: Any) -> None:
    gift = factories.gift()
    for evt in [
        se.event("customer.created", {"id": "cus_link", "object": "customer", "metadata": {}}),
        se.event("checkout.session.completed", se.checkout_session(gift.id + 1000)),
    ]:
        row = handled(evt)
        assert row.outcome.startswith("ignored") and links(row) == (None, None)
    # an unknown subscription's events wait for it (issue 11), still naming nothing
    for evt in [
        se.event("invoice.paid", se.invoice("sub_nobody", 3000, "pln", "in_nobody", {})),
        se.event("customer.subscription.updated", se.subscription("sub_nobody", "active", {})),
    ]:
        row = handled(evt)
        assert row.waiting_for == "sub_nobody" and links(row) == (None, None)


def test_a_deleted_gift_or_plan_leaves_its_events_unlinked(db: Any) -> None:
    plan = factories.plan()
    gift = factories.gift()
    db.session.add(
        StripeEvent(
            id="evt_link_gone",
            type="invoice.paid",
            payload={},
            outcome="gift x succeeded",
            gift_id=gift.id,
            plan_id=plan.id,
        )
    )
    db.session.flush()
    db.session.execute(sa.delete(Gift).where(Gift.id == gift.id))
    db.session.execute(sa.delete(RecurringPlan).where(RecurringPlan.id == plan.id))
    db.session.expire_all()
    row = db.session.get(StripeEvent, "evt_link_gone")
    assert row is not None and links(row) == (None, None)


# --- Histories read the links -----------------------------------------------------------


def test_a_gifts_page_lists_the_events_linked_to_it_and_no_other_gifts(client: Any, db: Any) -> None:
    sign_in_staff(client)
    one = factories.gift(stripe_payment_intent_id="pi_hist_one", stripe_charge_id="ch_hist_one")
    # A gift whose id starts with the other's (say gift 1 and gift 12).
    twelve = factories.gift(id=int(f"{one.id}2"), stripe_payment_intent_id="pi_hist_12")
    for evt_id, evt in [
        ("evt_one_paid", se.payment_intent(one.id, "succeeded", id="pi_hist_one")),
        ("evt_twelve_paid", se.payment_intent(twelve.id, "succeeded", id="pi_hist_12")),
    ]:
        handled(se.event("payment_intent.succeeded", evt, id=evt_id))
    handled(se.event("charge.refunded", se.charge("ch_hist_one", "pi_hist_one", 5000, 1200), id="evt_one_refund"))
    # A row whose text names gift one but that is linked to nothing: the text alone is not a link.
    db.session.add(
        StripeEvent(id="evt_text_only", type="payment_intent.succeeded", payload={}, outcome=f"gift {one.id} succeeded")
    )
    db.session.commit()

    html = page(client, f"/dashboard/gifts/{one.id}")
    assert "evt_one_paid" in html and "evt_one_refund" in html
    assert html.index("evt_one_paid") < html.index("evt_one_refund")
    assert f"gift {one.id} refunded 1200 in all" in html
    assert "evt_twelve_paid" not in html and "evt_text_only" not in html

    html = page(client, f"/dashboard/gifts/{twelve.id}")
    assert "evt_twelve_paid" in html
    assert "evt_one_paid" not in html and "evt_one_refund" not in html and "evt_text_only" not in html


def test_a_plans_page_lists_its_events_and_its_instalments_but_no_other_plans(client: Any, db: Any) -> None:
    sign_in_staff(client)
    plan, gift = monthly_plan()
    other, other_gift = monthly_plan()
    meta = se.gift_metadata(gift.id, plan.id)
    handled(
        se.event(
            "invoice.paid",
            se.invoice("sub_hist", 3000, "pln", "in_hist1", meta, "subscription_create"),
            id="evt_plan_paid",
        )
    )
    handled(
        se.event(
            "invoice.payment_succeeded", se.invoice("sub_hist", 3000, "pln", "in_hist1", meta), id="evt_plan_again"
        )
    )
    handled(
        se.event(
            "customer.subscription.updated",
            se.subscription("sub_hist_other", "active", se.gift_metadata(other_gift.id, other.id)),
            id="evt_other_plan",
        )
    )
    db.session.add(
        StripeEvent(
            id="evt_plan_text_only", type="customer.subscription.updated", payload={}, outcome=f"plan {plan.id} active"
        )
    )
    db.session.commit()

    html = page(client, f"/dashboard/plans/{plan.id}")
    assert "evt_plan_paid" in html and "evt_plan_again" in html
    assert html.index("evt_plan_paid") < html.index("evt_plan_again")
    assert "evt_other_plan" not in html and "evt_plan_text_only" not in html
    assert "evt_plan_paid" in page(client, f"/dashboard/gifts/{gift.id}")
    assert "evt_other_plan" in page(client, f"/dashboard/plans/{other.id}")
