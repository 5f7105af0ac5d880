"""Counters of what the Support Us widget did, per campaign, article, variant and day."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from supporters.models.base import Base


class WidgetStat(Base):
    """Daily counters; never a row per page view, and no personal data."""

    __tablename__ = "widget_stat"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "article", "variant", "day"),
        sa.CheckConstraint(
            "impressions >= 0 AND clicks >= 0 AND gifts >= 0 AND amount_base_minor >= 0",
            name="counters_not_negative",
        ),
        sa.Index("ix_widget_stat_day", "day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, info={"personal": False})
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaign.id", ondelete="CASCADE"), info={"personal": False})
    #: article slug, or "" when the widget was not on an article
    article: Mapped[str] = mapped_column(sa.String(200), default="", info={"personal": False})
    #: appeal variant, or "" for the campaign's only appeal
    variant: Mapped[str] = mapped_column(sa.String(64), default="", info={"personal": False})
    day: Mapped[date] = mapped_column(info={"personal": False})
    impressions: Mapped[int] = mapped_column(default=0, info={"personal": False})
    clicks: Mapped[int] = mapped_column(default=0, info={"personal": False})
    gifts: Mapped[int] = mapped_column(default=0, info={"personal": False})
    #: what those gifts brought, in the reporting currency
    amount_base_minor: Mapped[int] = mapped_column(sa.BigInteger, default=0, info={"personal": False})
