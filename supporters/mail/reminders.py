"""The e-mails about a plan's renewals: the yearly reminder before it renews, and the two
notices when a renewal could not be paid. Flush, never commit: the mail worker's round
(mail/cli.py) and `flask reminders` commit.

- **Yearly reminder**: RENEWAL_REMINDER_DAYS (7) before each renewal of an active yearly
  plan, with the amount, the date and links to change or cancel it (the plan's page,
  signed in). Once per plan and period: the dedupe key holds the period's end.
- **Renewal failed**: queued by the webhook when a renewal's payment fails and the plan is
  past due (giving/stripe_events.py), with a link to update the card. Once per invoice.
- **Last notice**: from the worker's round, before Stripe gives up on that invoice, while
  the plan is still past due and the invoice unpaid. Stripe retries a failed renewal for
  RENEWAL_RETRY_WINDOW_DAYS (its recommended Smart Retries default: 8 tries within 2
  weeks), then cancels the subscription (or marks it unpaid, as set in Stripe); the
  notice goes RENEWAL_LAST_NOTICE_DAYS (3) before that
  window ends after the first failure, or at once when the newest failure says no retry is
  left (`next_payment_attempt` empty). Once per invoice. None for an invoice paid since,
  nor once the plan is active again or canceled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale, format_date
from flask_babel import lazy_gettext as _l

from supporters.donors.links import manage_url
from supporters.extensions import db
from supporters.lib.money import format_amount
from supporters.mail.language import mail_locale, render_email
from supporters.mail.outbox import queue_once
from supporters.models import (
    Gift,
    GiftStatus,
    OutboxEmail,
    PlanStatus,
    RecurringPlan,
    StripeEvent,
    Supporter,
    utcnow,
)
from supporters.models.recurring import PlanInterval

RENEWAL_REMINDER = "renewal_reminder"
RENEWAL_FAILED = "renewal_failed"
RENEWAL_LAST_NOTICE = "renewal_last_notice"
FAILED_EVENT = "invoice.payment_failed"


@dataclass(frozen=True)
class ReminderReport:
    """What one round queued."""

    reminders: int = 0
    last_notices: int = 0


def plan_path(plan: RecurringPlan, anchor: str = "") -> str:
    """The plan's page in the donor's area (donors/plan_views.py), optionally at an anchor."""
    return f"/my/plans/{plan.id}" + (f"#{anchor}" if anchor else "")


def run_round(now: datetime | None = None) -> ReminderReport:
    """Everything due now: the yearly reminders and the last notices. Flush only."""
    now = now or utcnow()
    return ReminderReport(reminders=queue_renewal_reminders(now), last_notices=queue_last_notices(now))


# --- The yearly reminder ----------------------------------------------------------------


def reminder_key(plan: RecurringPlan, period_end: datetime) -> str:
    return f"renewal-reminder:plan:{plan.id}:{int(period_end.timestamp())}"


def queue_renewal_reminders(now: datetime | None = None) -> int:
    """Queue the reminder of every active yearly plan that renews within RENEWAL_REMINDER_DAYS
    from `now` (and not before now); returns how many were queued."""
    now = now or utcnow()
    days = max(int(current_app.config.get("RENEWAL_REMINDER_DAYS", 7)), 1)
    conditions = [
        RecurringPlan.status == PlanStatus.ACTIVE,
        RecurringPlan.interval == PlanInterval.YEAR,
        RecurringPlan.current_period_end > now,
        RecurringPlan.current_period_end <= now + timedelta(days=days),
        Supporter.anonymised_at.is_(None),
    ]
    # A renewal that falls in a pause is not charged (Stripe voids it): no reminder for it.
    # (paused with no end: until the donor resumes, so no renewal is due either)
    conditions.append(
        sa.or_(RecurringPlan.paused_at.is_(None), RecurringPlan.paused_until <= RecurringPlan.current_period_end)
    )
    plans = db.session.scalars(
        sa.select(RecurringPlan).join(Supporter, Supporter.id == RecurringPlan.supporter_id).where(*conditions)
    ).all()
    queued = 0
    for plan in plans:
        period_end = plan.current_period_end
        assert period_end is not None
        key = reminder_key(plan, period_end)
        if _queued(key):
            continue
        supporter = db.session.get(Supporter, plan.supporter_id)
        assert supporter is not None
        locale = mail_locale(supporter.language)
        with force_locale(locale):
            renews_on = format_date(period_end, format="long")
        subject, text, html = render_email(
            "renewal_reminder",
            locale,
            _l("Your yearly gift to %(org)s renews soon"),
            supporter.name,
            amount=format_amount(plan.amount_minor, plan.currency, locale),
            renews_on=renews_on,
            plan_link=manage_url(supporter, plan_path(plan), locale),
            donor_link=manage_url(supporter, "/my/gifts", locale),
        )
        if queue_once(key, RENEWAL_REMINDER, supporter.email, subject, text, html) is not None:
            queued += 1
    return queued


# --- A renewal that failed --------------------------------------------------------------


def failed_key(invoice_id: str) -> str:
    return f"renewal-failed:invoice:{invoice_id}"


def last_notice_key(invoice_id: str) -> str:
    return f"renewal-failed:invoice:{invoice_id}:last"


def queue_failed_renewal(
    plan: RecurringPlan, invoice_id: str | None, next_attempt: datetime | None
) -> OutboxEmail | None:
    """The first e-mail about a renewal that could not be paid, with the link to update the
    card; once per invoice, and only while the plan is past due (not for a first payment,
    not once canceled). Called by the webhook's `invoice.payment_failed`."""
    if not invoice_id or plan.status is not PlanStatus.PAST_DUE:
        return None
    key = failed_key(invoice_id)
    if _queued(key):
        return None
    supporter = db.session.get(Supporter, plan.supporter_id)
    if supporter is None or supporter.anonymised_at is not None:
        return None
    return _queue_failure_notice(plan, supporter, key, RENEWAL_FAILED, "renewal_failed", next_attempt=next_attempt)


