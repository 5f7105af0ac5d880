"""SQL that each database plans well."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from supporters.extensions import db


def one_of(column: Any, values: Sequence[Any]) -> Any:
    """`column IN (values)`, as each database plans it well. On PostgreSQL one array
    parameter (`= ANY($1)`): a list of 900 parameters is one statement text, which the
    driver prepares after a few runs, and the plan then kept for it (made when the table
    was small, say before the first import) scans the whole table for each chunk; and the
    driver reads a statement of a thousand parameters afresh each time (too long for its
    cache), tens of milliseconds of CPU a statement."""
    if db.session.get_bind().dialect.name == "postgresql":
        item = sa.Integer() if values and isinstance(values[0], int) else sa.String()
        return column == sa.any_(sa.literal(list(values), type_=postgresql.ARRAY(item)))
    return column.in_(values)
