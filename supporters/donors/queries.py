"""What a signed-in donor reads: their own gifts, and nothing of anyone else's."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from supporters.extensions import db
from supporters.models import HAPPENED_AT, Gift


def gifts_of(supporter_id: int) -> list[Gift]:
    """Every gift of the supporter (online and offline), newest first."""
    return list(
        db.session.scalars(
            select(Gift)
            .where(Gift.supporter_id == supporter_id)
            .options(joinedload(Gift.campaign))
            .order_by(HAPPENED_AT.desc(), Gift.id.desc())
        )
    )
