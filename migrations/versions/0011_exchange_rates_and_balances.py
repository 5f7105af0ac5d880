"""exchange rates, and Stripe's balance transaction on each gift

exchange_rate (currency, effective_on): the National Bank of Poland's table A, loaded
by `flask rates import` / `flask rates fetch`. gift.balance_currency,
stripe_balance_transaction_id (unique), balance_checked_at: the fee and net Stripe
reports. gift.base_rate_table: which table converted amount_base_minor.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 14:10:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ISO4217 = "length(currency) = 3 AND upper(currency) = currency AND " + " AND ".join(
    f"substr(currency, {i}, 1) BETWEEN 'A' AND 'Z'" for i in (1, 2, 3)
)


def upgrade():
    op.create_table(
        "exchange_rate",
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("rate", sa.String(length=32), nullable=False),
        sa.Column("table_no", sa.String(length=32), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(ISO4217, name=op.f("ck_exchange_rate_currency_iso4217")),
        sa.PrimaryKeyConstraint("currency", "effective_on", name=op.f("pk_exchange_rate")),
    )
    # Plain ADD COLUMN (no constraint on the column itself), so SQLite needs no table copy.
    op.add_column("gift", sa.Column("balance_currency", sa.String(length=3), nullable=True))
    op.add_column("gift", sa.Column("stripe_balance_transaction_id", sa.String(length=255), nullable=True))
    op.add_column("gift", sa.Column("balance_checked_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("gift", sa.Column("base_rate_table", sa.String(length=32), nullable=True))
    op.create_index("ix_gift_stripe_balance_transaction_id", "gift", ["stripe_balance_transaction_id"], unique=True)
    op.create_index(
        "ix_gift_not_converted",
        "gift",
        ["currency"],
        postgresql_where=sa.text("amount_base_minor IS NULL"),
        sqlite_where=sa.text("amount_base_minor IS NULL"),
    )


def downgrade():
    op.drop_index("ix_gift_not_converted", table_name="gift")
    op.drop_index("ix_gift_stripe_balance_transaction_id", table_name="gift")
    op.drop_column("gift", "base_rate_table")
    op.drop_column("gift", "balance_checked_at")
    op.drop_column("gift", "stripe_balance_transaction_id")
    op.drop_column("gift", "balance_currency")
    op.drop_table("exchange_rate")
