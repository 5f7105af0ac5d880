"""Every payment of a day adds to that day's one giving_total row, yet a transaction
that has changed it does not hold it while it goes on with other work: what it adds is
written as it commits. On PostgreSQL another transaction changing the same day's row
commits while the first is still open; SQLite lets one writer in at a time, so there
the second waits for the first's commit. Either way both count, once each.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest
from flask import Flask

from supporters.extensions import db
from supporters.giving import lifecycle
from supporters.models import Gift, GiftStatus, OutboxEmail, Supporter, giving

PAID = datetime(2026, 6, 10, 12, tzinfo=UTC)
LATER = datetime(2026, 6, 10, 15, tzinfo=UTC)
DAY = ("kind", date(2026, 6, 10), "one_time")
#: long enough for a transaction that does not wait to finish on a busy machine
NO_WAIT_S = 10


def setup(app: Flask) -> tuple[int, int]:
    """Two donors' gifts: the first pending, the second already paid that day."""
    with app.app_context():
        owners = [Supporter(email=f"donor{n}@example.org", name=f"Donor {n}") for n in (1, 2)]
        db.session.add_all(owners)
        db.session.flush()
        pending = Gift(supporter_id=owners[0].id, amount_minor=5000, currency="PLN", amount_base_minor=5000)
        paid = Gift(supporter_id=owners[1].id, amount_minor=700, currency="PLN", amount_base_minor=700)
        db.session.add_all([pending, paid])
        db.session.flush()
        lifecycle.mark_paid(paid, paid_at=PAID)
        db.session.commit()
        return pending.id, paid.id


def in_another_transaction(app: Flask, work: Callable[[], object]) -> tuple[threading.Thread, threading.Event]:
    """Run `work` and commit, in a thread and an app context (so a transaction) of its own."""
    done = threading.Event()

    def run() -> None:
        with app.app_context():
            work()
            db.session.commit()
            done.set()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, done


def assert_counted(app: Flask, expected: tuple[int, int]) -> None:
    with app.app_context():
        connection = db.session.connection()
        assert giving.stored_totals(connection) == giving.totals_from_gifts(connection)
        assert giving.stored_totals(connection)[DAY] == expected


def test_a_payment_left_open_does_not_hold_the_days_total_from_a_refund(committed_app: Flask) -> None:
    app = committed_app
    pending_id, paid_id = setup(app)
    with app.app_context():
        assert lifecycle.mark_paid(db.session.get(Gift, pending_id), paid_at=LATER)  # the day's total changed
        thread, done = in_another_transaction(
            app, lambda: lifecycle.apply_refund_total(db.session.get(Gift, paid_id), 200)
        )
        if db.engine.dialect.name == "postgresql":
            assert done.wait(NO_WAIT_S), "the refund waited for the open payment's transaction"
        db.session.commit()
    thread.join(NO_WAIT_S)
    assert done.is_set()
    assert_counted(app, (5000 + 700 - 200, 2))


def test_a_refund_left_open_does_not_hold_the_days_total_from_a_payment(committed_app: Flask) -> None:
    app = committed_app
    pending_id, paid_id = setup(app)
    with app.app_context():
        assert lifecycle.apply_refund_total(db.session.get(Gift, paid_id), 200)  # the day's total changed
        thread, done = in_another_transaction(
            app, lambda: lifecycle.mark_paid(db.session.get(Gift, pending_id), paid_at=LATER)
        )
        if db.engine.dialect.name == "postgresql":
            assert done.wait(NO_WAIT_S), "the payment waited for the open refund's transaction"
        db.session.commit()
    thread.join(NO_WAIT_S)
    assert done.is_set()
    assert_counted(app, (5000 + 700 - 200, 2))


