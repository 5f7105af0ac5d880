"""The migrations build the whole model from nothing, tear it down, and match the models."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from supporters.extensions import db
from supporters.models import Gift, RecurringPlan
from supporters.models.base import include_object_for
from tests.conftest import MIGRATIONS, DatabaseFactory, make_app

MODEL_TABLES = {
    "bank_statement",
    "privacy_request",
    "donor_sign_in",
    "bank_line",
    "supporter",
    "supporter_tag",
    "gift",
    "recurring_plan",
    "campaign",
    "article",
    "article_tag",
    "stripe_event",
    "consent",
    "consent_request",
    "staff_user",
    "audit_event",
    "widget_stat",
    "outbox_email",
    "appeal_variant",
    "staff_session",
    "staff_recovery_code",
    "staff_token",
    "supporter_note",
    "giving_total",
    "supporter_search_key",
    "receipt_sequence",
    "exchange_rate",
    "import_mapping",
    "import_run",
    "imported_row",
    "duplicate_candidate",
    "duplicate_dismissal",
    "supporter_merge",
    "saved_search",
}


def tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_downgrade_and_upgrade_again_from_empty(databases: DatabaseFactory) -> None:
    app = make_app(databases.create())
    with app.app_context():
        assert tables(db.engine) == set()
        upgrade(directory=MIGRATIONS)
        assert tables(db.engine) == MODEL_TABLES
        downgrade(directory=MIGRATIONS, revision="base")
        assert tables(db.engine) == set()
        upgrade(directory=MIGRATIONS)
        assert tables(db.engine) == MODEL_TABLES
        db.engine.dispose()


#: indexes on expressions, which SQLAlchemy cannot reflect on SQLite (and so cannot compare)
EXPRESSION_INDEXES = {"ix_gift_happened_at": "gift"}
#: indexes made on PostgreSQL only (Index.ddl_if)
POSTGRESQL_INDEXES = {"ix_supporter_listed_last_gift"}


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_models_and_migrations_do_not_drift(databases: DatabaseFactory) -> None:
    app = make_app(databases.create())
    with app.app_context():
        upgrade(directory=MIGRATIONS)
        with db.engine.connect() as connection:
            include = include_object_for(connection.dialect.name)
            context = MigrationContext.configure(connection, opts={"compare_type": True, "include_object": include})
            differences = compare_metadata(context, db.metadata)
            present = _index_names(connection)
        db.engine.dispose()
    assert differences == [], f"autogenerate would write a new revision for: {differences}"
    # What reflection skips is checked by name, on both databases.
    assert set(EXPRESSION_INDEXES) <= present
    if databases.is_postgres:
        assert POSTGRESQL_INDEXES <= present
    else:
        assert not POSTGRESQL_INDEXES & present


def _index_names(connection: sa.Connection) -> set[str]:
    if connection.dialect.name == "postgresql":
        return set(connection.execute(sa.text("SELECT indexname FROM pg_indexes")).scalars())
    return set(connection.execute(sa.text("SELECT name FROM sqlite_master WHERE type = 'index'")).scalars())


def test_the_model_tables_are_all_mapped() -> None:
    assert set(db.metadata.tables) == MODEL_TABLES


def test_the_migration_links_the_events_already_there_to_the_gift_or_plan_their_outcome_names(
    databases: DatabaseFactory,
) -> None:
    app = make_app(databases.create())
    with app.app_context():
        upgrade(directory=MIGRATIONS, revision="0005")
        now = datetime(2026, 5, 2, 10, tzinfo=UTC)
        event = sa.table(
            "stripe_event",
            sa.column("id", sa.String),
            sa.column("type", sa.String),
            sa.column("livemode", sa.Boolean),
            sa.column("received_at", sa.DateTime(timezone=True)),
            sa.column("outcome", sa.String),
            sa.column("payload", sa.JSON),
        )
        outcomes = {
            "evt_a": "gift 1 succeeded",
            "evt_b": "gift 12 unchanged (succeeded)",
            "evt_c": "gift 12 refunded 1 in all",
            "evt_d": "gift 12 succeeded (plan 3)",
            "evt_e": "plan 3 past due",
            "evt_f": "plan 3 unchanged (active)",
            "evt_g": "gift 1 linked to pi_3",
            "evt_h": "gift 99 succeeded",  # a gift deleted since: nothing to link to
            "evt_i": "plan 98 canceled",
            "evt_j": "ignored: no matching gift",
            "evt_k": "invoice in_12 already recorded",
            "evt_l": None,  # recorded, never processed
            "evt_m": "gift 12x unchanged",
        }
        with db.engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO supporter (id, email, email_normalised, name, name_sort, language, gift_count, "
                    "lifetime_total_minor, is_demo, newsletter, created_at, updated_at) "
                    "VALUES (1, 'a@example.org', 'a@example.org', 'A', 'a', 'en', 0, 0, false, false, :now, :now)"
                ),
                {"now": now},
            )
            connection.execute(
                sa.insert(RecurringPlan.__table__).values(
                    id=3,
                    supporter_id=1,
                    amount_minor=3000,
                    currency="PLN",
                    interval="month",
                    status="active",
                    is_demo=False,
                    created_at=now,
                    updated_at=now,
                )
            )
            for gift_id, plan_id in [(1, None), (12, 3)]:
                connection.execute(
                    sa.insert(Gift.__table__).values(
                        id=gift_id,
                        supporter_id=1,
                        amount_minor=2000,
                        currency="PLN",
                        amount_base_minor=None,
                        status="pending",
                        kind="one_time",
                        method="stripe",
                        refunded_minor=0,
                        covers_fee=False,
                        anonymous=False,
                        is_demo=False,
                        recurring_plan_id=plan_id,
                        created_at=now,
                        updated_at=now,
                    )
                )
            connection.execute(
                sa.insert(event),
                [
                    {
                        "id": evt_id,
                        "type": "invoice.paid",
                        "livemode": False,
                        "received_at": now,
                        "outcome": outcome,
                        "payload": {},
                    }
                    for evt_id, outcome in outcomes.items()
                ],
            )
        upgrade(directory=MIGRATIONS)
        with db.engine.connect() as connection:
            linked = {
                row.id: (row.gift_id, row.plan_id)
                for row in connection.execute(sa.text("SELECT id, gift_id, plan_id FROM stripe_event"))
            }
        assert linked == {
            "evt_a": (1, None),
            "evt_b": (12, None),
            "evt_c": (12, None),
            "evt_d": (12, 3),
            "evt_e": (None, 3),
            "evt_f": (None, 3),
            "evt_g": (1, None),
            "evt_h": (None, None),
            "evt_i": (None, None),
            "evt_j": (None, None),
            "evt_k": (None, None),
            "evt_l": (None, None),
            "evt_m": (None, None),
        }
        # The way back drops the links and keeps the events.
        downgrade(directory=MIGRATIONS, revision="0005")
        columns = {column["name"] for column in sa.inspect(db.engine).get_columns("stripe_event")}
        assert not {"gift_id", "plan_id"} & columns
        with db.engine.connect() as connection:
            assert dict(connection.execute(sa.text("SELECT id, outcome FROM stripe_event")).all()) == outcomes
        db.engine.dispose()


def test_the_receipt_sequences_start_above_the_numbers_already_given_and_the_gifts_keep_their_links(
    databases: DatabaseFactory,
) -> None:
    app = make_app(databases.create())
    with app.app_context():
        upgrade(directory=MIGRATIONS, revision="0009")
        now = datetime(2026, 5, 2, 10, tzinfo=UTC)
        with db.engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO supporter (id, email, email_normalised, name, name_sort, language, gift_count, "
                    "lifetime_total_minor, is_demo, newsletter, created_at, updated_at) "
                    "VALUES (1, 'a@example.org', 'a@example.org', 'A', 'a', 'en', 0, 0, false, false, :now, :now)"
                ),
                {"now": now},
            )
            numbers = {1: "2025-000007", 2: "2026-000042", 3: "2026-000005", 4: None, 5: "DEMO-1"}
            for gift_id, number in numbers.items():
                connection.execute(
                    sa.text(
                        "INSERT INTO gift (id, supporter_id, amount_minor, currency, status, kind, method, "
                        "refunded_minor, covers_fee, anonymous, is_demo, receipt_number, paid_at, created_at, "
                        "updated_at) VALUES (:id, 1, 2000, 'PLN', 'succeeded', 'one_time', 'cash', 0, false, false, "
                        "false, :number, :now, :now, :now)"
                    ),
                    {"id": gift_id, "number": number, "now": now},
                )
            connection.execute(
                sa.text(
                    "INSERT INTO stripe_event (id, type, livemode, received_at, outcome, payload, gift_id, "
                    "needs_review) VALUES ('evt_1', 'charge.refunded', false, :now, 'gift 2 unchanged', '{}', 2, false)"
                ),
                {"now": now},
            )
        upgrade(directory=MIGRATIONS)
        with db.engine.connect() as connection:
            sequences = dict(connection.execute(sa.text("SELECT year, last_number FROM receipt_sequence")).all())
            linked = connection.execute(sa.text("SELECT gift_id FROM stripe_event WHERE id = 'evt_1'")).scalar()
            gifts = connection.execute(sa.text("SELECT count(*) FROM gift")).scalar()
        db.engine.dispose()
    assert sequences == {2025: 7, 2026: 42}
    assert linked == 2, "rebuilding the gift table (SQLite) keeps the events' links to their gifts"
    assert gifts == 5


def test_the_migration_rebuilds_the_search_keys_of_the_supporters_already_there(databases: DatabaseFactory) -> None:
    """0025 finds the second half of a double-barrelled surname and the e-mail's domain for
    rows made before it, with the same keys the model makes for new ones."""
    from supporters.models.supporter import search_keys

    app = make_app(databases.create())
    with app.app_context():
        upgrade(directory=MIGRATIONS, revision="0021")
        now = datetime(2026, 5, 2, 10, tzinfo=UTC)
        with db.engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO supporter (id, email, email_normalised, name, name_sort, language, gift_count, "
                    "lifetime_total_minor, is_demo, newsletter, created_at, updated_at) VALUES "
                    "(7, 'A@Example.org', 'a@example.org', 'Anna Śliwińska-Kowalczyk', 'anna sliwinska-kowalczyk', "
                    "'pl', 0, 0, false, false, :now, :now)"
                ),
                {"now": now},
            )
            connection.execute(
                sa.text("INSERT INTO supporter_search_key (key, supporter_id) VALUES (:key, 7)"),
                [{"key": key} for key in ("anna sliwinska-kowalczyk", "sliwinska-kowalczyk", "a@example.org")],
            )
        upgrade(directory=MIGRATIONS)
        with db.engine.connect() as connection:
            keys = set(connection.execute(sa.text("SELECT key FROM supporter_search_key")).scalars())
        downgrade(directory=MIGRATIONS, revision="0021")
        with db.engine.connect() as connection:
            before = set(connection.execute(sa.text("SELECT key FROM supporter_search_key")).scalars())
        db.engine.dispose()
    assert keys == search_keys("anna sliwinska-kowalczyk", "a@example.org")
    assert {"kowalczyk", "@example.org"} <= keys
    assert before == {"anna sliwinska-kowalczyk", "sliwinska-kowalczyk", "a@example.org"}
