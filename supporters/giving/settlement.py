"""What reached the account: each Stripe gift's fee and net, from its balance transaction.

Stripe's events say that a payment succeeded, not what it cost: the fee, the net and,
for a gift in another currency, the amount in the account's currency are on the
charge's balance transaction, which only an API call returns. Asking from the
webhook would hold Stripe's delivery, and the gift's row lock, for a network round
trip; so the worker asks soon after the payment (`settle_due`, every minute; see
mail/cli.py) and `flask stripe reconcile` fills in whatever is still missing.

A charge that is not settled yet (a SEPA debit takes days) has no balance
transaction: the gift is asked about again after RECHECK_AFTER. Recording the
balance converts the gift (giving/currency.py), so its totals move in the same flush.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from supporters.extensions import db
from supporters.giving.currency import convert_gift
from supporters.giving.lifecycle import lock
from supporters.giving.totals import refresh_supporter_totals
from supporters.models import GIFT_PAID, Gift, GiftMethod, utcnow
from supporters.payments import Balance, PaymentsUnavailable, gateway

#: how long to wait before asking again about a charge Stripe had not settled
RECHECK_AFTER = timedelta(minutes=10)
#: how far back the worker looks for gifts without a balance (reconcile takes its own --since)
LOOK_BACK = timedelta(days=30)


@dataclass
class SettleReport:
    settled: int = 0
    #: charges Stripe has not settled yet (asked again later)
    waiting: int = 0
    #: why Stripe could not be asked (the run stopped there), or None
    error: str | None = None


def without_balance(since: datetime, now: datetime | None = None, *, due_only: bool = True) -> sa.Select[int]:
    """Ids of Stripe gifts paid since `since` whose balance transaction we do not have,
    oldest first; with `due_only`, leaving out those asked about in the last RECHECK_AFTER."""
    now = now or utcnow()
    query = sa.select(Gift.id).where(
        Gift.method == GiftMethod.STRIPE,
        Gift.status.in_(GIFT_PAID),
        Gift.stripe_balance_transaction_id.is_(None),
        Gift.stripe_payment_intent_id.is_not(None),
        Gift.paid_at >= since,
    )
    if due_only:
        query = query.where(sa.or_(Gift.balance_checked_at.is_(None), Gift.balance_checked_at < now - RECHECK_AFTER))
    return query.order_by(Gift.paid_at, Gift.id)


def record_balance(gift: Gift, balance: Balance) -> bool:
    """Keep the charge's fee, net and account currency on the gift and convert it; False
    when this balance transaction was recorded already."""
    lock(gift)
    if gift.stripe_balance_transaction_id == balance.id:
        return False
    before = gift.amount_base_minor
    gift.stripe_balance_transaction_id = balance.id
    gift.fee_minor = balance.fee_minor
    gift.net_minor = balance.net_minor
    gift.balance_currency = balance.currency
    gift.balance_checked_at = utcnow()
    convert_gift(gift)
    db.session.flush()
    if gift.amount_base_minor != before:
        refresh_supporter_totals(gift.supporter)
    return True


def settle(gift_id: int, now: datetime | None = None) -> bool | None:
    """Ask Stripe for one gift's balance transaction and record it: True when recorded,
    False when already known, None when Stripe has not settled the charge yet.

    Stripe is asked before the gift's row is locked, so no lock waits on the network.
    Raises PaymentsUnavailable when Stripe cannot be asked."""
    gift = db.session.get(Gift, gift_id)
    if gift is None or gift.stripe_payment_intent_id is None:
        return False
    balance = gateway().balance_of_payment(gift.stripe_payment_intent_id)
    if balance is None:
        gift.balance_checked_at = now or utcnow()
        db.session.flush()
        return None
    return record_balance(gift, balance)


def settle_due(
    now: datetime | None = None,
    *,
    since: datetime | None = None,
    limit: int = 50,
    due_only: bool = True,
    after_each: Callable[[], None] | None = None,
) -> SettleReport:
    """Settle up to `limit` gifts without their balance (paid since `since`, by default
    LOOK_BACK ago; with `due_only`, not those asked about lately), stopping at the first
    failure to reach Stripe. The worker passes
    `after_each=db.session.commit`, so each gift is committed on its own and a slow
    answer from Stripe never holds another gift's row."""
    now = now or utcnow()
    report = SettleReport()
    ids = db.session.scalars(without_balance(since or now - LOOK_BACK, now, due_only=due_only).limit(limit)).all()
    for gift_id in ids:
        try:
            outcome = settle(gift_id, now)
        except PaymentsUnavailable as exc:
            report.error = str(exc)
            break
        if outcome is None:
            report.waiting += 1
        elif outcome:
            report.settled += 1
        if after_each is not None:
            after_each()
    return report
