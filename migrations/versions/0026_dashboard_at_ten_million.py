"""the dashboard at a million supporters: partial indexes of listed supporters, search keys by supporter and key

Every list query says merged_into_id IS NULL: partial indexes of the listed supporters
let a page of ids (however deep) and a search's "is this one listed" be read from the
index alone. The search keys by supporter carry the key, so the list walking supporters
in its order checks each against the search's ranges without reading the key's row.
The active plans' index carries what the monthly income adds up.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-02 07:00:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

LISTED = sa.text("merged_into_id IS NULL")


def _where():
    return {"sqlite_where": LISTED, "postgresql_where": LISTED}


def upgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    for name, columns in (("ix_supporter_lifetime_total_minor", ["lifetime_total_minor", "id"]),
                          ("ix_supporter_name_sort", ["name_sort", "id"])):
        op.drop_index(name, table_name="supporter")
        op.create_index(name, "supporter", columns, unique=False, **_where())
    op.create_index("ix_supporter_listed_id", "supporter", ["id"], unique=False, **_where())
    if postgres:  # NULLS FIRST: see models/supporter.py
        op.drop_index("ix_supporter_last_gift_at_nulls_first", table_name="supporter")
        op.create_index("ix_supporter_listed_last_gift", "supporter",
                        [sa.text("last_gift_at NULLS FIRST"), "id"], unique=False, **_where())
    op.drop_index("ix_supporter_search_key_supporter_id", table_name="supporter_search_key")
    op.create_index("ix_supporter_search_key_supporter_id", "supporter_search_key",
                    ["supporter_id", "key"], unique=False)
    op.drop_index("ix_recurring_plan_status", table_name="recurring_plan")
    op.create_index("ix_recurring_plan_status", "recurring_plan",
                    ["status", "currency", "interval", "amount_minor"], unique=False)


def downgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    op.drop_index("ix_recurring_plan_status", table_name="recurring_plan")
    op.create_index("ix_recurring_plan_status", "recurring_plan", ["status"], unique=False)
    op.drop_index("ix_supporter_search_key_supporter_id", table_name="supporter_search_key")
    op.create_index("ix_supporter_search_key_supporter_id", "supporter_search_key", ["supporter_id"], unique=False)
    if postgres:
        op.drop_index("ix_supporter_listed_last_gift", table_name="supporter")
        op.create_index("ix_supporter_last_gift_at_nulls_first", "supporter",
                        [sa.text("last_gift_at NULLS FIRST"), "id"], unique=False)
    op.drop_index("ix_supporter_listed_id", table_name="supporter")
    for name, columns in (("ix_supporter_lifetime_total_minor", ["lifetime_total_minor", "id"]),
                          ("ix_supporter_name_sort", ["name_sort", "id"])):
        op.drop_index(name, table_name="supporter")
        op.create_index(name, "supporter", columns, unique=False)
