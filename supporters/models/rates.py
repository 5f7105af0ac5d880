"""Exchange rates: the central bank's average rates, one row per currency and day."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from supporters.models.base import Base, UTCDateTime, currency_check, utcnow


class DecimalText(sa.types.TypeDecorator[Decimal]):
    """A Decimal kept as its exact text: SQLite has no decimal type (it would go through float)."""

    impl = sa.String(32)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: sa.Dialect) -> str | None:
        return None if value is None else format(Decimal(value).normalize(), "f")

    def process_result_value(self, value: str | None, dialect: sa.Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class ExchangeRate(Base):
    """How many złoty one unit of a currency was worth on a day, by the National Bank of
    Poland's table A (the average rate Polish accounting converts with).

    Loaded by `flask rates import` / `flask rates fetch`; read by giving/currency.py only.
    """

    __tablename__ = "exchange_rate"
    __table_args__ = (currency_check("currency"),)

    #: ISO 4217 code of the currency quoted
    currency: Mapped[str] = mapped_column(sa.String(3), primary_key=True, info={"personal": False})
    #: the day the table was published for (its effectiveDate)
    effective_on: Mapped[date] = mapped_column(sa.Date, primary_key=True, info={"personal": False})
    #: złoty for one unit of the currency (the table's "mid", per unit even where the table
    #: quotes 100), exactly as published; positive (lib/nbp.py refuses anything else)
    rate: Mapped[Decimal] = mapped_column(DecimalText(), info={"personal": False})
    #: the table's number, e.g. "232/A/NBP/2026": what a receipt or an auditor cites
    table_no: Mapped[str] = mapped_column(sa.String(32), info={"personal": False})
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, info={"personal": False})
