"""A donor's sign-in without a password: a single-use link and code, e-mailed."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from supporters.models.base import Base, UTCDateTime, utcnow


class DonorSignIn(Base):
    """One sign-in e-mailed to a supporter: the link's token and the code, only as hashes.

    Used once (`used_at`), within its time (`expires_at`); `attempts` counts wrong codes.
    """

    __tablename__ = "donor_sign_in"
    __table_args__ = (
        sa.CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        sa.Index("ix_donor_sign_in_supporter_id_created_at", "supporter_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, info={"personal": False})
    supporter_id: Mapped[int] = mapped_column(sa.ForeignKey("supporter.id"), info={"personal": False})
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True, info={"personal": False})
    code_hash: Mapped[str] = mapped_column(sa.String(64), info={"personal": False})
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), info={"personal": False})
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, info={"personal": False})
    attempts: Mapped[int] = mapped_column(default=0, info={"personal": False})
