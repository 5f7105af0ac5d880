"""The e-mails about a plan's renewals: the yearly reminder 7 days before, and the two
notices of a renewal that could not be paid (mail/reminders.py).

The reminder goes once per plan and period, for active yearly plans only. The first
failure notice goes with the webhook's invoice.payment_failed, once per invoice, with a
link to update the card; the last one from the worker's round before Stripe's retries end,
once; neither once the plan is paid up again or canceled.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from sqlalchemy import select

from supporters.donors import links
from supporters.extensions import db as _db
from supporters.mail import reminders
from supporters.mail.cli import reminders_cli, worker_cli
from supporters.mail.outbox import build_message
from supporters.models import GiftKind, OutboxEmail, PlanStatus, RecurringPlan, Supporter, utcnow
from supporters.payments import gateway
from tests import factories
from tests import stripe_events as se

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def emails(kind: str) -> list[OutboxEmail]:
    return list(_db.session.scalars(select(OutboxEmail).filter_by(kind=kind).order_by(OutboxEmail.id)))


def link_target(body: str, lang: str = "en") -> str:
    """The target of the signed donor link in an e-mail's plain text (the first one)."""
    found = re.search(r"https?://\S+/my/open/([^\s?]+)\?lang=(\w+)", body)
    assert found, body
    assert found.group(2) == lang
    return links.read_token(found.group(1)).target


def yearly_plan(renews_in: timedelta | None, **fields: Any) -> RecurringPlan:
    owner = fields.pop("owner", None) or factories.supporter(name="Ada Lovelace")
    values: dict[str, Any] = {"interval": "year", "amount_minor": 24000}
    values.update(fields)
    status = values.pop("status", PlanStatus.ACTIVE)
    plan = factories.plan(owner, **values)
    if status is not PlanStatus.INCOMPLETE:
        plan.status = status
    plan.current_period_end = NOW + renews_in if renews_in is not None else None
    _db.session.flush()
    return plan


# --- The yearly reminder ---------------------------------------------------------------


def test_a_yearly_plan_gets_its_reminder_7_days_before_it_renews_and_only_once(db: Any) -> None:
    plan = yearly_plan(timedelta(days=7))

    assert reminders.run_round(NOW).reminders == 1
    assert reminders.run_round(NOW + timedelta(hours=1)).reminders == 0
    assert reminders.run_round(NOW + timedelta(days=3)).reminders == 0

    [email] = emails(reminders.RENEWAL_REMINDER)
    supporter = _db.session.get(Supporter, plan.supporter_id)
    assert supporter is not None and email.to_address == supporter.email
    assert "240.00" in email.body_text or "240,00" in email.body_text
    assert "December 8, 2026" in email.body_text
    assert link_target(email.body_text) == f"/my/plans/{plan.id}"
    assert email.dedupe_key == f"renewal-reminder:plan:{plan.id}:{int((NOW + timedelta(days=7)).timestamp())}"
    assert "/privacy" in email.body_text and "Dear Ada Lovelace" in email.body_text


def test_the_reminder_waits_until_7_days_before(db: Any) -> None:
    yearly_plan(timedelta(days=7, minutes=1))
    assert reminders.run_round(NOW).reminders == 0
    assert reminders.run_round(NOW + timedelta(minutes=2)).reminders == 1


def test_the_next_period_gets_its_own_reminder(db: Any) -> None:
    plan = yearly_plan(timedelta(days=5))
    reminders.run_round(NOW)
    plan.current_period_end = NOW + timedelta(days=365 + 5)
    _db.session.flush()

    assert reminders.run_round(NOW + timedelta(days=365)).reminders == 1
    assert len(emails(reminders.RENEWAL_REMINDER)) == 2


