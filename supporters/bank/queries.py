"""What the bank pages list: the imports, newest first, and one import's lines."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from supporters.extensions import db
from supporters.models import BankLine, BankStatement, LineStatus

#: which lines of an import the page shows
SHOWS = ("open", "all")


def statements_page(page: int, per_page: int) -> tuple[list[BankStatement], int]:
    """One page of the uploaded statements, newest first, and how many there are. (The
    file itself is not read: a list of imports never loads megabytes of statements.)"""
    total = db.session.scalar(sa.select(sa.func.count()).select_from(BankStatement)) or 0
    rows = db.session.scalars(
        sa.select(BankStatement)
        .options(sa.orm.defer(BankStatement.content))
        .order_by(BankStatement.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return list(rows), total


def lines_page(statement_id: int, show: str, page: int, per_page: int) -> tuple[list[BankLine], int]:
    """One page of the lines this import brought (only those waiting for staff, with
    `show` "open"), in the file's order, with their supporter, gift and pledge."""
    query = sa.select(BankLine).where(BankLine.statement_id == statement_id)
    if show == "open":
        query = query.where(BankLine.status == LineStatus.OPEN)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    rows = db.session.scalars(
        query.options(joinedload(BankLine.supporter), joinedload(BankLine.pledge))
        .order_by(BankLine.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return list(rows), total