def queue_last_notices(now: datetime | None = None) -> int:
    """The last notice of each past-due plan whose unpaid invoice Stripe is about to stop
    retrying (see the module's text); returns how many were queued."""
    now = now or utcnow()
    window = timedelta(days=max(int(current_app.config.get("RENEWAL_RETRY_WINDOW_DAYS", 14)), 1))
    ahead = timedelta(days=max(int(current_app.config.get("RENEWAL_LAST_NOTICE_DAYS", 3)), 0))
    plans = db.session.scalars(
        sa.select(RecurringPlan)
        .join(Supporter, Supporter.id == RecurringPlan.supporter_id)
        .where(RecurringPlan.status == PlanStatus.PAST_DUE, Supporter.anonymised_at.is_(None))
        .order_by(RecurringPlan.id)
    ).all()
    queued = 0
    for plan in plans:
        failure = _open_failure(plan)
        if failure is None:
            continue
        invoice_id, first_failed_at, next_attempt = failure
        # Only after the first notice, and once.
        if not _queued(failed_key(invoice_id)) or _queued(last_notice_key(invoice_id)):
            continue
        retries_end = first_failed_at + window
        if next_attempt is not None and now < retries_end - ahead:
            continue
        supporter = db.session.get(Supporter, plan.supporter_id)
        assert supporter is not None
        ends = retries_end if next_attempt is not None and retries_end > now else None
        email = _queue_failure_notice(
            plan, supporter, last_notice_key(invoice_id), RENEWAL_LAST_NOTICE, "renewal_last_notice", ends_at=ends
        )
        queued += email is not None
    return queued


def _open_failure(plan: RecurringPlan) -> tuple[str, datetime, datetime | None] | None:
    """The invoice of the plan's newest failed payment, when first it failed and the next
    try Stripe announced; None when there is none, or that invoice was paid since."""
    events = db.session.scalars(
        sa.select(StripeEvent)
        .where(StripeEvent.plan_id == plan.id, StripeEvent.type == FAILED_EVENT)
        .order_by(StripeEvent.received_at.desc(), StripeEvent.id.desc())
        .limit(50)
    ).all()
    # newest first by Stripe's time of the failure (events come in any order)
    events = sorted(events, key=lambda event: (_event_time(event), event.received_at), reverse=True)
    failures = [(event, _invoice_of(event)) for event in events]
    failures = [(event, invoice) for event, invoice in failures if isinstance(invoice.get("id"), str)]
    if not failures:
        return None
    _newest, invoice = failures[0]
    invoice_id = str(invoice["id"])
    paid = db.session.scalar(sa.select(Gift.status).where(Gift.stripe_invoice_id == invoice_id))
    if paid is not None and paid is not GiftStatus.PENDING:
        return None
    times = [_event_time(event) for event, other in failures if other.get("id") == invoice_id]
    return invoice_id, min(times), _timestamp(invoice.get("next_payment_attempt"))


def _invoice_of(event: StripeEvent) -> dict[str, Any]:
    data = event.payload.get("data") if isinstance(event.payload, dict) else None
    invoice = data.get("object") if isinstance(data, dict) else None
    return invoice if isinstance(invoice, dict) else {}


def _event_time(event: StripeEvent) -> datetime:
    created = event.payload.get("created") if isinstance(event.payload, dict) else None
    return _timestamp(created) or event.received_at


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 253402300800:
        return datetime.fromtimestamp(int(value), UTC)
    return None


def _queue_failure_notice(
    plan: RecurringPlan,
    supporter: Supporter,
    key: str,
    kind: str,
    template: str,
    *,
    next_attempt: datetime | None = None,
    ends_at: datetime | None = None,
) -> OutboxEmail | None:
    locale = mail_locale(supporter.language)
    with force_locale(locale):
        next_try = format_date(next_attempt, format="long") if next_attempt else None
        ends_on = format_date(ends_at, format="long") if ends_at else None
    subject = (
        _l("Your gift to %(org)s could not be taken")
        if kind == RENEWAL_FAILED
        else _l("Your regular gift to %(org)s will end unless the card is updated")
    )
    subject_text, text, html = render_email(
        template,
        locale,
        subject,
        supporter.name,
        amount=format_amount(plan.amount_minor, plan.currency, locale),
        yearly=plan.interval == PlanInterval.YEAR,
        next_try=next_try,
        ends_on=ends_on,
        card_link=manage_url(supporter, plan_path(plan, "card"), locale),
        plan_link=manage_url(supporter, plan_path(plan), locale),
        donor_link=manage_url(supporter, "/my/gifts", locale),
    )
    return queue_once(key, kind, supporter.email, subject_text, text, html)


def _queued(key: str) -> bool:
    return db.session.scalar(sa.select(OutboxEmail.id).filter_by(dedupe_key=key)) is not None
