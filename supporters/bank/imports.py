"""Importing a bank statement, and what staff decide about the lines left for them.

A file is uploaded (kept as it came, nothing applied), previewed (matching.py, nothing
written), then imported: each booking new to us becomes one `BankLine`, the sure matches
(a pledge's title and its amount) pay their pledges, and everything else waits for staff,
who record a line as an offline gift of a supporter (found, or new) or mark it "not a
gift". Every upload, import and decision is audited. Functions flush; the caller commits.
"""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError

from supporters.bank.formats import FORMATS, read_statement
from supporters.bank.matching import Preview, preview
from supporters.extensions import db
from supporters.giving import offline_gifts, transfers
from supporters.lib import audit
from supporters.lib.errors import Refused
from supporters.models import (
    BankLine,
    BankStatement,
    GiftMethod,
    LineDirection,
    LineMatch,
    LineStatus,
    StatementStatus,
    Supporter,
    utcnow,
)


def _who(actor: Any) -> str:
    return actor.email if actor is not None else "cli"


def upload_statement(
    content: bytes, *, file_name: str, file_format: str, preset: str | None, actor: Any
) -> BankStatement:
    """Keep an uploaded statement file for its preview and import; refused, keeping
    nothing, when it cannot be read. Audited."""
    if file_format not in FORMATS:
        raise Refused(_l("Choose the file's format: MT940 or CSV."), field="format")
    statement = read_statement(content, file_format, preset)
    row = BankStatement(
        staff_user_id=actor.id if actor is not None else None,
        uploaded_by=_who(actor),
        file_name=(file_name or "statement").strip()[:255] or "statement",
        format=file_format,
        preset=preset if file_format == "csv" else None,
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
        account=statement.account,
        line_count=len(statement.lines),
    )
    db.session.add(row)
    db.session.flush()
    audit.record(
        actor,
        "bank.statement_uploaded",
        "bank_statement",
        row.id,
        actor_name=None if actor else "cli",
        file_name=row.file_name,
        format=file_format,
        preset=row.preset,
        sha256=row.sha256,
        lines=row.line_count,
    )
    return row


def statement_preview(statement: BankStatement) -> Preview:
    """What importing the uploaded `statement` would do, line by line. Writes nothing."""
    return preview(read_statement(statement.content, statement.format, statement.preset))


def import_statement(statement: BankStatement, *, actor: Any) -> BankStatement:
    """Import an uploaded statement: record each booking not imported before, pay the
    pledges whose title and amount it carries (receipts queued), and leave the rest for
    staff (open) or aside (skipped). A booking already imported, by this statement or an
    overlapping one, changes nothing. Audited, with the counts.

    Refused for a statement already imported. Two imports of overlapping files at one
    moment: the second is refused (import it again: it then skips what the first did).
    """
    db.session.flush()
    db.session.refresh(statement, with_for_update=True)
    if statement.status is StatementStatus.IMPORTED:
        raise Refused(_l("This statement was imported already."), status=409)
    planned = statement_preview(statement)
    new = [proposal for proposal in planned.proposals if proposal.known is None]
    rows: list[tuple[BankLine, Any]] = []
    try:
        with db.session.begin_nested():
            for proposal in new:
                line = proposal.line
                row = BankLine(
                    statement_id=statement.id,
                    identity_key=line.identity_key,
                    booked_on=line.booked_on,
                    amount_minor=line.amount_minor,
                    currency=line.currency,
                    direction=line.direction,
                    counterparty_name=line.counterparty_name,
                    counterparty_account=line.counterparty_account,
                    title=line.title,
                    bank_reference=line.bank_reference,
                    match=proposal.match,
                    status=proposal.status,
                    matched_by=proposal.matched_by,
                    pledge_id=proposal.pledge.id if proposal.pledge else None,
                    supporter_id=proposal.supporter.id if proposal.supporter else None,
                )
                if proposal.match is LineMatch.PLEDGE:
                    # written paid at once (one INSERT, no UPDATE per line); undone below
                    # should the pledge refuse the money
                    assert proposal.pledge is not None
                    row.gift_id, row.decided_at, row.decided_by = proposal.pledge.id, utcnow(), _who(actor)
                rows.append((row, proposal))
            db.session.add_all([row for row, _proposal in rows])
            db.session.flush()
    except IntegrityError:
        raise Refused(
            _l("Another import of the same bookings ran at this moment: import this statement again."), status=409
        ) from None
    paid = 0
    for row, proposal in rows:
        if proposal.match is not LineMatch.PLEDGE:
            continue
        try:
            transfers.receive_transfer(
                proposal.pledge,
                amount_minor=row.amount_minor,
                currency=row.currency,
                booked_on=row.booked_on,
                bank_line_id=row.id,
                actor=actor,
            )
        except Refused:
            # paid or closed by someone else since the preview read it: for a person
            row.match, row.status = LineMatch.PLEDGE_NOT_AWAITING, LineStatus.OPEN
            row.gift_id = row.decided_at = row.decided_by = None
            continue
        paid += 1
    statement.status = StatementStatus.IMPORTED
    statement.imported_at = utcnow()
    statement.imported_by = _who(actor)
    statement.line_count = len(planned.proposals)
    statement.new_count = len(new)
    statement.paid_count = paid
    statement.skipped_count = sum(1 for row, _proposal in rows if row.status is LineStatus.SKIPPED)
    statement.open_count = sum(1 for row, _proposal in rows if row.status is LineStatus.OPEN)
    db.session.flush()
    audit.record(
        actor,
        "bank.statement_imported",
        "bank_statement",
        statement.id,
        actor_name=None if actor else "cli",
        lines=statement.line_count,
        new=statement.new_count,
        already_imported=statement.line_count - statement.new_count,
        pledges_paid=paid,
        open=statement.open_count,
        skipped=statement.skipped_count,
    )
    return statement


