"""Starting a gift: what the donation form asked for, the pending gift and its plan,
and the checkout where the donor pays. Functions flush; the caller commits."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from supporters.extensions import db
from supporters.giving import transfer_details, transfers
from supporters.giving.currency import convert_gift
from supporters.giving.fees import estimate_fee as estimate_fee  # the form adds it (giving/views.py)
from supporters.giving.lifecycle import lock
from supporters.giving.queries import gift_by_submission
from supporters.lib.money import minor_unit_exponent
from supporters.lib.web import public_url
from supporters.mail import pledges
from supporters.models import (
    Frequency,
    Gift,
    GiftKind,
    GiftMethod,
    PlanInterval,
    PlanStatus,
    RecurringPlan,
)
from supporters.payments import CheckoutRequest, PaymentGateway, methods
from supporters.people import consent
from supporters.people.edits import ADDRESS_FIELDS, find_or_create_supporter

INTERVALS = {Frequency.MONTHLY: PlanInterval.MONTH, Frequency.YEARLY: PlanInterval.YEAR}

# --- Limits and fees ---------------------------------------------------------

#: Stripe's smallest charge per currency, in minor units; 50 minor units elsewhere
STRIPE_MINIMUMS = {
    "PLN": 200,
    "EUR": 50,
    "USD": 50,
    "GBP": 30,
    "CHF": 50,
    "CZK": 1500,
    "SEK": 300,
    "NOK": 300,
    "DKK": 250,
    "HUF": 17500,
    "JPY": 50,
    "CAD": 50,
    "AUD": 50,
    "RON": 200,
}


def minimum_gift(currency: str) -> int:
    """The smallest online gift in `currency`, in minor units (Stripe's minimum charge)."""
    return STRIPE_MINIMUMS.get(currency, 50)


def maximum_gift(currency: str) -> int:
    """The largest online gift in `currency`, in minor units (SUPPORTERS_MAX_GIFT units)."""

    return int(current_app.config["SUPPORTERS_MAX_GIFT"]) * int(10 ** minor_unit_exponent(currency))


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
    #: how the donor pays: through Stripe, or by a bank transfer of their own (a pledge)
    method: GiftMethod = GiftMethod.STRIPE

    def fingerprint(self) -> str:
        """Same form, same answers: same fingerprint. A changed answer makes a new gift."""
        canonical = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()


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
    supporter = find_or_create_supporter(
        intent.email,
        intent.name,
        intent.language,
        details={field: getattr(intent, field) for field in ADDRESS_FIELDS},
    )
    db.session.flush()
    try:
        with db.session.begin_nested():
            plan = None
            if intent.frequency in INTERVALS:
                plan = RecurringPlan(
                    supporter_id=supporter.id,
                    amount_minor=intent.amount_minor,
                    currency=intent.currency,
                    interval=INTERVALS[intent.frequency],
                    campaign_id=intent.campaign_id,
                )
                db.session.add(plan)
                db.session.flush()
            gift = Gift(
                supporter_id=supporter.id,
                amount_minor=intent.amount_minor,
                currency=intent.currency,
                kind=GiftKind.RECURRING if plan else GiftKind.ONE_TIME,
                method=intent.method,
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
            convert_gift(gift)
            db.session.add(gift)
            db.session.flush()
    except IntegrityError:
        existing = gift_by_submission(key)
        if existing is None:
            raise
        return existing
    if intent.method is GiftMethod.BANK_TRANSFER:
        transfers.assign_reference(gift)
        pledges.queue_instructions(gift, transfer_details.page_url(gift))
    if intent.newsletter:
        # A request, not a consent: the address confirms it once the gift is paid (people/consent.py).
        consent.request_newsletter(supporter, wording=intent.newsletter_wording, source="donation form", gift=gift)
    db.session.flush()
    return gift


def checkout_request(gift: Gift) -> CheckoutRequest:
    """What the payment gateway needs to open a checkout for `gift`."""
    supporter = gift.supporter
    plan = gift.recurring_plan
    campaign = gift.campaign
    org = current_app.config["SUPPORTERS_ORG_NAME"]
    what = {None: "Gift", PlanInterval.MONTH: "Monthly gift", PlanInterval.YEAR: "Yearly gift"}[
        plan.interval if plan else None
    ]
    description = f"{what} to {org}" + (f" ({campaign.name})" if campaign else "")
    thanks = public_url("donate.thanks")
    cancel = public_url("donate.cancelled")
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
        payment_methods=methods.for_gift(
            current_app.config["SUPPORTERS_PAYMENT_METHODS"],
            gift.currency,
            plan.interval.value if plan else None,
            gift.amount_minor,
            blik_recurring=current_app.config["SUPPORTERS_BLIK_RECURRING"],
        ),
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
    plan = gift.recurring_plan
    if subscription_id and plan is not None and plan.status is PlanStatus.INCOMPLETE:
        plan.stripe_subscription_id = subscription_id
    if customer_id:
        gift.supporter.stripe_customer_id = customer_id
    db.session.flush()


def gift_by_checkout_session(session_id: str) -> Gift | None:
    """The gift paid through checkout session `session_id`."""
    if not session_id or len(session_id) > 255 or not session_id.isprintable():
        return None
    return db.session.execute(select(Gift).filter_by(stripe_checkout_session_id=session_id)).scalar_one_or_none()
