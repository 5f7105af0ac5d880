"""What happens to a gift and a plan: paid, failed, canceled, refunded, disputed.

Every status change goes through here, whichever way it arrives (a webhook, a
staff action, reconcile), and through the transition tables. Functions flush;
the caller commits once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from supporters.extensions import db
from supporters.giving.totals import refresh_supporter_totals
from supporters.lib.dates import org_timezone
from supporters.mail import newsletter, receipts
from supporters.models import (
    GIFT_PAID,
    GIFT_TRANSITIONS,
    PLAN_TRANSITIONS,
    Gift,
    GiftStatus,
    PlanStatus,
    ReceiptSequence,
    RecurringPlan,
    utcnow,
)
from supporters.widget import service as widget_service

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


def fill_missing(obj: Any, **ids: Any) -> None:
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
    reported_at: datetime | None = None,
) -> bool:
    """Record proof of payment. Returns False (changing only missing ids) when the gift
    was already paid: a second "paid" for the same gift is a duplicate, not new money.

    `paid_at` is when Stripe says the money moved; the gift keeps the earliest time any
    proof names, so the day it counts on does not depend on which proof came first.
    `reported_at` is when Stripe reported it (the event's time, by default `paid_at`):
    a plan's status follows the latest report (`move_plan`).
    """
    lock(gift)
    supporter = gift.supporter
    fill_missing(supporter, stripe_customer_id=customer_id)
    if not _can_move(gift, GiftStatus.SUCCEEDED) or gift.status is GiftStatus.DISPUTED:
        fill_missing(
            gift, stripe_payment_intent_id=payment_intent_id, stripe_charge_id=charge_id, stripe_invoice_id=invoice_id
        )
        if paid_at is not None and gift.paid_at is not None and paid_at < gift.paid_at:
            gift.paid_at = paid_at
            _note_start(gift)
            _refresh_for(gift)
        db.session.flush()
        return False
    # The attempt that succeeded is the gift's payment, whatever attempt failed before it.
    if payment_intent_id:
        gift.stripe_payment_intent_id = payment_intent_id
    fill_missing(gift, stripe_charge_id=charge_id, stripe_invoice_id=invoice_id)
    gift.status = GiftStatus.SUCCEEDED
    gift.paid_at = paid_at or utcnow()
    db.session.flush()
    plan = gift.recurring_plan
    if plan is not None:
        move_plan(plan, PlanStatus.ACTIVE, at=reported_at or gift.paid_at)
    _note_start(gift)
    refresh_supporter_totals(supporter)
    receipt_at_commit(gift)
    # The payment is what makes the form's newsletter box worth an e-mail: a stranger can
    # type anyone's address into the form, but does not pay to do it (mail/newsletter.py).
    newsletter.queue_confirmation(gift)
    widget_service.count_gift(gift)
    return True


# --- The receipt, numbered as the transaction commits ------------------------------

_RECEIPTS_DUE = "receipts_due"


def receipt_at_commit(gift: Gift) -> None:
    """Number the paid gift's receipt and queue it when this transaction commits.

    The number comes from the year's `receipt_sequence` row, which the taking
    transaction holds locked until it ends: taken in the middle of a payment's work,
    every other payment of the year waited for the rest of that work (the queue the
    webhook bench saw). Taken last, in `before_commit`, the row is held for the
    commit alone. The receipt is rendered then too, as it prints the number. A
    transaction that rolls back takes neither (the payment is not recorded either).
    """
    db.session.info.setdefault(_RECEIPTS_DUE, set()).add(gift.id)


def _number_and_queue_receipts(session: Session) -> None:
    # A savepoint's release is not the commit: the numbers wait for the transaction's own.
    if session.get_nested_transaction() is not None:
        return
    due: set[int] = session.info.pop(_RECEIPTS_DUE, set())
    for gift_id in sorted(due):
        gift = session.get(Gift, gift_id)
        # a savepoint rolled back since (a reconcile dry run) leaves the gift unpaid: no receipt;
        # a refund or dispute applied in the same transaction (it waited for the payment) does
        # not take back the receipt the payment earned
        if gift is None or gift.status not in GIFT_PAID or gift.paid_at is None:
            continue
        if gift.receipt_number is None:
            gift.receipt_number = receipt_number(gift)
            session.flush()
        receipts.queue_receipt(gift)
    if due:
        session.flush()


@event.listens_for(Session, "after_rollback")
def _forget_receipts(session: Session) -> None:
    # A savepoint rolled back leaves the rest of the transaction's payments due; one of
    # its own that it undid is found unpaid at commit and skipped.
    if session.get_nested_transaction() is not None:
        return
    session.info.pop(_RECEIPTS_DUE, None)


# First among the commit's listeners: the year's receipt_sequence row is always locked
# before the giving_total rows (models/giving.py writes those at commit too), whichever
# path paid the gift, so two transactions never wait for each other's locks in turn.
event.listen(Session, "before_commit", _number_and_queue_receipts, insert=True)


def _note_start(gift: Gift) -> None:
    """A plan started when its earliest instalment was paid."""
    plan = gift.recurring_plan
    if plan is not None and gift.paid_at is not None and (plan.started_at is None or gift.paid_at < plan.started_at):
        plan.started_at = gift.paid_at


def mark_failed(gift: Gift, payment_intent_id: str | None = None) -> bool:
    """A payment attempt failed. Ignored when it is not the gift's current attempt,
    or when the gift has already moved on (paid, canceled)."""
    lock(gift)
    if payment_intent_id and gift.stripe_payment_intent_id and gift.stripe_payment_intent_id != payment_intent_id:
        return False
    if gift.status is not GiftStatus.PENDING:
        return False
    fill_missing(gift, stripe_payment_intent_id=payment_intent_id)
    gift.status = GiftStatus.FAILED
    db.session.flush()
    return True


def mark_processing(gift: Gift, at: datetime | None = None) -> bool:
    """Stripe says the gift's payment was submitted and settles later (SEPA Direct Debit takes
    days, a Przelewy24 payment sometimes minutes): the gift stays pending, and is shown as
    processing, until the payment succeeds or fails. Not proof of payment: nothing counts yet.

    Only a pending gift; it keeps the earliest time Stripe named (`at`, else now), so the
    order the reports come in changes nothing. True when that changed the gift.
    """
    lock(gift)
    at = at or utcnow()
    if gift.status is not GiftStatus.PENDING or (gift.processing_at is not None and gift.processing_at <= at):
        return False
    gift.processing_at = at
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


#: a paid gift's statuses: which one it has follows from its refunds and its dispute (`_settle`)
PAID = GIFT_PAID
#: a dispute's states in the order they happen: a closed dispute ("won", "lost") is final
DISPUTE_RANK = {None: 0, "open": 1, "won": 2, "lost": 2}


def _settled_status(gift: Gift) -> GiftStatus:
    """A paid gift's status from the facts Stripe reported, whatever order they came in:
    all of it refunded (or the dispute lost) is refunded; else an open dispute holds it;
    else it is partly refunded or simply paid."""
    if gift.refunded_minor >= gift.amount_minor:
        return GiftStatus.REFUNDED
    if gift.dispute_status == "open":
        return GiftStatus.DISPUTED
    return GiftStatus.PARTIALLY_REFUNDED if gift.refunded_minor else GiftStatus.SUCCEEDED


def _settle(gift: Gift) -> bool:
    """Give a paid gift the status its facts say; True when that changed it."""
    target = _settled_status(gift)
    if gift.status is target:
        return False
    gift.status = target
    return True


def apply_refund_total(gift: Gift, refunded_minor: int, at: datetime | None = None) -> bool:
    """Stripe says `refunded_minor` of the gift has been refunded in all.

    Totals only ever grow, so an older event arriving late changes nothing. The
    gift must be paid: callers holding proof of a refunded charge mark it paid first.
    An open dispute still holds what is left (`_settled_status`).
    """
    lock(gift)
    refunded_minor = min(refunded_minor, gift.amount_minor)
    if gift.status not in PAID or refunded_minor <= gift.refunded_minor:
        return False
    gift.refunded_minor = refunded_minor
    gift.refunded_at = at or utcnow()
    _settle(gift)
    _refresh_for(gift)
    return True


def mark_disputed(gift: Gift) -> bool:
    """The donor's bank disputes the payment: its money no longer counts (until the
    dispute is won). A dispute already closed, whose close came first, stays closed."""
    return _dispute(gift, "open")


def close_dispute(gift: Gift, won: bool) -> bool:
    """A dispute ended: won, the money counts again; lost, it is gone as if refunded.
    Applies whether or not the dispute's opening was seen (events come in any order)."""
    return _dispute(gift, "won" if won else "lost")


