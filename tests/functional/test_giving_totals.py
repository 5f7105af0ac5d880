"""The giving totals the overview reads stay equal to what the gifts themselves add up to:
after every change a gift can go through, after the migration that creates them, and
after `flask derived rebuild` repairs rows changed behind the app's back."""

from __future__ import annotations

import contextlib
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask_migrate import upgrade

from supporters.dashboard import overview
from supporters.extensions import db
from supporters.models import (
    GIFT_TRANSITIONS,
    Campaign,
    Consent,
    Gift,
    GiftKind,
    GiftStatus,
    GivingTotal,
    Supporter,
    SupporterSearchKey,
    giving,
)
from supporters.models import supporter as supporter_model
from tests import factories
from tests.conftest import MIGRATIONS, DatabaseFactory, make_app

PAID = datetime(2026, 3, 14, 15, 9, tzinfo=UTC)


def assert_in_step() -> None:
    db.session.flush()
    connection = db.session.connection()
    assert giving.stored_totals(connection) == giving.totals_from_gifts(connection)


def stored(key: tuple[str, date, str]) -> tuple[int, int]:
    db.session.flush()
    return giving.stored_totals(db.session.connection()).get(key, (0, 0))


def test_a_paid_gift_counts_by_day_kind_campaign_and_article(db: Any) -> None:
    campaign = Campaign(slug="winter", name="Winter appeal", goal_currency="PLN")
    db.session.add(campaign)
    db.session.flush()
    gift = factories.gift(amount_minor=5000, amount_base_minor=5000, source_article="grid", campaign_id=campaign.id)
    assert stored(("kind", date(2026, 3, 14), "one_time")) == (0, 0)  # pending: nothing yet
    gift.status, gift.paid_at = GiftStatus.SUCCEEDED, PAID
    assert stored(("kind", date(2026, 3, 14), "one_time")) == (5000, 1)
    assert stored(("article", date(2026, 3, 1), "grid")) == (5000, 1)
    assert stored(("campaign", date(2026, 3, 1), str(campaign.id))) == (5000, 1)
    gift.refunded_minor, gift.status = 2000, GiftStatus.PARTIALLY_REFUNDED
    assert stored(("kind", date(2026, 3, 14), "one_time")) == (3000, 1)
    gift.refunded_minor, gift.status = 5000, GiftStatus.REFUNDED
    assert stored(("kind", date(2026, 3, 14), "one_time")) == (0, 0)
    assert_in_step()


def test_a_gift_converted_later_adds_its_amount_then(db: Any) -> None:
    gift = factories.paid_gift(paid_at=PAID, amount_minor=1000, currency="EUR", amount_base_minor=None)
    assert stored(("kind", date(2026, 3, 14), "one_time")) == (0, 1)  # counted, not yet in PLN
    gift.amount_base_minor = 4300
    assert stored(("kind", date(2026, 3, 14), "one_time")) == (4300, 1)


def test_the_day_is_the_utc_day_of_payment(db: Any) -> None:
    late = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)
    factories.paid_gift(
        paid_at=late.astimezone(datetime.now().astimezone().tzinfo), amount_minor=700, amount_base_minor=700
    )
    assert stored(("kind", date(2026, 3, 31), "one_time")) == (700, 1)


def test_totals_follow_every_change_a_gift_can_go_through(db: Any) -> None:
    """A random walk of 300 allowed changes over a handful of gifts, checked after each."""
    rng = random.Random(5)
    owner = factories.supporter()
    gifts = [
        factories.gift(owner, amount_minor=rng.choice([1000, 2500, 9999]), amount_base_minor=None) for _ in range(5)
    ]
    for step in range(300):
        gift = rng.choice(gifts)
        move = rng.randrange(6)
        if move == 0:
            allowed = sorted(GIFT_TRANSITIONS[gift.status], key=str)
            if not allowed:
                continue
            new = rng.choice(allowed)
            if new in (GiftStatus.SUCCEEDED,) and gift.paid_at is None:
                gift.paid_at = PAID + timedelta(days=rng.randrange(60), hours=rng.randrange(24))
            if new is GiftStatus.PARTIALLY_REFUNDED:
                gift.refunded_minor = rng.randrange(max(gift.refunded_minor, 1), gift.amount_minor)
            if new is GiftStatus.REFUNDED:
                gift.refunded_minor = gift.amount_minor
            gift.status = new
        elif move == 1 and gift.paid_at is not None:
            gift.paid_at = gift.paid_at + timedelta(days=rng.choice([-40, -1, 1, 33]))
        elif move == 2:
            gift.amount_base_minor = rng.choice([None, gift.amount_minor, gift.amount_minor * 4])
        elif move == 3:
            gift.source_article = rng.choice([None, "", "grid", "baltic"])
        elif move == 4:
            gift.kind = rng.choice(list(GiftKind))
        elif move == 5 and rng.random() < 0.2:
            db.session.delete(gift)
            gifts.remove(gift)
            gifts.append(factories.gift(owner, amount_minor=1500, amount_base_minor=1500))
        if step % 3 == 0:
            assert_in_step()
    assert_in_step()
    assert any(gift.status is not GiftStatus.PENDING for gift in gifts)


