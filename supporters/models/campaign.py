"""Campaigns: what gifts are asked for, with a goal and the amounts to suggest."""

from __future__ import annotations

import enum
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from supporters.models.base import Base, Timestamps, currency_check, enum_column


class Frequency(enum.StrEnum):
    ONE_TIME = "one_time"
    MONTHLY = "monthly"
    YEARLY = "yearly"


class Campaign(Timestamps, Base):
    """A fundraising campaign: its appeal, its goal and its suggested amounts."""

    __tablename__ = "campaign"
    __table_args__ = (
        sa.CheckConstraint("goal_minor IS NULL OR goal_minor > 0", name="goal_positive"),
        currency_check("goal_currency"),
        sa.CheckConstraint("ends_on IS NULL OR starts_on IS NULL OR ends_on >= starts_on", name="dates_in_order"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, info={"personal": False})
    #: used in URLs and in the widget's data-campaign
    slug: Mapped[str] = mapped_column(sa.String(64), unique=True, info={"personal": False})
    name: Mapped[str] = mapped_column(sa.String(200), info={"personal": False})
    #: the target, in minor units of goal_currency (None: no goal shown)
    goal_minor: Mapped[int | None] = mapped_column(sa.BigInteger, info={"personal": False})
    goal_currency: Mapped[str] = mapped_column(sa.String(3), info={"personal": False})
    #: suggested amounts per currency in minor units, e.g. {"PLN": [2000, 5000, 10000]}
    preset_amounts: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict, info={"personal": False})
    default_frequency: Mapped[Frequency] = mapped_column(
        enum_column(Frequency, "frequency"), default=Frequency.ONE_TIME, info={"personal": False}
    )
    #: the appeal shown on the widget and the donation form (plain text)
    appeal_heading: Mapped[str] = mapped_column(sa.String(200), default="", info={"personal": False})
    appeal_text: Mapped[str] = mapped_column(sa.Text, default="", info={"personal": False})
    #: the same in other languages, and a few words beside each suggested amount:
    #: {"pl": {"name": …, "appeal_heading": …, "appeal_text": …,
    #:         "notes": {"PLN": {"2000": "dzień pracy redakcji"}}}}. A text left empty
    #: falls back to the fields above (written in the default language).
    texts: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, default=dict, info={"personal": False})
    starts_on: Mapped[date | None] = mapped_column(info={"personal": False})
    ends_on: Mapped[date | None] = mapped_column(info={"personal": False})
    active: Mapped[bool] = mapped_column(default=True, info={"personal": False})
    is_demo: Mapped[bool] = mapped_column(default=False, info={"personal": False})

    def text(self, field: str, locale: str) -> str:
        """`field` ("name", "appeal_heading", "appeal_text") as readers of `locale` see it:
        its translation, or the default language's when there is none."""
        translated = ((self.texts or {}).get(locale) or {}).get(field)
        if isinstance(translated, str) and translated.strip():
            return translated
        value: str = getattr(self, field) or ""
        return value

    def amount_note(self, currency: str, amount_minor: int, locale: str) -> str:
        """The few words beside a suggested amount in `locale` ("a day of fact-checking"), or ""."""
        notes = ((self.texts or {}).get(locale) or {}).get("notes") or {}
        note = (notes.get(currency) or {}).get(str(amount_minor)) if isinstance(notes, dict) else None
        return note if isinstance(note, str) else ""

    variants: Mapped[list[AppealVariant]] = relationship(
        back_populates="campaign", cascade="all, delete-orphan", lazy="selectin", order_by="AppealVariant.id"
    )


class AppealVariant(Base):
    """One wording of a campaign's appeal; each page view of the widget picks one by weight."""

    __tablename__ = "appeal_variant"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "key"),
        sa.CheckConstraint("weight > 0", name="weight_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, info={"personal": False})
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaign.id", ondelete="CASCADE"), info={"personal": False})
    #: short name used in counters and links, e.g. "a", "urgent"
    key: Mapped[str] = mapped_column(sa.String(64), info={"personal": False})
    #: the appeal, shown as plain text
    heading: Mapped[str] = mapped_column(sa.String(200), info={"personal": False})
    text: Mapped[str] = mapped_column(sa.Text, default="", info={"personal": False})
    #: relative chance of being shown
    weight: Mapped[int] = mapped_column(default=1, info={"personal": False})
    active: Mapped[bool] = mapped_column(default=True, info={"personal": False})

    campaign: Mapped[Campaign] = relationship(back_populates="variants")
