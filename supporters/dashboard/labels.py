"""How statuses, kinds, methods, intervals and consent purposes read to staff, on
every dashboard page (`in_templates` puts them in every template's context)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from supporters.models import GiftKind, GiftMethod, GiftStatus, PlanInterval, PlanStatus
from supporters.models.supporter import NEWSLETTER

GIFT_STATUS_LABELS = {
    GiftStatus.PENDING: _l("pending"),
    GiftStatus.SUCCEEDED: _l("paid"),
    GiftStatus.FAILED: _l("failed"),
    GiftStatus.CANCELED: _l("canceled"),
    GiftStatus.PARTIALLY_REFUNDED: _l("partially refunded"),
    GiftStatus.REFUNDED: _l("refunded"),
    GiftStatus.DISPUTED: _l("disputed"),
    GiftStatus.VOIDED: _l("voided"),
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

CONSENT_PURPOSES = {NEWSLETTER: _l("Newsletter")}


def in_templates() -> dict[str, object]:
    """The labels under the names the dashboard's templates use."""
    return {
        "gift_status_labels": GIFT_STATUS_LABELS,
        "gift_kind_labels": GIFT_KIND_LABELS,
        "gift_method_labels": GIFT_METHOD_LABELS,
        "plan_status_labels": PLAN_STATUS_LABELS,
        "plan_interval_labels": PLAN_INTERVAL_LABELS,
        "consent_purposes": CONSENT_PURPOSES,
    }
