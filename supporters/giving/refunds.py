"""Refunds staff make from the dashboard, through Stripe. Functions flush; the caller commits."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from supporters.giving.lifecycle import apply_refund_total, lock
from supporters.lib import audit
from supporters.lib.errors import Refused
from supporters.lib.i18n import current_locale
from supporters.lib.money import format_amount
from supporters.models import (
    Gift,
    GiftMethod,
    GiftStatus,
)
from supporters.payments import PaymentGateway, RefundResult


class RefundAlreadyMade(Refused):
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
def refundable_minor(gift: Gift) -> int:
    """How much of the gift can still be refunded, in its currency's minor units."""
    return gift.amount_minor - gift.refunded_minor if gift.status in REFUNDABLE else 0


def refund_refusal(gift: Gift) -> Refused | None:
    """Why this gift cannot be refunded from the dashboard at all, or None if it can."""
    if gift.method is not GiftMethod.STRIPE or not gift.stripe_payment_intent_id:
        if gift.method is not GiftMethod.STRIPE:
            return Refused(
                _l(
                    "This gift did not come through Stripe. Money given by bank transfer, cheque or cash "
                    "is returned at the bank or in person; nothing can be refunded here."
                )
            )
        return Refused(_l("This gift has no Stripe payment to refund."))
    if gift.status not in REFUNDABLE:
        return Refused(_l("Only a paid gift can be refunded."))
    return None


def check_refund(
    gift: Gift, amount_minor: int, reason: str, note: str = "", *, seen_refunded_minor: int | None = None
) -> None:
    """Raise Refused unless refunding `amount_minor` of `gift` for `reason` is allowed
    now (RefundAlreadyMade when the gift was refunded since the form showed
    `seen_refunded_minor`). Changes nothing."""
    refused = refund_refusal(gift)
    if refused is not None:
        raise refused
    if reason not in REFUND_REASONS:
        raise Refused(_l("Choose a reason for the refund."))
    if reason == "other" and not note.strip():
        raise Refused(_l("Say in a few words why the gift is refunded."))
    if seen_refunded_minor is not None and seen_refunded_minor != gift.refunded_minor:
        raise RefundAlreadyMade(
            _l("This gift was refunded in the meantime: %(refunded)s of it has been refunded so far."),
            duplicate=gift.refunded_minor == seen_refunded_minor + amount_minor,
            refunded=format_amount(gift.refunded_minor, gift.currency, current_locale()),
        )
    if amount_minor <= 0:
        raise Refused(_l("Enter an amount to refund."))
    remaining = refundable_minor(gift)
    if amount_minor > remaining:
        raise Refused(
            _l("At most %(amount)s of this gift can still be refunded."),
            amount=format_amount(remaining, gift.currency, current_locale()),
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

    Refuses (Refused, nothing changed) a gift that is not paid through
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
    audit.record(
        staff_user,
        "gift.refund",
        "gift",
        locked.id,
        amount_minor=amount_minor,
        currency=locked.currency,
        reason=reason,
        note=note.strip()[:500],
        refund_id=result.id,
        refund_status=result.status,
    )
    return result
