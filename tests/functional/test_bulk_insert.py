"""models/bulk.insert_rows writes what Core's INSERT writes: on PostgreSQL a COPY, with each
value bound by its column's type and the left-out columns' Python defaults."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from supporters.extensions import db
from supporters.models import Gift, GiftMethod, GiftStatus
from supporters.models.bulk import insert_rows
from tests import factories

ROW = {
    "amount_minor": 12_345,
    "currency": "PLN",
    "amount_base_minor": 12_345,
    "status": GiftStatus.SUCCEEDED,
    "method": GiftMethod.CASH,
    "comment": 'Na wiosnę, "z serca"\\ntab\\tand a\r\nnew line',
    "offline_reference": None,
    "paid_at": datetime(2024, 3, 5, 11, 0, tzinfo=UTC),
    "refunded_minor": 0,
}
#: what the database makes itself or the moment sets
OWN = {"id", "receipt_number", "created_at", "updated_at"}


def written(receipt: str) -> dict[str, Any]:
    db.session.expire_all()
    gift = db.session.scalars(sa.select(Gift).where(Gift.receipt_number == receipt)).one()
    return {column.key: getattr(gift, column.key) for column in sa.inspect(Gift).column_attrs if column.key not in OWN}


def test_the_rows_are_the_ones_an_insert_writes(db: Any) -> None:
    supporter = factories.supporter()
    rows = [{**ROW, "supporter_id": supporter.id, "receipt_number": number} for number in ("B-1", "B-2")]

    insert_rows(db.session.connection(), Gift.__table__, [rows[0]])
    db.session.connection().execute(sa.insert(Gift.__table__), [rows[1]])

    assert written("B-1") == written("B-2")
    copied = db.session.scalars(sa.select(Gift).where(Gift.receipt_number == "B-1")).one()
    assert copied.kind is not None and copied.covers_fee is False, "the left-out columns got their defaults"
    assert copied.created_at.tzinfo is not None and abs(copied.created_at - datetime.now(UTC)).total_seconds() < 60


def test_nothing_to_write_writes_nothing(db: Any) -> None:
    before = db.session.scalar(sa.select(sa.func.count()).select_from(Gift))
    insert_rows(db.session.connection(), Gift.__table__, [])
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Gift)) == before


def test_a_column_whose_default_only_sql_can_make_must_be_given(db: Any) -> None:
    table = sa.Table(
        "bulk_probe", sa.MetaData(), sa.Column("x", sa.Integer), sa.Column("at", sa.DateTime, default=sa.func.now())
    )
    if db.session.connection().dialect.name != "postgresql":
        pytest.skip("only the COPY path fills the defaults itself")
    with pytest.raises(ValueError, match=r"bulk_probe\.at"):
        insert_rows(db.session.connection(), table, [{"x": 1}])
