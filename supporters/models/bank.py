"""Bank statements imported by staff or a cron, and their lines: what each line was, what
the matching found for it, and what became of it (supporters/bank/)."""

from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from supporters.models.base import Base, UTCDateTime, currency_check, enum_column, utcnow
from supporters.models.gift import Gift
from supporters.models.supporter import Supporter


class StatementStatus(enum.StrEnum):
    #: uploaded and previewed: nothing of it applied yet
    UPLOADED = "uploaded"
    #: its lines are recorded and the sure matches applied
    IMPORTED = "imported"


class LineDirection(enum.StrEnum):
    CREDIT = "credit"
    DEBIT = "debit"


class LineMatch(enum.StrEnum):
    """What the matching found for a line (supporters/bank/matching.py)."""

    #: the title names an awaiting pledge, and the money is what was pledged
    PLEDGE = "pledge"
    #: the title names a pledge, but the amount or currency differs
    AMOUNT_DIFFERS = "amount_differs"
    #: the title names a pledge that is paid or closed already
    PLEDGE_NOT_AWAITING = "pledge_not_awaiting"
    #: no title, but the sender's account, e-mail or name is a supporter's
    SUPPORTER = "supporter"
    #: nothing found: for a person
    NOTHING = "nothing"
    #: money going out of the account: shown, not a gift
    OUTGOING = "outgoing"
    #: a currency the app takes no gifts in
    OTHER_CURRENCY = "other_currency"


class LineStatus(enum.StrEnum):
    """What became of a line."""

    #: the pledge its title names was paid by it
    PAID = "paid"
    #: waiting for staff: review, a suggestion, or nothing found
    OPEN = "open"
    #: staff recorded it as an offline gift of a supporter
    GIFT = "gift"
    #: staff said it is no gift (bank interest, a refund, a fee)
    NOT_A_GIFT = "not_a_gift"
    #: outgoing or in another currency: left aside unless staff take it up
    SKIPPED = "skipped"


class BankStatement(Base):
    """One file from the bank, as uploaded: who, when, which file and format, and what
    importing it did. The file is kept, so the preview and the import read the same bytes
    on any machine, and an import can be looked at again later. Holds personal data
    (senders' names and accounts)."""

    __tablename__ = "bank_statement"

    id: Mapped[int] = mapped_column(primary_key=True, info={"personal": False})
    #: when it was uploaded, and by whom (a staff account, or "cli" for the cron)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, info={"personal": False})
    staff_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_user.id"), info={"personal": False})
    uploaded_by: Mapped[str] = mapped_column(sa.String(320), info={"personal": True})
    #: the file's name as uploaded (personal: may name the account holder)
    file_name: Mapped[str] = mapped_column(sa.String(255), info={"personal": True})
    #: "mt940" or "csv"; for CSV, the column layout (preset) it was read with
    format: Mapped[str] = mapped_column(sa.String(8), info={"personal": False})
    preset: Mapped[str | None] = mapped_column(sa.String(40), info={"personal": False})
    #: SHA-256 of the file, to say "this file was uploaded before"
    sha256: Mapped[str] = mapped_column(sa.String(64), index=True, info={"personal": False})
    #: the file itself (personal)
    content: Mapped[bytes] = mapped_column(sa.LargeBinary, info={"personal": True})
    #: the statement's own account, as the file names it
    account: Mapped[str | None] = mapped_column(sa.String(64), info={"personal": False})
    status: Mapped[StatementStatus] = mapped_column(
        enum_column(StatementStatus, "bank_statement_status"),
        default=StatementStatus.UPLOADED,
        info={"personal": False},
    )
    #: when it was imported, and by whom
    imported_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})
    imported_by: Mapped[str | None] = mapped_column(sa.String(320), info={"personal": True})
    #: the lines the file holds; those new to us (the rest came in an earlier import);
    #: pledges paid by it; lines left for staff; lines skipped (outgoing, other currencies)
    line_count: Mapped[int] = mapped_column(default=0, info={"personal": False})
    new_count: Mapped[int] = mapped_column(default=0, info={"personal": False})
    paid_count: Mapped[int] = mapped_column(default=0, info={"personal": False})
    open_count: Mapped[int] = mapped_column(default=0, info={"personal": False})
    skipped_count: Mapped[int] = mapped_column(default=0, info={"personal": False})


