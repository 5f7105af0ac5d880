"""Supporters: the people who give, with their tags and consents."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, Timestamps, UTCDateTime, utcnow

if TYPE_CHECKING:
    from .gift import Gift
    from .recurring import RecurringPlan


def normalise_email(email: str) -> str:
    """The form of an e-mail address used to find a supporter: trimmed, NFKC, lower case.

    Dots and plus-tags are kept: they may well reach different people.
    """
    return unicodedata.normalize("NFKC", email).strip().lower()


class Supporter(Timestamps, Base):
    """A person (or household) who gives; found again by normalised e-mail."""

    __tablename__ = "supporter"
    __table_args__ = (
        sa.CheckConstraint("gift_count >= 0", name="gift_count_not_negative"),
        sa.CheckConstraint("lifetime_total_minor >= 0", name="lifetime_total_not_negative"),
        sa.CheckConstraint(
            "country IS NULL OR (length(country) = 2 AND upper(country) = country)",
            name="country_iso3166",
        ),
        sa.CheckConstraint("length(email_normalised) > 2", name="email_present"),
        sa.Index("ix_supporter_last_gift_at", "last_gift_at"),
        sa.Index("ix_supporter_first_gift_at", "first_gift_at"),
        sa.Index("ix_supporter_lifetime_total_minor", "lifetime_total_minor"),
        sa.Index("ix_supporter_name_sort", "name_sort"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: the address as the supporter typed it, for display and for mail
    email: Mapped[str] = mapped_column(sa.String(320))
    #: `normalise_email(email)`: how the same person is found again; unique
    email_normalised: Mapped[str] = mapped_column(sa.String(320), unique=True)
    #: full name as given
    name: Mapped[str] = mapped_column(sa.String(200))
    #: case- and accent-free form of the name, for sorting and prefix search
    name_sort: Mapped[str] = mapped_column(sa.String(200), default="")
    #: ISO 3166-1 alpha-2, upper case
    country: Mapped[str | None] = mapped_column(sa.String(2))
    #: the language the supporter reads (receipts are sent in it)
    language: Mapped[str] = mapped_column(sa.String(10), default="en")
    #: postal address for a tax receipt, all optional
    address_line1: Mapped[str | None] = mapped_column(sa.String(200))
    address_line2: Mapped[str | None] = mapped_column(sa.String(200))
    postal_code: Mapped[str | None] = mapped_column(sa.String(20))
    city: Mapped[str | None] = mapped_column(sa.String(100))
    #: the Stripe Customer that pays for this supporter's gifts
    stripe_customer_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    #: aggregates kept by donations.refresh_supporter_totals(), for sorting the dashboard
    first_gift_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_gift_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    gift_count: Mapped[int] = mapped_column(default=0)
    #: lifetime giving, net of refunds, in the organisation's reporting currency
    lifetime_total_minor: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: set when the person's data was erased on request; the gifts stay for the books
    anonymised_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: demo content created by `flask demo seed`
    is_demo: Mapped[bool] = mapped_column(default=False)

    gifts: Mapped[list[Gift]] = relationship(back_populates="supporter", lazy="raise_on_sql")
    recurring_plans: Mapped[list[RecurringPlan]] = relationship(
        back_populates="supporter", lazy="raise_on_sql"
    )
    tags: Mapped[list[SupporterTag]] = relationship(
        back_populates="supporter", cascade="all, delete-orphan", lazy="selectin"
    )

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        if self.email and not self.email_normalised:
            self.email_normalised = normalise_email(self.email)
        if self.name and not self.name_sort:
            self.name_sort = sort_key(self.name)


def sort_key(text: str) -> str:
    """Lower case without accents ("Łukasz Żak" -> "lukasz zak"), for sorting and search."""
    text = text.replace("ł", "l").replace("Ł", "L").replace("ø", "o").replace("Ø", "O")
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.casefold().split())[:200]


class SupporterTag(Base):
    """A free-form label staff put on a supporter ("board", "major donor")."""

    __tablename__ = "supporter_tag"
    __table_args__ = (sa.Index("ix_supporter_tag_tag", "tag"),)

    supporter_id: Mapped[int] = mapped_column(
        sa.ForeignKey("supporter.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(sa.String(50), primary_key=True)

    supporter: Mapped[Supporter] = relationship(back_populates="tags")


class SupporterNote(Base):
    """A note staff wrote about a supporter ("prefers post", "met at the conference")."""

    __tablename__ = "supporter_note"
    __table_args__ = (sa.Index("ix_supporter_note_supporter_id", "supporter_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    supporter_id: Mapped[int] = mapped_column(sa.ForeignKey("supporter.id", ondelete="CASCADE"))
    #: who wrote it; None when that account was removed
    staff_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_user.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Consent(Base):
    """One recorded decision about a purpose (newsletter, …); the newest row per purpose wins."""

    __tablename__ = "consent"
    __table_args__ = (sa.Index("ix_consent_supporter_id_purpose", "supporter_id", "purpose", "recorded_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    supporter_id: Mapped[int] = mapped_column(sa.ForeignKey("supporter.id", ondelete="CASCADE"))
    #: what the consent is for, e.g. "newsletter"
    purpose: Mapped[str] = mapped_column(sa.String(32))
    #: True when granted, False when withdrawn
    granted: Mapped[bool]
    #: when the supporter decided
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: where it was given: "donation form", "dashboard", "import", …
    source: Mapped[str] = mapped_column(sa.String(100))
    #: the exact wording the supporter saw
    wording: Mapped[str] = mapped_column(sa.Text)
