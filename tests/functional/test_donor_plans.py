"""A donor changes their own recurring gift at /my/plans/<id> (issue 13): every change
through the gateway first, recorded as the donor, confirmed by e-mail; nothing changed
when Stripe fails; another donor's plan is 404; a canceled plan refuses changes; the
cancel offer is shown once; Stripe's subscription.updated brings changes made elsewhere,
in any order and twice."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from sqlalchemy import func, select

from supporters.extensions import db as _db
from supporters.models import AuditEvent, OutboxEmail, PlanInterval, PlanStatus, RecurringPlan, Supporter, utcnow
from supporters.payments import gateway
from tests import factories
from tests import stripe_events as se
from tests.fakes import FakeGateway

FIXTURES = Path(__file__).parents[2].parent / "shared/stripe/fixtures3.json"


def sign_in(client: Any, supporter: Supporter) -> None:
    with client.session_transaction() as state:
        state["donor"] = {"supporter_id": supporter.id, "until": "2999-01-01T00:00:00+00:00"}


def active_plan(owner: Supporter | None = None, **fields: Any) -> RecurringPlan:
    values: dict[str, Any] = {
        "stripe_subscription_id": se.new_id("sub"),
        "current_period_end": utcnow() + timedelta(days=20),
    }
    values.update(fields)
    plan = factories.plan(owner, **values)
    plan.status = PlanStatus.ACTIVE
    _db.session.commit()
    return plan


def fresh(plan: RecurringPlan) -> RecurringPlan:
    _db.session.expire_all()
    found = _db.session.get(RecurringPlan, plan.id)
    assert found is not None
    return found


def audit_rows(plan: RecurringPlan) -> list[AuditEvent]:
    return list(
        _db.session.scalars(
            select(AuditEvent).filter_by(target_type="plan", target_id=str(plan.id)).order_by(AuditEvent.id)
        )
    )


def mails() -> list[OutboxEmail]:
    return list(_db.session.scalars(select(OutboxEmail).filter_by(kind="plan_changed").order_by(OutboxEmail.id)))


def snapshot(plan: RecurringPlan) -> tuple[Any, ...]:
    row = fresh(plan)
    return (
        row.amount_minor,
        row.interval,
        row.status,
        row.paused_at,
        row.paused_until,
        row.change_count,
        row.changed_at,
        row.cancel_offer_shown_at,
        len(audit_rows(plan)),
        _db.session.scalar(select(func.count()).select_from(OutboxEmail)),
    )


# --- The page ----------------------------------------------------------------------------------


def test_the_plan_page_shows_the_donors_own_plan_with_its_forms(client: Any, db: Any) -> None:
    plan = active_plan(amount_minor=3000)
    sign_in(client, plan.supporter)
    page = client.get(f"/my/plans/{plan.id}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "30.00" in text and "a month" in text and "active" in text
    assert 'id="card"' in text
    for action in ("amount", "interval", "pause", "card"):
        assert f"/my/plans/{plan.id}/{action}" in text
    assert f"/my/plans/{plan.id}/cancel" in text
    assert page.headers["Cache-Control"] == "no-store"
    gifts = client.get("/my/gifts").get_data(as_text=True)
    assert f"/my/plans/{plan.id}" in gifts


def test_another_donors_plan_is_404_for_every_route(client: Any, db: Any, fake_stripe: FakeGateway) -> None:
    plan = active_plan()
    other = factories.supporter()
    _db.session.commit()
    sign_in(client, other)
    before = snapshot(plan)
    assert client.get(f"/my/plans/{plan.id}").status_code == 404
    assert client.get(f"/my/plans/{plan.id}/cancel").status_code == 404
    assert client.get(f"/my/plans/{plan.id}/card/done").status_code == 404
    for action, data in [
        ("amount", {"amount": "50"}),
        ("interval", {"interval": "year"}),
        ("pause", {"months": "1"}),
        ("resume", {}),
        ("card", {}),
        ("cancel", {}),
    ]:
        assert client.post(f"/my/plans/{plan.id}/{action}", data=data).status_code == 404, action
    assert client.get("/my/plans/999999").status_code == 404
    assert fake_stripe.subscription_changes == [] and fake_stripe.canceled == []
    assert snapshot(plan) == before


def test_signed_out_the_page_sends_to_sign_in(client: Any, db: Any) -> None:
    plan = active_plan()
    response = client.get(f"/my/plans/{plan.id}")
    assert response.status_code == 302 and response.headers["Location"].endswith("/my/")


# --- Each change through the fake gateway -------------------------------------------------------------


def test_changing_the_amount_asks_stripe_then_changes_audits_and_mails(
    client: Any, db: Any, fake_stripe: FakeGateway
) -> None:
    plan = active_plan(amount_minor=3000)
    sign_in(client, plan.supporter)
    response = client.post(f"/my/plans/{plan.id}/amount", data={"amount": "45,50"})
    assert response.status_code == 303
    kind, subscription, details = fake_stripe.subscription_changes[-1]
    assert (kind, subscription) == ("change", plan.stripe_subscription_id)
    assert details["amount_minor"] == 4550 and details["interval"] == "month" and details["next_charge_at"] is None
    assert details["idempotency_key"].startswith(f"plan-{plan.id}-amount-4550-")  # and unique: see below
    changed = fresh(plan)
    assert changed.amount_minor == 4550 and changed.change_count == 1 and changed.changed_at is not None
    row = audit_rows(plan)[-1]
    assert row.action == "plan.amount_change" and row.actor == f"donor #{plan.supporter_id}"
    assert row.details == {"from_minor": 3000, "to_minor": 4550, "currency": "PLN"}
    (mail,) = mails()
    assert mail.to_address == plan.supporter.email and "45.50" in mail.body_text
    assert "/my/open/" in mail.body_text and mail.dedupe_key == f"plan-change:{plan.id}:{row.id}"
    page = client.get(f"/my/plans/{plan.id}").get_data(as_text=True)
    assert "Amount changed from" in page and "by you" in page


@pytest.mark.parametrize(
    "typed,message",
    [("1", "The smallest gift"), ("999999999", "The largest gift"), ("abc", ""), ("30", "already this amount")],
)
def test_an_amount_outside_the_forms_bounds_is_refused(
    client: Any, db: Any, fake_stripe: FakeGateway, typed: str, message: str
) -> None:
    plan = active_plan(amount_minor=3000)
    sign_in(client, plan.supporter)
    before = snapshot(plan)
    response = client.post(f"/my/plans/{plan.id}/amount", data={"amount": typed})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert fake_stripe.subscription_changes == [] and snapshot(plan) == before


def test_switching_to_yearly_keeps_the_paid_period(client: Any, db: Any, fake_stripe: FakeGateway) -> None:
    plan = active_plan(amount_minor=3000)
    period_end = plan.current_period_end
    sign_in(client, plan.supporter)
    response = client.post(f"/my/plans/{plan.id}/interval", data={"interval": "year", "amount": "300"})
    assert response.status_code == 303
    _kind, _sub, details = fake_stripe.subscription_changes[-1]
    assert details["interval"] == "year" and details["amount_minor"] == 30000
    assert details["next_charge_at"] == period_end
    changed = fresh(plan)
    assert changed.interval is PlanInterval.YEAR and changed.amount_minor == 30000
    assert changed.current_period_end == period_end
    assert audit_rows(plan)[-1].action == "plan.interval_change" and len(mails()) == 1
    # the same interval again is refused
    assert client.post(f"/my/plans/{plan.id}/interval", data={"interval": "year"}).status_code == 400
    assert client.post(f"/my/plans/{plan.id}/interval", data={"interval": "week"}).status_code == 400


def test_pause_and_resume_early(client: Any, db: Any, fake_stripe: FakeGateway) -> None:
    plan = active_plan()
    sign_in(client, plan.supporter)
    assert client.post(f"/my/plans/{plan.id}/pause", data={"months": "4"}).status_code == 400
    assert client.post(f"/my/plans/{plan.id}/pause", data={"months": "2"}).status_code == 303
    kind, _sub, details = fake_stripe.subscription_changes[-1]
    paused = fresh(plan)
    assert kind == "pause" and details["resumes_at"] == paused.paused_until
    assert paused.paused_until is not None and 58 <= (paused.paused_until - utcnow()).days <= 62
    page = client.get(f"/my/plans/{plan.id}").get_data(as_text=True)
    assert "paused until" in page and "Resume now" in page
    assert client.post(f"/my/plans/{plan.id}/pause", data={"months": "1"}).status_code == 409
    assert client.post(f"/my/plans/{plan.id}/resume").status_code == 303
    assert fake_stripe.subscription_changes[-1][0] == "resume"
    resumed = fresh(plan)
    assert resumed.paused_at is None and resumed.paused_until is None
    assert [row.action for row in audit_rows(plan)] == ["plan.pause", "plan.resume"]
    assert len(mails()) == 2
    assert client.post(f"/my/plans/{plan.id}/resume").status_code == 409


def test_the_card_update_goes_to_the_portal_and_is_recorded_once_the_card_changed(
    client: Any, db: Any, fake_stripe: FakeGateway
) -> None:
    plan = active_plan()
    fake_stripe.cards[plan.stripe_subscription_id] = "pm_old"
    sign_in(client, plan.supporter)
    response = client.post(f"/my/plans/{plan.id}/card")
    assert response.status_code == 303
    assert response.headers["Location"] == f"{fake_stripe.portal_base}/{plan.stripe_subscription_id}"
    _kind, _sub, details = fake_stripe.subscription_changes[-1]
    assert details["return_url"].endswith(f"/my/plans/{plan.id}/card/done?lang=en")
    # back without a new card: nothing recorded
    back = client.get(f"/my/plans/{plan.id}/card/done")
    assert back.status_code == 303 and back.headers["Location"].endswith(f"/my/plans/{plan.id}#card")
    assert mails() == []
    fake_stripe.cards[plan.stripe_subscription_id] = "pm_new"
    client.get(f"/my/plans/{plan.id}/card/done")
    client.get(f"/my/plans/{plan.id}/card/done")  # twice: once recorded
    assert [row.action for row in audit_rows(plan)] == ["plan.card_update_opened", "plan.card_update"]
    assert len(mails()) == 1


def test_cancelling_offers_a_lower_amount_or_a_pause_once_then_one_click(
    client: Any, db: Any, fake_stripe: FakeGateway
) -> None:
    plan = active_plan()
    sign_in(client, plan.supporter)
    # a cancel without the offer seen first goes to the offer
    early = client.post(f"/my/plans/{plan.id}/cancel")
    assert early.status_code == 303 and early.headers["Location"].endswith(f"/my/plans/{plan.id}/cancel")
    assert fake_stripe.canceled == []
    offer = client.get(f"/my/plans/{plan.id}/cancel").get_data(as_text=True)
    assert "smaller amount" in offer and "Pause my gift" in offer and "No thanks, cancel my gift" in offer
    assert fresh(plan).cancel_offer_shown_at is not None
    again = client.get(f"/my/plans/{plan.id}/cancel").get_data(as_text=True)
    assert "smaller amount" not in again and "No thanks, cancel my gift" in again
    assert [row.action for row in audit_rows(plan)] == ["plan.cancel_offer_shown"]
    assert client.post(f"/my/plans/{plan.id}/cancel").status_code == 303
    assert fake_stripe.canceled == [plan.stripe_subscription_id]
    ended = fresh(plan)
    assert ended.status is PlanStatus.CANCELED and ended.canceled_at is not None
    assert audit_rows(plan)[-1].action == "plan.cancel" and audit_rows(plan)[-1].actor.startswith("donor #")
    assert len(mails()) == 1 and "canceled" in mails()[0].body_text


def test_a_canceled_plan_is_read_only(client: Any, db: Any, fake_stripe: FakeGateway) -> None:
    plan = active_plan()
    plan.status = PlanStatus.CANCELED
    _db.session.commit()
    sign_in(client, plan.supporter)
    page = client.get(f"/my/plans/{plan.id}").get_data(as_text=True)
    assert "canceled" in page and f"/my/plans/{plan.id}/amount" not in page and "/cancel" not in page
    before = snapshot(plan)
    for action, data in [
        ("amount", {"amount": "50"}),
        ("interval", {"interval": "year"}),
        ("pause", {"months": "1"}),
        ("resume", {}),
        ("card", {}),
        ("cancel", {}),
    ]:
        assert client.post(f"/my/plans/{plan.id}/{action}", data=data).status_code == 409, action
    assert client.get(f"/my/plans/{plan.id}/cancel").status_code == 409
    assert fake_stripe.subscription_changes == [] and fake_stripe.canceled == []
    assert snapshot(plan) == before


CHANGES = [
    ("amount", {"amount": "50"}),
    ("interval", {"interval": "year"}),
    ("pause", {"months": "1"}),
    ("card", {}),
    ("cancel", {}),
]


@pytest.mark.parametrize("action,data", CHANGES, ids=[c[0] for c in CHANGES])
def test_stripe_failing_in_the_middle_leaves_everything_as_it_was(
    client: Any, db: Any, fake_stripe: FakeGateway, action: str, data: dict[str, str]
) -> None:
    plan = active_plan()
    if action == "cancel":
        plan.cancel_offer_shown_at = utcnow()
        _db.session.commit()
    sign_in(client, plan.supporter)
    before = snapshot(plan)
    fake_stripe.fail_next = True
    response = client.post(f"/my/plans/{plan.id}/{action}", data=data)
    assert response.status_code == 503
    assert "try again in a minute" in response.get_data(as_text=True)
    assert snapshot(plan) == before
    assert fake_stripe.canceled == []


def test_stripe_failing_on_resume_leaves_the_pause(client: Any, db: Any, fake_stripe: FakeGateway) -> None:
    plan = active_plan()
    sign_in(client, plan.supporter)
    assert client.post(f"/my/plans/{plan.id}/pause", data={"months": "1"}).status_code == 303
    before = snapshot(plan)
    fake_stripe.fail_next = True
    assert client.post(f"/my/plans/{plan.id}/resume").status_code == 503
    assert snapshot(plan) == before


# --- Stripe's subscription.updated: changes made elsewhere ------------------------------------------


def subscription_event(plan: RecurringPlan, created: int, amount: int, interval: str, pause: Any) -> dict[str, Any]:
    subscription = {
        "id": plan.stripe_subscription_id,
        "object": "subscription",
        "status": "active",
        "metadata": {"recurring_plan_id": str(plan.id)},
        "items": {
            "object": "list",
            "data": [
                {
                    "id": "si_1",
                    "current_period_end": created + 30 * 86400,
                    "price": {"unit_amount": amount, "currency": "pln", "recurring": {"interval": interval}},
                }
            ],
        },
        "pause_collection": pause,
    }
    return se.event("customer.subscription.updated", subscription, created=created)


def post(client: Any, event: dict[str, Any]) -> Any:
    return se.post_event(client, event, gateway().webhook_secret)


def test_a_change_made_at_stripe_comes_onto_the_plan_in_any_order_and_twice(client: Any, db: Any) -> None:
    plan = active_plan(amount_minor=3000)
    older = subscription_event(plan, se.T0 + 100, 4000, "month", None)
    newer = subscription_event(plan, se.T0 + 200, 5000, "year", {"behavior": "void", "resumes_at": se.T0 + 9000})
    assert post(client, newer).status_code == 200
    assert post(client, older).status_code == 200
    assert post(client, newer).status_code == 200  # the same event again
    changed = fresh(plan)
    assert changed.amount_minor == 5000 and changed.interval is PlanInterval.YEAR
    assert changed.paused_until is not None and int(changed.paused_until.timestamp()) == se.T0 + 9000
    rows = [row for row in audit_rows(plan) if row.action == "plan.stripe_change"]
    assert len(rows) == 1 and rows[0].actor == "Stripe"
    resumed = subscription_event(plan, se.T0 + 300, 5000, "year", None)
    post(client, resumed)
    assert fresh(plan).paused_at is None


def test_an_update_older_than_the_donors_change_does_not_undo_it(
    client: Any, db: Any, fake_stripe: FakeGateway
) -> None:
    plan = active_plan(amount_minor=3000)
    sign_in(client, plan.supporter)
    assert client.post(f"/my/plans/{plan.id}/amount", data={"amount": "60"}).status_code == 303
    stale = subscription_event(plan, int((utcnow() - timedelta(hours=1)).timestamp()), 3000, "month", None)
    # the fake checks no signature: any secret signs
    assert se.post_event(client, stale, "whsec_any").status_code == 200
    assert fresh(plan).amount_minor == 6000
    # an earlier change's event made in the same second as the donor's change, arriving after it
    # (the second the change was made in: `changed_at` is the next one; "now" may have ticked on)
    changed_at = fresh(plan).changed_at
    assert changed_at is not None
    same_second = subscription_event(plan, int(changed_at.timestamp()) - 1, 3000, "month", None)
    assert se.post_event(client, same_second, "whsec_any").status_code == 200
    assert fresh(plan).amount_minor == 6000
    # a change made at Stripe later still comes onto the plan
    later = subscription_event(plan, int(utcnow().timestamp()) + 5, 7000, "month", None)
    assert se.post_event(client, later, "whsec_any").status_code == 200
    assert fresh(plan).amount_minor == 7000


# --- The real gateways ---------------------------------------------------------------------------------


def test_the_card_updates_redirect_is_allowed_by_the_csp_form_action(app: Flask, db: Any) -> None:
    from supporters.payments.stripe_gateway import StripeGateway

    stripe_gateway = StripeGateway("sk_test_x", "whsec_x")
    # Stripe's fixture portal session names one of Stripe's development hosts; real sessions are on
    # billing.stripe.com (https://billing.stripe.com/p/session/…, as Stripe's docs show them).
    assert stripe_gateway.card_update_origins == ("https://billing.stripe.com",)
    assert stripe_gateway.checkout_origins == ("https://checkout.stripe.com",)
    real = app.extensions["payments"]
    app.extensions["payments"] = stripe_gateway
    try:
        plan = active_plan()
        client = app.test_client()
        sign_in(client, plan.supporter)
        response = client.get(f"/my/plans/{plan.id}")
        policy = response.headers["Content-Security-Policy"]
        form_action = next(part for part in policy.split(";") if part.strip().startswith("form-action"))
        assert form_action.strip() == "form-action 'self' https://billing.stripe.com"
        # a value to fix shows the page again, with the same card button
        again = client.post(f"/my/plans/{plan.id}/amount", data={"amount": "x"})
        assert again.status_code == 400 and "https://billing.stripe.com" in again.headers["Content-Security-Policy"]
        # the donation form still leads to Checkout only
        donate = client.get("/donate/").headers["Content-Security-Policy"]
        assert "form-action 'self' https://checkout.stripe.com;" in donate and "billing" not in donate
    finally:
        app.extensions["payments"] = real


@pytest.mark.skipif(not FIXTURES.is_file(), reason="Stripe's fixture objects are not beside the project")
def test_the_stripe_gateways_requests_against_a_stand_in_for_api_stripe_com() -> None:
    """change, pause, resume and the portal session, as the real StripeGateway sends them,
    answered with Stripe's own fixture objects."""
    from supporters.payments.stripe_gateway import StripeGateway

    stripe_objects = json.loads(FIXTURES.read_text(encoding="utf-8"))["resources"]
    subscription = stripe_objects["subscription"]
    portal = dict(stripe_objects["billing_portal.session"], url="https://billing.stripe.com/p/session/test_1")
    asked: list[tuple[str, str, dict[str, list[str]], str | None]] = []

    class StripeApi(BaseHTTPRequestHandler):
        def _answer(self, body: dict[str, Any]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(body).encode())

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            asked.append(("GET", url.path, parse_qs(url.query), None))
            self._answer(subscription)

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
            asked.append(("POST", url.path, form, self.headers.get("Idempotency-Key")))
            self._answer(portal if url.path == "/v1/billing_portal/sessions" else subscription)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), StripeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        real = StripeGateway("sk_test_contract", "whsec_x")
        import stripe

        real.client = stripe.StripeClient(
            "sk_test_contract", base_addresses={"api": f"http://127.0.0.1:{server.server_address[1]}"}
        )
        sub_id = subscription["id"]
        period_end = utcnow().replace(microsecond=0) + timedelta(days=10)
        real.change_subscription(
            sub_id, amount_minor=5000, currency="PLN", interval="year", idempotency_key="k1", next_charge_at=period_end
        )
        _get, (method, path, form, key) = asked[0], asked[1]
        assert asked[0][1] == f"/v1/subscriptions/{sub_id}"
        assert (method, path, key) == ("POST", f"/v1/subscriptions/{sub_id}", "k1")
        item = subscription["items"]["data"][0]
        assert form["items[0][id]"] == [item["id"]]
        assert form["items[0][price_data][product]"] == [item["price"]["product"]]
        assert form["items[0][price_data][unit_amount]"] == ["5000"]
        assert form["items[0][price_data][currency]"] == ["pln"]
        assert form["items[0][price_data][recurring][interval]"] == ["year"]
        assert form["proration_behavior"] == ["none"] and form["trial_end"] == [str(int(period_end.timestamp()))]

        asked.clear()
        real.pause_subscription(sub_id, period_end, "k2")
        assert asked[0][2] == {
            "pause_collection[behavior]": ["void"],
            "pause_collection[resumes_at]": [str(int(period_end.timestamp()))],
        }
        asked.clear()
        real.resume_subscription(sub_id, "k3")
        assert asked[0][2] == {"pause_collection": [""]} and asked[0][3] == "k3"

        asked.clear()
        url = real.card_update_url(sub_id, "https://example.org/my/plans/1/card/done", "pl")
        assert url.startswith("https://billing.stripe.com/")
        session_form = asked[-1][2]
        assert asked[-1][1] == "/v1/billing_portal/sessions"
        assert session_form["customer"] == [subscription["customer"]]
        assert session_form["flow_data[type]"] == ["payment_method_update"]
        assert session_form["return_url"] == ["https://example.org/my/plans/1/card/done"]
        assert session_form["locale"] == ["pl"]
    finally:
        server.shutdown()
        server.server_close()


