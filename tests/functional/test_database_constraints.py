"""The database itself refuses what must never be wrong, whatever the Python code does.

Rows are written with plain INSERT/UPDATE statements, past the models' validators.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DataError, IntegrityError

from tests import factories


def refused(db: Any, statement: sa.Executable) -> None:
    """The database refuses `statement` (a CHECK, UNIQUE, FK or length violation)."""
    with pytest.raises((IntegrityError, DataError)):
        with db.session.begin_nested():
            db.session.execute(statement)


def raw_insert(table: str, values: dict[str, Any]) -> sa.Executable:
    """An INSERT on a bare table: no Python-side type or enum checks stand in the way."""
    return sa.insert(sa.table(table, *(sa.column(name) for name in values))).values(**values)


def insert_gift(db: Any, **fields: Any) -> sa.Executable:
    owner = factories.supporter()
    values = {
        "supporter_id": owner.id,
        "amount_minor": 100,
        "currency": "PLN",
        "status": "pending",
        "kind": "one_time",
        "method": "stripe",
        "refunded_minor": 0,
        "covers_fee": False,
        "anonymous": False,
        "is_demo": False,
        "created_at": sa.func.now(),
        "updated_at": sa.func.now(),
    }
    values.update(fields)
    return raw_insert("gift", values)


def test_a_valid_raw_gift_is_accepted(db: Any) -> None:
    db.session.execute(insert_gift(db))


@pytest.mark.parametrize("amount", [0, -1, -5000])
def test_gift_amount_must_be_positive(db: Any, amount: int) -> None:
    refused(db, insert_gift(db, amount_minor=amount))


@pytest.mark.parametrize("currency", ["pln", "PL", "PLNX", "P1N", "", "Pln", "€€€"])
def test_gift_currency_must_be_a_three_letter_code(db: Any, currency: str) -> None:
    refused(db, insert_gift(db, currency=currency))


@pytest.mark.parametrize(("column", "value"), [("status", "paid"), ("kind", "weekly"), ("method", "bitcoin")])
def test_gift_fixed_sets_are_enforced(db: Any, column: str, value: str) -> None:
    refused(db, insert_gift(db, **{column: value}))


def test_refund_cannot_exceed_the_gift(db: Any) -> None:
    refused(db, insert_gift(db, amount_minor=100, refunded_minor=101))
    refused(db, insert_gift(db, refunded_minor=-1))


@pytest.mark.parametrize(
    "column",
    [
        "stripe_checkout_session_id",
        "stripe_payment_intent_id",
        "stripe_charge_id",
        "stripe_invoice_id",
        "receipt_number",
    ],
)
def test_each_stripe_id_of_a_gift_is_unique(db: Any, column: str) -> None:
    db.session.execute(insert_gift(db, **{column: "dup_123"}))
    refused(db, insert_gift(db, **{column: "dup_123"}))


def test_supporter_normalised_email_is_unique(db: Any) -> None:
    factories.supporter(email="Ada@Example.org")
    with pytest.raises(IntegrityError):
        with db.session.begin_nested():
            factories.supporter(email="  ada@example.ORG ")


def test_supporter_stripe_customer_is_unique(db: Any) -> None:
    factories.supporter(stripe_customer_id="cus_1")
    with pytest.raises(IntegrityError):
        with db.session.begin_nested():
            factories.supporter(stripe_customer_id="cus_1")


def test_supporter_aggregates_cannot_go_negative(db: Any) -> None:
    person = factories.supporter()
    for column in ("gift_count", "lifetime_total_minor"):
        bare = sa.table("supporter", sa.column("id"), sa.column(column))
        refused(db, sa.update(bare).where(bare.c.id == person.id).values({column: -1}))


def insert_plan(db: Any, **fields: Any) -> sa.Executable:
    owner = factories.supporter()
    values = {
        "supporter_id": owner.id,
        "amount_minor": 100,
        "currency": "EUR",
        "interval": "month",
        "status": "incomplete",
        "is_demo": False,
        "created_at": sa.func.now(),
        "updated_at": sa.func.now(),
    }
    values.update(fields)
    return raw_insert("recurring_plan", values)


@pytest.mark.parametrize(
    "fields",
    [{"amount_minor": 0}, {"currency": "eur"}, {"interval": "week"}, {"status": "paused"}],
    ids=["amount", "currency", "interval", "status"],
)
def test_recurring_plan_constraints(db: Any, fields: dict[str, Any]) -> None:
    db.session.execute(insert_plan(db))
    refused(db, insert_plan(db, **fields))


def test_subscription_id_is_unique(db: Any) -> None:
    db.session.execute(insert_plan(db, stripe_subscription_id="sub_1"))
    refused(db, insert_plan(db, stripe_subscription_id="sub_1"))


def test_staff_role_is_from_the_fixed_set(db: Any) -> None:
    refused(
        db,
        raw_insert(
            "staff_user",
            {
                "email": "x@example.org",
                "password_hash": "x",
                "role": "owner",
                "active": True,
                "created_at": sa.func.now(),
                "updated_at": sa.func.now(),
            },
        ),
    )


def test_gift_must_belong_to_an_existing_supporter(db: Any) -> None:
    refused(db, insert_gift(db, supporter_id=999_999_999))


def test_stripe_event_id_is_recorded_once(db: Any) -> None:
    from supporters.models import StripeEvent

    db.session.add(StripeEvent(id="evt_1", type="x", payload={}))
    db.session.flush()
    with pytest.raises(IntegrityError):
        with db.session.begin_nested():
            db.session.add(StripeEvent(id="evt_1", type="x", payload={}))
