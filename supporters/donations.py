"""The rules of giving. Functions here flush; the caller (view, webhook, CLI) commits."""

from __future__ import annotations

from sqlalchemy import func, select

from .extensions import db
from .models import GIFT_COUNTED, Gift, Supporter


def refresh_supporter_totals(supporter: Supporter) -> None:
    """Recompute a supporter's first/last gift dates, gift count and lifetime total.

    Only gifts whose money counts are included; the lifetime total is net of
    refunds, in the reporting currency, and leaves out gifts not yet converted.
    """
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
    supporter.lifetime_total_minor = int(total)
    db.session.flush()


def receipt_number(gift: Gift) -> str:
    """The receipt number of a gift: its year and id, e.g. 2026-000042 (needs a flushed gift)."""
    assert gift.id is not None and gift.paid_at is not None
    return f"{gift.paid_at.year}-{gift.id:06d}"
