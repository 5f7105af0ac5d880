"""A supporter's aggregates follow their gifts: only money that counts, net of refunds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from supporters.extensions import db as sqla
from supporters.giving import totals
from supporters.models import GiftStatus
from tests import factories

JAN = datetime(2026, 1, 10, tzinfo=UTC)
MAR = datetime(2026, 3, 5, tzinfo=UTC)
JUN = datetime(2026, 6, 1, tzinfo=UTC)


def test_totals_count_paid_gifts_net_of_refunds(db: Any) -> None:
    person = factories.supporter()
    factories.paid_gift(person, paid_at=MAR, amount_minor=5000, amount_base_minor=5000)
    refunded_part = factories.paid_gift(person, paid_at=JAN, amount_minor=10000, amount_base_minor=10000)
    refunded_part.refunded_minor = 2500
    refunded_part.status = GiftStatus.PARTIALLY_REFUNDED
    fully_refunded = factories.paid_gift(person, paid_at=JUN, amount_minor=7000, amount_base_minor=7000)
    fully_refunded.refunded_minor = 7000
    fully_refunded.status = GiftStatus.REFUNDED
    factories.gift(person, amount_minor=9900)  # still pending
    failed = factories.gift(person, amount_minor=1234)
    failed.status = GiftStatus.FAILED

    totals.refresh_supporter_totals(person)

    assert person.gift_count == 2
    assert person.lifetime_total_minor == 5000 + 7500
    assert person.first_gift_at == JAN
    assert person.last_gift_at == MAR


def test_gift_in_another_currency_counts_at_its_converted_amount(db: Any) -> None:
    person = factories.supporter()
    factories.paid_gift(person, amount_minor=1000, currency="EUR", amount_base_minor=4300)
    factories.paid_gift(person, amount_minor=500, currency="USD", amount_base_minor=None)  # not yet converted
    totals.refresh_supporter_totals(person)
    assert person.lifetime_total_minor == 4300
    assert person.gift_count == 2


def test_supporter_without_gifts_has_empty_totals(db: Any) -> None:
    person = factories.supporter()
    totals.refresh_supporter_totals(person)
    assert (person.gift_count, person.lifetime_total_minor, person.first_gift_at) == (0, 0, None)


def test_many_supporters_refreshed_at_once_get_the_figures_one_at_a_time_gives(db: Any) -> None:
    people = [factories.supporter() for _ in range(5)]
    giver, refunded, pending_only, converted, _never = people
    factories.paid_gift(giver, paid_at=MAR, amount_minor=5000, amount_base_minor=5000)
    factories.paid_gift(giver, paid_at=JAN, amount_minor=1000, amount_base_minor=1000)
    part = factories.paid_gift(refunded, paid_at=JUN, amount_minor=10000, amount_base_minor=10000)
    part.refunded_minor, part.status = 2500, GiftStatus.PARTIALLY_REFUNDED
    factories.gift(pending_only, amount_minor=9900)
    factories.paid_gift(converted, paid_at=JAN, amount_minor=1000, currency="EUR", amount_base_minor=4300)
    sqla.session.flush()
    # figures that are wrong, as an import leaves them before its refresh
    for person in people:
        person.gift_count, person.lifetime_total_minor, person.first_gift_at, person.last_gift_at = 9, 9, JUN, JUN
    sqla.session.flush()

    totals.refresh_many_supporter_totals([person.id for person in people], batch=2)

    got = [(p.gift_count, p.lifetime_total_minor, p.first_gift_at, p.last_gift_at) for p in people]
    for person in people:
        totals.refresh_supporter_totals(person)
    assert got == [(p.gift_count, p.lifetime_total_minor, p.first_gift_at, p.last_gift_at) for p in people]
    never = (0, 0, None, None)
    assert got == [(2, 6000, JAN, MAR), (1, 7500, JUN, JUN), never, (1, 4300, JAN, JAN), never]
