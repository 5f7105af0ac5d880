"""Declarative base, naming convention and the column helpers every model shares."""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every model; constraint names are stable so migrations can name them."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (what every timestamp column stores)."""
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite has no timezone type; without this a value read back from it would be
    naive and compare wrongly with aware values from PostgreSQL.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def enum_column(enum_cls: type[enum.Enum], name: str) -> sa.Enum:
    """A portable enum: stored as its string values, with a CHECK on the fixed set."""
    return sa.Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=24,
        validate_strings=True,
        values_callable=lambda members: [member.value for member in members],
    )


def currency_check(column: str) -> sa.CheckConstraint:
    """CHECK that `column` holds a three-letter upper-case ISO 4217 code, on any database."""
    letters = " AND ".join(f"substr({column}, {i}, 1) BETWEEN 'A' AND 'Z'" for i in (1, 2, 3))
    return sa.CheckConstraint(
        f"length({column}) = 3 AND upper({column}) = {column} AND {letters}",
        name=f"{column}_iso4217",
    )


class Timestamps:
    """created_at / updated_at, set by the database session, always UTC."""

    #: when the row was first written
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, nullable=False, info={"personal": False}
    )
    #: when the row last changed
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow, nullable=False, info={"personal": False}
    )


class InvalidTransition(ValueError):
    """A status change that the transition table does not allow."""


def check_transition(
    kind: str,
    table: dict[enum.Enum, frozenset[enum.Enum]],
    initial: frozenset[enum.Enum],
    old: enum.Enum | None,
    new: enum.Enum,
) -> None:
    """Raise InvalidTransition unless `old -> new` is in `table` (or `new` is a valid start)."""
    if old is None:
        if new not in initial:
            raise InvalidTransition(f"a {kind} cannot start as {new.value}")
        return
    if new not in table.get(old, frozenset()):
        raise InvalidTransition(f"a {kind} cannot move from {old.value} to {new.value}")


def include_object_for(dialect_name: str) -> Callable[..., bool]:
    """Alembic's include_object for this database: an index the models make on another
    database only (`Index.ddl_if`) is no difference. Autogenerate and the drift test use it."""

    def include_object(schema_item: object, _name: str, _type: str, reflected: bool, _compare_to: object) -> bool:
        condition = getattr(schema_item, "_ddl_if", None)
        return reflected or condition is None or condition.dialect in (None, dialect_name)

    return include_object
