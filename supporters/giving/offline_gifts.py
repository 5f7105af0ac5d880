"""Money that arrived without Stripe (bank transfer, cheque, cash), recorded by staff."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from flask_babel import lazy_gettext as _l

from supporters.extensions import db
from supporters.giving.checkout import gift_by_submission
from supporters.giving.lifecycle import receipt_number
from supporters.giving.totals import refresh_supporter_totals, to_base_currency
from supporters.lib import audit
from supporters.lib.dates import org_today
from supporters.lib.errors import Refused
from supporters.lib.money import MoneyError, minor_unit_exponent
from supporters.mail import receipts
from supporters.models import (
    Gift,
    GiftKind,
    GiftMethod,
    GiftStatus,
    Supporter,
)

#: the ways money arrives without Stripe
OFFLINE_METHODS = (GiftMethod.BANK_TRANSFER, GiftMethod.CHEQUE, GiftMethod.CASH)


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
        raise Refused(_l("This supporter's data was erased; record the gift for a new supporter."))
    method = GiftMethod(method)
    if method not in OFFLINE_METHODS:
        raise Refused(_l("Choose how the money arrived: bank transfer, cheque or cash."), field="method")
    try:
        minor_unit_exponent(currency)
    except MoneyError:
        raise Refused(_l("Choose a currency."), field="currency") from None
    if amount_minor <= 0:
        raise Refused(_l("Enter the amount received."), field="amount")
    if received_on > org_today():
        raise Refused(_l("The date received cannot be in the future."), field="received_on")
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
