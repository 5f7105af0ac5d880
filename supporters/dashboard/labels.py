"""How statuses, kinds, methods, intervals and consent purposes read to staff.

The dashboard words them two ways, each with msgids of its own in the catalogue: the
gift and plan pages in lower case ("paid", "partially refunded", "PLN25.00 yearly"),
a supporter's page capitalised ("Paid", "Partly refunded", "Yearly"). Both live here,
next to each other, so that a new status or method is worded for both at once.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from .. import people
from ..models import GiftKind, GiftMethod, GiftStatus, PlanInterval, PlanStatus

# --- The gift and plan pages -------------------------------------------------------

GIFT_STATUS_LABELS = {
    GiftStatus.PENDING: _l("pending"),
    GiftStatus.SUCCEEDED: _l("paid"),
    GiftStatus.FAILED: _l("failed"),
    GiftStatus.CANCELED: _l("canceled"),
    GiftStatus.PARTIALLY_REFUNDED: _l("partially refunded"),
    GiftStatus.REFUNDED: _l("refunded"),
    GiftStatus.DISPUTED: _l("disputed"),
}
GIFT_KIND_LABELS = {GiftKind.ONE_TIME: _l("one-time"), GiftKind.RECURRING: _l("recurring")}
GIFT_METHOD_LABELS = {
    GiftMethod.STRIPE: _l("card (Stripe)"),
    GiftMethod.BANK_TRANSFER: _l("bank transfer"),
    GiftMethod.CHEQUE: _l("cheque"),
    GiftMethod.CASH: _l("cash"),
}
PLAN_STATUS_LABELS = {
    PlanStatus.INCOMPLETE: _l("incomplete"),
    PlanStatus.ACTIVE: _l("active"),
    PlanStatus.PAST_DUE: _l("past due"),
    PlanStatus.CANCELED: _l("canceled"),
}
PLAN_INTERVAL_LABELS = {PlanInterval.MONTH: _l("monthly"), PlanInterval.YEAR: _l("yearly")}

# --- A supporter's page ------------------------------------------------------------

GIFT_STATUSES = {
    GiftStatus.PENDING: _l("Pending"),
    GiftStatus.SUCCEEDED: _l("Paid"),
    GiftStatus.FAILED: _l("Failed"),
    GiftStatus.CANCELED: _l("Canceled"),
    GiftStatus.PARTIALLY_REFUNDED: _l("Partly refunded"),
    GiftStatus.REFUNDED: _l("Refunded"),
    GiftStatus.DISPUTED: _l("Disputed"),
}
GIFT_KINDS = {GiftKind.ONE_TIME: _l("One-time"), GiftKind.RECURRING: _l("Recurring")}
GIFT_METHODS = {
    GiftMethod.STRIPE: _l("Card (Stripe)"),
    GiftMethod.BANK_TRANSFER: _l("Bank transfer"),
    GiftMethod.CHEQUE: _l("Cheque"),
    GiftMethod.CASH: _l("Cash"),
}
PLAN_STATUSES = {
    PlanStatus.INCOMPLETE: _l("Incomplete"),
    PlanStatus.ACTIVE: _l("Active"),
    PlanStatus.PAST_DUE: _l("Past due"),
    PlanStatus.CANCELED: _l("Canceled"),
}
PLAN_INTERVALS = {PlanInterval.MONTH: _l("Monthly"), PlanInterval.YEAR: _l("Yearly")}
CONSENT_PURPOSES = {people.NEWSLETTER: _l("Newsletter")}
