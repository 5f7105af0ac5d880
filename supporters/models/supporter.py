"""Supporters: the people who give, with their tags and consents."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column, relationship
from sqlalchemy.orm.attributes import get_history

from supporters.models.base import Base, Timestamps, UTCDateTime, utcnow
from supporters.models.bulk import insert_rows, insert_rows_with_ids
from supporters.models.donor import DonorSignIn

if TYPE_CHECKING:
    from supporters.models.gift import Gift
    from supporters.models.recurring import RecurringPlan


def normalise_email(email: str) -> str:
    """The form of an e-mail address used to find a supporter: trimmed, NFKC, lower case.

    Dots and plus-tags are kept: they may well reach different people.
    """
    return unicodedata.normalize("NFKC", email).strip().lower()


#: a partial index's condition: supporters the dashboard lists (none merged into another)
LISTED_ONLY: dict[str, Any] = {
    "sqlite_where": sa.text("merged_into_id IS NULL"),
    "postgresql_where": sa.text("merged_into_id IS NULL"),
}


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
        # The list's sorts, each with id for its tie-break, so that a page of ids is an
        # index-only read on PostgreSQL too (SQLite keeps the row id in every index). The
        # list never shows a merged-away supporter: an index of only the others answers
        # its condition too, so a deep page reads the index alone (a million supporters:
        # 50,000 entries for page 1,000, not 50,000 rows read to check merged_into_id).
        sa.Index("ix_supporter_last_gift_at", "last_gift_at", "id"),
        sa.Index("ix_supporter_first_gift_at", "first_gift_at"),
        sa.Index("ix_supporter_lifetime_total_minor", "lifetime_total_minor", "id", **LISTED_ONLY),
        sa.Index("ix_supporter_name_sort", "name_sort", "id", **LISTED_ONLY),
        # which listed supporters a set of ids (a search's, a tag's) holds, from the index alone
        sa.Index("ix_supporter_listed_id", "id", **LISTED_ONLY),
    )

    id: Mapped[int] = mapped_column(primary_key=True, info={"personal": False})
    #: the address as the supporter typed it, for display and for mail
    email: Mapped[str] = mapped_column(sa.String(320), info={"personal": True})
    #: `normalise_email(email)`: how the same person is found again; unique
    email_normalised: Mapped[str] = mapped_column(sa.String(320), unique=True, info={"personal": True})
    #: full name as given
    name: Mapped[str] = mapped_column(sa.String(200), info={"personal": True})
    #: case- and accent-free form of the name, for sorting and prefix search
    name_sort: Mapped[str] = mapped_column(sa.String(200), default="", info={"personal": True})
    #: ISO 3166-1 alpha-2, upper case
    country: Mapped[str | None] = mapped_column(sa.String(2), info={"personal": True})
    #: the language the supporter reads (receipts are sent in it)
    language: Mapped[str] = mapped_column(sa.String(10), default="en", info={"personal": False})
    #: postal address for a tax receipt, all optional
    address_line1: Mapped[str | None] = mapped_column(sa.String(200), info={"personal": True})
    address_line2: Mapped[str | None] = mapped_column(sa.String(200), info={"personal": True})
    postal_code: Mapped[str | None] = mapped_column(sa.String(20), info={"personal": True})
    city: Mapped[str | None] = mapped_column(sa.String(100), info={"personal": True})
    #: the Stripe Customer that pays for this supporter's gifts
    stripe_customer_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True, info={"personal": True})
    #: aggregates kept by donations.refresh_supporter_totals(), for sorting the dashboard
    first_gift_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})
    last_gift_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})
    gift_count: Mapped[int] = mapped_column(default=0, info={"personal": False})
    #: lifetime giving, net of refunds, in the organisation's reporting currency
    lifetime_total_minor: Mapped[int] = mapped_column(sa.BigInteger, default=0, info={"personal": False})
    #: the newest newsletter decision is a grant; kept from the consent log on every flush
    #: (below), so the list can filter on it without reading the log
    newsletter: Mapped[bool] = mapped_column(default=False, info={"personal": False})
    #: when the donor last signed out of their own page (/my): every donor session begun
    #: before it is over, on every device (the session is a signed cookie, which alone
    #: cannot be taken back)
    donor_signed_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": True})
    #: set when the person's data was erased on request; the gifts stay for the books
    anonymised_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})
    #: demo content created by `flask demo seed`
    is_demo: Mapped[bool] = mapped_column(default=False, info={"personal": False})
    #: set when staff merged this supporter into another (people/merging.py): the row stays,
    #: hidden from every list, so that its e-mail still leads to the one it was merged into.
    #: No foreign key: SQLite could then add and drop the column only by rebuilding this
    #: table, which every other table points at; supporters are never deleted by a merge
    merged_into_id: Mapped[int | None] = mapped_column(index=True, info={"personal": False})

    gifts: Mapped[list[Gift]] = relationship(back_populates="supporter", lazy="raise_on_sql")
    recurring_plans: Mapped[list[RecurringPlan]] = relationship(back_populates="supporter", lazy="raise_on_sql")
    tags: Mapped[list[SupporterTag]] = relationship(
        back_populates="supporter", cascade="all, delete-orphan", lazy="selectin"
    )

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        if self.email and not self.email_normalised:
            self.email_normalised = normalise_email(self.email)
        if self.name and not self.name_sort:
            self.name_sort = sort_key(self.name)


# The list's default order is the latest gift first and who never gave last. SQLite
# sorts NULL first in ascending order, so its ix_supporter_last_gift_at, read backwards,
# is that order; PostgreSQL sorts NULL last and needs an index that puts it first (a
# clause SQLite's CREATE INDEX does not have, hence only there), of listed supporters only.
sa.Index("ix_supporter_listed_last_gift", Supporter.last_gift_at.nulls_first(), Supporter.id, **LISTED_ONLY).ddl_if(
    dialect="postgresql"
)


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
        sa.ForeignKey("supporter.id", ondelete="CASCADE"), primary_key=True, info={"personal": False}
    )
    tag: Mapped[str] = mapped_column(sa.String(50), primary_key=True, info={"personal": True})

    supporter: Mapped[Supporter] = relationship(back_populates="tags")


class SupporterNote(Base):
    """A note staff wrote about a supporter ("prefers post", "met at the conference")."""

    __tablename__ = "supporter_note"
    __table_args__ = (sa.Index("ix_supporter_note_supporter_id", "supporter_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True, info={"personal": False})
    supporter_id: Mapped[int] = mapped_column(
        sa.ForeignKey("supporter.id", ondelete="CASCADE"), info={"personal": False}
    )
    #: who wrote it; None when that account was removed
    staff_user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("staff_user.id", ondelete="SET NULL"), info={"personal": False}
    )
    body: Mapped[str] = mapped_column(sa.Text, info={"personal": True})
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, info={"personal": False})
    #: when its author last changed it (shown as "edited"); None when never changed
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})


class ConsentRequest(Base):
    """A consent asked for that the address has not confirmed yet (double opt-in).

    Ticking the newsletter box records one of these, not a `Consent`: anyone can type
    someone else's address. Once the gift is paid, the address is sent a single-use
    link (`people.consent`); pressing its button records the `Consent`.
    """

    __tablename__ = "consent_request"
    __table_args__ = (sa.Index("ix_consent_request_supporter_id", "supporter_id", "purpose", "requested_at"),)

    id: Mapped[int] = mapped_column(primary_key=True, info={"personal": False})
    supporter_id: Mapped[int] = mapped_column(
        sa.ForeignKey("supporter.id", ondelete="CASCADE"), info={"personal": False}
    )
    #: what the consent would be for, e.g. "newsletter"
    purpose: Mapped[str] = mapped_column(sa.String(32), info={"personal": False})
    #: the gift whose form asked; its payment sends the link. One request per gift
    gift_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("gift.id", ondelete="SET NULL"), unique=True, info={"personal": False}
    )
    #: when the box was ticked
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, info={"personal": True})
    #: where it was asked: "donation form", …
    source: Mapped[str] = mapped_column(sa.String(100), info={"personal": False})
    #: the exact wording the supporter saw next to the box
    wording: Mapped[str] = mapped_column(sa.Text, info={"personal": False})
    #: SHA-256 (hex) of the link's token, set when the link is e-mailed; the token itself is never stored
    token_hash: Mapped[str | None] = mapped_column(sa.String(64), unique=True, info={"personal": False})
    #: when the link was queued for sending, and until when it works
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": True})
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})
    #: when the address confirmed; the link works once
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": True})


class Consent(Base):
    """One recorded decision about a purpose (newsletter, …); the newest row per purpose wins."""

    __tablename__ = "consent"
    __table_args__ = (sa.Index("ix_consent_supporter_id_purpose", "supporter_id", "purpose", "recorded_at"),)

    id: Mapped[int] = mapped_column(primary_key=True, info={"personal": False})
    supporter_id: Mapped[int] = mapped_column(
        sa.ForeignKey("supporter.id", ondelete="CASCADE"), info={"personal": False}
    )
    #: what the consent is for, e.g. "newsletter"
    purpose: Mapped[str] = mapped_column(sa.String(32), info={"personal": False})
    #: True when granted, False when withdrawn
    granted: Mapped[bool] = mapped_column(info={"personal": True})
    #: when the supporter decided
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, info={"personal": True})
    #: where it was given: "donation form", "dashboard", "import", …
    source: Mapped[str] = mapped_column(sa.String(100), info={"personal": False})
    #: the exact wording the supporter saw
    wording: Mapped[str] = mapped_column(sa.Text, info={"personal": False})
    #: when the address confirmed the grant through its e-mailed link (double opt-in); None
    #: for a withdrawal, and for grants recorded before double opt-in (source says so)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": True})
    #: the request that was confirmed: which gift's form asked, and when
    request_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("consent_request.id", ondelete="SET NULL"), info={"personal": False}
    )


#: the consent purpose whose newest decision Supporter.newsletter mirrors
NEWSLETTER = "newsletter"


class SupporterSearchKey(Base):
    """What the supporters search matches by prefix: the e-mail and its "@domain", the whole
    sort name, and the sort name from each later word on ("anna maria nowak", "maria nowak",
    "nowak"; "sliwinska-kowalczyk", "kowalczyk"): see `search_keys`.

    Kept by the flush listener below whenever a supporter's name or e-mail changes.
    Compared byte by byte (collation "C" on PostgreSQL; SQLite's default already is),
    so a prefix is an index range on any database and under any server locale.
    """

    __tablename__ = "supporter_search_key"
    # With the key: whether a supporter has a key in a search's ranges is read from this
    # index alone, as the list walks supporters in its order looking for a page of matches.
    __table_args__ = (sa.Index("ix_supporter_search_key_supporter_id", "supporter_id", "key"),)

    key: Mapped[str] = mapped_column(
        sa.String(320).with_variant(sa.String(320, collation="C"), "postgresql"),
        primary_key=True,
        info={"personal": True},
    )
    supporter_id: Mapped[int] = mapped_column(
        sa.ForeignKey("supporter.id", ondelete="CASCADE"), primary_key=True, info={"personal": False}
    )


def search_keys(name_sort: str, email_normalised: str) -> set[str]:
    """The keys a supporter with this sort name and e-mail is found by: the sort name from
    the start of each of its words on (a word starts after a space or any other mark that is
    no letter or digit, so "sliwinska-kowalczyk" also gives "kowalczyk"), the e-mail, and
    its domain after an "@" ("@example.org").

    Migration 0025 holds a frozen copy of this rule: change both, and add a migration."""
    keys = {
        name_sort[index:]
        for index, char in enumerate(name_sort)
        if char.isalnum() and (index == 0 or not name_sort[index - 1].isalnum())
    }
    keys.add(name_sort)
    keys.add(email_normalised)
    _local, at, domain = email_normalised.rpartition("@")
    if at and domain:
        keys.add("@" + domain)
    return {key[:320] for key in keys if key}


def prefix_range(prefix: str) -> tuple[str, str | None]:
    """[low, high): every string that starts with `prefix`, compared by code point."""
    for end in range(len(prefix), 0, -1):
        code = ord(prefix[end - 1]) + 1
        if 0xD800 <= code <= 0xDFFF:  # surrogates are no characters
            code = 0xE000
        if code <= 0x10FFFF:
            return prefix, prefix[: end - 1] + chr(code)
    return prefix, None


def _changed(instance: Any, names: Iterable[str]) -> bool:
    return any(get_history(instance, name).has_changes() for name in names)


@event.listens_for(Session, "after_flush")
def _keep_derived(session: Session, _context: Any) -> None:
    """Search keys follow names and e-mails; the newsletter flag follows the consent log."""
    created = [row for row in session.new if isinstance(row, Supporter)]
    renamed = [
        row for row in session.dirty if isinstance(row, Supporter) and _changed(row, ("name_sort", "email_normalised"))
    ]
    if renamed:  # a supporter created in this flush has no keys to replace
        session.connection().execute(
            sa.delete(SupporterSearchKey).where(SupporterSearchKey.supporter_id.in_([row.id for row in renamed]))
        )
    if keyed := created + renamed:
        _add_search_keys(session.connection(), keyed)
    decided = {row.supporter_id for row in session.new if isinstance(row, Consent) and row.purpose == NEWSLETTER}
    if decided:
        _follow_newsletter_decisions(session, decided)
        session.info.setdefault("newsletter_changed", set()).update(decided)


def _add_search_keys(connection: sa.Connection, supporters: Iterable[Supporter]) -> None:
    """The search keys of these supporters (who have none): one COPY on PostgreSQL for an
    import's thousand supporters, not a statement a key."""
    insert_rows(
        connection,
        SupporterSearchKey.__table__,
        [
            {"key": key, "supporter_id": row.id}
            for row in supporters
            for key in sorted(search_keys(row.name_sort, row.email_normalised))
        ],
    )


def add_supporters(session: Session, supporters: Sequence[Supporter], columns: Sequence[str]) -> None:
    """New supporters written at once (an import's chunk), each given its id, their search
    keys following as the flush listener has them follow a supporter added to the session.

    On PostgreSQL the ids are taken from the table's sequence and the rows, their `columns`
    and every other column's default, go in by one COPY: the unit of work's thousand-row
    `INSERT … RETURNING` is read afresh by psycopg each time (too long for its cache), a
    sixth of an import's CPU. The supporters are not in the session then. Elsewhere they
    are added to the session and flushed."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        session.add_all(supporters)
        session.flush()
        return
    ids = insert_rows_with_ids(
        connection, Supporter.__table__, [{name: getattr(row, name) for name in columns} for row in supporters]
    )
    assert ids is not None
    for supporter, supporter_id in zip(supporters, ids, strict=True):
        supporter.id = supporter_id
    _add_search_keys(connection, supporters)


def _follow_newsletter_decisions(session: Session, supporter_ids: Iterable[int]) -> None:
    """The newsletter flag of these supporters follows their newest newsletter consent."""
    session.connection().execute(
        sa.update(Supporter)
        .where(Supporter.id.in_(sorted(supporter_ids)))
        .values(newsletter=sa.func.coalesce(newest_newsletter_decision(Supporter.id), False))
    )


def add_consents(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Many consents at once (an import's chunk; dicts of the same Consent columns): one
    statement (a COPY on PostgreSQL), and the newsletter flags follow them as the flush
    listener has them follow a consent added to the session."""
    insert_rows(session.connection(), Consent.__table__, rows)
    decided = {row["supporter_id"] for row in rows if row["purpose"] == NEWSLETTER}
    if decided:
        _follow_newsletter_decisions(session, decided)
        for supporter_id in decided:
            held = session.identity_map.get(sa.inspect(Supporter).identity_key_from_primary_key((supporter_id,)))
            if held is not None:
                session.expire(held, ["newsletter", "updated_at"])


@event.listens_for(Session, "after_flush")
def _close_links_sent_to_an_old_address(session: Session, _context: Any) -> None:
    """A confirmation link speaks for the address it was sent to: when a supporter's
    address changes, the links already sent to the old one stop working (a request not
    yet e-mailed goes to the new address once its gift is paid). So do a donor's
    sign-in links and codes."""
    moved = [row.id for row in session.dirty if isinstance(row, Supporter) and _changed(row, ("email_normalised",))]
    if moved:
        now = utcnow()
        session.connection().execute(
            sa.update(ConsentRequest)
            .where(
                ConsentRequest.supporter_id.in_(sorted(moved)),
                ConsentRequest.emailed_at.is_not(None),
                ConsentRequest.confirmed_at.is_(None),
                ConsentRequest.expires_at > now,
            )
            .values(expires_at=now)
        )
        # the same for a donor's sign-in links and codes (docs/donors.md)
        session.connection().execute(
            sa.update(DonorSignIn)
            .where(
                DonorSignIn.supporter_id.in_(sorted(moved)),
                DonorSignIn.used_at.is_(None),
                DonorSignIn.expires_at > now,
            )
            .values(expires_at=now)
        )


@event.listens_for(Session, "after_flush_postexec")
def _expire_newsletter(session: Session, _context: Any) -> None:
    """Supporters in memory read their newsletter flag afresh after the UPDATE above."""
    for supporter_id in session.info.pop("newsletter_changed", ()):
        row = session.identity_map.get(sa.inspect(Supporter).identity_key_from_primary_key((supporter_id,)))
        if row is not None:
            session.expire(row, ["newsletter", "updated_at"])


def newest_newsletter_decision(supporter_id: Any) -> sa.ScalarSelect[bool]:
    """The granted flag of the supporter's newest newsletter consent (None if there is none)."""
    consent = aliased(Consent)
    return (
        sa.select(consent.granted)
        .where(consent.supporter_id == supporter_id, consent.purpose == NEWSLETTER)
        .order_by(consent.recorded_at.desc(), consent.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def stored_search_keys(connection: sa.Connection) -> set[tuple[str, int]]:
    """Every (key, supporter id) as stored."""
    return {
        (key, supporter_id)
        for key, supporter_id in connection.execute(sa.select(SupporterSearchKey.key, SupporterSearchKey.supporter_id))
    }


def search_keys_from_supporters(connection: sa.Connection) -> set[tuple[str, int]]:
    """Every (key, supporter id) recomputed from the supporters' names and e-mails."""
    rows = connection.execute(
        sa.select(Supporter.id, Supporter.name_sort, Supporter.email_normalised).execution_options(yield_per=5000)
    )
    return {(key, row.id) for row in rows for key in search_keys(row.name_sort, row.email_normalised)}


def rebuild_search_keys(connection: sa.Connection) -> bool:
    """Replace the search keys by their recomputation; True if they had drifted."""
    wanted = search_keys_from_supporters(connection)
    if wanted == stored_search_keys(connection):
        return False
    connection.execute(sa.delete(SupporterSearchKey))
    batch = sorted(wanted)
    for start in range(0, len(batch), 5000):
        insert_rows(
            connection,
            SupporterSearchKey.__table__,
            [{"key": key, "supporter_id": supporter_id} for key, supporter_id in batch[start : start + 5000]],
        )
    return True


def rebuild_newsletter_flags(connection: sa.Connection) -> int:
    """Set every supporter's newsletter flag from the consent log; returns how many changed."""
    newest = sa.func.coalesce(newest_newsletter_decision(Supporter.id), False)
    return int(
        connection.execute(
            sa.update(Supporter).where(Supporter.newsletter != newest).values(newsletter=newest)
        ).rowcount
        or 0
    )
