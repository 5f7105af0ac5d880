"""What each line of a statement would become, read without writing anything: the preview
staff see before they import, and what the import then applies.

The rules, in order, for money coming in, in a currency the app takes gifts in:

1. the title holds a pledge's transfer title (check digit valid), the pledge awaits its
   money and the amount and currency are the pledge's: the pledge is paid (PLEDGE);
2. a title naming a pledge, with another amount or currency (AMOUNT_DIFFERS), or naming
   a pledge paid or closed already (PLEDGE_NOT_AWAITING): held for review, suggested for
   the pledge's supporter;
3. no title, but the sender's account (from a line of theirs matched before), an e-mail
   address in the title, or the sender's name (one supporter only by that name) is a
   supporter's: suggested as an offline gift for them (SUPPORTER);
4. nothing: for staff (NOTHING).

Money going out (OUTGOING) and other currencies (OTHER_CURRENCY) are shown and skipped.
A line already imported (by its identity) is shown as such and nothing happens to it.
Every look-up is one query per kind for the whole file, so a statement of 10,000 lines
is read in a few queries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import current_app

from supporters.bank.formats import Statement, StatementLine
from supporters.extensions import db
from supporters.giving import transfers
from supporters.lib.sql import one_of
from supporters.models import (
    BankLine,
    Gift,
    GiftMethod,
    LineDirection,
    LineMatch,
    LineStatus,
    Supporter,
    normalise_email,
    sort_key,
)

#: how many values one IN (...) holds (SQLite allows 32,766 parameters; kept well below)
CHUNK = 900
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")

T = TypeVar("T")


@dataclass
class Proposal:
    """One line of the file and what importing it would do."""

    line: StatementLine
    match: LineMatch
    #: the line as imported before (by its identity): nothing happens to it again
    known: BankLine | None = None
    pledge: Gift | None = None
    supporter: Supporter | None = None
    #: how the supporter was found: "account", "email", "name" or "pledge"
    matched_by: str | None = None

    @property
    def status(self) -> LineStatus:
        """What the line becomes when imported."""
        if self.match is LineMatch.PLEDGE:
            return LineStatus.PAID
        if self.match in (LineMatch.OUTGOING, LineMatch.OTHER_CURRENCY):
            return LineStatus.SKIPPED
        return LineStatus.OPEN


@dataclass
class Preview:
    """A statement's proposals, and their counts by what would happen."""

    statement: Statement
    proposals: list[Proposal]

    def count(self, match: LineMatch | str | None = None, *, known: bool | None = None) -> int:
        """How many lines have this match (any, with None), new or imported before (`known`)."""
        return sum(
            1
            for proposal in self.proposals
            if (match is None or proposal.match == match) and (known is None or (proposal.known is not None) is known)
        )


