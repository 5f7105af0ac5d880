"""indexes for the gifts not converted yet (by status) and those without Stripe's fee

ix_gift_not_converted becomes (status, currency) WHERE amount_base_minor IS NULL, so the
overview reads the paid ones only; ix_gift_without_balance (paid_at) WHERE
stripe_balance_transaction_id IS NULL serves the worker's look for fees to fetch.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 15:20:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

NOT_CONVERTED = sa.text("amount_base_minor IS NULL")
WITHOUT_BALANCE = sa.text("stripe_balance_transaction_id IS NULL")


def upgrade():
    op.drop_index("ix_gift_not_converted", table_name="gift")
    op.create_index(
        "ix_gift_not_converted",
        "gift",
        ["status", "currency"],
        postgresql_where=NOT_CONVERTED,
        sqlite_where=NOT_CONVERTED,
    )
    op.create_index(
        "ix_gift_without_balance",
        "gift",
        ["paid_at"],
        postgresql_where=WITHOUT_BALANCE,
        sqlite_where=WITHOUT_BALANCE,
    )


def downgrade():
    op.drop_index("ix_gift_without_balance", table_name="gift")
    op.drop_index("ix_gift_not_converted", table_name="gift")
    op.create_index(
        "ix_gift_not_converted", "gift", ["currency"], postgresql_where=NOT_CONVERTED, sqlite_where=NOT_CONVERTED
    )