# --- Staff see the donor's changes -------------------------------------------------------------------


def test_staff_read_the_donors_changes_on_the_plan_and_the_supporter(
    app: Flask, db: Any, fake_stripe: FakeGateway
) -> None:
    plan = active_plan(amount_minor=3000)
    donor_client = app.test_client()
    sign_in(donor_client, plan.supporter)
    assert donor_client.post(f"/my/plans/{plan.id}/amount", data={"amount": "40"}).status_code == 303
    assert donor_client.post(f"/my/plans/{plan.id}/pause", data={"months": "3"}).status_code == 303
    staff = app.test_client()
    viewer = factories.staff("viewer")
    _db.session.commit()
    factories.sign_in(staff, viewer)
    plan_page = staff.get(f"/dashboard/plans/{plan.id}").get_data(as_text=True)
    assert "The donor, on their page" in plan_page
    assert "Amount changed from" in plan_page and "Paused for 3 month(s)" in plan_page
    supporter_page = staff.get(f"/dashboard/supporters/{plan.supporter_id}").get_data(as_text=True)
    assert "Changes to recurring gifts" in supporter_page and "Amount changed from" in supporter_page


# --- Through localstripe -----------------------------------------------------------------------------


def test_every_change_through_localstripe(live_app: Any) -> None:
    """A monthly gift paid on the offline page, then changed from the donor's page: localstripe
    holds each change (the wrapper's proration_behavior, pause_collection, default card) and
    reports it with customer.subscription.updated, which the plan reads back."""
    from supporters.models import Campaign, Frequency, StripeEvent
    from tests.conftest import wait_for
    from tests.integration.test_localstripe import SUCCEEDS, csrf_token, pay, start_gift

    app = live_app.app
    with app.app_context():
        _db.session.add(
            Campaign(
                slug="general",
                name="General",
                goal_currency="PLN",
                goal_minor=100000,
                preset_amounts={"PLN": [2000, 5000]},
                default_frequency=Frequency.ONE_TIME,
            )
        )
        _db.session.commit()
    client = app.test_client()
    assert pay(client, start_gift(client, frequency="monthly", amount="30"), SUCCEEDS).status_code == 303

    def plan_now() -> RecurringPlan | None:
        with app.app_context():
            return _db.session.scalars(select(RecurringPlan)).first()

    wait_for(lambda: (found := plan_now()) is not None and found.status is PlanStatus.ACTIVE)
    plan = plan_now()
    assert plan is not None and plan.stripe_subscription_id
    donor = app.test_client()
    with donor.session_transaction() as state:
        state["donor"] = {"supporter_id": plan.supporter_id, "until": "2999-01-01T00:00:00+00:00"}

    def post(action: str, **data: str) -> Any:
        token = csrf_token(donor.get(f"/my/plans/{plan.id}").get_data(as_text=True))
        return donor.post(f"/my/plans/{plan.id}/{action}", data={"csrf_token": token, **data})

    def subscription() -> dict[str, Any]:
        with app.app_context():
            real = gateway()
            return real.client.v1.subscriptions.retrieve(plan.stripe_subscription_id).to_dict()  # type: ignore[attr-defined]

    def updates() -> int:
        with app.app_context():
            return int(
                _db.session.scalar(
                    select(func.count()).select_from(StripeEvent).filter_by(type="customer.subscription.updated")
                )
                or 0
            )

    assert post("amount", amount="45").status_code == 303
    assert subscription()["plan"]["amount"] == 4500
    wait_for(lambda: updates() >= 1)
    assert post("pause", months="1").status_code == 303
    assert subscription()["pause_collection"]["behavior"] == "void"
    wait_for(lambda: updates() >= 2)
    assert post("resume").status_code == 303
    assert subscription()["pause_collection"] is None
    assert post("interval", interval="year", amount="400").status_code == 303
    after = subscription()
    assert after["plan"]["interval"] == "year" and after["plan"]["amount"] == 40000
    card = post("card")
    assert card.status_code == 303 and "/pay/test/card/" in card.headers["Location"]
    card_page = donor.get(card.headers["Location"]).get_data(as_text=True)
    back = donor.post(card.headers["Location"], data={"csrf_token": csrf_token(card_page), "card": SUCCEEDS})
    assert back.status_code == 303 and f"/my/plans/{plan.id}/card/done" in back.headers["Location"]
    # localstripe reports the new default card; let its webhook land first (SQLite takes one writer)
    wait_for(lambda: updates() >= 5)
    assert donor.get(urlsplit(back.headers["Location"]).path).status_code == 303
    with app.app_context():
        changed = _db.session.get(RecurringPlan, plan.id)
        assert changed is not None
        assert changed.amount_minor == 40000 and changed.interval is PlanInterval.YEAR and changed.paused_at is None
        actions = [
            row.action
            for row in _db.session.scalars(
                select(AuditEvent).filter_by(target_type="plan", target_id=str(plan.id)).order_by(AuditEvent.id)
            )
        ]
        assert actions == [
            "plan.amount_change",
            "plan.pause",
            "plan.resume",
            "plan.interval_change",
            "plan.card_update_opened",
            "plan.card_update",
        ]
        assert _db.session.scalar(select(func.count()).select_from(OutboxEmail).filter_by(kind="plan_changed")) == 5


