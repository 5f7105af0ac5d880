"""The money for a bank-transfer pledge arrives (giving/transfers.py): the pledge is paid on
the day the bank booked it, numbered, counted and receipted, once; a pledge that is not
awaiting, or money that is not what was pledged, is refused; and pledges nobody paid for
are closed as not received, without a word to the donor."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from supporters.extensions import db
from supporters.giving import transfers
from supporters.lib.errors import Refused
from supporters.models import AuditEvent, Gift, GiftMethod, GiftStatus, OutboxEmail
from tests import factories

BOOKED = date.today() - timedelta(days=2)


def pledge(amount_minor: int = 15000, currency: str = "PLN", **fields: Any) -> Gift:
    gift = factories.gift(amount_minor=amount_minor, currency=currency, method=GiftMethod.BANK_TRANSFER, **fields)
    transfers.assign_reference(gift)
    return gift


def receipts_for(gift: Gift) -> int:
    return (
        db.session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail).where(OutboxEmail.kind == "receipt")) or 0
    )


def test_the_money_for_a_pledge_pays_it_on_the_day_the_bank_booked_it(db: Any) -> None:
    gift = pledge()
    before = receipts_for(gift)
    transfers.receive_transfer(gift, amount_minor=15000, currency="PLN", booked_on=BOOKED, bank_line_id=7, actor=None)
    assert gift.status is GiftStatus.SUCCEEDED
    assert gift.paid_at == datetime.combine(BOOKED, datetime.min.time(), UTC).replace(hour=12)
    db.session.commit()  # the receipt is numbered and queued as the transaction commits
    assert gift.receipt_number
    assert gift.amount_base_minor == 15000
    assert gift.supporter.gift_count == 1 and gift.supporter.lifetime_total_minor == 15000
    assert receipts_for(gift) == before + 1
    event = db.session.scalars(sa.select(AuditEvent).filter_by(action="gift.transfer_received")).one()
    assert event.target_id == str(gift.id)
    assert event.details["bank_line_id"] == 7 and event.details["booked_on"] == BOOKED.isoformat()


def test_a_pledge_cannot_be_paid_twice(db: Any) -> None:
    gift = pledge()
    transfers.receive_transfer(gift, amount_minor=15000, currency="PLN", booked_on=BOOKED, actor=None)
    with pytest.raises(Refused):
        transfers.receive_transfer(gift, amount_minor=15000, currency="PLN", booked_on=BOOKED, actor=None)
    assert gift.supporter.gift_count == 1


@pytest.mark.parametrize(("amount_minor", "currency"), [(14999, "PLN"), (15001, "PLN"), (15000, "EUR")])
def test_money_that_is_not_what_was_pledged_is_refused(db: Any, amount_minor: int, currency: str) -> None:
    gift = pledge()
    with pytest.raises(Refused):
        transfers.receive_transfer(gift, amount_minor=amount_minor, currency=currency, booked_on=BOOKED, actor=None)
    assert gift.status is GiftStatus.PENDING
    assert not db.session.scalars(sa.select(AuditEvent).filter_by(action="gift.transfer_received")).all()


def test_only_an_awaiting_bank_transfer_pledge_can_receive_a_transfer(db: Any) -> None:
    stripe_gift = factories.gift(amount_minor=15000)
    with pytest.raises(Refused):
        transfers.receive_transfer(stripe_gift, amount_minor=15000, currency="PLN", booked_on=BOOKED, actor=None)
    closed = pledge()
    closed.status = GiftStatus.CANCELED
    with pytest.raises(Refused):
        transfers.receive_transfer(closed, amount_minor=15000, currency="PLN", booked_on=BOOKED, actor=None)
    assert stripe_gift.status is GiftStatus.PENDING and closed.status is GiftStatus.CANCELED


def test_pledges_unmatched_for_the_set_days_are_closed_as_not_received_silently(db: Any) -> None:
    now = datetime.now(UTC)
    old = pledge(created_at=now - timedelta(days=31))
    recent = pledge(created_at=now - timedelta(days=29))
    paid_old = pledge(created_at=now - timedelta(days=40))
    transfers.receive_transfer(paid_old, amount_minor=15000, currency="PLN", booked_on=BOOKED, actor=None)
    stripe_old = factories.gift(created_at=now - timedelta(days=40))
    mails = db.session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail))

    assert transfers.close_stale_pledges(now, 30) == 1

    assert old.status is GiftStatus.CANCELED
    assert recent.status is GiftStatus.PENDING and stripe_old.status is GiftStatus.PENDING
    assert paid_old.status is GiftStatus.SUCCEEDED
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail)) == mails
    event = db.session.scalars(sa.select(AuditEvent).filter_by(action="gift.pledge_closed")).one()
    assert event.target_id == str(old.id) and event.details["reason"] == "not received"
    assert transfers.close_stale_pledges(now, 30) == 0


def test_the_cron_closes_stale_pledges_by_the_setting(app: Any, db: Any) -> None:
    old = pledge(created_at=datetime.now(UTC) - timedelta(days=31))
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["bank", "close-stale-pledges"])
    assert result.exit_code == 0, result.output
    assert "not received: 1." in result.output
    assert db.session.get(Gift, old.id, populate_existing=True).status is GiftStatus.CANCELED


def test_a_pledge_in_euro_is_converted_at_the_rate_of_the_day_before_the_booking(db: Any) -> None:
    from decimal import Decimal

    from supporters.models import ExchangeRate

    db.session.add(
        ExchangeRate(
            currency="EUR", effective_on=BOOKED - timedelta(days=1), rate=Decimal("4.2500"), table_no="1/A/NBP"
        )
    )
    gift = pledge(10000, "EUR", amount_base_minor=None)
    transfers.receive_transfer(gift, amount_minor=10000, currency="EUR", booked_on=BOOKED, actor=None)
    assert (gift.amount_base_minor, gift.base_rate_table) == (42500, "1/A/NBP")
    assert gift.supporter.lifetime_total_minor == 42500
