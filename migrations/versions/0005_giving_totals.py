"""giving totals (per day and kind, per month and campaign or article) and the gift list's order index

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 07:11:44.591262

"""
from datetime import timezone

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


COUNTED = ("succeeded", "partially_refunded")


def upgrade():
    # The overview reads these instead of summing every gift; see supporters/models/giving.py.
    totals = op.create_table('giving_total',
    sa.Column('dimension', sa.String(length=8), nullable=False),
    sa.Column('period', sa.Date(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('amount_base_minor', sa.BigInteger(), nullable=False),
    sa.Column('gifts', sa.Integer(), nullable=False),
    sa.CheckConstraint("dimension IN ('kind', 'campaign', 'article')", name=op.f('ck_giving_total_dimension_known')),
    sa.PrimaryKeyConstraint('dimension', 'period', 'key', name=op.f('pk_giving_total'))
    )
    _backfill(totals)
    # The gift list's order (newest first, by when paid or else made), read from an index.
    op.create_index("ix_gift_happened_at", "gift", [sa.text("coalesce(paid_at, created_at)"), "id"])


def _backfill(totals):
    """The totals of the gifts already there (the rule of models/giving.py, frozen here)."""
    gift = sa.table(
        "gift", sa.column("status", sa.String), sa.column("paid_at", sa.DateTime(timezone=True)),
        sa.column("kind", sa.String), sa.column("campaign_id", sa.Integer), sa.column("source_article", sa.String),
        sa.column("amount_minor", sa.BigInteger), sa.column("refunded_minor", sa.BigInteger),
        sa.column("amount_base_minor", sa.BigInteger),
    )
    sums = {}
    rows = op.get_bind().execute(
        sa.select(gift).where(gift.c.status.in_(COUNTED), gift.c.paid_at.is_not(None))
    )
    for row in rows:
        paid = row.paid_at if row.paid_at.tzinfo else row.paid_at.replace(tzinfo=timezone.utc)
        day = paid.astimezone(timezone.utc).date()
        net = 0
        if row.amount_base_minor is not None:
            net = row.amount_base_minor * (row.amount_minor - row.refunded_minor) // row.amount_minor
        keys = [("kind", day, row.kind)]
        if row.campaign_id is not None:
            keys.append(("campaign", day.replace(day=1), str(row.campaign_id)))
        if row.source_article:
            keys.append(("article", day.replace(day=1), row.source_article))
        for key in keys:
            amount, count = sums.get(key, (0, 0))
            sums[key] = (amount + net, count + 1)
    if sums:
        op.bulk_insert(totals, [
            {"dimension": d, "period": p, "key": k, "amount_base_minor": amount, "gifts": count}
            for (d, p, k), (amount, count) in sums.items()
        ])


def downgrade():
    op.drop_index("ix_gift_happened_at", table_name="gift")
    op.drop_table('giving_total')