def test_the_confirmation_is_written_in_the_donors_language(client: Any, db: Any, fake_stripe: FakeGateway) -> None:
    owner = factories.supporter(language="pl")
    plan = active_plan(owner, amount_minor=3000)
    sign_in(client, owner)
    assert client.post(f"/my/plans/{plan.id}/pause", data={"months": "1"}).status_code == 303
    (mail,) = mails()
    assert 'lang="pl"' in mail.body_html and "/my/open/" in mail.body_html
    assert "?lang=pl" in mail.body_text


def test_a_change_made_at_stripe_whose_event_comes_late_is_not_lost_to_a_donor_change(
    client: Any, db: Any, fake_stripe: FakeGateway
) -> None:
    """Staff paused the subscription in Stripe's dashboard; its event is late. The donor then
    changes the amount: Stripe's answer holds the pause, and the plan takes it (as Stripe's)."""
    plan = active_plan(amount_minor=3000)
    sign_in(client, plan.supporter)
    resumes = int((utcnow() + timedelta(days=40)).timestamp())
    pause = {"behavior": "void", "resumes_at": resumes}
    assert plan.stripe_subscription_id
    fake_stripe.subscriptions[plan.stripe_subscription_id] = {
        "id": plan.stripe_subscription_id,
        "pause_collection": pause,
    }
    paused_at_stripe = subscription_event(plan, int(utcnow().timestamp()) - 10, 3000, "month", pause)

    assert client.post(f"/my/plans/{plan.id}/amount", data={"amount": "60"}).status_code == 303
    echo = subscription_event(plan, int(utcnow().timestamp()), 6000, "month", pause)
    assert se.post_event(client, paused_at_stripe, "whsec_any").status_code == 200
    assert se.post_event(client, echo, "whsec_any").status_code == 200

    row = fresh(plan)
    assert row.amount_minor == 6000
    assert row.paused_at is not None and row.paused_until == datetime.fromtimestamp(resumes, UTC)
    actions = db.session.scalars(
        select(AuditEvent.action).filter_by(target_type="plan", target_id=str(plan.id)).order_by(AuditEvent.id)
    ).all()
    assert "plan.stripe_change" in actions and "plan.amount_change" in actions


