"""Dashboard recurring plans: the list by status and its monthly income per currency,
one plan with its gifts and history, and cancelling through a fake gateway."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from supporters.extensions import db
from supporters.giving.stripe_events import process_event
from supporters.giving.totals import monthly_income
from supporters.models import AuditEvent, PlanStatus, RecurringPlan, StripeEvent
from tests import factories
from tests.fakes import FakeGateway
from tests.functional.dashboard.test_gifts import HOSTILE, RTL


def plan(status: PlanStatus = PlanStatus.ACTIVE, **fields: Any) -> RecurringPlan:
    """A plan moved to `status` along its transition table, committed as a request would find it."""
    row = factories.plan(**fields)
    if status is not PlanStatus.INCOMPLETE:
        row.status = status
        row.started_at = datetime.now(UTC) - timedelta(days=40)
    db.session.commit()
    return row


def page(client: Any, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


# --- The list ----------------------------------------------------------------------------


def test_list_shows_active_plans_by_default(client: Any, db: Any, fundraiser: Any) -> None:
    plan(amount_minor=3000, supporter_id=factories.supporter(name="Ewa Active").id)
    plan(PlanStatus.CANCELED, amount_minor=4000, supporter_id=factories.supporter(name="Jan Gone").id)
    html = page(client, "/dashboard/plans/")
    assert "Ewa Active" in html and "PLN30.00" in html and "monthly" in html
    assert "Jan Gone" not in html
    html = page(client, "/dashboard/plans/?status=canceled")
    assert "Jan Gone" in html and "Ewa Active" not in html


def test_each_tab_lists_its_own_status(client: Any, db: Any, fundraiser: Any) -> None:
    names = {status: f"Person {status.value}" for status in PlanStatus}
    for status, name in names.items():
        plan(status, supporter_id=factories.supporter(name=name).id)
    for status, name in names.items():
        html = page(client, f"/dashboard/plans/?status={status.value}")
        assert name in html
        assert all(other not in html for other in names.values() if other != name)


def test_an_unknown_status_shows_active_plans_with_a_note(client: Any, db: Any, fundraiser: Any) -> None:
    plan(supporter_id=factories.supporter(name="Ewa Active").id)
    response = client.get("/dashboard/plans/?status=%3Cscript%3E")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Ewa Active" in html and "Ignored the status" in html
    assert "<script>" not in html


def test_monthly_income_per_currency_counts_yearly_plans_as_a_twelfth(client: Any, db: Any, fundraiser: Any) -> None:
    plan(amount_minor=3000)  # 30.00 PLN a month
    plan(amount_minor=10000, interval="year")  # 100.00 PLN a year: 8.33 a month
    plan(amount_minor=10006, interval="year")  # 100.06 PLN a year: 8.3383 -> 8.34
    plan(amount_minor=500, currency="EUR")  # 5.00 EUR a month, never added to PLN
    plan(PlanStatus.CANCELED, amount_minor=99900)  # canceled: not in the active tab
    assert monthly_income(RecurringPlan.status == PlanStatus.ACTIVE) == {"EUR": 500, "PLN": 3000 + 833 + 834}
    html = page(client, "/dashboard/plans/")
    assert "PLN46.67" in html and "€5.00" in html and "PLN999.00" not in html


def test_hostile_names_and_reasons_are_shown_as_text(client: Any, db: Any, fundraiser: Any) -> None:
    row = plan(PlanStatus.CANCELED, supporter_id=factories.supporter(name=HOSTILE).id)
    row.cancel_reason = HOSTILE[:500]
    plan(PlanStatus.CANCELED, supporter_id=factories.supporter(name=RTL).id)
    db.session.commit()
    for url in ("/dashboard/plans/?status=canceled", f"/dashboard/plans/{row.id}"):
        html = page(client, url)
        assert "<script>alert(1)" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert RTL in page(client, "/dashboard/plans/?status=canceled")


# --- One plan -------------------------------------------------------------------------------


def test_detail_shows_the_plan_its_gifts_and_history(client: Any, db: Any, fundraiser: Any) -> None:
    row = plan(stripe_subscription_id="sub_abc")
    gift = factories.paid_gift(
        supporter_id=row.supporter_id,
        recurring_plan_id=row.id,
        kind="recurring",
        amount_minor=3000,
        receipt_number="2026-000777",
    )
    db.session.add(
        StripeEvent(
            id="evt_sub",
            type="customer.subscription.created",
            payload={},
            outcome=f"plan {row.id} active",
            plan_id=row.id,
        )
    )
    db.session.add(
        StripeEvent(
            id="evt_inv",
            type="invoice.paid",
            payload={},
            outcome=f"gift {gift.id} succeeded (plan {row.id})",
            gift_id=gift.id,
            plan_id=row.id,
        )
    )
    # names the plan, linked to none
    db.session.add(StripeEvent(id="evt_other", type="invoice.paid", payload={}, outcome=f"plan {row.id} active"))
    db.session.commit()
    html = page(client, f"/dashboard/plans/{row.id}")
    assert "sub_abc" in html and "2026-000777" in html and f"/dashboard/gifts/{gift.id}" in html
    assert "evt_sub" in html and "evt_inv" in html and "evt_other" not in html
    assert f'href="/dashboard/plans/{row.id}/cancel"' in html and 'name="reason"' not in html


# --- Cancelling --------------------------------------------------------------------------------


def test_cancelling_asks_first_and_says_what_will_happen(
    client: Any, db: Any, fundraiser: Any, gateway: FakeGateway
) -> None:
    row = plan(stripe_subscription_id="sub_ask", amount_minor=3000, currency="PLN")
    html = page(client, f"/dashboard/plans/{row.id}/cancel")
    assert "Cancel recurring plan" in html and "30.00" in html
    assert "no further payments are taken" in html
    assert f'action="/dashboard/plans/{row.id}/cancel"' in html and 'name="reason"' in html
    assert "Yes, cancel the plan" in html and f'href="/dashboard/plans/{row.id}"' in html
    db.session.refresh(row)
    assert row.status is PlanStatus.ACTIVE and gateway.canceled == []


def test_a_canceled_plan_offers_no_cancelling(client: Any, db: Any, fundraiser: Any) -> None:
    row = plan(PlanStatus.CANCELED)
    assert f"/dashboard/plans/{row.id}/cancel" not in page(client, f"/dashboard/plans/{row.id}")
    response = client.get(f"/dashboard/plans/{row.id}/cancel")
    assert response.status_code == 409 and "already canceled" in response.get_data(as_text=True)


def test_the_plan_row_on_a_supporters_page_links_to_the_plan(client: Any, db: Any, fundraiser: Any) -> None:
    row = plan(amount_minor=4500)
    html = page(client, f"/dashboard/supporters/{row.supporter_id}")
    assert f'href="/dashboard/plans/{row.id}"' in html


def test_cancel_ends_the_subscription_and_the_plan_at_once(
    client: Any, db: Any, fundraiser: Any, gateway: FakeGateway
) -> None:
    row = plan(stripe_subscription_id="sub_live1")
    response = client.post(f"/dashboard/plans/{row.id}/cancel", data={"reason": "Donor asked by phone"})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/dashboard/plans/{row.id}")
    assert gateway.canceled == ["sub_live1"]
    db.session.refresh(row)
    assert row.status is PlanStatus.CANCELED and row.canceled_at and row.cancel_reason == "Donor asked by phone"
    event = db.session.scalars(select(AuditEvent).filter_by(action="plan.cancel")).one()
    assert event.target_type == "plan" and event.target_id == str(row.id) and event.actor == fundraiser.email
    assert event.details["reason"] == "Donor asked by phone"
    html = page(client, f"/dashboard/plans/{row.id}")
    assert "The recurring plan was canceled." in html and 'name="reason"' not in html

    # Stripe's confirmation then finds nothing left to do, and keeps staff's reason.
    outcome = process_event(
        {
            "id": "evt_deleted",
            "type": "customer.subscription.deleted",
            "livemode": False,
            "data": {
                "object": {
                    "id": "sub_live1",
                    "object": "subscription",
                    "status": "canceled",
                    "cancellation_details": {"reason": "cancellation_requested"},
                }
            },
        }
    )
    assert outcome == f"plan {row.id} unchanged (canceled)"
    assert row.cancel_reason == "Donor asked by phone"


def test_a_plan_without_a_subscription_is_canceled_here_only(
    client: Any, db: Any, fundraiser: Any, gateway: FakeGateway
) -> None:
    row = plan(PlanStatus.INCOMPLETE)
    assert client.post(f"/dashboard/plans/{row.id}/cancel", data={"reason": "abandoned"}).status_code == 303
    assert gateway.canceled == []
    db.session.refresh(row)
    assert row.status is PlanStatus.CANCELED


def test_cancel_needs_a_reason(client: Any, db: Any, fundraiser: Any, gateway: FakeGateway) -> None:
    row = plan(stripe_subscription_id="sub_x")
    response = client.post(f"/dashboard/plans/{row.id}/cancel", data={"reason": "   "})
    assert response.status_code == 400 and "Say why the plan is canceled." in response.get_data(as_text=True)
    assert gateway.canceled == []
    db.session.refresh(row)
    assert row.status is PlanStatus.ACTIVE


def test_a_canceled_plan_cannot_be_canceled_again(client: Any, db: Any, fundraiser: Any, gateway: FakeGateway) -> None:
    row = plan(PlanStatus.CANCELED, stripe_subscription_id="sub_y")
    response = client.post(f"/dashboard/plans/{row.id}/cancel", data={"reason": "again"})
    assert response.status_code == 400 and "already canceled" in response.get_data(as_text=True)
    assert gateway.canceled == []


def test_stripe_unavailable_leaves_the_plan_as_it_was(
    client: Any, db: Any, fundraiser: Any, gateway: FakeGateway
) -> None:
    gateway.fail = True
    row = plan(stripe_subscription_id="sub_z")
    response = client.post(f"/dashboard/plans/{row.id}/cancel", data={"reason": "asked"})
    assert response.status_code == 502
    assert "Stripe did not cancel the subscription" in response.get_data(as_text=True)
    db.session.refresh(row)
    assert row.status is PlanStatus.ACTIVE and row.cancel_reason is None
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).filter_by(action="plan.cancel")) == 0


def test_a_viewer_may_look_but_not_cancel(client: Any, db: Any, gateway: FakeGateway) -> None:
    assert factories.sign_in(client, factories.staff("viewer")).status_code == 303
    row = plan(stripe_subscription_id="sub_v")
    html = page(client, f"/dashboard/plans/{row.id}")
    assert 'name="reason"' not in html and f"/dashboard/plans/{row.id}/cancel" not in html
    assert page(client, "/dashboard/plans/")
    assert client.get(f"/dashboard/plans/{row.id}/cancel").status_code == 403
    assert client.post(f"/dashboard/plans/{row.id}/cancel", data={"reason": "x"}).status_code == 403
    assert gateway.canceled == []
    db.session.refresh(row)
    assert row.status is PlanStatus.ACTIVE


def test_the_overview_and_the_plans_pages_show_the_same_monthly_income(client: Any, db: Any, fundraiser: Any) -> None:
    """Two yearly plans of PLN 100.02: each brings 8.335, rounded half up to 8.34, so PLN 16.68
    a month on the overview, the plans list and (8.34 each) a plan's page; once the overview
    divided the sum (16.67) and the plans page rounded per plan (16.68)."""
    first = plan(amount_minor=10002, interval="year")
    plan(amount_minor=10002, interval="year")
    assert monthly_income(RecurringPlan.status == PlanStatus.ACTIVE) == {"PLN": 1668}
    assert "PLN16.68" in page(client, "/dashboard/")
    assert "PLN16.68" in page(client, "/dashboard/plans/")
    assert "PLN8.34" in page(client, f"/dashboard/plans/{first.id}")