def test_the_overview_reads_the_totals_and_the_day_in_progress(db: Any) -> None:

    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    factories.paid_gift(paid_at=datetime(2026, 11, 27, 9, tzinfo=UTC), amount_minor=100, amount_base_minor=100)
    factories.paid_gift(paid_at=datetime(2026, 11, 27, 13, tzinfo=UTC), amount_minor=20, amount_base_minor=20)
    factories.paid_gift(paid_at=datetime(2025, 11, 27, 11, tzinfo=UTC), amount_minor=3, amount_base_minor=3)
    factories.paid_gift(paid_at=datetime(2025, 11, 27, 12, tzinfo=UTC), amount_minor=40, amount_base_minor=40)
    report = overview.overview(now=now)
    assert report.period.amount_minor == 100  # 13:00 today is after `now`
    assert report.period_last_year.amount_minor == 3  # the same moment last year ends the period


def test_the_migration_fills_totals_flags_and_keys_from_the_rows_already_there(databases: DatabaseFactory) -> None:
    app = make_app(databases.create())
    with app.app_context():
        upgrade(directory=MIGRATIONS, revision="0004")
        with db.engine.begin() as connection:
            now = datetime(2026, 5, 2, 10, tzinfo=UTC)
            connection.execute(
                sa.text(
                    "INSERT INTO supporter (id, email, email_normalised, name, name_sort, language, gift_count, "
                    "lifetime_total_minor, is_demo, created_at, updated_at) "
                    "VALUES (1, 'a@example.org', 'a@example.org', 'A', 'a', 'en', 0, 0, false, :now, :now)"
                ),
                {"now": now},
            )
            for gift_id, status, refunded, article in [
                (1, "succeeded", 0, "grid"),
                (2, "partially_refunded", 500, None),
                (3, "refunded", 2000, "grid"),
                (4, "pending", 0, None),
            ]:
                connection.execute(
                    sa.insert(Gift.__table__).values(
                        id=gift_id,
                        supporter_id=1,
                        amount_minor=2000,
                        currency="PLN",
                        amount_base_minor=2000,
                        status=status,
                        kind="one_time",
                        method="stripe",
                        refunded_minor=refunded,
                        covers_fee=False,
                        anonymous=False,
                        is_demo=False,
                        source_article=article,
                        paid_at=now if status != "pending" else None,
                        created_at=now,
                        updated_at=now,
                    )
                )
            for consent_id, granted, day in [(1, True, 1), (2, False, 3), (3, True, 2)]:
                connection.execute(
                    sa.text(
                        "INSERT INTO consent (id, supporter_id, purpose, granted, recorded_at, source, wording) "
                        "VALUES (:id, 1, 'newsletter', :granted, :at, 'form', 'w')"
                    ),
                    {"id": consent_id, "granted": granted, "at": datetime(2026, 5, day, tzinfo=UTC)},
                )
            connection.execute(
                sa.text("UPDATE supporter SET name = 'Łucja Maria Żak', name_sort = 'lucja maria zak' WHERE id = 1")
            )
        upgrade(directory=MIGRATIONS)
        with db.engine.connect() as connection:
            # the newest decision (3 May) withdrew the newsletter; the search keys are there
            assert connection.execute(sa.text("SELECT newsletter FROM supporter")).scalar_one() in (False, 0)
            assert set(connection.execute(sa.text("SELECT key FROM supporter_search_key")).scalars()) == {
                "lucja maria zak",
                "maria zak",
                "zak",
                "a@example.org",
                "@example.org",
            }
            assert (
                giving.stored_totals(connection)
                == giving.totals_from_gifts(connection)
                == {
                    ("kind", date(2026, 5, 2), "one_time"): (3500, 2),
                    ("article", date(2026, 5, 1), "grid"): (2000, 1),
                }
            )
        db.engine.dispose()


