"""The migrations build the whole model from nothing, tear it down, and match the models."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from supporters.extensions import db
from supporters.models.base import include_object_for
from tests.conftest import MIGRATIONS, DatabaseFactory, make_app

MODEL_TABLES = {
    "supporter", "supporter_tag", "gift", "recurring_plan", "campaign", "article", "article_tag",
    "stripe_event", "consent", "staff_user", "audit_event", "widget_stat", "outbox_email", "appeal_variant",
    "staff_session", "supporter_note", "giving_total", "supporter_search_key",
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
POSTGRESQL_INDEXES = {"ix_supporter_last_gift_at_nulls_first"}


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
