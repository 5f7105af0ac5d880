"""Reading the privacy marks every column carries (`info={"personal": True|False}`)."""

from __future__ import annotations

import enum
import json
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from supporters.models import Base


def is_personal(column: sa.Column[Any]) -> bool:
    """True for a column marked as data about a person."""
    return column.info.get("personal") is True


def personal_columns(table: sa.Table) -> list[str]:
    """The names of the table's personal columns, in the table's order."""
    return [column.name for column in table.columns if is_personal(column)]


def shown_columns(model: type[Base], context: tuple[str, ...] = ()) -> list[str]:
    """What an access export shows of a row: its key, its personal columns, and the
    `context` columns that say what the row is (a consent's purpose, a gift's amount)."""
    table = model.__table__
    assert isinstance(table, sa.Table)
    wanted = set(context) | set(personal_columns(table)) | {column.name for column in table.primary_key}
    unknown = set(context) - set(table.columns.keys())
    assert not unknown, f"{table.name} has no column {sorted(unknown)}"
    return [column.name for column in table.columns if column.name in wanted]


def plain(value: Any) -> Any:
    """A cell as JSON has it: times in ISO 8601 (UTC), enums by value, bytes left out."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes):
        return None
    return value


def as_text(value: Any) -> str:
    """A cell as a CSV file has it: JSON for structures, empty for None."""
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