def _dispute(gift: Gift, state: str) -> bool:
    """Record the dispute's `state` if it is later than the one known, and settle the gift."""
    lock(gift)
    if gift.status not in PAID or DISPUTE_RANK[state] <= DISPUTE_RANK.get(gift.dispute_status, 0):
        return False
    gift.dispute_status = state
    if state == "lost" and gift.refunded_minor < gift.amount_minor:
        gift.refunded_minor = gift.amount_minor
        gift.refunded_at = gift.refunded_at or utcnow()
    _settle(gift)
    _refresh_for(gift)
    return True


def _refresh_for(gift: Gift) -> None:
    db.session.flush()
    supporter = gift.supporter
    refresh_supporter_totals(supporter)


def move_plan(plan: RecurringPlan, status: PlanStatus, *, at: datetime | None = None) -> bool:
    """Move a plan if its transition table allows it; an older event never moves it back.

    `at` is Stripe's time of the fact the status comes from (a payment, a failure, a
    subscription update). A fact older than the one the status was last taken from
    changes nothing: a late "past due" cannot undo the payment that came after it. An
    end (canceled) is final whenever it comes.
    """
    if status is not PlanStatus.CANCELED and at is not None:
        if plan.status_at is not None and at < plan.status_at:
            return False
        plan.status_at = max(at, plan.status_at) if plan.status_at else at
    if plan.status is status or status not in PLAN_TRANSITIONS[plan.status]:
        return False
    plan.status = status
    if status is PlanStatus.CANCELED:
        plan.canceled_at = plan.canceled_at or utcnow()
    db.session.flush()
    return True


def receipt_number(gift: Gift) -> str:
    """The next receipt number of the year the gift was received, e.g. 2026-000042.

    The year is the date received where the organisation is (an offline gift's date, a
    payment's moment in its time zone), not the day it was recorded. Each year is one
    sequence (`receipt_sequence`): the number is taken with an atomic UPDATE of that
    year's row, so two gifts recorded at once wait for each other's commit and never
    share a number (a rolled-back payment leaves its number unused, rather than two
    gifts one). Numbers only grow, so a voided gift's number is never given again.
    """
    assert gift.paid_at is not None
    year = gift.paid_at.astimezone(org_timezone()).year
    connection = db.session.connection()
    table = ReceiptSequence.__table__
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    connection.execute(
        dialect.insert(table).values(year=year, last_number=0).on_conflict_do_nothing(index_elements=[table.c.year])
    )
    number = connection.execute(
        sa.update(ReceiptSequence)
        .where(ReceiptSequence.year == year)
        .values(last_number=ReceiptSequence.last_number + 1)
        .returning(ReceiptSequence.last_number)
    ).scalar_one()
    return f"{year}-{number:06d}"
