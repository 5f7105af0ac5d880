"""Likely duplicate supporters: the pairs a scan found, the pairs staff said are two
people, and the merges staff made (each with what it changed, so it can be undone)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from supporters.models.base import Base, UTCDateTime, utcnow


class DuplicateCandidate(Base):
    """A pair of live supporters who may be one person, as the last scan found them
    (people/duplicates.py). The whole table is rewritten by each scan."""

    __tablename__ = "duplicate_candidate"
    __table_args__ = (
        sa.CheckConstraint("low_id < high_id", name="pair_ordered"),
        sa.CheckConstraint("confidence BETWEEN 0 AND 100", name="confidence_percent"),
        sa.Index("ix_duplicate_candidate_confidence", "confidence", "low_id", "high_id"),
        sa.Index("ix_duplicate_candidate_high_id", "high_id"),
    )

    #: the pair, the lower id first
    low_id: Mapped[int] = mapped_column(
        sa.ForeignKey("supporter.id", ondelete="CASCADE"), primary_key=True, info={"personal": False}
    )
    high_id: Mapped[int] = mapped_column(
        sa.ForeignKey("supporter.id", ondelete="CASCADE"), primary_key=True, info={"personal": False}
    )
    #: how sure the scan is that they are one person, 0 to 100
    confidence: Mapped[int] = mapped_column(info={"personal": False})
    #: why, as codes with their figures ([{"code": "similar_name", "score": 93}, …]); the
    #: page says them in words
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list, info={"personal": False})
    #: when the scan found it
    found_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, info={"personal": False})


class DuplicateDismissal(Base):
    """A pair staff said are two different people: never suggested again."""

    __tablename__ = "duplicate_dismissal"
    __table_args__ = (sa.CheckConstraint("low_id < high_id", name="pair_ordered"),)

    #: the pair, the lower id first
    low_id: Mapped[int] = mapped_column(
        sa.ForeignKey("supporter.id", ondelete="CASCADE"), primary_key=True, info={"personal": False}
    )
    high_id: Mapped[int] = mapped_column(
        sa.ForeignKey("supporter.id", ondelete="CASCADE"), primary_key=True, info={"personal": False}
    )
    #: who said so, and when
    staff_user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("staff_user.id", ondelete="SET NULL"), info={"personal": False}
    )
    dismissed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, info={"personal": False})


class SupporterMerge(Base):
    """Two or more supporters made one: the survivor keeps its id, the others stay as
    tombstones (`Supporter.merged_into_id`) that lead to it. `record` holds what the merge
    changed (the values replaced, the rows moved, the tags added), which is what undoing
    it puts back (people/merging.py)."""

    __tablename__ = "supporter_merge"
    __table_args__ = (sa.Index("ix_supporter_merge_survivor_id", "survivor_id", "merged_at"),)

    id: Mapped[int] = mapped_column(primary_key=True, info={"personal": False})
    #: the supporter that stayed
    survivor_id: Mapped[int] = mapped_column(sa.ForeignKey("supporter.id"), info={"personal": False})
    #: the supporters merged into it, in id order
    merged_ids: Mapped[list[int]] = mapped_column(sa.JSON, info={"personal": False})
    #: who merged, and when
    staff_user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("staff_user.id", ondelete="SET NULL"), info={"personal": False}
    )
    merged_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, info={"personal": False})
    #: what the merge changed: values replaced (names, addresses: personal), rows moved, tags added
    record: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict, info={"personal": True})
    #: when it was undone, and by whom (None: it stands)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})
    undone_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("staff_user.id", ondelete="SET NULL"), info={"personal": False}
    )
