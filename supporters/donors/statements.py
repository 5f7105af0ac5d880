"""The donor's documents: a paid gift's receipt (PDF) and the statement of a year's or a
period's gifts, with the donor's name and postal address.

Which gifts a statement lists: those whose money counts (`GIFT_COUNTED`: paid, or partly
refunded), paid in the period (the organisation's days), each with what was kept of it
in its own currency (`kept_minor`). A gift refunded in full, voided, disputed (the bank
holds the money), pending or failed is left out. The totals are per currency; currencies
are never added together.

Everything here reads the supporter of the donor session only: a gift id of another
supporter finds nothing. An erased supporter has no documents. Rules flush, never commit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from supporters.donors.web import actor_name
from supporters.extensions import db
from supporters.lib.dates import in_order, org_timezone, org_today
from supporters.lib.errors import Refused
from supporters.lib.forms import whole_number
from supporters.models import GIFT_COUNTED, AuditEvent, Gift, GiftMethod, GiftStatus, Supporter
from supporters.people import edits

#: the gifts whose money reached the organisation's bank account (a transfer, or a card or
#: other online payment through Stripe, paid out to that account); cash and cheques did not
#: (Polish PIT/O relief asks for a payment to the bank account)
TO_BANK_ACCOUNT = frozenset({GiftMethod.BANK_TRANSFER, GiftMethod.STRIPE})
#: a gift's receipt stands while the money is kept (in part) or held in a dispute
RECEIPT_STANDS = frozenset({GiftStatus.SUCCEEDED, GiftStatus.PARTIALLY_REFUNDED, GiftStatus.DISPUTED})
#: the first year a statement may be asked for
FIRST_YEAR = 2000
#: what the donor may correct before a statement: their name and postal address
POSTAL_FIELDS = ("name", "address_line1", "address_line2", "postal_code", "city", "country")
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

NO_GIFT = _l("There is no such gift on your page.")
NO_RECEIPT = _l("This gift has no receipt: only a paid gift with a receipt number has one.")
VOIDED = _l("This gift was recorded by mistake and its receipt was cancelled.")
REFUNDED = _l("This gift was refunded in full, so its receipt no longer stands.")
ERASED = _l("This supporter's data was erased on request; there are no documents for it.")
BAD_YEAR = _l("Choose a year from %(first)s to %(last)s.")
BAD_DAY = _l("Enter the dates like 2026-01-31, from %(first)s to %(last)s.")
BAD_PERIOD = _l("Choose either a year (?year=2025) or a period (?from=2025-01-01&to=2025-12-31).")


def kept_minor(gift: Gift) -> int:
    """What the organisation kept of a counted gift, in the gift's own currency (minor
    units): its amount less what was refunded; 0 for a gift whose money does not count.
    (`models.net_base` is the same in the reporting currency; `giving.currency.not_converted`
    sums this in SQL.)"""
    return gift.amount_minor - gift.refunded_minor if gift.status in GIFT_COUNTED else 0


def to_bank_account(gift: Gift) -> bool:
    """True when the gift was paid to the organisation's bank account (transfer, card/online)."""
    return gift.method in TO_BANK_ACCOUNT


def _refuse_if_erased(supporter: Supporter) -> None:
    if supporter.anonymised_at is not None:
        raise Refused(ERASED, status=403)


# --- Receipts -----------------------------------------------------------------------------------


def receipt_refusal(gift: Gift) -> Refused | None:
    """Why this gift (of the donor) has no receipt to download; None when it has one."""
    if gift.status is GiftStatus.VOIDED:
        return Refused(VOIDED, status=410)
    if gift.status is GiftStatus.REFUNDED:
        return Refused(REFUNDED, status=410)
    if gift.status not in RECEIPT_STANDS or not gift.receipt_number or gift.paid_at is None:
        return Refused(NO_RECEIPT, status=404)
    return None


def has_receipt(gift: Gift) -> bool:
    """True when the gift's receipt can be downloaded (the gift list's link)."""
    return receipt_refusal(gift) is None


def receipt_gift(supporter: Supporter, gift_id: int) -> Gift:
    """The donor's own gift whose receipt is asked for. Refuses (404) a gift that is not
    theirs or has no receipt, (410) one voided or refunded in full, (403) an erased donor."""
    _refuse_if_erased(supporter)
    gift = db.session.scalars(sa.select(Gift).where(Gift.id == gift_id, Gift.supporter_id == supporter.id)).first()
    if gift is None:
        raise Refused(NO_GIFT, status=404)
    refusal = receipt_refusal(gift)
    if refusal is not None:
        raise refusal
    return gift


def replaced_receipt(gift: Gift) -> str | None:
    """For a gift staff corrected, the receipt number its latest correction replaced ("" when
    that one had none), as the corrected receipt e-mail says it; None for a gift never corrected."""
    details = db.session.scalars(
        sa.select(AuditEvent.details)
        .where(AuditEvent.action == "gift.correct", AuditEvent.target_type == "gift")
        .where(AuditEvent.target_id == str(gift.id))
        .order_by(AuditEvent.id.desc())
        .limit(1)
    ).first()
    if details is None:
        return None
    return str(details.get("replaced_receipt_number") or details.get("receipt_number") or "")


