"""The rules of giving: start a gift, and apply what Stripe says happened to it.

Functions here flush; the caller (a view, the webhook handler, a command) commits
once. Every change of money goes through here, whichever way it arrives.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app, url_for
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from . import mail
from .extensions import db
from .models import (
    GIFT_COUNTED,
    GIFT_TRANSITIONS,
    PLAN_TRANSITIONS,
    AuditEvent,
    Campaign,
    Consent,
    Frequency,
    Gift,
    GiftKind,
    GiftMethod,
    GiftStatus,
    PlanInterval,
    PlanStatus,
    RecurringPlan,
    Supporter,
    normalise_email,
    utcnow,
)
from .money import MoneyError, format_amount, minor_unit_exponent
from .payments import CheckoutRequest, PaymentGateway, RefundResult
from .widget import service as widget_service

log = logging.getLogger(__name__)

INTERVALS = {Frequency.MONTHLY: PlanInterval.MONTH, Frequency.YEARLY: PlanInterval.YEAR}


# --- Limits and fees ---------------------------------------------------------

#: Stripe's smallest charge per currency, in minor units; 50 minor units elsewhere
STRIPE_MINIMUMS = {
    "PLN": 200, "EUR": 50, "USD": 50, "GBP": 30, "CHF": 50, "CZK": 1500, "SEK": 300,
    "NOK": 300, "DKK": 250, "HUF": 17500, "JPY": 50, "CAD": 50, "AUD": 50, "RON": 200,
}


def minimum_gift(currency: str) -> int:
    """The smallest online gift in `currency`, in minor units (Stripe's minimum charge)."""
    return STRIPE_MINIMUMS.get(currency, 50)


def maximum_gift(currency: str) -> int:
    """The largest online gift in `currency`, in minor units (SUPPORTERS_MAX_GIFT units)."""
    from .money import minor_unit_exponent

    return int(current_app.config["SUPPORTERS_MAX_GIFT"]) * 10 ** minor_unit_exponent(currency)


def estimate_fee(amount_minor: int, currency: str) -> int:
    """What to add to `amount_minor` so that, after the estimated processing fee
    (SUPPORTERS_FEE_PERCENT + SUPPORTERS_FEE_FIXED), the full amount arrives."""
    percent = Decimal(current_app.config["SUPPORTERS_FEE_PERCENT"]) / 100
    fixed = current_app.config["SUPPORTERS_FEE_FIXED"].get(currency, 0)
    gross = ((Decimal(amount_minor) + fixed) / (1 - percent)).to_integral_value(rounding="ROUND_CEILING")
    return int(gross) - amount_minor


# --- Starting a gift ---------------------------------------------------------


@dataclass(frozen=True)
class GiftIntent:
    """What a donor asked for on the donation form, already validated."""

    email: str
    name: str
    amount_minor: int
    currency: str
    frequency: Frequency
    submission_id: str
    language: str = "en"
    campaign_id: int | None = None
    country: str | None = None
    address_line1: str | None = None
    address_line2: str | None = None
    postal_code: str | None = None
    city: str | None = None
    anonymous: bool = False
    dedication_kind: str | None = None
    dedication: str | None = None
    comment: str | None = None
    covers_fee: bool = False
    newsletter: bool = False
    newsletter_wording: str = ""
    source_article: str | None = None
    source_url: str | None = None
    source_variant: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None

    def fingerprint(self) -> str:
        """Same form, same answers: same fingerprint. A changed answer makes a new gift."""
        canonical = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()


def gift_by_submission(key: str) -> Gift | None:
    """The gift a form submission already created, if any."""
    return db.session.execute(select(Gift).filter_by(submission_key=key)).scalar_one_or_none()


def find_or_create_supporter(intent: GiftIntent) -> Supporter:
    """The supporter with this e-mail, created if new. Details of a known supporter
    are only filled in where empty: anyone can type an address into the form."""
    email_key = normalise_email(intent.email)
    supporter = db.session.execute(select(Supporter).filter_by(email_normalised=email_key)).scalar_one_or_none()
    if supporter is None:
        try:
            with db.session.begin_nested():
                supporter = Supporter(email=intent.email.strip(), name=intent.name, language=intent.language)
                db.session.add(supporter)
        except IntegrityError:
            # Someone else created the same supporter at this very moment.
            supporter = db.session.execute(select(Supporter).filter_by(email_normalised=email_key)).scalar_one()
    for field in ("country", "address_line1", "address_line2", "postal_code", "city"):
        if getattr(supporter, field) is None and getattr(intent, field):
            setattr(supporter, field, getattr(intent, field))
    return supporter


def start_gift(intent: GiftIntent) -> Gift:
    """Record a pending gift (and, for a monthly or yearly gift, its incomplete plan).

    Idempotent: the same submission returns the gift it created the first time,
    even when copies arrive at the same moment. Must be committed before any
    call to Stripe, so that every Stripe object can point back at the gift.
    """
    key = intent.fingerprint()
    existing = gift_by_submission(key)
    if existing is not None:
        return existing
    supporter = find_or_create_supporter(intent)
    db.session.flush()
    try:
        with db.session.begin_nested():
            plan = None
            if intent.frequency in INTERVALS:
                plan = RecurringPlan(
                    supporter_id=supporter.id, amount_minor=intent.amount_minor, currency=intent.currency,
                    interval=INTERVALS[intent.frequency], campaign_id=intent.campaign_id,
                )
                db.session.add(plan)
                db.session.flush()
            gift = Gift(
                supporter_id=supporter.id,
                amount_minor=intent.amount_minor,
                currency=intent.currency,
                amount_base_minor=to_base_currency(intent.amount_minor, intent.currency),
                kind=GiftKind.RECURRING if plan else GiftKind.ONE_TIME,
                method=GiftMethod.STRIPE,
                recurring_plan_id=plan.id if plan else None,
                campaign_id=intent.campaign_id,
                submission_key=key,
                covers_fee=intent.covers_fee,
                anonymous=intent.anonymous,
                dedication_kind=intent.dedication_kind if intent.dedication else None,
                dedication=intent.dedication,
                comment=intent.comment,
                source_article=intent.source_article,
                source_url=intent.source_url,
                source_variant=intent.source_variant,
                utm_source=intent.utm_source,
                utm_medium=intent.utm_medium,
                utm_campaign=intent.utm_campaign,
            )
            db.session.add(gift)
            db.session.flush()
    except IntegrityError:
        existing = gift_by_submission(key)
        if existing is None:
            raise
        return existing
    if intent.newsletter:
        db.session.add(Consent(supporter_id=supporter.id, purpose="newsletter", granted=True,
                               source="donation form", wording=intent.newsletter_wording))
    db.session.flush()
    return gift


def to_base_currency(amount_minor: int, currency: str) -> int | None:
    """The amount in the reporting currency, by the configured rate; None when there is no rate.

    Conversion is explicit (SUPPORTERS_EXCHANGE_RATES): two currencies are never
    added as if they were one.
    """
    base = current_app.config["SUPPORTERS_BASE_CURRENCY"]
    if currency == base:
        return amount_minor
    rate = current_app.config.get("SUPPORTERS_EXCHANGE_RATES", {}).get(currency)
    if rate is None:
        return None
    from .money import minor_unit_exponent

    shift = Decimal(10) ** (minor_unit_exponent(base) - minor_unit_exponent(currency))
    converted = (Decimal(amount_minor) * Decimal(rate) * shift).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return max(int(converted), 1)


def checkout_request(gift: Gift) -> CheckoutRequest:
    """What the payment gateway needs to open a checkout for `gift`."""
    supporter = db.session.get(Supporter, gift.supporter_id)
    assert supporter is not None
    plan = db.session.get(RecurringPlan, gift.recurring_plan_id) if gift.recurring_plan_id else None
    campaign = db.session.get(Campaign, gift.campaign_id) if gift.campaign_id else None
    org = current_app.config["SUPPORTERS_ORG_NAME"]
    what = {None: "Gift", PlanInterval.MONTH: "Monthly gift", PlanInterval.YEAR: "Yearly gift"}[plan.interval if plan else None]
    description = f"{what} to {org}" + (f" ({campaign.name})" if campaign else "")
    thanks = url_for("donate.thanks", _external=True)
    cancel = url_for("donate.cancelled", _external=True)
    return CheckoutRequest(
        gift_id=gift.id,
        amount_minor=gift.amount_minor,
        currency=gift.currency,
        interval=plan.interval.value if plan else None,
        email=supporter.email,
        name=supporter.name,
        locale=supporter.language,
        description=description[:250],
        # Stripe fills in {CHECKOUT_SESSION_ID}; it must reach Stripe unescaped.
        success_url=f"{thanks}?session_id={{CHECKOUT_SESSION_ID}}",
        cancel_url=f"{cancel}?session_id={{CHECKOUT_SESSION_ID}}",
        customer_id=supporter.stripe_customer_id,
        recurring_plan_id=plan.id if plan else None,
        metadata={"campaign": campaign.slug} if campaign else {},
    )


def begin_checkout(gift: Gift, gateway: PaymentGateway) -> str:
    """The URL where the donor pays for `gift`, opening the checkout once.

    Calling it again (a double click, a retry) returns the same checkout.
    """
    locked = lock(gift)
    if locked.stripe_checkout_session_id and locked.checkout_url:
        return locked.checkout_url
    session = gateway.create_checkout(checkout_request(locked))
    locked.stripe_checkout_session_id = session.id
    locked.checkout_url = session.url
    db.session.flush()
    return session.url


def record_payment_attempt(
    gift: Gift, *, payment_intent_id: str | None, subscription_id: str | None, customer_id: str | None
) -> None:
    """Remember the Stripe objects of the donor's latest attempt to pay (what Checkout
    does inside Stripe): events about an older attempt are then told apart."""
    if payment_intent_id:
        gift.stripe_payment_intent_id = payment_intent_id
    if subscription_id and gift.recurring_plan_id:
        plan = db.session.get(RecurringPlan, gift.recurring_plan_id)
        if plan is not None and plan.status is PlanStatus.INCOMPLETE:
            plan.stripe_subscription_id = subscription_id
    supporter = db.session.get(Supporter, gift.supporter_id)
    if supporter is not None and customer_id:
        supporter.stripe_customer_id = customer_id
    db.session.flush()


def gift_by_checkout_session(session_id: str) -> Gift | None:
    """The gift paid through checkout session `session_id`."""
    if not session_id or len(session_id) > 255 or not session_id.isprintable():
        return None
    return db.session.execute(select(Gift).filter_by(stripe_checkout_session_id=session_id)).scalar_one_or_none()


# --- What happened to a gift ------------------------------------------------


def lock(gift: Gift) -> Gift:
    """Wait for any other transaction changing this gift, then read it as it now is.

    Every status change starts here. Two deliveries about one gift (Stripe sends
    checkout.session.completed and payment_intent.succeeded moments apart; a refund's
    webhook may arrive while staff's refund is still open) then take turns, and the
    second decides on what the first did rather than on what it read before: no
    gift is paid or refunded twice over, and the giving totals add each change
    once. (A row lock on PostgreSQL; SQLite serialises writing transactions anyway.)
    Changes not yet flushed are flushed first, so the reload keeps them.
    """
    db.session.flush()
    locked = db.session.get(Gift, gift.id, with_for_update=True, populate_existing=True)
    assert locked is gift
    return gift


def _can_move(gift: Gift, status: GiftStatus) -> bool:
    return status in GIFT_TRANSITIONS[gift.status]


def _fill(obj: Any, **ids: Any) -> None:
    """Set ids that are still empty; never overwrite one Stripe already gave."""
    for name, value in ids.items():
        if value and not getattr(obj, name):
            setattr(obj, name, value)


def mark_paid(
    gift: Gift,
    *,
    paid_at: datetime | None = None,
    payment_intent_id: str | None = None,
    charge_id: str | None = None,
    invoice_id: str | None = None,
    customer_id: str | None = None,
) -> bool:
    """Record proof of payment. Returns False (changing only missing ids) when the gift
    was already paid: a second "paid" for the same gift is a duplicate, not new money."""
    lock(gift)
    supporter = db.session.get(Supporter, gift.supporter_id)
    assert supporter is not None
    _fill(supporter, stripe_customer_id=customer_id)
    if not _can_move(gift, GiftStatus.SUCCEEDED) or gift.status is GiftStatus.DISPUTED:
        _fill(gift, stripe_payment_intent_id=payment_intent_id, stripe_charge_id=charge_id, stripe_invoice_id=invoice_id)
        db.session.flush()
        return False
    # The attempt that succeeded is the gift's payment, whatever attempt failed before it.
    if payment_intent_id:
        gift.stripe_payment_intent_id = payment_intent_id
    _fill(gift, stripe_charge_id=charge_id, stripe_invoice_id=invoice_id)
    gift.status = GiftStatus.SUCCEEDED
    gift.paid_at = paid_at or utcnow()
    db.session.flush()
    gift.receipt_number = gift.receipt_number or receipt_number(gift)
    if gift.recurring_plan_id:
        plan = db.session.get(RecurringPlan, gift.recurring_plan_id)
        assert plan is not None
        move_plan(plan, PlanStatus.ACTIVE)
        plan.started_at = plan.started_at or gift.paid_at
    refresh_supporter_totals(supporter)
    mail.queue_receipt(gift)
    widget_service.count_gift(gift)
    return True


def mark_failed(gift: Gift, payment_intent_id: str | None = None) -> bool:
    """A payment attempt failed. Ignored when it is not the gift's current attempt,
    or when the gift has already moved on (paid, canceled)."""
    lock(gift)
    if payment_intent_id and gift.stripe_payment_intent_id and gift.stripe_payment_intent_id != payment_intent_id:
        return False
    if gift.status is not GiftStatus.PENDING:
        return False
    _fill(gift, stripe_payment_intent_id=payment_intent_id)
    gift.status = GiftStatus.FAILED
    db.session.flush()
    return True


def mark_canceled(gift: Gift) -> bool:
    """The checkout expired unpaid."""
    lock(gift)
    if gift.status not in (GiftStatus.PENDING, GiftStatus.FAILED):
        return False
    gift.status = GiftStatus.CANCELED
    db.session.flush()
    return True


def apply_refund_total(gift: Gift, refunded_minor: int, at: datetime | None = None) -> bool:
    """Stripe says `refunded_minor` of the gift has been refunded in all.

    Totals only ever grow, so an older event arriving late changes nothing. The
    gift must be paid: callers holding proof of a refunded charge mark it paid first.
    """
    lock(gift)
    refunded_minor = min(refunded_minor, gift.amount_minor)
    if refunded_minor <= gift.refunded_minor:
        return False
    target = GiftStatus.REFUNDED if refunded_minor == gift.amount_minor else GiftStatus.PARTIALLY_REFUNDED
    if not _can_move(gift, target):
        return False
    gift.refunded_minor = refunded_minor
    gift.status = target
    gift.refunded_at = at or utcnow()
    _refresh_for(gift)
    return True


def mark_disputed(gift: Gift) -> bool:
    """The donor's bank disputes the payment: its money no longer counts."""
    lock(gift)
    if not _can_move(gift, GiftStatus.DISPUTED):
        return False
    gift.status = GiftStatus.DISPUTED
    _refresh_for(gift)
    return True


def close_dispute(gift: Gift, won: bool) -> bool:
    """A dispute ended: won, the money counts again; lost, it is gone as if refunded."""
    lock(gift)
    if gift.status is not GiftStatus.DISPUTED:
        return False
    if won:
        gift.status = GiftStatus.PARTIALLY_REFUNDED if gift.refunded_minor else GiftStatus.SUCCEEDED
    else:
        gift.refunded_minor = gift.amount_minor
        gift.status = GiftStatus.REFUNDED
        gift.refunded_at = utcnow()
    _refresh_for(gift)
    return True


def _refresh_for(gift: Gift) -> None:
    db.session.flush()
    supporter = db.session.get(Supporter, gift.supporter_id)
    assert supporter is not None
    refresh_supporter_totals(supporter)


# --- Recurring plans ---------------------------------------------------------


def move_plan(plan: RecurringPlan, status: PlanStatus) -> bool:
    """Move a plan if its transition table allows it; an older event never moves it back."""
    if plan.status is status or status not in PLAN_TRANSITIONS[plan.status]:
        return False
    plan.status = status
    if status is PlanStatus.CANCELED:
        plan.canceled_at = plan.canceled_at or utcnow()
    db.session.flush()
    return True


def plan_for_subscription(subscription_id: str | None, metadata: dict[str, Any] | None) -> RecurringPlan | None:
    """The plan of a Stripe subscription: by its id, or by the plan id we put in its metadata.

    Metadata only finds a plan that has no subscription yet (or this one), so an
    abandoned earlier attempt can never touch the plan.
    """
    # The row lock makes events about one plan wait for each other (PostgreSQL), so
    # the two events Stripe sends for one invoice cannot both record it.
    if subscription_id:
        plan = db.session.execute(
            select(RecurringPlan).filter_by(stripe_subscription_id=subscription_id).with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
        if plan is not None:
            return plan
    plan_id = str((metadata or {}).get("recurring_plan_id", ""))
    if not plan_id.isdigit():
        return None
    plan = db.session.get(RecurringPlan, int(plan_id), with_for_update=True, populate_existing=True)
    if plan is None or (plan.stripe_subscription_id and plan.stripe_subscription_id != subscription_id):
        return None
    _fill(plan, stripe_subscription_id=subscription_id)
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
) -> Gift | None:
    """One paid invoice of a plan: the first pays the gift made on the form, each
    later one (`renewal`, or any once the form's gift is paid) records a new
    recurring gift. An invoice is recorded once."""
    if db.session.execute(select(Gift.id).filter_by(stripe_invoice_id=invoice_id)).first():
        return None
    extend_period(plan, period_end)
    first = None if renewal else db.session.execute(
        select(Gift)
        .filter_by(recurring_plan_id=plan.id, stripe_invoice_id=None)
        .where(Gift.status.in_([GiftStatus.PENDING, GiftStatus.FAILED, GiftStatus.CANCELED]))
        .order_by(Gift.id)
        .limit(1)
    ).scalar_one_or_none()
    if first is not None:
        mark_paid(first, paid_at=paid_at, invoice_id=invoice_id, payment_intent_id=payment_intent_id, charge_id=charge_id)
        return first
    previous = db.session.execute(
        select(Gift).filter_by(recurring_plan_id=plan.id).order_by(Gift.id).limit(1)
    ).scalar_one_or_none()
    instalment = Gift(
        supporter_id=plan.supporter_id,
        amount_minor=amount_minor,
        currency=currency,
        amount_base_minor=to_base_currency(amount_minor, currency),
        kind=GiftKind.RECURRING,
        method=GiftMethod.STRIPE,
        recurring_plan_id=plan.id,
        campaign_id=plan.campaign_id,
        anonymous=previous.anonymous if previous else False,
        source_article=previous.source_article if previous else None,
        source_variant=previous.source_variant if previous else None,
    )
    db.session.add(instalment)
    db.session.flush()
    mark_paid(instalment, paid_at=paid_at, invoice_id=invoice_id, payment_intent_id=payment_intent_id, charge_id=charge_id)
    return instalment


def extend_period(plan: RecurringPlan, period_end: datetime | None) -> None:
    """Move the end of the paid-up period forward (never back: events come in any order)."""
    if period_end and (plan.current_period_end is None or period_end > plan.current_period_end):
        plan.current_period_end = period_end


# --- Totals --------------------------------------------------------------------


def refresh_supporter_totals(supporter: Supporter) -> None:
    """Recompute a supporter's first/last gift dates, gift count and lifetime total.

    Only gifts whose money counts are included; the lifetime total is net of
    refunds, in the reporting currency, and leaves out gifts not yet converted.

    The supporter's row is locked first (PostgreSQL): two of their gifts paid at
    once then recompute in turn, the second seeing the first, instead of the later
    commit writing figures that leave the other gift out.
    """
    db.session.flush()
    db.session.get(Supporter, supporter.id, with_for_update=True, populate_existing=True)
    counted = (Gift.supporter_id == supporter.id) & Gift.status.in_(GIFT_COUNTED)
    net_base = Gift.amount_base_minor * (Gift.amount_minor - Gift.refunded_minor) // Gift.amount_minor
    first, last, count, total = db.session.execute(
        select(
            func.min(Gift.paid_at),
            func.max(Gift.paid_at),
            func.count(Gift.id),
            func.coalesce(func.sum(net_base), 0),
        ).where(counted)
    ).one()
    supporter.first_gift_at = first
    supporter.last_gift_at = last
    supporter.gift_count = count
    supporter.lifetime_total_minor = int(total or 0)
    db.session.flush()


def receipt_number(gift: Gift) -> str:
    """The receipt number of a gift: its year and id, e.g. 2026-000042 (needs a flushed gift)."""
    assert gift.id is not None and gift.paid_at is not None
    return f"{gift.paid_at.year}-{gift.id:06d}"


def utc_from_timestamp(value: Any) -> datetime | None:
    """A Stripe timestamp (seconds) as an aware datetime."""
    if isinstance(value, int | float) and value > 0:
        return datetime.fromtimestamp(int(value), UTC)
    return None


# --- Staff actions: refunds, offline gifts, cancellations ----------------------
#
# These run on a staff member's say-so from the dashboard. Like everything above
# they flush and leave the commit to the caller; each writes its own audit event,
# so the change and its record stand or fall together.


class ActionRefused(ValueError):
    """A staff action the rules do not allow; nothing was changed.

    `template` is the untranslated sentence (marked with `_l`) and `params` its
    values: `message()` translates at the moment it is shown, so a lazy string
    never holds a value.
    """

    def __init__(self, template: Any, **params: Any) -> None:
        self.template = template
        self.params = params
        super().__init__(str(template) % params if params else str(template))

    def message(self) -> str:
        """The reason in the current language."""
        text = str(self.template)
        return text % self.params if self.params else text


class RefundAlreadyMade(ActionRefused):
    """The gift's refunded amount changed since the form was shown: most likely the
    same refund submitted twice. `duplicate` is True when it is exactly that."""

    def __init__(self, template: Any, duplicate: bool, **params: Any) -> None:
        self.duplicate = duplicate
        super().__init__(template, **params)


#: the gift statuses whose money can be (partly) given back
REFUNDABLE = frozenset({GiftStatus.SUCCEEDED, GiftStatus.PARTIALLY_REFUNDED})
#: why a refund is made: Stripe's three reasons, or "other" with staff's own words
REFUND_REASONS = ("requested_by_customer", "duplicate", "fraudulent", "other")
#: the ways money arrives without Stripe
OFFLINE_METHODS = (GiftMethod.BANK_TRANSFER, GiftMethod.CHEQUE, GiftMethod.CASH)


def _audit(staff_user: Any, action: str, target_type: str, target_id: int, **details: Any) -> None:
    """One audit event for `staff_user` (None: the system), flushed with the change."""
    db.session.add(AuditEvent(
        staff_user_id=getattr(staff_user, "id", None),
        actor=getattr(staff_user, "email", None) or "system",
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        details=details,
    ))
    db.session.flush()


def refundable_minor(gift: Gift) -> int:
    """How much of the gift can still be refunded, in its currency's minor units."""
    return gift.amount_minor - gift.refunded_minor if gift.status in REFUNDABLE else 0


def refund_refusal(gift: Gift) -> ActionRefused | None:
    """Why this gift cannot be refunded from the dashboard at all, or None if it can."""
    if gift.method is not GiftMethod.STRIPE or not gift.stripe_payment_intent_id:
        if gift.method is not GiftMethod.STRIPE:
            return ActionRefused(_l(
                "This gift did not come through Stripe. Money given by bank transfer, cheque or cash "
                "is returned at the bank or in person; nothing can be refunded here."
            ))
        return ActionRefused(_l("This gift has no Stripe payment to refund."))
    if gift.status not in REFUNDABLE:
        return ActionRefused(_l("Only a paid gift can be refunded."))
    return None


def check_refund(
    gift: Gift, amount_minor: int, reason: str, note: str = "", *, seen_refunded_minor: int | None = None
) -> None:
    """Raise ActionRefused unless refunding `amount_minor` of `gift` for `reason` is allowed
    now (RefundAlreadyMade when the gift was refunded since the form showed
    `seen_refunded_minor`). Changes nothing."""
    refused = refund_refusal(gift)
    if refused is not None:
        raise refused
    if reason not in REFUND_REASONS:
        raise ActionRefused(_l("Choose a reason for the refund."))
    if reason == "other" and not note.strip():
        raise ActionRefused(_l("Say in a few words why the gift is refunded."))
    if seen_refunded_minor is not None and seen_refunded_minor != gift.refunded_minor:
        raise RefundAlreadyMade(
            _l("This gift was refunded in the meantime: %(refunded)s of it has been refunded so far."),
            duplicate=gift.refunded_minor == seen_refunded_minor + amount_minor,
            refunded=format_amount(gift.refunded_minor, gift.currency, str(get_locale() or "en")),
        )
    if amount_minor <= 0:
        raise ActionRefused(_l("Enter an amount to refund."))
    remaining = refundable_minor(gift)
    if amount_minor > remaining:
        raise ActionRefused(
            _l("At most %(amount)s of this gift can still be refunded."),
            amount=format_amount(remaining, gift.currency, str(get_locale() or "en")),
        )


def refund(
    gift: Gift,
    amount_minor: int,
    reason: str,
    gateway: PaymentGateway,
    staff_user: Any,
    *,
    note: str = "",
    seen_refunded_minor: int | None = None,
) -> RefundResult:
    """Refund `amount_minor` of a paid Stripe gift through the gateway, and record it.

    Refuses (ActionRefused, nothing changed) a gift that is not paid through
    Stripe, an amount that is not positive or more than what remains, and, when
    `seen_refunded_minor` (what the form showed) is given, a gift refunded since:
    RefundAlreadyMade, with `duplicate` set when this very refund was already made.
    The idempotency key names the refunded total this refund leads to, so two
    copies of one request refund once at Stripe. The result is applied with
    apply_refund_total, as the webhook does: the later charge.refunded changes
    nothing. Raises PaymentsUnavailable, with nothing changed, when Stripe fails.
    """
    # The lock makes a second copy of the request wait for the first, then see the refund it made.
    locked = lock(gift)
    check_refund(locked, amount_minor, reason, note, seen_refunded_minor=seen_refunded_minor)
    assert locked.stripe_payment_intent_id is not None
    target_total = locked.refunded_minor + amount_minor
    gateway_reason = note.strip()[:500] if reason == "other" else reason
    result = gateway.refund(
        locked.stripe_payment_intent_id, amount_minor, gateway_reason, f"gift-{locked.id}-refund-{target_total}"
    )
    if result.status not in ("failed", "canceled"):
        apply_refund_total(locked, locked.refunded_minor + result.amount_minor)
    _audit(staff_user, "gift.refund", "gift", locked.id, amount_minor=amount_minor, currency=locked.currency,
           reason=reason, note=note.strip()[:500], refund_id=result.id, refund_status=result.status)
    return result


def find_or_create_supporter_by_email(email: str, name: str, language: str = "en") -> Supporter:
    """The supporter with this e-mail, created with `name` if new (an existing
    supporter's name is left as it is)."""
    email_key = normalise_email(email)
    supporter = db.session.execute(select(Supporter).filter_by(email_normalised=email_key)).scalar_one_or_none()
    if supporter is not None:
        return supporter
    try:
        with db.session.begin_nested():
            supporter = Supporter(email=email.strip(), name=name.strip(), language=language)
            db.session.add(supporter)
    except IntegrityError:
        supporter = db.session.execute(select(Supporter).filter_by(email_normalised=email_key)).scalar_one()
    return supporter


def record_offline_gift(
    supporter: Supporter,
    *,
    amount_minor: int,
    currency: str,
    method: GiftMethod,
    received_on: date,
    staff_user: Any,
    reference: str | None = None,
    campaign_id: int | None = None,
    comment: str | None = None,
    send_receipt: bool = True,
    submission_key: str | None = None,
) -> Gift:
    """Record money that arrived without Stripe (bank transfer, cheque, cash) as a paid gift.

    The gift is paid at noon UTC of `received_on` (never in the future), converted
    to the reporting currency, numbered, counted in the supporter's totals, and
    (with `send_receipt`) its receipt queued. `submission_key` makes a resubmitted
    form return the gift it recorded the first time.
    """
    if submission_key:
        existing = gift_by_submission(submission_key)
        if existing is not None:
            return existing
    if supporter.anonymised_at is not None:
        raise ActionRefused(_l("This supporter's data was erased; record the gift for a new supporter."))
    method = GiftMethod(method)
    if method not in OFFLINE_METHODS:
        raise ActionRefused(_l("Choose how the money arrived: bank transfer, cheque or cash."))
    try:
        minor_unit_exponent(currency)
    except MoneyError:
        raise ActionRefused(_l("Choose a currency.")) from None
    if amount_minor <= 0:
        raise ActionRefused(_l("Enter the amount received."))
    if received_on > org_today():
        raise ActionRefused(_l("The date received cannot be in the future."))
    gift = Gift(
        supporter_id=supporter.id,
        amount_minor=amount_minor,
        currency=currency,
        amount_base_minor=to_base_currency(amount_minor, currency),
        status=GiftStatus.SUCCEEDED,
        kind=GiftKind.ONE_TIME,
        method=method,
        campaign_id=campaign_id,
        offline_reference=(reference or "").strip()[:200] or None,
        comment=(comment or "").strip()[:500] or None,
        submission_key=submission_key,
        paid_at=datetime.combine(received_on, time(12), UTC),
    )
    db.session.add(gift)
    db.session.flush()
    gift.receipt_number = receipt_number(gift)
    refresh_supporter_totals(supporter)
    queued = mail.queue_receipt(gift) if send_receipt else None
    _audit(staff_user, "gift.record_offline", "gift", gift.id, supporter_id=supporter.id, amount_minor=amount_minor,
           currency=currency, method=method.value, received_on=received_on.isoformat(),
           reference=gift.offline_reference, receipt_queued=queued is not None)
    return gift


def org_today() -> date:
    """Today's date where the organisation is (SUPPORTERS_TIMEZONE)."""
    return datetime.now(ZoneInfo(current_app.config.get("BABEL_DEFAULT_TIMEZONE") or "UTC")).date()


def cancel_plan(plan: RecurringPlan, reason: str, gateway: PaymentGateway, staff_user: Any) -> None:
    """End a recurring plan on staff's word: its Stripe subscription is canceled
    (Stripe then sends customer.subscription.deleted) and the plan is canceled
    here at once, so the webhook finds nothing left to do.

    Refuses (ActionRefused) a plan already canceled and an empty reason. Raises
    PaymentsUnavailable, with nothing changed, when Stripe fails.
    """
    locked = db.session.get(RecurringPlan, plan.id, with_for_update=True, populate_existing=True)
    assert locked is not None
    if locked.status is PlanStatus.CANCELED:
        raise ActionRefused(_l("This recurring plan is already canceled."))
    reason = reason.strip()
    if not reason:
        raise ActionRefused(_l("Say why the plan is canceled."))
    if locked.stripe_subscription_id:
        gateway.cancel_subscription(locked.stripe_subscription_id)
    locked.cancel_reason = reason[:500]
    move_plan(locked, PlanStatus.CANCELED)
    _audit(staff_user, "plan.cancel", "plan", locked.id, reason=reason[:500],
           subscription_id=locked.stripe_subscription_id)