@pytest.mark.parametrize(
    "fields",
    [
        {"interval": "month"},
        {"status": PlanStatus.CANCELED},
        {"status": PlanStatus.PAST_DUE},
        {"status": PlanStatus.INCOMPLETE},
    ],
    ids=["monthly", "canceled", "past-due", "incomplete"],
)
def test_no_reminder_for_a_plan_that_is_not_an_active_yearly_one(db: Any, fields: dict[str, Any]) -> None:
    yearly_plan(timedelta(days=3), **fields)
    assert reminders.run_round(NOW).reminders == 0
    assert emails(reminders.RENEWAL_REMINDER) == []


def test_no_reminder_after_the_renewal_date_nor_without_one_nor_for_an_erased_donor(db: Any) -> None:
    yearly_plan(timedelta(days=-1))
    yearly_plan(None)
    yearly_plan(timedelta(days=2), owner=factories.supporter(anonymised_at=NOW))
    assert reminders.run_round(NOW).reminders == 0


def test_a_renewal_that_falls_in_a_pause_gets_no_reminder_one_after_it_does(db: Any) -> None:
    """A pause voids the renewals inside it (Stripe's pause_collection "void")."""
    paused_over = yearly_plan(timedelta(days=5), paused_at=NOW, paused_until=NOW + timedelta(days=40))
    paused_before = yearly_plan(timedelta(days=5), paused_at=NOW, paused_until=NOW + timedelta(days=2))
    assert reminders.run_round(NOW).reminders == 1
    (sent,) = emails(reminders.RENEWAL_REMINDER)
    assert link_target(sent.body_text) == f"/my/plans/{paused_before.id}"
    assert paused_over.id != paused_before.id


def test_the_reminder_is_written_in_the_donors_language(db: Any) -> None:
    plan = yearly_plan(timedelta(days=6), owner=factories.supporter(language="pl"))
    reminders.run_round(NOW)
    [email] = emails(reminders.RENEWAL_REMINDER)
    assert link_target(email.body_text, lang="pl") == f"/my/plans/{plan.id}"
    assert "grudnia 2026" in email.body_text  # the date in Polish
    assert "lang=pl" in email.body_html  # type: ignore[operator]


def test_the_worker_and_the_command_queue_the_reminders(app: Flask, db: Any, cli: Any) -> None:
    yearly_plan(timedelta(days=7) + (utcnow() - NOW))  # 7 days from the real now
    result = cli.invoke(reminders_cli)
    assert result.exit_code == 0 and "Queued 1 renewal reminder(s)" in result.output
    assert len(emails(reminders.RENEWAL_REMINDER)) == 1
    assert cli.invoke(worker_cli, ["--once"]).exit_code == 0
    assert len(emails(reminders.RENEWAL_REMINDER)) == 1  # the worker's round finds it queued


# --- A renewal that failed -------------------------------------------------------------


@pytest.fixture
def deliver(client: Any, app: Flask, db: Any) -> Any:
    secret = gateway().webhook_secret

    def _deliver(evt: dict[str, Any]) -> dict[str, Any]:
        response = se.post_event(client, evt, secret)
        assert response.status_code == 200, response.get_data(as_text=True)
        reply: dict[str, Any] = response.get_json()
        return reply

    return _deliver


def active_monthly_plan(language: str = "en") -> RecurringPlan:
    """An active monthly plan of 30.00 PLN (subscription sub_r) whose first gift is paid."""
    owner = factories.supporter(name="Ada Lovelace", language=language)
    plan = factories.plan(owner, amount_minor=3000, stripe_subscription_id="sub_r")
    factories.paid_gift(
        owner,
        amount_minor=3000,
        amount_base_minor=3000,
        kind=GiftKind.RECURRING,
        recurring_plan_id=plan.id,
        stripe_invoice_id="in_r1",
        receipt_number="2026-990001",
    )
    plan.status = PlanStatus.ACTIVE
    _db.session.commit()
    return plan


