"""Money that arrived without Stripe (bank transfer, cheque, cash), recorded by staff."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, time
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import format_date
from flask_babel import lazy_gettext as _l

from supporters.extensions import db
from supporters.giving.currency import convert_gift
from supporters.giving.lifecycle import lock, receipt_number
from supporters.giving.queries import gift_by_submission
from supporters.giving.totals import refresh_supporter_totals
from supporters.lib import audit
from supporters.lib.dates import org_timezone, org_today
from supporters.lib.errors import Refused
from supporters.lib.i18n import current_locale
from supporters.lib.money import MoneyError, format_amount, minor_unit_exponent
from supporters.mail import receipts
from supporters.models import (
    AuditEvent,
    Gift,
    GiftKind,
    GiftMethod,
    GiftStatus,
    Supporter,
    utcnow,
)

#: the ways money arrives without Stripe
OFFLINE_METHODS = (GiftMethod.BANK_TRANSFER, GiftMethod.CHEQUE, GiftMethod.CASH)


class NeedsConfirmation(Refused):
    """The amount is large enough that staff must confirm it is what they meant."""


def paid_at_for(received_on: date) -> datetime:
    """The moment an offline gift counts as paid: noon UTC of the day received."""
    return datetime.combine(received_on, time(12), UTC)


def _units(amount: int, currency: str) -> int:
    return amount * int(10 ** minor_unit_exponent(currency))


def check_amount_and_date(amount_minor: int, currency: str, received_on: date, *, confirmed: bool) -> None:
    """Refuse an offline amount or date no one can have meant, at its field.

    The amount must be more than zero and at most SUPPORTERS_OFFLINE_MAX_GIFT units of its
    currency; above SUPPORTERS_OFFLINE_CONFIRM_ABOVE it needs `confirmed` (NeedsConfirmation
    otherwise: the form then asks). The date must be neither in the future nor before the
    organisation was founded (SUPPORTERS_FOUNDED_ON).
    """
    config = current_app.config
    if amount_minor <= 0:
        raise Refused(_l("Enter the amount received."), field="amount")
    largest = _units(int(config["SUPPORTERS_OFFLINE_MAX_GIFT"]), currency)
    if amount_minor > largest:
        raise Refused(
            _l("This is more than the largest offline gift that can be recorded (%(amount)s): check the amount."),
            field="amount",
            amount=format_amount(largest, currency, current_locale()),
        )
    above = _units(int(config["SUPPORTERS_OFFLINE_CONFIRM_ABOVE"]), currency)
    if amount_minor > above and not confirmed:
        raise NeedsConfirmation(
            _l("This is more than %(amount)s: check the amount, then tick the box to confirm it."),
            field="amount",
            amount=format_amount(above, currency, current_locale()),
        )
    if received_on > org_today():
        raise Refused(_l("The date received cannot be in the future."), field="received_on")
    founded: date = config["SUPPORTERS_FOUNDED_ON"]
    if received_on < founded:
        raise Refused(
            _l("The date received cannot be before the organisation was founded (%(date)s)."),
            field="received_on",
            date=format_date(founded, format="medium"),
        )


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
    confirmed: bool = False,
) -> Gift:
    """Record money that arrived without Stripe (bank transfer, cheque, cash) as a paid gift.

    The gift is paid at noon UTC of `received_on` (never in the future), converted
    to the reporting currency, numbered, counted in the supporter's totals, and
    (with `send_receipt`) its receipt queued. `submission_key` makes a resubmitted
    form return the gift it recorded the first time. An amount above the confirmation
    threshold needs `confirmed` (see `check_amount_and_date`).
    """
    if submission_key:
        existing = gift_by_submission(submission_key)
        if existing is not None:
            return existing
    if supporter.anonymised_at is not None:
        raise Refused(_l("This supporter's data was erased; record the gift for a new supporter."))
    method = GiftMethod(method)
    if method not in OFFLINE_METHODS:
        raise Refused(_l("Choose how the money arrived: bank transfer, cheque or cash."), field="method")
    try:
        minor_unit_exponent(currency)
    except MoneyError:
        raise Refused(_l("Choose a currency."), field="currency") from None
    check_amount_and_date(amount_minor, currency, received_on, confirmed=confirmed)
    gift = Gift(
        supporter_id=supporter.id,
        amount_minor=amount_minor,
        currency=currency,
        status=GiftStatus.SUCCEEDED,
        kind=GiftKind.ONE_TIME,
        method=method,
        campaign_id=campaign_id,
        offline_reference=(reference or "").strip()[:200] or None,
        comment=(comment or "").strip()[:500] or None,
        submission_key=submission_key,
        paid_at=paid_at_for(received_on),
    )
    convert_gift(gift)
    db.session.add(gift)
    db.session.flush()
    gift.receipt_number = receipt_number(gift)
    refresh_supporter_totals(supporter)
    queued = receipts.queue_receipt(gift) if send_receipt else None
    audit.record(
        staff_user,
        "gift.record_offline",
        "gift",
        gift.id,
        supporter_id=supporter.id,
        amount_minor=amount_minor,
        currency=currency,
        method=method.value,
        received_on=received_on.isoformat(),
        reference=gift.offline_reference,
        receipt_queued=queued is not None,
    )
    return gift


# --- Corrections by staff ------------------------------------------------------------


def correction_refusal(gift: Gift) -> Refused | None:
    """Why staff cannot void or correct this gift here; None when they can.

    Only a paid offline gift: a Stripe gift's money is given back through Stripe (a
    refund), and a voided gift stays as it was voided.
    """
    if gift.method not in OFFLINE_METHODS:
        return Refused(
            _l("Only offline gifts can be voided or corrected; a gift paid through Stripe is refunded instead."),
            status=409,
        )
    if gift.status is GiftStatus.VOIDED:
        return Refused(_l("This gift was voided; it can no longer be changed."), status=409)
    if gift.status is not GiftStatus.SUCCEEDED:
        return Refused(_l("Only a paid gift can be voided or corrected."), status=409)
    return None


def receipt_sent(gift: Gift) -> bool:
    """True when the donor was sent (or is about to be sent) this gift's receipt: the
    correction forms then offer to tell them, ticked."""
    return receipts.receipt_was_queued(gift)


def recorded_values(gift: Gift) -> dict[str, Any]:
    """What staff entered for an offline gift, as the audit log keeps it."""
    assert gift.paid_at is not None
    return {
        "amount_minor": gift.amount_minor,
        "currency": gift.currency,
        "received_on": gift.paid_at.astimezone(UTC).date().isoformat(),
        "method": GiftMethod(gift.method).value,
        "reference": gift.offline_reference,
        "receipt_number": gift.receipt_number,
    }


def values_seen(gift: Gift) -> str:
    """A fingerprint of the gift's recorded values: a form shown with it can tell, when
    sent, whether someone else changed the gift in the meantime."""
    text = json.dumps([recorded_values(gift), gift.status.value], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _check_before_change(gift: Gift, reason: str, seen: str | None) -> str:
    refusal = correction_refusal(gift)
    if refusal is not None:
        raise refusal
    if seen is not None and seen != values_seen(gift):
        raise Refused(
            _l("Someone changed this gift while the form was open: check it as it is now, then try again."),
            status=409,
        )
    reason = (reason or "").strip()
    if not reason:
        raise Refused(_l("Say why, for the gift's history."), field="reason")
    return reason[:500]


def void_offline_gift(gift: Gift, *, reason: str, staff_user: Any, notify: bool, seen: str | None = None) -> Gift:
    """Void an offline gift recorded by mistake: it stays on record, with its receipt number
    (never given to another gift), but its money no longer counts anywhere.

    The supporter's totals are recomputed here, the giving totals follow in the same
    flush (models/giving.py) and campaign progress is read from the counted gifts. With
    `notify`, the donor is sent a notice that the receipt is cancelled. Audited with the
    values the gift had; `seen` (from `values_seen`) refuses a form left open while someone
    else changed the gift.
    """
    lock(gift)
    reason = _check_before_change(gift, reason, seen)
    original = recorded_values(gift)
    gift.status = GiftStatus.VOIDED
    gift.voided_at = utcnow()
    gift.void_reason = reason
    refresh_supporter_totals(gift.supporter)
    queued = receipts.queue_cancellation_notice(gift) if notify else None
    audit.record(
        staff_user,
        "gift.void",
        "gift",
        gift.id,
        reason=reason,
        original=original,
        notice_queued=queued is not None,
    )
    return gift


def correct_offline_gift(
    gift: Gift,
    *,
    amount_minor: int,
    received_on: date,
    method: GiftMethod,
    reference: str | None,
    reason: str,
    staff_user: Any,
    notify: bool,
    confirmed: bool = False,
    seen: str | None = None,
) -> Gift:
    """Correct what staff entered for an offline gift: its amount (in its currency), date
    received, method and reference, with a reason.

    The amounts and dates are checked as when it was recorded. A date moved into another
    year takes a number from that year's sequence (the old number is not given again).
    Every total is brought up to date as for a new gift; with `notify` the donor is sent a
    corrected receipt that names the receipt it replaces. Audited with the values before
    and after; `seen` as for `void_offline_gift`.
    """
    lock(gift)
    reason = _check_before_change(gift, reason, seen)
    method = GiftMethod(method)
    if method not in OFFLINE_METHODS:
        raise Refused(_l("Choose how the money arrived: bank transfer, cheque or cash."), field="method")
    check_amount_and_date(amount_minor, gift.currency, received_on, confirmed=confirmed)
    before = recorded_values(gift)
    reference = (reference or "").strip()[:200] or None
    after = {
        "amount_minor": amount_minor,
        "received_on": received_on.isoformat(),
        "method": method.value,
        "reference": reference,
    }
    changed = [name for name, value in after.items() if before[name] != value]
    if not changed:
        raise Refused(_l("Nothing to correct: change the amount, the date, the method or the reference."))
    assert gift.paid_at is not None
    old_year = gift.paid_at.astimezone(org_timezone()).year
    gift.amount_minor = amount_minor
    gift.paid_at = paid_at_for(received_on)
    gift.method = method
    gift.offline_reference = reference
    gift.amount_base_minor = gift.base_rate_table = None  # the old amount's conversion is void
    convert_gift(gift)
    db.session.flush()
    if gift.paid_at.astimezone(org_timezone()).year != old_year:
        gift.receipt_number = receipt_number(gift)
    refresh_supporter_totals(gift.supporter)
    earlier = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(AuditEvent)
        .filter_by(action="gift.correct", target_type="gift", target_id=str(gift.id))
    )
    queued = (
        receipts.queue_corrected_receipt(gift, correction=(earlier or 0) + 1, replaces=before["receipt_number"])
        if notify
        else None
    )
    audit.record(
        staff_user,
        "gift.correct",
        "gift",
        gift.id,
        reason=reason,
        changed=changed,
        original={name: before[name] for name in changed},
        corrected={name: after[name] for name in changed},
        receipt_number=gift.receipt_number,
        replaced_receipt_number=before["receipt_number"] if gift.receipt_number != before["receipt_number"] else None,
        receipt_queued=queued is not None,
    )
    return gift
