"""Bank transfers: the pledge a donor makes on the form, its transfer title, and the
money that arrives for it.

A donor who chooses "Bank transfer" gets a pledge: a gift with method
`bank_transfer`, status `pending` ("awaiting transfer"), and a unique transfer title
(`transfer_reference`), e.g. "DAR 2026 000153 0": the year it was made, the gift's
number, and a Luhn check digit over both, so a title typed with one digit wrong or
two swapped is not taken for another pledge. Nothing counts until the money is matched
on a bank statement (supporters/bank/) and `receive_transfer` marks the pledge paid.

Functions flush; the caller commits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa
from stdnum import luhn

from supporters.extensions import db
from supporters.lib.dates import org_timezone
from supporters.models import Gift, GiftMethod, GiftStatus

PREFIX = "DAR"
#: a title as banks pass it on: any case, the parts apart or run together, with spaces,
#: dashes, dots or slashes between them
_FOUND = re.compile(r"(?<![A-Z0-9])DAR[\s./-]*([0-9]{4})[\s./-]*([0-9]{6,10})[\s./-]*([0-9])(?![0-9])", re.IGNORECASE)


@dataclass(frozen=True)
class Reference:
    """A transfer title read back: the year and gift number it names (check digit valid)."""

    year: int
    gift_id: int

    @property
    def text(self) -> str:
        return format_reference(self.year, self.gift_id)


def format_reference(year: int, gift_id: int) -> str:
    """The title for gift `gift_id` pledged in `year`: "DAR 2026 000153 0"."""
    digits = f"{year:04d}{gift_id:06d}"
    return f"{PREFIX} {year:04d} {gift_id:06d} {luhn.calc_check_digit(digits)}"


def references_in(text: str) -> list[Reference]:
    """Every valid transfer title in a bank line's text, in order, each once. A title whose
    check digit is wrong is not one."""
    found: list[Reference] = []
    for year, number, check in _FOUND.findall(text or ""):
        if luhn.is_valid(f"{year}{number}{check}"):
            reference = Reference(int(year), int(number))
            if reference not in found:
                found.append(reference)
    return found


def assign_reference(gift: Gift) -> str:
    """Give a bank-transfer pledge its title (once; flushed first, so it has its id)."""
    if gift.transfer_reference is None:
        db.session.flush()
        year = gift.created_at.astimezone(org_timezone()).year
        gift.transfer_reference = format_reference(year, gift.id)
        db.session.flush()
    return gift.transfer_reference


def pledge_for(reference: Reference) -> Gift | None:
    """The bank-transfer gift this title was given to, whatever its status now."""
    return db.session.scalars(
        sa.select(Gift).where(Gift.transfer_reference == reference.text, Gift.method == GiftMethod.BANK_TRANSFER)
    ).first()


def is_awaiting(gift: Gift) -> bool:
    """True for a pledge whose money has not arrived (and that was not closed)."""
    return gift.method is GiftMethod.BANK_TRANSFER and gift.status is GiftStatus.PENDING