def failed_invoice(plan: RecurringPlan, invoice_id: str, *, attempt: int, next_attempt: int | None) -> dict[str, Any]:
    invoice = se.invoice("sub_r", 3000, "pln", invoice_id, se.gift_metadata(None, plan.id), status="open")
    invoice["attempt_count"] = attempt
    invoice["next_payment_attempt"] = next_attempt
    return invoice


FIRST_FAILURE = int(NOW.timestamp())
DAY = 24 * 3600


def fail(deliver: Any, plan: RecurringPlan, *, attempt: int = 1, at: int = FIRST_FAILURE, retry: int | None = 0) -> Any:
    next_attempt = at + 3 * DAY if retry == 0 else retry
    invoice = failed_invoice(plan, "in_r2", attempt=attempt, next_attempt=next_attempt)
    return deliver(se.event("invoice.payment_failed", invoice, created=at))


def test_a_failed_renewal_emails_the_card_link_once_per_invoice(deliver: Any, db: Any) -> None:
    plan = active_monthly_plan()

    fail(deliver, plan)
    fail(deliver, plan, attempt=2, at=FIRST_FAILURE + 3 * DAY)  # Stripe's retry fails too

    _db.session.expire_all()
    assert _db.session.get(RecurringPlan, plan.id).status is PlanStatus.PAST_DUE  # type: ignore[union-attr]
    [email] = emails(reminders.RENEWAL_FAILED)
    assert email.dedupe_key == "renewal-failed:invoice:in_r2"
    assert link_target(email.body_text) == f"/my/plans/{plan.id}#card"
    assert "30.00" in email.body_text and "December 4, 2026" in email.body_text  # the next try
    message = build_message(email)
    assert message["Reply-To"] and message["List-Unsubscribe"] is None


def test_the_last_notice_goes_before_the_retries_end_once(deliver: Any, db: Any) -> None:
    plan = active_monthly_plan()
    fail(deliver, plan)
    fail(deliver, plan, attempt=2, at=FIRST_FAILURE + 3 * DAY)

    # Stripe's default window is 14 days; the notice goes 3 days before it ends
    assert reminders.run_round(NOW + timedelta(days=10, hours=23)).last_notices == 0
    assert reminders.run_round(NOW + timedelta(days=11)).last_notices == 1
    assert reminders.run_round(NOW + timedelta(days=12)).last_notices == 0

    [email] = emails(reminders.RENEWAL_LAST_NOTICE)
    assert email.dedupe_key == "renewal-failed:invoice:in_r2:last"
    assert link_target(email.body_text) == f"/my/plans/{plan.id}#card"
    assert "December 15, 2026" in email.body_text  # when the retries end
    assert len(emails(reminders.RENEWAL_FAILED)) == 1


def test_the_window_is_a_setting(deliver: Any, app: Flask, db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "RENEWAL_RETRY_WINDOW_DAYS", 7)
    plan = active_monthly_plan()
    fail(deliver, plan)
    assert reminders.run_round(NOW + timedelta(days=3, hours=23)).last_notices == 0
    assert reminders.run_round(NOW + timedelta(days=4)).last_notices == 1


def test_when_stripe_will_try_no_more_the_last_notice_goes_at_once(deliver: Any, db: Any) -> None:
    plan = active_monthly_plan()
    fail(deliver, plan)
    fail(deliver, plan, attempt=4, at=FIRST_FAILURE + 5 * DAY, retry=None)

    assert reminders.run_round(NOW + timedelta(days=5, hours=1)).last_notices == 1
    [email] = emails(reminders.RENEWAL_LAST_NOTICE)
    assert "will not try again" in email.body_text