# --- Staff decide ------------------------------------------------------------------


def lock_line(line: BankLine) -> BankLine:
    """Wait for anyone else deciding about this line, then read it as it now is: two staff
    members clicking at once record one gift, not two."""
    db.session.flush()
    db.session.refresh(line, with_for_update=True)
    return line


def _check_open(line: BankLine) -> None:
    if line.status not in (LineStatus.OPEN, LineStatus.SKIPPED):
        raise Refused(_l("Someone decided about this line already."), status=409)


def record_line_as_gift(
    line: BankLine, supporter: Supporter, *, actor: Any, campaign_id: int | None = None
) -> BankLine:
    """Record an open (or skipped) incoming line as an offline gift of `supporter`: paid on
    the booking date, receipted, counted (offline_gifts.record_offline_gift). Audited with
    the line it came from. Refused for money going out and for a line decided already."""
    lock_line(line)
    _check_open(line)
    if line.direction is not LineDirection.CREDIT:
        raise Refused(_l("Money going out of the account is not a gift."), status=409)
    gift = offline_gifts.record_offline_gift(
        supporter,
        amount_minor=line.amount_minor,
        currency=line.currency,
        method=GiftMethod.BANK_TRANSFER,
        received_on=line.booked_on,
        staff_user=actor,
        reference=line.title or line.bank_reference,
        campaign_id=campaign_id,
        # the bank booked this amount: there is no typing error to confirm
        confirmed=True,
    )
    line.status = LineStatus.GIFT
    line.gift_id = gift.id
    line.supporter_id = supporter.id
    line.decided_at = utcnow()
    line.decided_by = _who(actor)
    db.session.flush()
    audit.record(
        actor,
        "bank.line_recorded_as_gift",
        "bank_line",
        line.id,
        gift_id=gift.id,
        supporter_id=supporter.id,
        suggested=line.match is LineMatch.SUPPORTER,
        match=line.match.value,
    )
    return line


def mark_not_a_gift(line: BankLine, *, reason: str, actor: Any) -> BankLine:
    """Staff say an open (or skipped) line is no gift: bank interest, a refund, a fee.
    Audited with the reason."""
    lock_line(line)
    _check_open(line)
    reason = (reason or "").strip()
    if not reason:
        raise Refused(_l("Say what the money is, for the statement's history."), field="reason")
    line.status = LineStatus.NOT_A_GIFT
    line.decision_note = reason[:500]
    line.decided_at = utcnow()
    line.decided_by = _who(actor)
    db.session.flush()
    audit.record(actor, "bank.line_not_a_gift", "bank_line", line.id, reason=line.decision_note, match=line.match.value)
    return line


def open_lines_count() -> int:
    """How many imported lines wait for staff."""
    return (
        db.session.scalar(sa.select(sa.func.count()).select_from(BankLine).where(BankLine.status == LineStatus.OPEN))
        or 0
    )
