"""Every gift in the reporting currency, by one rule; a gift not converted yet is never 0.

- A gift in the reporting currency (SUPPORTERS_BASE_CURRENCY) is its own amount.
- A Stripe gift counts what reached the account: the charge's balance transaction
  (giving/settlement.py records it), in the account's currency. Until Stripe has
  told us, a gift in another currency is "not converted yet".
- Anything else (an offline gift in EUR, a balance in a currency that is not the
  reporting one) is converted at the National Bank of Poland's average rate (table A)
  of the last working day before the day the money arrived, as Polish accounting
  does: the latest table dated before that day, at most LONGEST_GAP before it.
  Without that table the gift waits, "not converted yet", and is converted when
  `flask rates import` / `flask rates fetch` brings the table (`import_tables`).

The bank quotes złoty: with a reporting currency other than PLN, the rate is the
cross rate of the same table (EUR→USD = EUR→PLN / USD→PLN).

Functions flush; the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

import sqlalchemy as sa
from flask import current_app

from supporters.extensions import db
from supporters.giving.totals import refresh_supporter_totals
from supporters.lib.dates import org_timezone
from supporters.lib.money import minor_unit_exponent
from supporters.lib.nbp import Table
from supporters.models import GIFT_COUNTED, GIFT_PAID, ExchangeRate, Gift, GiftMethod, Supporter, utcnow

#: the currency the bank's rates are quoted in
QUOTE = "PLN"
#: the longest run of days without a table (Christmas Eve to the weekend after is four)
LONGEST_GAP = timedelta(days=7)


@dataclass(frozen=True)
class Conversion:
    """An amount in the reporting currency, and the table it was converted by (None: no rate needed)."""

    amount_minor: int
    table: str | None = None


class RatesConflict(ValueError):
    """A file's rate differs from the one stored for the same currency and day."""


def base_currency() -> str:
    currency: str = current_app.config["SUPPORTERS_BASE_CURRENCY"]
    return currency


def convert(amount_minor: int, currency: str, received_on: date) -> Conversion | None:
    """`amount_minor` of `currency` in the reporting currency, at the table of the last
    working day before `received_on`; None when that table is not loaded."""
    base = base_currency()
    if currency == base:
        return Conversion(amount_minor)
    found = rate_before(currency, received_on)
    if found is None:
        return None
    rate, table = found
    shift = Decimal(10) ** (minor_unit_exponent(base) - minor_unit_exponent(currency))
    converted = (Decimal(amount_minor) * rate * shift).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return Conversion(max(int(converted), 1), table)


def rate_before(currency: str, received_on: date) -> tuple[Decimal, str] | None:
    """Units of the reporting currency for one unit of `currency`, and the table's number,
    by the latest table dated before `received_on` (within LONGEST_GAP) that quotes both."""
    base = base_currency()
    needed = {currency, base} - {QUOTE}
    rows = db.session.execute(
        sa.select(ExchangeRate.effective_on, ExchangeRate.currency, ExchangeRate.rate, ExchangeRate.table_no)
        .where(
            ExchangeRate.currency.in_(sorted(needed)),
            ExchangeRate.effective_on < received_on,
            ExchangeRate.effective_on >= received_on - LONGEST_GAP,
        )
        .order_by(ExchangeRate.effective_on.desc())
    ).all()
    by_day: dict[date, dict[str, tuple[Decimal, str]]] = {}
    for day, code, rate, table in rows:
        by_day.setdefault(day, {})[code] = (rate, table)
    for day in sorted(by_day, reverse=True):
        quoted = {**by_day[day], QUOTE: (Decimal(1), "")}
        if currency in quoted and base in quoted:
            table = quoted[currency][1] or quoted[base][1]
            return quoted[currency][0] / quoted[base][0], table
    return None


def _start_of(day: date) -> datetime:
    """Midnight at the start of `day` in the organisation's time zone, as an aware datetime."""
    return datetime.combine(day, time(0), org_timezone())


class GiftAmounts(Protocol):
    """What the conversion of a gift reads of it: a `Gift`, or the values of one not yet
    made into a row (an import's, `imports.operations`)."""

    @property
    def method(self) -> GiftMethod: ...
    @property
    def amount_minor(self) -> int: ...
    @property
    def currency(self) -> str: ...
    @property
    def balance_currency(self) -> str | None: ...
    @property
    def fee_minor(self) -> int | None: ...
    @property
    def net_minor(self) -> int | None: ...
    @property
    def paid_at(self) -> datetime | None: ...
    @property
    def created_at(self) -> datetime | None: ...


def received_on(gift: GiftAmounts) -> date:
    """The day the gift's money arrived, in the organisation's time zone."""
    moment = gift.paid_at or gift.created_at or utcnow()
    return moment.astimezone(org_timezone()).date()


def base_amount(gift: GiftAmounts) -> Conversion | None:
    """What `gift.amount_base_minor` is by the rule above; None while it cannot be known."""
    if gift.method is GiftMethod.STRIPE:
        if gift.balance_currency is None or gift.fee_minor is None or gift.net_minor is None:
            # no balance transaction yet: only a gift in the reporting currency is known
            return Conversion(gift.amount_minor) if gift.currency == base_currency() else None
        return convert(gift.fee_minor + gift.net_minor, gift.balance_currency, received_on(gift))
    return convert(gift.amount_minor, gift.currency, received_on(gift))