def test_no_two_calls_share_an_idempotency_key_even_after_a_change_rolled_back(
    client: Any, db: Any, fake_stripe: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stripe answers a reused key with the first call's result: a change asked again after
    one was rolled back here (Stripe had made it) must reach Stripe as a new call."""
    from supporters.giving import plan_changes

    plan = active_plan(amount_minor=3000)
    sign_in(client, plan.supporter)

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the database went away after Stripe answered")

    monkeypatch.setattr(plan_changes.mail, "queue_plan_change", boom)
    assert client.post(f"/my/plans/{plan.id}/amount", data={"amount": "60"}).status_code == 500
    first_key = fake_stripe.subscription_changes[-1][2]["idempotency_key"]
    monkeypatch.undo()
    assert fresh(plan).amount_minor == 3000
    assert client.post(f"/my/plans/{plan.id}/amount", data={"amount": "60"}).status_code == 303
    assert fake_stripe.subscription_changes[-1][2]["idempotency_key"] != first_key
    assert fresh(plan).amount_minor == 6000


def test_the_amount_waits_while_a_payment_is_failing(client: Any, db: Any, fake_stripe: FakeGateway) -> None:
    """Stripe retries the invoice it made at the old amount: the change would not reach it."""
    plan = active_plan(amount_minor=3000)
    plan.status = PlanStatus.PAST_DUE
    db.session.commit()
    sign_in(client, plan.supporter)
    response = client.post(f"/my/plans/{plan.id}/amount", data={"amount": "60"})
    assert response.status_code == 409 and "update your card first" in response.get_data(as_text=True)
    assert fake_stripe.subscription_changes == [] and fresh(plan).amount_minor == 3000


def test_the_cancel_offer_is_recorded_while_another_request_writes(committed_app: Any) -> None:
    """The offer page writes (the offer is shown once) although it is a GET: on SQLite it
    must take the write lock up front, or a webhook writing meanwhile makes it fail
    ("database is locked") instead of waiting its turn."""
    import threading

    app = committed_app
    with app.app_context():
        if _db.engine.dialect.name != "sqlite":
            pytest.skip("PostgreSQL's row locks make the page wait; the lock mode is SQLite's")
        owner = factories.supporter()
        plan = active_plan(owner)
        plan_id = plan.id
        client = app.test_client()
        sign_in(client, owner)
        writer = _db.engine.raw_connection()
    cursor = writer.cursor()
    cursor.execute("BEGIN IMMEDIATE")
    cursor.execute("UPDATE supporter SET city = 'Kraków' WHERE id = ?", (owner.id,))
    releasing = threading.Timer(0.5, writer.commit)
    releasing.start()
    try:
        response = client.get(f"/my/plans/{plan_id}/cancel")
    finally:
        releasing.join()
        writer.close()
    assert response.status_code == 200
    with app.app_context():
        assert _db.session.get(RecurringPlan, plan_id).cancel_offer_shown_at is not None
