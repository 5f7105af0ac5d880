"""Receipt numbers: one sequence per year, so a year's receipts are numbered 1, 2, 3…"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from supporters.models.base import Base


class ReceiptSequence(Base):
    """The last receipt number given in one year; the next gift of that year takes the one after.

    Numbers only ever grow: a voided gift keeps its number, and no other gift gets it.
    """

    __tablename__ = "receipt_sequence"
    __table_args__ = (sa.CheckConstraint("last_number >= 0", name="last_number_not_negative"),)

    #: the year the gifts were received, in the organisation's time zone
    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False, info={"personal": False})
    #: the highest number given in that year so far
    last_number: Mapped[int] = mapped_column(default=0, info={"personal": False})