def convert_gift(gift: Gift) -> bool:
    """Set the gift's amount in the reporting currency (and the table used); True if it changed.

    A gift whose conversion is not known yet keeps what it had: a rate once used is
    not taken back because a table is missing now."""
    conversion = base_amount(gift)
    if conversion is None:
        return False
    changed = (gift.amount_base_minor, gift.base_rate_table) != (conversion.amount_minor, conversion.table)
    gift.amount_base_minor = conversion.amount_minor
    gift.base_rate_table = conversion.table
    return changed


def waiting_gifts() -> sa.Select[Gift]:
    """Gifts whose money moved but is not in the reporting currency yet, oldest first."""
    return (
        sa.select(Gift)
        .where(Gift.amount_base_minor.is_(None), Gift.status.in_(GIFT_PAID))
        .order_by(Gift.paid_at, Gift.id)
    )


@dataclass(frozen=True)
class NotConverted:
    """Counted gifts in one currency that are not in the reporting currency yet."""

    currency: str
    gifts: int
    amount_minor: int


def not_converted(supporter_id: int | None = None) -> list[NotConverted]:
    """What the totals leave out for want of a rate, per currency (one supporter's, if asked):
    counted gifts only, net of refunds, in their own currency."""
    query = (
        sa.select(Gift.currency, sa.func.count(), sa.func.sum(Gift.amount_minor - Gift.refunded_minor))
        .where(Gift.amount_base_minor.is_(None), Gift.status.in_(GIFT_COUNTED))
        .group_by(Gift.currency)
        .order_by(Gift.currency)
    )
    if supporter_id is not None:
        query = query.where(Gift.supporter_id == supporter_id)
    return [NotConverted(code, int(count), int(amount or 0)) for code, count, amount in db.session.execute(query)]


def waiting_count() -> int:
    """How many gifts wait to be converted (a rate, or Stripe's balance transaction)."""
    return db.session.scalar(sa.select(sa.func.count()).select_from(waiting_gifts().subquery())) or 0


def convert_waiting(new_days: list[date] | None = None) -> int:
    """Convert every gift that was waiting for a rate it can have now; how many were.

    With `new_days` (the days of tables just loaded), gifts converted before at an
    older table that one of them now precedes more closely are converted again (a
    gift of Monday converted at Thursday's table while Friday's was missing).
    Each converted gift moves the giving totals (the flush listener) and its
    supporter's lifetime total."""
    converted = 0
    supporters: set[int] = set()
    gifts = list(db.session.scalars(waiting_gifts()))
    if new_days:
        earliest, latest = min(new_days), max(new_days) + LONGEST_GAP + timedelta(days=1)
        gifts += db.session.scalars(
            sa.select(Gift)
            .where(
                Gift.base_rate_table.is_not(None),
                Gift.paid_at >= _start_of(earliest),
                Gift.paid_at < _start_of(latest),
            )
            .order_by(Gift.paid_at, Gift.id)
        )
    for gift in gifts:
        if convert_gift(gift):
            converted += 1
            supporters.add(gift.supporter_id)
    db.session.flush()
    for supporter_id in sorted(supporters):
        supporter = db.session.get(Supporter, supporter_id)
        if supporter is not None:
            refresh_supporter_totals(supporter)
    return converted


@dataclass(frozen=True)
class ImportReport:
    tables: int
    new_rates: int
    known_rates: int
    converted: int
    first: date | None
    last: date | None


def import_tables(tables: list[Table]) -> ImportReport:
    """Store the tables' rates (a rate already stored is left alone) and convert the gifts
    that were waiting for them. All or nothing: a rate that differs from the one stored
    for the same currency and day raises RatesConflict and stores nothing."""
    new = known = 0
    for table in tables:
        stored = {
            row.currency: row
            for row in db.session.scalars(sa.select(ExchangeRate).filter_by(effective_on=table.effective_on))
        }
        for code, rate in sorted(table.rates.items()):
            row = stored.get(code)
            if row is None:
                db.session.add(
                    ExchangeRate(currency=code, effective_on=table.effective_on, rate=rate, table_no=table.number)
                )
                new += 1
            elif row.rate == rate and row.table_no == table.number:
                known += 1
            else:
                raise RatesConflict(
                    f"{code} on {table.effective_on.isoformat()}: the file says {rate} ({table.number}), "
                    f"but {row.rate.normalize()} ({row.table_no}) is stored. Nothing was imported."
                )
    db.session.flush()
    converted = convert_waiting([table.effective_on for table in tables]) if new else 0
    days = [table.effective_on for table in tables]
    return ImportReport(len(tables), new, known, converted, min(days, default=None), max(days, default=None))


def latest_table() -> tuple[date, str] | None:
    """The newest table loaded: its day and number."""
    row = db.session.execute(
        sa.select(ExchangeRate.effective_on, ExchangeRate.table_no).order_by(ExchangeRate.effective_on.desc()).limit(1)
    ).first()
    return (row.effective_on, row.table_no) if row else None