# --- The period ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """The days a statement covers, both included, as the organisation counts days; `year`
    when it is a whole calendar year."""

    start: date
    end: date
    year: int | None = None

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        """From the start of the first day to the start of the day after the last, in UTC."""
        zone = org_timezone()
        start = datetime.combine(self.start, time.min, tzinfo=zone).astimezone(UTC)
        end = datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
        return start, end

    def query(self) -> dict[str, str]:
        """The statement's address parameters for this period."""
        if self.year is not None:
            return {"year": str(self.year)}
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}

    @property
    def slug(self) -> str:
        """The period in a file name: "2025" or "2025-01-01_2025-03-31"."""
        return str(self.year) if self.year is not None else f"{self.start.isoformat()}_{self.end.isoformat()}"


def last_year() -> int:
    """The year a statement is usually asked for: the one before this one."""
    return org_today().year - 1


def year_period(year: int) -> Period:
    """A calendar year, from FIRST_YEAR to this one (refused otherwise, on `year`)."""
    this_year = org_today().year
    if not FIRST_YEAR <= year <= this_year:
        raise Refused(BAD_YEAR, field="year", first=FIRST_YEAR, last=this_year)
    return Period(date(year, 1, 1), date(year, 12, 31), year)


def days_period(start: date, end: date) -> Period:
    """The days from `start` to `end` (read the right way round if typed backwards), within
    FIRST_YEAR and the end of this year; a whole calendar year is that year's statement."""
    this_year = org_today().year
    first, last, _swapped = in_order(start, end)
    assert first is not None and last is not None
    start, end = first, last
    if start.year < FIRST_YEAR or end.year > this_year:
        raise Refused(BAD_DAY, field="date_from", first=f"{FIRST_YEAR}-01-01", last=f"{this_year}-12-31")
    if start == date(start.year, 1, 1) and end == date(start.year, 12, 31):
        return Period(start, end, start.year)
    return Period(start, end)


def _day(raw: str) -> date:
    this_year = org_today().year
    refusal = Refused(BAD_DAY, field="date_from", first=f"{FIRST_YEAR}-01-01", last=f"{this_year}-12-31")
    if not _ISO_DAY.fullmatch(raw):
        raise refusal
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise refusal from None


def period_from_query(args: Mapping[str, str]) -> Period:
    """The period the statement's address names: `year=2025`, or `from=…&to=…` (ISO days).
    Anything else is refused (400) with what to write."""
    year, start, end = (str(args.get(name) or "").strip() for name in ("year", "from", "to"))
    if year and not (start or end):
        number = whole_number(year, maximum=9999)
        if number is None:
            raise Refused(BAD_YEAR, field="year", first=FIRST_YEAR, last=org_today().year)
        return year_period(number)
    if start and end and not year:
        return days_period(_day(start), _day(end))
    raise Refused(BAD_PERIOD)


# --- The statement ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatementLine:
    """One gift on a statement, with what was kept of it."""

    gift: Gift
    kept_minor: int
    refunded_minor: int
    to_bank_account: bool

    @property
    def currency(self) -> str:
        return self.gift.currency


@dataclass
class Statement:
    """A donor's gifts in a period, oldest first, and their totals per currency."""

    supporter: Supporter
    period: Period
    lines: list[StatementLine] = field(default_factory=list)

    @property
    def totals(self) -> dict[str, int]:
        """What was kept, per currency (minor units), in the order of the currency codes."""
        totals: dict[str, int] = {}
        for line in self.lines:
            totals[line.currency] = totals.get(line.currency, 0) + line.kept_minor
        return dict(sorted(totals.items()))

    @property
    def all_to_bank_account(self) -> bool:
        return all(line.to_bank_account for line in self.lines)


def statement(supporter: Supporter, period: Period) -> Statement:
    """The donor's counted gifts paid in `period` (see the module's docstring). Refuses (403)
    an erased supporter."""
    _refuse_if_erased(supporter)
    start, end = period.bounds
    gifts = db.session.scalars(
        sa.select(Gift)
        .where(
            Gift.supporter_id == supporter.id,
            Gift.status.in_(GIFT_COUNTED),
            Gift.paid_at >= start,
            Gift.paid_at < end,
        )
        .order_by(Gift.paid_at, Gift.id)
    )
    lines = [
        StatementLine(gift, kept_minor(gift), gift.refunded_minor, to_bank_account(gift))
        for gift in gifts
        if kept_minor(gift) > 0
    ]
    return Statement(supporter, period, lines)


def years_given(supporter: Supporter) -> list[int]:
    """The years (the organisation's) in which the donor's counted gifts were paid, newest first."""
    zone = org_timezone()
    paid = db.session.scalars(
        sa.select(Gift.paid_at).where(
            Gift.supporter_id == supporter.id, Gift.status.in_(GIFT_COUNTED), Gift.paid_at.is_not(None)
        )
    )
    return sorted({when.astimezone(zone).year for when in paid if when is not None}, reverse=True)


def correct_postal_details(supporter: Supporter, **fields: Any) -> dict[str, tuple[Any, Any]]:
    """The donor adds or corrects their name and postal address (POSTAL_FIELDS) before a
    statement: the supporter record is changed and audited (`supporter.edit_profile`, by the
    donor) as a staff edit would be; returns what changed. Refuses (403) an erased supporter,
    and an empty name (on `name`)."""
    _refuse_if_erased(supporter)
    unknown = set(fields) - set(POSTAL_FIELDS)
    if unknown:
        raise TypeError(f"not a postal detail: {', '.join(sorted(unknown))}")
    return edits.update_profile(None, supporter, actor_name=actor_name(supporter), **fields)
