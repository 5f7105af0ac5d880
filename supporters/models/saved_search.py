"""Saved searches: a name staff give to a list's current filters, seen by the whole team."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from supporters.models.base import Base, UTCDateTime, utcnow

#: the lists a search can be saved for
SAVED_SEARCH_PAGES = ("supporters",)


class SavedSearch(Base):
    """A list's filters under a name ("Major donors in Kraków"), listed beside the filters."""

    __tablename__ = "saved_search"
    __table_args__ = (
        sa.CheckConstraint("page IN ('supporters')", name="page_known"),
        sa.UniqueConstraint("page", "name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, info={"personal": False})
    #: which list the filters are for: "supporters"
    page: Mapped[str] = mapped_column(sa.String(16), info={"personal": False})
    #: what staff call it, shown as the link
    name: Mapped[str] = mapped_column(sa.String(100), info={"personal": False})
    #: the list's filters as its query string ("q=nowak&tag=board"); a search may name a person
    query: Mapped[str] = mapped_column(sa.String(2000), info={"personal": True})
    #: who saved it (may delete it, as may an admin); None when that account was removed
    staff_user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("staff_user.id", ondelete="SET NULL"), info={"personal": False}
    )
    #: when it was saved
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, info={"personal": False})
