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


def test_supporters_added_at_once_are_the_rows_the_session_writes_with_their_search_keys(db: Any) -> None:
    from supporters.models import Supporter, SupporterSearchKey
    from supporters.models.supporter import add_supporters, search_keys

    columns = ("email", "email_normalised", "name", "name_sort", "language", "country", "city")
    values = {"name": "Anna Śliwińska-Kowalczyk", "language": "pl", "country": "PL", "city": "Kraków"}
    one = Supporter(email="one@example.org", **values)
    db.session.add(one)
    db.session.flush()
    many = [Supporter(email=f"many{n}@Example.org", **values) for n in range(3)]
    add_supporters(db.session(), many, columns)
    assert all(supporter.id for supporter in many) and len({supporter.id for supporter in many}) == 3
    db.session.expire_all()
    own = {"id", "email", "email_normalised", "created_at", "updated_at"}

    def stored(supporter_id: int) -> dict[str, Any]:
        row = db.session.get(Supporter, supporter_id)
        assert row is not None and row.created_at is not None
        return {
            column.key: getattr(row, column.key)
            for column in sa.inspect(Supporter).column_attrs
            if column.key not in own
        }

    assert [stored(supporter.id) for supporter in many] == [stored(one.id)] * 3
    for supporter in many:
        keys = set(db.session.scalars(sa.select(SupporterSearchKey.key).filter_by(supporter_id=supporter.id)))
        assert keys == search_keys(supporter.name_sort, supporter.email_normalised)
        assert "kowalczyk" in keys and "@example.org" in keys
    # a supporter made after them by the session gets an id of its own
    later = Supporter(email="later@example.org", name="Later")
    db.session.add(later)
    db.session.flush()
    assert later.id > max(supporter.id for supporter in many)


def test_rows_given_their_ids_first_are_found_by_them_where_the_database_can(db: Any) -> None:
    from supporters.models.bulk import insert_rows_with_ids

    supporter = factories.supporter()
    rows = [{**ROW, "supporter_id": supporter.id, "receipt_number": f"I-{n}"} for n in range(3)]
    ids = insert_rows_with_ids(db.session.connection(), Gift.__table__, rows)
    stored = dict(
        db.session.execute(sa.select(Gift.receipt_number, Gift.id).where(Gift.receipt_number.like("I-%"))).all()
    )
    if db.session.get_bind().dialect.name == "postgresql":
        assert ids is not None and [stored[f"I-{n}"] for n in range(3)] == ids
    else:
        assert ids is None and len(stored) == 3
    # the next gift the session writes gets an id of its own
    later = factories.gift(supporter, amount_minor=100)
    db.session.flush()
    assert later.id > max(stored.values())