class BankLine(Base):
    """One booking on a statement, recorded once however many statements carry it.

    `identity_key` is the bank's own reference for the booking, or, where the bank gives
    none, a hash of the sender's account, the date, the amount, the title and its place
    among identical bookings of the file: unique, so a statement imported twice, or two
    statements that overlap, record each booking once."""

    __tablename__ = "bank_line"
    __table_args__ = (
        sa.CheckConstraint("amount_minor > 0", name="amount_positive"),
        currency_check("currency"),
        sa.Index("ix_bank_line_statement_id", "statement_id", "id"),
        sa.Index("ix_bank_line_status", "status", "id"),
        sa.Index("ix_bank_line_counterparty_account", "counterparty_account"),
        sa.Index("ix_bank_line_gift_id", "gift_id"),
        sa.Index("ix_bank_line_supporter_id", "supporter_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, info={"personal": False})
    #: the import that first brought it
    statement_id: Mapped[int] = mapped_column(sa.ForeignKey("bank_statement.id"), info={"personal": False})
    #: the booking's identity across imports (above)
    identity_key: Mapped[str] = mapped_column(sa.String(64), unique=True, info={"personal": False})
    #: the day the bank booked it
    booked_on: Mapped[date] = mapped_column(sa.Date, info={"personal": False})
    #: how much, always positive; `direction` says which way
    amount_minor: Mapped[int] = mapped_column(sa.BigInteger, info={"personal": False})
    currency: Mapped[str] = mapped_column(sa.String(3), info={"personal": False})
    direction: Mapped[LineDirection] = mapped_column(
        enum_column(LineDirection, "bank_line_direction"), info={"personal": False}
    )
    #: the sender (or, going out, the recipient): name and account (personal)
    counterparty_name: Mapped[str | None] = mapped_column(sa.String(200), info={"personal": True})
    counterparty_account: Mapped[str | None] = mapped_column(sa.String(64), info={"personal": True})
    #: the transfer's title as the bank passes it on (personal)
    title: Mapped[str | None] = mapped_column(sa.String(500), info={"personal": True})
    #: the bank's own reference of the booking, when it gives one
    bank_reference: Mapped[str | None] = mapped_column(sa.String(100), info={"personal": False})
    #: what the matching found, and what became of it
    match: Mapped[LineMatch] = mapped_column(enum_column(LineMatch, "bank_line_match"), info={"personal": False})
    status: Mapped[LineStatus] = mapped_column(enum_column(LineStatus, "bank_line_status"), info={"personal": False})
    #: how the supporter was found: "account", "email", "name" or "pledge"
    matched_by: Mapped[str | None] = mapped_column(sa.String(16), info={"personal": False})
    #: the pledge the title names
    pledge_id: Mapped[int | None] = mapped_column(sa.ForeignKey("gift.id"), info={"personal": False})
    #: the supporter suggested, or the one staff assigned it to
    supporter_id: Mapped[int | None] = mapped_column(sa.ForeignKey("supporter.id"), info={"personal": False})
    #: the gift it paid (the pledge) or became (an offline gift)
    gift_id: Mapped[int | None] = mapped_column(sa.ForeignKey("gift.id"), info={"personal": False})
    #: who decided what became of it, when, and why (staff's words, for "not a gift")
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})
    decided_by: Mapped[str | None] = mapped_column(sa.String(320), info={"personal": True})
    decision_note: Mapped[str | None] = mapped_column(sa.String(500), info={"personal": True})

    statement: Mapped[BankStatement] = relationship()
    supporter: Mapped[Supporter | None] = relationship()
    gift: Mapped[Gift | None] = relationship(foreign_keys=[gift_id])
    pledge: Mapped[Gift | None] = relationship(foreign_keys=[pledge_id])
