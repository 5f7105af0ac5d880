"""Recurring plans: finding a subscription's plan, recording each paid instalment,
and ending a plan on staff's word. Functions flush; the caller commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from supporters.extensions import db
from supporters.giving.currency import convert_gift
from supporters.giving.lifecycle import fill_missing, mark_paid, move_plan
from supporters.lib import audit
from supporters.lib.errors import Refused
from supporters.models import (
    Gift,
    GiftKind,
    GiftMethod,
    GiftStatus,
    PlanStatus,
    RecurringPlan,
)
from supporters.payments import PaymentGateway

# --- Recurring plans ---------------------------------------------------------


def plan_for_subscription(
    subscription_id: str | None, plan_id: int | None, *, link: bool = True
) -> RecurringPlan | None:
    """The plan of a Stripe subscription: by its id, or by the plan id we put in its metadata
    (`plan_id`, as `stripe_events.number` read it).

    Metadata only finds a plan that has no subscription yet (or this one), so an
    abandoned earlier attempt can never touch the plan. A plan found so is linked to
    the subscription, unless `link` is False (the caller links it once the event
    proves to be the plan's own: an invoice for the plan's amount).
    """
    # The row lock makes events about one plan wait for each other (PostgreSQL), so
    # the two events Stripe sends for one invoice cannot both record it.
    if subscription_id:
        plan = db.session.execute(
            select(RecurringPlan)
            .filter_by(stripe_subscription_id=subscription_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
        if plan is not None:
            return plan
    if plan_id is None:
        return None
    plan = db.session.get(RecurringPlan, plan_id, with_for_update=True, populate_existing=True)
    if plan is None or (plan.stripe_subscription_id and plan.stripe_subscription_id != subscription_id):
        return None
    if link:
        fill_missing(plan, stripe_subscription_id=subscription_id)
    return plan


def record_instalment(
    plan: RecurringPlan,
    *,
    invoice_id: str,
    amount_minor: int,
    currency: str,
    paid_at: datetime,
    payment_intent_id: str | None = None,
    charge_id: str | None = None,
    period_end: datetime | None = None,
    renewal: bool = False,
    reported_at: datetime | None = None,
) -> Gift | None:
    """One paid invoice of a plan: the first pays the gift made on the form, each
    later one (`renewal`, or any once the form's gift is paid) records a new
    recurring gift. An invoice is recorded once. `reported_at`: when Stripe reported
    the payment (orders the plan's status, see `lifecycle.move_plan`)."""
    recorded = db.session.execute(select(Gift).filter_by(stripe_invoice_id=invoice_id)).scalar_one_or_none()
    if recorded is not None:
        # Recorded already (its checkout's event, or the invoice's other event): only the
        # ids still missing and an earlier time of payment are taken from this one.
        mark_paid(recorded, paid_at=paid_at, payment_intent_id=payment_intent_id, charge_id=charge_id)
        extend_period(plan, period_end)
        return None
    extend_period(plan, period_end)
    first = (
        None
        if renewal
        else db.session.execute(
            select(Gift)
            .filter_by(recurring_plan_id=plan.id, stripe_invoice_id=None)
            .where(Gift.status.in_([GiftStatus.PENDING, GiftStatus.FAILED, GiftStatus.CANCELED]))
            .order_by(Gift.id)
            .limit(1)
        ).scalar_one_or_none()
    )
    if first is not None:
        mark_paid(
            first,
            paid_at=paid_at,
            invoice_id=invoice_id,
            payment_intent_id=payment_intent_id,
            charge_id=charge_id,
            reported_at=reported_at,
        )
        return first
    previous = db.session.execute(
        select(Gift).filter_by(recurring_plan_id=plan.id).order_by(Gift.id).limit(1)
    ).scalar_one_or_none()
    instalment = Gift(
        supporter_id=plan.supporter_id,
        amount_minor=amount_minor,
        currency=currency,
        kind=GiftKind.RECURRING,
        method=GiftMethod.STRIPE,
        recurring_plan_id=plan.id,
        campaign_id=plan.campaign_id,
        anonymous=previous.anonymous if previous else False,
        # The same amount as the form's gift still holds the fee the donor chose to cover
        # (the receipt shows it apart); a changed amount says nothing about it.
        covers_fee=bool(
            previous and previous.covers_fee and (previous.amount_minor, previous.currency) == (amount_minor, currency)
        ),
        source_article=previous.source_article if previous else None,
        source_variant=previous.source_variant if previous else None,
    )
    convert_gift(instalment)
    db.session.add(instalment)
    db.session.flush()
    mark_paid(
        instalment,
        paid_at=paid_at,
        invoice_id=invoice_id,
        payment_intent_id=payment_intent_id,
        charge_id=charge_id,
        reported_at=reported_at,
    )
    return instalment


def extend_period(plan: RecurringPlan, period_end: datetime | None) -> None:
    """Move the end of the paid-up period forward (never back: events come in any order)."""
    if period_end and (plan.current_period_end is None or period_end > plan.current_period_end):
        plan.current_period_end = period_end


def cancel_plan(plan: RecurringPlan, reason: str, gateway: PaymentGateway, staff_user: Any) -> None:
    """End a recurring plan on staff's word: its Stripe subscription is canceled
    (Stripe then sends customer.subscription.deleted) and the plan is canceled
    here at once, so the webhook finds nothing left to do.

    Refuses (Refused) a plan already canceled and an empty reason. Raises
    PaymentsUnavailable, with nothing changed, when Stripe fails.
    """
    locked = db.session.get(RecurringPlan, plan.id, with_for_update=True, populate_existing=True)
    assert locked is not None
    if locked.status is PlanStatus.CANCELED:
        raise Refused(_l("This recurring plan is already canceled."))
    reason = reason.strip()
    if not reason:
        raise Refused(_l("Say why the plan is canceled."))
    if locked.stripe_subscription_id:
        gateway.cancel_subscription(locked.stripe_subscription_id)
    locked.cancel_reason = reason[:500]
    move_plan(locked, PlanStatus.CANCELED)
    audit.record(
        staff_user, "plan.cancel", "plan", locked.id, reason=reason[:500], subscription_id=locked.stripe_subscription_id
    )