def test_no_last_notice_once_the_renewal_is_paid(deliver: Any, db: Any) -> None:
    plan = active_monthly_plan()
    fail(deliver, plan)
    paid = se.invoice("sub_r", 3000, "pln", "in_r2", se.gift_metadata(None, plan.id), paid_at=FIRST_FAILURE + DAY)
    deliver(se.event("invoice.paid", paid, created=FIRST_FAILURE + DAY))
    deliver(se.event("customer.subscription.updated", se.subscription("sub_r", "active"), created=FIRST_FAILURE + DAY))

    _db.session.expire_all()
    assert _db.session.get(RecurringPlan, plan.id).status is PlanStatus.ACTIVE  # type: ignore[union-attr]
    assert reminders.run_round(NOW + timedelta(days=13)).last_notices == 0
    assert emails(reminders.RENEWAL_LAST_NOTICE) == []


def test_no_last_notice_once_the_plan_is_canceled(deliver: Any, db: Any) -> None:
    plan = active_monthly_plan()
    fail(deliver, plan)
    deliver(se.event("customer.subscription.deleted", se.subscription("sub_r", "canceled"), created=FIRST_FAILURE))

    assert reminders.run_round(NOW + timedelta(days=13)).last_notices == 0
    fail(deliver, plan, attempt=2, at=FIRST_FAILURE + DAY)  # a late failure of a canceled plan
    assert len(emails(reminders.RENEWAL_FAILED)) == 1


def test_a_failure_for_an_invoice_paid_since_sends_nothing(deliver: Any, db: Any) -> None:
    plan = active_monthly_plan()
    paid = se.invoice("sub_r", 3000, "pln", "in_r2", se.gift_metadata(None, plan.id), paid_at=FIRST_FAILURE + DAY)
    deliver(se.event("invoice.paid", paid, created=FIRST_FAILURE + DAY))
    fail(deliver, plan)  # arrives late
    assert emails(reminders.RENEWAL_FAILED) == []
    assert reminders.run_round(NOW + timedelta(days=13)).last_notices == 0


def test_a_first_payment_that_fails_is_no_failed_renewal(deliver: Any, db: Any) -> None:
    owner = factories.supporter()
    plan = factories.plan(owner, amount_minor=3000, stripe_subscription_id="sub_first")
    factories.gift(owner, amount_minor=3000, kind=GiftKind.RECURRING, recurring_plan_id=plan.id)
    _db.session.commit()
    invoice = se.invoice(
        "sub_first", 3000, "pln", "in_first", se.gift_metadata(None, plan.id), "subscription_create", status="open"
    )
    deliver(se.event("invoice.payment_failed", invoice))
    assert emails(reminders.RENEWAL_FAILED) == []


def test_the_failure_notices_are_in_the_donors_language(deliver: Any, db: Any) -> None:
    plan = active_monthly_plan(language="pl")
    fail(deliver, plan)
    reminders.run_round(NOW + timedelta(days=11))
    for kind in (reminders.RENEWAL_FAILED, reminders.RENEWAL_LAST_NOTICE):
        [email] = emails(kind)
        assert link_target(email.body_text, lang="pl") == f"/my/plans/{plan.id}#card"
        assert "grudnia 2026" in email.body_text
        privacy = re.search(r"https?://\S+/privacy\S*", email.body_text)
        assert privacy and parse_qs(urlsplit(privacy.group(0)).query)["lang"] == ["pl"]


def test_failures_delivered_out_of_order_are_read_by_stripes_time(deliver: Any, db: Any) -> None:
    plan = active_monthly_plan()
    fail(deliver, plan, attempt=4, at=FIRST_FAILURE + 5 * DAY, retry=None)  # the last try, delivered first
    fail(deliver, plan)  # the first failure, delivered late

    assert reminders.run_round(NOW + timedelta(days=5, hours=1)).last_notices == 1
    assert len(emails(reminders.RENEWAL_FAILED)) == 1


def test_a_plan_paused_until_resumed_gets_no_reminder(db: Any) -> None:
    """Paused at Stripe with no end (resumes only when the donor or staff resume it)."""
    plan = yearly_plan(timedelta(days=5))
    plan.paused_at, plan.paused_until = NOW - timedelta(days=10), None
    _db.session.flush()
    assert reminders.run_round(NOW).reminders == 0
