"""The rows about one supporter, as the access export and the erasure both find them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from supporters.extensions import db
from supporters.models import (
    AuditEvent,
    BankLine,
    Base,
    Consent,
    ConsentRequest,
    DonorSignIn,
    Gift,
    OutboxEmail,
    RecurringPlan,
    StripeEvent,
    Supporter,
    SupporterMerge,
    SupporterNote,
    SupporterTag,
    normalise_email,
)


def gift_ids(supporter: Supporter) -> list[int]:
    """The supporter's gifts, every status."""
    return list(db.session.scalars(sa.select(Gift.id).where(Gift.supporter_id == supporter.id).order_by(Gift.id)))


def plan_ids(supporter: Supporter) -> list[int]:
    return list(
        db.session.scalars(
            sa.select(RecurringPlan.id).where(RecurringPlan.supporter_id == supporter.id).order_by(RecurringPlan.id)
        )
    )


def merged_away(supporter: Supporter) -> Sequence[Supporter]:
    """The records merged into the supporter (people/merging.py): tombstones that still hold
    the person's old addresses, names and Stripe customers."""
    return db.session.scalars(
        sa.select(Supporter).where(Supporter.merged_into_id == supporter.id).order_by(Supporter.id)
    ).all()


def record_ids(supporter: Supporter) -> list[int]:
    """The supporter's id and those of the records merged into it."""
    return [supporter.id, *(row.id for row in merged_away(supporter))]


def merges(supporter: Supporter, *, undone: bool = True) -> list[SupporterMerge]:
    """The merges whose records hold the person's values: those that kept the supporter or
    a record merged into it, and (`undone`) those undone since, which hold another
    person's values as well (the erasure scrubs them; the export leaves them out)."""
    ids = record_ids(supporter)
    kept = db.session.scalars(
        sa.select(SupporterMerge).where(
            SupporterMerge.survivor_id.in_(ids), sa.true() if undone else SupporterMerge.undone_at.is_(None)
        )
    ).all()
    if not undone:
        return sorted(kept, key=lambda entry: (entry.merged_at, entry.id))
    # merged_ids is a JSON list, searched here rather than in SQL (merges are few; undone, fewer)
    others = db.session.scalars(
        sa.select(SupporterMerge).where(SupporterMerge.undone_at.is_not(None), SupporterMerge.survivor_id.not_in(ids))
    ).all()
    found = [*kept, *(entry for entry in others if set(entry.merged_ids) & set(ids))]
    return sorted(found, key=lambda entry: (entry.merged_at, entry.id))


def about_them(supporter: Supporter) -> sa.ColumnElement[bool]:
    """The audit entries about the supporter: them and the records merged into them, their
    gifts, their plans, the bank lines of their gifts."""
    gifts = sa.select(Gift.id).where(Gift.supporter_id == supporter.id)
    as_ids = sa.String(64)
    return sa.or_(
        sa.and_(
            AuditEvent.target_type == "supporter",
            AuditEvent.target_id.in_([str(row_id) for row_id in record_ids(supporter)]),
        ),
        sa.and_(
            AuditEvent.target_type == "gift",
            AuditEvent.target_id.in_(sa.select(sa.cast(Gift.id, as_ids)).where(Gift.supporter_id == supporter.id)),
        ),
        sa.and_(
            AuditEvent.target_type == "plan",
            AuditEvent.target_id.in_(
                sa.select(sa.cast(RecurringPlan.id, as_ids)).where(RecurringPlan.supporter_id == supporter.id)
            ),
        ),
        sa.and_(
            AuditEvent.target_type == "bank_line",
            AuditEvent.target_id.in_(
                sa.select(sa.cast(BankLine.id, as_ids)).where(
                    sa.or_(
                        BankLine.supporter_id == supporter.id,
                        BankLine.gift_id.in_(gifts),
                        BankLine.pledge_id.in_(gifts),
                    )
                )
            ),
        ),
    )


def audit_events(supporter: Supporter) -> Sequence[AuditEvent]:
    return db.session.scalars(
        sa.select(AuditEvent).where(about_them(supporter)).order_by(AuditEvent.created_at, AuditEvent.id)
    ).all()


def addresses(supporter: Supporter) -> set[str]:
    """Every address the supporter has had here (normalised): the current one, those of the
    records merged into it, and those their profile edits replaced."""
    records = [supporter, *merged_away(supporter)]
    found = {record.email_normalised for record in records}
    for event in db.session.scalars(
        sa.select(AuditEvent).where(
            AuditEvent.target_type == "supporter",
            AuditEvent.target_id.in_([str(record.id) for record in records]),
            AuditEvent.action == "supporter.edit_profile",
        )
    ):
        change = (event.details or {}).get("changes", {}).get("email") or {}
        found.update(
            normalise_email(value) for value in (change.get("old"), change.get("new")) if isinstance(value, str)
        )
    return found


def emails(supporter: Supporter) -> Sequence[OutboxEmail]:
    """The e-mails the outbox holds for any of the supporter's addresses."""
    return db.session.scalars(
        sa.select(OutboxEmail)
        .where(sa.func.lower(sa.func.trim(OutboxEmail.to_address)).in_(sorted(addresses(supporter))))
        .order_by(OutboxEmail.created_at, OutboxEmail.id)
    ).all()


def bank_lines(supporter: Supporter) -> Sequence[BankLine]:
    """The bank statement lines that paid their gifts or were assigned to them."""
    gifts = sa.select(Gift.id).where(Gift.supporter_id == supporter.id)
    return db.session.scalars(
        sa.select(BankLine)
        .where(
            sa.or_(BankLine.supporter_id == supporter.id, BankLine.gift_id.in_(gifts), BankLine.pledge_id.in_(gifts))
        )
        .order_by(BankLine.booked_on, BankLine.id)
    ).all()


def stripe_events(supporter: Supporter) -> Sequence[StripeEvent]:
    """The Stripe events about their gifts and plans."""
    gifts = sa.select(Gift.id).where(Gift.supporter_id == supporter.id)
    plans = sa.select(RecurringPlan.id).where(RecurringPlan.supporter_id == supporter.id)
    return db.session.scalars(
        sa.select(StripeEvent).where(sa.or_(StripeEvent.gift_id.in_(gifts), StripeEvent.plan_id.in_(plans)))
    ).all()


def rows_of(model: type[Base], supporter: Supporter, order: Any) -> Sequence[Any]:
    """The rows of a table with a `supporter_id`, in `order`."""
    column = model.supporter_id  # type: ignore[attr-defined]
    return db.session.scalars(sa.select(model).where(column == supporter.id).order_by(order)).all()


#: the tables whose rows carry the supporter's id, and their order in an export
OWN_ROWS: dict[str, tuple[type[Base], Any]] = {
    "gifts": (Gift, Gift.id),
    "plans": (RecurringPlan, RecurringPlan.id),
    "consents": (Consent, Consent.recorded_at),
    "consent_requests": (ConsentRequest, ConsentRequest.requested_at),
    "notes": (SupporterNote, SupporterNote.created_at),
    "tags": (SupporterTag, SupporterTag.tag),
    "sign_ins": (DonorSignIn, DonorSignIn.created_at),
}