def chunks(values: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _in(values: Iterable[Any]) -> Iterator[Sequence[Any]]:
    yield from chunks(sorted(set(values)))


def known_lines(keys: Iterable[str]) -> dict[str, BankLine]:
    """The lines already imported, by identity."""
    found: dict[str, BankLine] = {}
    for part in _in(keys):
        for line in db.session.scalars(sa.select(BankLine).where(one_of(BankLine.identity_key, part))):
            found[line.identity_key] = line
    return found


def _pledges(titles: Iterable[str]) -> dict[str, Gift]:
    found: dict[str, Gift] = {}
    for part in _in(titles):
        query = sa.select(Gift).where(one_of(Gift.transfer_reference, part), Gift.method == GiftMethod.BANK_TRANSFER)
        for gift in db.session.scalars(query):
            assert gift.transfer_reference is not None
            found[gift.transfer_reference] = gift
    return found


def _by_account(accounts: Iterable[str]) -> dict[str, int]:
    """The supporter each account's money went to before (the latest line matched)."""
    found: dict[str, int] = {}
    for part in _in(accounts):
        rows = db.session.execute(
            sa.select(BankLine.counterparty_account, BankLine.supporter_id)
            .where(
                one_of(BankLine.counterparty_account, part),
                BankLine.supporter_id.is_not(None),
                BankLine.status.in_((LineStatus.PAID, LineStatus.GIFT)),
            )
            .order_by(BankLine.id)
        )
        for account, supporter_id in rows:
            if account is not None and supporter_id is not None:
                found[account] = supporter_id
    return found


def _by_email(emails: Iterable[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for part in _in(emails):
        rows = db.session.execute(
            # a merged-away supporter's address names the one it was merged into
            sa.select(Supporter.email_normalised, sa.func.coalesce(Supporter.merged_into_id, Supporter.id)).where(
                one_of(Supporter.email_normalised, part), Supporter.anonymised_at.is_(None)
            )
        )
        found.update({str(email): int(supporter_id) for email, supporter_id in rows})
    return found


def _by_name(names: Iterable[str]) -> dict[str, int]:
    """Names that only one supporter has: a name two people share suggests no one."""
    counted: dict[str, list[int]] = {}
    for part in _in(names):
        rows = db.session.execute(
            sa.select(Supporter.name_sort, Supporter.id).where(
                one_of(Supporter.name_sort, part), Supporter.anonymised_at.is_(None), Supporter.merged_into_id.is_(None)
            )
        )
        for name, supporter_id in rows:
            counted.setdefault(name, []).append(supporter_id)
    return {name: ids[0] for name, ids in counted.items() if len(ids) == 1}


def name_keys(name: str | None) -> list[str]:
    """The forms of a sender's name a supporter's may have: as written, and with its first
    two words swapped (banks often write "KOWALSKA ANNA")."""
    key = sort_key(name or "")
    if not key:
        return []
    words = key.split()
    keys = [key]
    if len(words) >= 2:
        keys.append(" ".join([words[1], words[0], *words[2:]]))
        if len(words) > 2:  # a name followed by an address: the first two words alone
            keys += [" ".join(words[:2]), " ".join([words[1], words[0]])]
    return keys


def emails_in(line: StatementLine) -> list[str]:
    return [normalise_email(found) for found in _EMAIL.findall(f"{line.title or ''} {line.counterparty_name or ''}")]


def preview(statement: Statement) -> Preview:
    """What importing `statement` would do to each of its lines. Writes nothing."""
    lines = statement.lines
    currencies = set(current_app.config["SUPPORTERS_CURRENCIES"])
    known = known_lines(line.identity_key for line in lines)
    incoming = [
        line
        for line in lines
        if line.identity_key not in known and line.direction is LineDirection.CREDIT and line.currency in currencies
    ]
    references = {id(line): transfers.references_in(line.title or "") for line in incoming}
    pledges = _pledges(ref.text for refs in references.values() for ref in refs)
    accounts = _by_account(line.counterparty_account for line in incoming if line.counterparty_account)
    emails = _by_email(email for line in incoming for email in emails_in(line))
    names = _by_name(key for line in incoming for key in name_keys(line.counterparty_name))
    supporter_ids = set(accounts.values()) | set(emails.values()) | set(names.values())
    supporters = {
        supporter.id: supporter
        for part in chunks(sorted(supporter_ids))
        for supporter in db.session.scalars(sa.select(Supporter).where(one_of(Supporter.id, part)))
    }

    claimed: set[int] = set()
    proposals = []
    for line in lines:
        if line.identity_key in known:
            earlier = known[line.identity_key]
            proposals.append(Proposal(line, earlier.match, known=earlier))
        elif line.direction is LineDirection.DEBIT:
            proposals.append(Proposal(line, LineMatch.OUTGOING))
        elif line.currency not in currencies:
            proposals.append(Proposal(line, LineMatch.OTHER_CURRENCY))
        else:
            proposals.append(
                _propose(line, references[id(line)], pledges, claimed, accounts, emails, names, supporters)
            )
    return Preview(statement, proposals)


def _propose(
    line: StatementLine,
    references: list[transfers.Reference],
    pledges: dict[str, Gift],
    claimed: set[int],
    accounts: dict[str, int],
    emails: dict[str, int],
    names: dict[str, int],
    supporters: dict[int, Supporter],
) -> Proposal:
    named = [pledges[ref.text] for ref in references if ref.text in pledges]
    if named:
        # a title naming several pledges pays the one whose amount it is, if any
        fitting = [
            gift
            for gift in named
            if transfers.is_awaiting(gift)
            and gift.id not in claimed
            and (gift.amount_minor, gift.currency) == (line.amount_minor, line.currency)
        ]
        if fitting:
            claimed.add(fitting[0].id)
            return Proposal(
                line, LineMatch.PLEDGE, pledge=fitting[0], supporter=fitting[0].supporter, matched_by="pledge"
            )
        pledge = named[0]
        awaiting = transfers.is_awaiting(pledge) and pledge.id not in claimed
        match = LineMatch.AMOUNT_DIFFERS if awaiting else LineMatch.PLEDGE_NOT_AWAITING
        return Proposal(line, match, pledge=pledge, supporter=pledge.supporter, matched_by="pledge")
    found: tuple[str, int] | None = None
    if line.counterparty_account and line.counterparty_account in accounts:
        found = ("account", accounts[line.counterparty_account])
    if found is None:
        found = next((("email", emails[email]) for email in emails_in(line) if email in emails), None)
    if found is None:
        found = next((("name", names[key]) for key in name_keys(line.counterparty_name) if key in names), None)
    if found is not None and found[1] in supporters:
        return Proposal(line, LineMatch.SUPPORTER, supporter=supporters[found[1]], matched_by=found[0])
    return Proposal(line, LineMatch.NOTHING)
