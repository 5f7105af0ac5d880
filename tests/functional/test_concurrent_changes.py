"""Two transactions changing the same money at once take turns (a row lock on
PostgreSQL; SQLite serialises writing transactions): nothing is counted twice and
nothing is left out, in the giving totals or a supporter's aggregates.

Each test holds one transaction open in the test's thread while another thread does
its part. On PostgreSQL the other thread runs at once; on SQLite it waits for the
first to commit. Either way the outcome must be the same.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from flask import Flask

from supporters.extensions import db
from supporters.giving import lifecycle
from supporters.models import Gift, GiftStatus, OutboxEmail, Supporter, giving
from supporters.people import queries

PAID = datetime(2026, 6, 10, 12, tzinfo=UTC)
EARLIER = datetime(2025, 1, 10, 12, tzinfo=UTC)


def setup(app: Flask, *amounts: int) -> tuple[int, list[int]]:
    with app.app_context():
        owner = Supporter(email="both@example.org", name="Both At Once")
        db.session.add(owner)
        db.session.flush()
        gifts = [
            Gift(supporter_id=owner.id, amount_minor=amount, currency="PLN", amount_base_minor=amount)
            for amount in amounts
        ]
        db.session.add_all(gifts)
        db.session.commit()
        return owner.id, [gift.id for gift in gifts]


def meanwhile(app: Flask, work: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run `work` in another thread, in an app context (so a transaction) of its own."""
    results: list[Any] = []

    def run() -> None:
        with app.app_context():
            results.append(work())
            db.session.commit()

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.8)  # PostgreSQL: it has finished, or is waiting for our lock
    return thread, results


def in_step(app: Flask) -> None:
    with app.app_context():
        connection = db.session.connection()
        assert giving.stored_totals(connection) == giving.totals_from_gifts(connection)


def test_two_deliveries_of_payment_for_one_gift_count_it_once(committed_app: Flask) -> None:
    app = committed_app
    _owner, (gift_id,) = setup(app, 5000)
    with app.app_context():
        seen = db.session.get(Gift, gift_id)
        assert seen is not None and seen.status is GiftStatus.PENDING  # read before the other delivery
        thread, other = meanwhile(app, lambda: lifecycle.mark_paid(db.session.get(Gift, gift_id), paid_at=PAID))
        ours = lifecycle.mark_paid(seen, paid_at=PAID)
        db.session.commit()
    thread.join(20)
    assert sorted([ours, *other]) == [False, True], "one delivery pays the gift, the other is a duplicate"
    in_step(app)
    with app.app_context():
        assert giving.stored_totals(db.session.connection())[("kind", date(2026, 6, 10), "one_time")] == (5000, 1)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail)) == 1


def test_a_refund_and_its_webhook_at_once_refund_once(committed_app: Flask) -> None:
    app = committed_app
    _owner, (gift_id,) = setup(app, 5000)
    with app.app_context():
        lifecycle.mark_paid(db.session.get(Gift, gift_id), paid_at=PAID)
        db.session.commit()
    with app.app_context():
        seen = db.session.get(Gift, gift_id)
        assert seen is not None and seen.refunded_minor == 0
        thread, _ = meanwhile(app, lambda: lifecycle.apply_refund_total(db.session.get(Gift, gift_id), 2000))
        lifecycle.apply_refund_total(seen, 2000)  # the same 2000, as Stripe reports the refunded total
        db.session.commit()
    thread.join(20)
    in_step(app)
    with app.app_context():
        gift = db.session.get(Gift, gift_id)
        assert gift is not None and (gift.status, gift.refunded_minor) == (GiftStatus.PARTIALLY_REFUNDED, 2000)
        assert giving.stored_totals(db.session.connection())[("kind", date(2026, 6, 10), "one_time")] == (3000, 1)


def test_two_gifts_of_one_supporter_paid_at_once_both_count(committed_app: Flask) -> None:
    app = committed_app
    owner_id, (first_id, second_id) = setup(app, 5000, 700)
    with app.app_context():
        lifecycle.mark_paid(db.session.get(Gift, first_id), paid_at=PAID)  # holds the supporter's row
        thread, _ = meanwhile(app, lambda: lifecycle.mark_paid(db.session.get(Gift, second_id), paid_at=EARLIER))
        db.session.commit()
    thread.join(20)
    in_step(app)
    with app.app_context():
        owner = db.session.get(Supporter, owner_id)
        assert owner is not None
        assert (owner.gift_count, owner.lifetime_total_minor) == (2, 5700)
        assert (owner.first_gift_at, owner.last_gift_at) == (EARLIER, PAID)
        assert queries.count_supporters(queries.SupporterFilters(gave_from=date(2026, 6, 1))) == 1
