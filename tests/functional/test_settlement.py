"""What reached the account (giving/settlement.py): each Stripe gift's fee, net and amount
in the reporting currency come from the charge's balance transaction, fetched by the
worker after the payment and by reconcile for whatever is still missing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from supporters.extensions import db
from supporters.giving import currency, reconcile, settlement
from supporters.lib import nbp
from supporters.models import AuditEvent, Gift, GiftStatus, giving
from supporters.payments import Balance
from tests import factories
from tests import stripe_events as se
from tests.fakes import FakeGateway

TABLES = Path(__file__).resolve().parents[1] / "data" / "nbp" / "tables_a.json"
#: Tuesday 1 December 2026, 10:00 UTC: the sample's last table (30 November) is the one before it
PAID = datetime(2026, 12, 1, 10, tzinfo=UTC)


def stripe_gift(amount_minor: int = 5000, code: str = "PLN", **fields: Any) -> Gift:
    base = amount_minor if code == "PLN" else None
    return factories.paid_gift(
        paid_at=fields.pop("paid_at", PAID),
        amount_minor=amount_minor,
        currency=code,
        amount_base_minor=base,
        **{"stripe_payment_intent_id": se.new_id("pi"), **fields},
    )


def balance(amount: int, fee: int, code: str = "PLN") -> Balance:
    return Balance(id=se.new_id("txn"), amount_minor=amount, fee_minor=fee, net_minor=amount - fee, currency=code)


def totals_in_step() -> None:
    connection = db.session.connection()
    assert giving.stored_totals(connection) == giving.totals_from_gifts(connection)


def test_a_paid_gift_gets_its_fee_and_net_from_its_balance_transaction(db: Any, fake_stripe: FakeGateway) -> None:
    gift = stripe_gift(5000)
    txn = balance(5000, 175)
    fake_stripe.balances[gift.stripe_payment_intent_id] = txn
    report = settlement.settle_due(now=PAID + timedelta(minutes=1))
    assert (report.settled, report.waiting, report.error) == (1, 0, None)
    assert (gift.fee_minor, gift.net_minor, gift.balance_currency) == (175, 4825, "PLN")
    assert gift.stripe_balance_transaction_id == txn.id
    assert (gift.amount_base_minor, gift.base_rate_table) == (5000, None)
    # settled once: not asked again
    again = settlement.settle_due(now=PAID + timedelta(hours=1))
    assert again.settled == 0 and fake_stripe.balance_asked == [gift.stripe_payment_intent_id]


def test_a_gift_in_another_currency_counts_what_reached_the_account(db: Any, fake_stripe: FakeGateway) -> None:
    gift = stripe_gift(2000, "EUR")
    person = gift.supporter
    from supporters.giving.totals import refresh_supporter_totals

    refresh_supporter_totals(person)
    assert gift.amount_base_minor is None and person.lifetime_total_minor == 0
    assert currency.waiting_count() == 1
    fake_stripe.balances[gift.stripe_payment_intent_id] = balance(8448, 227)  # Stripe converted to PLN
    settlement.settle_due(now=PAID)
    assert (gift.amount_base_minor, gift.fee_minor, gift.net_minor) == (8448, 227, 8221)
    assert person.lifetime_total_minor == 8448
    assert currency.waiting_count() == 0
    totals_in_step()


def test_a_balance_in_a_currency_other_than_the_reporting_one_is_converted_at_the_bank_s_rate(
    db: Any, fake_stripe: FakeGateway
) -> None:
    gift = stripe_gift(2000, "EUR")
    fake_stripe.balances[gift.stripe_payment_intent_id] = balance(2000, 55, "EUR")  # an account settling in EUR
    settlement.settle_due(now=PAID)
    assert (gift.fee_minor, gift.net_minor, gift.balance_currency) == (55, 1945, "EUR")
    assert gift.amount_base_minor is None  # no table loaded yet: waits
    assert currency.waiting_count() == 1
    report = currency.import_tables(nbp.read_tables(TABLES.read_bytes()))
    assert report.converted == 1
    db.session.refresh(gift)
    # the whole 20.00 EUR, at 4.2241 (table of Monday 30 November)
    assert (gift.amount_base_minor, gift.base_rate_table) == (8448, "231/A/NBP/2026")
    totals_in_step()


def test_a_charge_stripe_has_not_settled_is_asked_about_again_only_after_a_while(
    db: Any, fake_stripe: FakeGateway
) -> None:
    gift = stripe_gift(5000)
    first = settlement.settle_due(now=PAID)
    assert (first.settled, first.waiting) == (0, 1) and gift.balance_checked_at == PAID
    assert gift.fee_minor is None
    assert settlement.settle_due(now=PAID + timedelta(minutes=5)).waiting == 0
    assert len(fake_stripe.balance_asked) == 1
    fake_stripe.balances[gift.stripe_payment_intent_id] = balance(5000, 175)
    later = settlement.settle_due(now=PAID + settlement.RECHECK_AFTER + timedelta(seconds=1))
    assert later.settled == 1 and gift.fee_minor == 175 and len(fake_stripe.balance_asked) == 2


def test_stripe_out_of_reach_stops_the_round_and_changes_nothing(db: Any, fake_stripe: FakeGateway) -> None:
    gifts = [stripe_gift(5000) for _ in range(3)]
    fake_stripe.fail = True
    report = settlement.settle_due(now=PAID)
    assert report.error == "Stripe is not answering" and report.settled == report.waiting == 0
    assert all(gift.balance_checked_at is None and gift.fee_minor is None for gift in gifts)


def test_which_gifts_are_looked_at(db: Any, fake_stripe: FakeGateway) -> None:
    wanted = [stripe_gift(5000), stripe_gift(3000)]
    refunded = stripe_gift(4000)
    refunded.refunded_minor = 4000
    refunded.status = GiftStatus.REFUNDED
    wanted.append(refunded)
    factories.gift(stripe_payment_intent_id=se.new_id("pi"))  # still pending: no money moved
    stripe_gift(5000, stripe_payment_intent_id=None)  # no payment intent to ask about
    stripe_gift(5000, paid_at=PAID - settlement.LOOK_BACK - timedelta(days=1))  # older than the worker looks
    for gift in wanted:
        fake_stripe.balances[gift.stripe_payment_intent_id] = balance(gift.amount_minor, 100)
    report = settlement.settle_due(now=PAID)
    assert report.settled == 3
    assert sorted(fake_stripe.balance_asked) == sorted(gift.stripe_payment_intent_id for gift in wanted)
    assert refunded.amount_base_minor == 4000 and refunded.net_minor == 3900


def test_reconcile_counts_the_missing_balances_in_a_dry_run_and_fills_them_in_a_real_one(
    db: Any, fake_stripe: FakeGateway
) -> None:
    old = stripe_gift(5000, paid_at=datetime.now(UTC) - timedelta(days=40))
    fresh = stripe_gift(2000, "EUR", paid_at=datetime.now(UTC) - timedelta(hours=1))
    fresh.balance_checked_at = datetime.now(UTC)  # the worker asked a minute ago; reconcile asks anyway
    fake_stripe.balances[old.stripe_payment_intent_id] = balance(5000, 175)
    fake_stripe.balances[fresh.stripe_payment_intent_id] = balance(8448, 227)
    since = datetime.now(UTC) - timedelta(days=60)

    dry = reconcile.reconcile(since, dry_run=True, actor=None)
    assert (dry.balances_missing, dry.balances_filled) == (2, 0)
    assert fake_stripe.balance_asked == [] and old.fee_minor is None

    real = reconcile.reconcile(since, dry_run=False, actor=None, actor_name="test")
    assert (real.balances_missing, real.balances_filled, real.balances_unsettled) == (2, 2, 0)
    assert (old.fee_minor, fresh.amount_base_minor) == (175, 8448)
    audit = db.session.scalars(select(AuditEvent).filter_by(action="stripe.reconcile")).one()
    assert audit.details["balances_filled"] == 2
    totals_in_step()


def test_the_worker_fetches_fees_once_a_round(db: Any, cli: Any, fake_stripe: FakeGateway) -> None:
    gift = stripe_gift(5000, paid_at=datetime.now(UTC) - timedelta(minutes=2))
    fake_stripe.balances[gift.stripe_payment_intent_id] = balance(5000, 175)
    db.session.commit()
    result = cli.invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "Fees recorded for 1 payment(s); 0 not settled by Stripe yet." in result.output
    assert db.session.get(Gift, gift.id, populate_existing=True).fee_minor == 175


def test_the_worker_goes_on_when_stripe_is_out_of_reach(db: Any, cli: Any, fake_stripe: FakeGateway) -> None:
    stripe_gift(5000, paid_at=datetime.now(UTC) - timedelta(minutes=2))
    db.session.commit()
    fake_stripe.fail = True
    result = cli.invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "Sent 0 e-mail(s)" in result.output


def test_the_day_a_gift_counts_on_is_the_organisation_s(db: Any) -> None:
    late_evening = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)  # 1 December, 00:30 in Warsaw
    gift = factories.paid_gift(paid_at=late_evening, amount_minor=100, currency="EUR", amount_base_minor=None)
    assert currency.received_on(gift) == date(2026, 12, 1)
