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
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from stdnum import luhn

from supporters.extensions import db
from supporters.giving import lifecycle
from supporters.giving.currency import convert_gift
from supporters.giving.offline_gifts import paid_at_for
from supporters.lib import audit
from supporters.lib.dates import org_timezone
from supporters.lib.errors import Refused
from supporters.lib.i18n import current_locale
from supporters.lib.money import format_amount
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


# --- The money arrives ----------------------------------------------------------------


def receive_transfer(
    gift: Gift,
    *,
    amount_minor: int,
    currency: str,
    booked_on: date,
    bank_line_id: int | None = None,
    actor: Any,
) -> Gift:
    """The money for an awaiting pledge arrived: the pledge is paid on `booked_on`, the day
    the bank booked it (noon UTC, as every offline gift), numbered, converted, counted in
    the totals and its receipt queued, through the one way a gift is paid
    (`lifecycle.mark_paid`). Audited, with the statement line it came from.

    Refused, having changed nothing, for a gift that is not an awaiting pledge (paid
    already, closed, or not a bank transfer) and for money other than what was pledged:
    a different amount or currency is for a person to look at, never paid as it stands.
    """
    lifecycle.lock(gift)
    if not is_awaiting(gift):
        raise Refused(_l("This gift is not a bank-transfer pledge awaiting its money."), status=409)
    if (amount_minor, currency) != (gift.amount_minor, gift.currency):
        locale = current_locale()
        raise Refused(
            _l("The transfer is %(received)s but the pledge is %(pledged)s."),
            status=409,
            received=format_amount(amount_minor, currency, locale),
            pledged=format_amount(gift.amount_minor, gift.currency, locale),
        )
    # The day the money arrived decides its rate: converted at it before the payment is
    # recorded, so the totals mark_paid brings up to date count it once, converted.
    paid_at = paid_at_for(booked_on)
    gift.paid_at = paid_at
    convert_gift(gift)
    lifecycle.mark_paid(gift, paid_at=paid_at)
    audit.record(
        actor,
        "gift.transfer_received",
        "gift",
        gift.id,
        actor_name="bank import" if actor is None else None,
        amount_minor=amount_minor,
        currency=currency,
        booked_on=booked_on.isoformat(),
        bank_line_id=bank_line_id,
        reference=gift.transfer_reference,
    )  # (the receipt's number is given as the transaction commits: it is on the gift, not here)
    return gift


def stale_pledges(now: datetime, days: int) -> sa.Select[Gift]:
    """Pledges still awaiting their money `days` after they were made, oldest first."""
    return (
        sa.select(Gift)
        .where(
            Gift.method == GiftMethod.BANK_TRANSFER,
            Gift.status == GiftStatus.PENDING,
            Gift.transfer_reference.is_not(None),
            Gift.created_at < now - timedelta(days=days),
        )
        .order_by(Gift.created_at, Gift.id)
    )


def close_stale_pledges(now: datetime, days: int) -> int:
    """Close every pledge unmatched for `days` as canceled, "not received"; how many were.

    The donor is not told (they may simply have changed their mind, or paid with another
    title: staff can still record the money as an offline gift). Each closing is audited.
    Money arriving later for a closed pledge is held for review, never paid blindly.
    """
    closed = 0
    for gift in db.session.scalars(stale_pledges(now, days)).all():
        if lifecycle.mark_canceled(gift):
            audit.record(
                None,
                "gift.pledge_closed",
                "gift",
                gift.id,
                actor_name="pledge expiry",
                reason="not received",
                days=days,
                reference=gift.transfer_reference,
            )
            closed += 1
    return closed