def test_rebuild_repairs_what_was_changed_behind_the_apps_back(db: Any, cli: Any) -> None:
    gift = factories.paid_gift(paid_at=PAID, amount_minor=5000, amount_base_minor=5000)
    owner = db.session.get(Supporter, gift.supporter_id)
    db.session.add(Consent(supporter_id=owner.id, purpose="newsletter", granted=True, source="form", wording="w"))
    db.session.flush()
    db.session.execute(sa.update(GivingTotal).values(amount_base_minor=1))
    db.session.execute(
        sa.insert(GivingTotal).values(
            dimension="article", period=date(2020, 1, 1), key="gone", amount_base_minor=9, gifts=1
        )
    )
    db.session.execute(sa.delete(SupporterSearchKey).where(SupporterSearchKey.supporter_id == owner.id))
    db.session.execute(sa.update(Supporter).where(Supporter.id == owner.id).values(newsletter=False))
    result = cli.invoke(args=["derived", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "Giving totals: had drifted" in result.output and "Search keys: had drifted" in result.output
    assert "Newsletter flags: 1 corrected." in result.output
    assert_in_step()
    assert stored(("kind", date(2026, 3, 14), "one_time")) == (5000, 1)
    connection = db.session.connection()
    assert supporter_model.stored_search_keys(connection) == supporter_model.search_keys_from_supporters(connection)
    assert db.session.scalar(sa.select(Supporter.newsletter).where(Supporter.id == owner.id)) is True
    again = cli.invoke(args=["derived", "rebuild"])
    assert "in step" in again.output and "drifted" not in again.output


def test_a_gift_recorded_as_paid_at_once_counts_with_its_defaults(db: Any) -> None:
    """Offline gifts start succeeded; kind and refunded_minor come from column defaults."""
    owner = factories.supporter()
    db.session.add(
        Gift(
            supporter_id=owner.id,
            amount_minor=800,
            currency="PLN",
            amount_base_minor=800,
            status=GiftStatus.SUCCEEDED,
            paid_at=PAID,
        )
    )
    assert stored(("kind", date(2026, 3, 14), "one_time")) == (800, 1)
    assert_in_step()


def test_the_chart_counts_a_gift_dated_ahead_of_utc_in_its_month(db: Any) -> None:
    """An offline gift is dated noon UTC of the organisation's day: at 00:30 in Warsaw on
    16 November it is 23:30 UTC on the 15th, and the gift's UTC day is still to come."""

    now = datetime(2026, 11, 15, 23, 30, tzinfo=UTC)
    factories.paid_gift(paid_at=datetime(2026, 11, 16, 12, tzinfo=UTC), amount_minor=900, amount_base_minor=900)
    factories.paid_gift(paid_at=datetime(2026, 11, 15, 12, tzinfo=UTC), amount_minor=50, amount_base_minor=50)
    report = overview.overview(now=now)
    assert report.series[-1] == overview.Bucket(date(2026, 11, 1), date(2026, 11, 16), 950, 0)
    assert report.period.amount_minor == 50  # the period so far: up to now


def test_a_change_to_no_counted_column_reads_nothing_and_adds_nothing(db: Any) -> None:
    """A receipt number or a Stripe id written to a paid gift leaves its contribution as it
    was: the flush neither reads (and locks) the gift's row for the totals nor adds to them."""
    gift = factories.paid_gift(paid_at=PAID, amount_minor=5000, amount_base_minor=5000)
    assert stored(("kind", date(2026, 3, 14), "one_time")) == (5000, 1)
    statements: list[str] = []
    connection = db.session.connection()

    def listener(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    sa.event.listen(connection, "before_cursor_execute", listener)
    try:
        gift.receipt_number, gift.stripe_charge_id = "2026-000001", "ch_noted"
        db.session.flush()
    finally:
        sa.event.remove(connection, "before_cursor_execute", listener)
    assert [statement.split()[0] for statement in statements] == ["UPDATE"]
    assert stored(("kind", date(2026, 3, 14), "one_time")) == (5000, 1)
    assert_in_step()


def test_a_savepoint_whose_flush_fails_takes_its_payment_out_of_the_totals(db: Any) -> None:
    """The totals' differences are written at commit; a savepoint the database rolled back
    (here: its flush broke a constraint) must not leave its payment's behind to be written."""
    taken = factories.supporter()
    gift = factories.gift(amount_minor=5000, amount_base_minor=5000)
    with contextlib.suppress(sa.exc.IntegrityError), db.session.begin_nested():
        gift.status, gift.paid_at = GiftStatus.SUCCEEDED, PAID
        db.session.flush()  # the payment's difference is collected
        db.session.add(Supporter(email=taken.email, name="Same address"))
        db.session.flush()  # refused: the savepoint rolls back, the payment with it
    assert db.session.get(Gift, gift.id).status is GiftStatus.PENDING
    assert stored(("kind", date(2026, 3, 14), "one_time")) == (0, 0)
    db.session.commit()
    assert stored(("kind", date(2026, 3, 14), "one_time")) == (0, 0)
    assert_in_step()