@pytest.mark.parametrize("outcome", ["rolled back", "savepoint rolled back"])
def test_what_a_transaction_did_not_keep_is_not_counted(committed_app: Flask, outcome: str) -> None:
    app = committed_app
    pending_id, paid_id = setup(app)
    with app.app_context():
        if outcome == "rolled back":
            lifecycle.mark_paid(db.session.get(Gift, pending_id), paid_at=LATER)
            db.session.rollback()
        else:
            savepoint = db.session.begin_nested()
            lifecycle.mark_paid(db.session.get(Gift, pending_id), paid_at=LATER)
            savepoint.rollback()
        lifecycle.apply_refund_total(db.session.get(Gift, paid_id), 200)
        db.session.commit()
    with app.app_context():
        gift = db.session.get(Gift, pending_id)
        assert gift is not None and gift.status is GiftStatus.PENDING
    assert_counted(app, (700 - 200, 1))


# --- The year's receipt numbers: taken as the payment commits ---------------------------------


def three_pending(app: Flask) -> list[int]:
    with app.app_context():
        owners = [Supporter(email=f"payer{n}@example.org", name=f"Payer {n}") for n in range(3)]
        db.session.add_all(owners)
        db.session.flush()
        gifts = [Gift(supporter_id=o.id, amount_minor=1000, currency="PLN", amount_base_minor=1000) for o in owners]
        db.session.add_all(gifts)
        db.session.commit()
        return [gift.id for gift in gifts]


def test_a_payment_left_open_does_not_hold_the_year_s_receipt_numbers(committed_app: Flask) -> None:
    app = committed_app
    first, second, _ = three_pending(app)
    with app.app_context():
        assert lifecycle.mark_paid(db.session.get(Gift, first), paid_at=PAID)
        thread, done = in_another_transaction(
            app, lambda: lifecycle.mark_paid(db.session.get(Gift, second), paid_at=LATER)
        )
        if db.engine.dialect.name == "postgresql":
            assert done.wait(NO_WAIT_S), "the second payment waited for the first one's receipt number"
        db.session.commit()
    thread.join(NO_WAIT_S)
    assert done.is_set()
    with app.app_context():
        numbers = {db.session.get(Gift, gift_id).receipt_number for gift_id in (first, second)}
        # each its own number, in the order the payments committed
        assert numbers == {"2026-000001", "2026-000002"}
        assert db.session.query(OutboxEmail).filter_by(kind="receipt").count() == 2


def test_a_payment_rolled_back_takes_no_number_and_sends_no_receipt(committed_app: Flask) -> None:
    app = committed_app
    first, second, third = three_pending(app)
    with app.app_context():
        lifecycle.mark_paid(db.session.get(Gift, first), paid_at=PAID)
        db.session.rollback()
        savepoint = db.session.begin_nested()
        lifecycle.mark_paid(db.session.get(Gift, second), paid_at=PAID)
        savepoint.rollback()
        lifecycle.mark_paid(db.session.get(Gift, third), paid_at=PAID)
        db.session.commit()
    with app.app_context():
        gifts = [db.session.get(Gift, gift_id) for gift_id in (first, second, third)]
        assert [g.receipt_number for g in gifts] == [None, None, "2026-000001"]
        assert db.session.query(OutboxEmail).filter_by(kind="receipt").count() == 1


def test_a_savepoint_rolled_back_after_a_payment_leaves_its_receipt_due(committed_app: Flask) -> None:
    """A payment, then an unrelated savepoint that rolls back (a duplicate e-mail refused
    in its own savepoint, say), then the commit: the payment still gets its number and
    its receipt, and nothing is numbered at the savepoint's release."""
    app = committed_app
    first, second, _ = three_pending(app)
    with app.app_context():
        lifecycle.mark_paid(db.session.get(Gift, first), paid_at=PAID)
        savepoint = db.session.begin_nested()
        db.session.get(Gift, second).comment = "never kept"
        db.session.flush()
        savepoint.rollback()
        kept = db.session.begin_nested()
        lifecycle.mark_paid(db.session.get(Gift, second), paid_at=PAID)
        kept.commit()
        assert db.session.get(Gift, second).receipt_number is None  # released, not committed
        db.session.commit()
    with app.app_context():
        numbers = [db.session.get(Gift, gift_id).receipt_number for gift_id in (first, second)]
        assert sorted(numbers) == ["2026-000001", "2026-000002"]
        assert db.session.query(OutboxEmail).filter_by(kind="receipt").count() == 2
