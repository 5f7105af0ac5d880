"""the dashboard at scale: giving totals, search keys, the newsletter flag, and indexes

Giving totals (per day and kind, per month and campaign or article) for the overview;
search keys and supporter.newsletter for the supporters list; the gift list's order
index; supporter_id in ix_gift_status_paid_at for "who gave in this period"; and id
in the indexes of the supporters list's sorts.

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
    with op.batch_alter_table("gift", schema=None) as batch_op:
        batch_op.drop_index("ix_gift_status_paid_at")
        batch_op.create_index("ix_gift_status_paid_at", ["status", "paid_at", "supporter_id"], unique=False)

    # The list's sorts carry id for their tie-break: a page of ids is an index-only read.
    for name, columns in (("ix_supporter_last_gift_at", ["last_gift_at", "id"]),
                          ("ix_supporter_lifetime_total_minor", ["lifetime_total_minor", "id"]),
                          ("ix_supporter_name_sort", ["name_sort", "id"])):
        op.drop_index(name, table_name="supporter")
        op.create_index(name, "supporter", columns, unique=False)
    if op.get_bind().dialect.name == "postgresql":  # NULLS FIRST: see models/supporter.py
        op.create_index("ix_supporter_last_gift_at_nulls_first", "supporter",
                        [sa.text("last_gift_at NULLS FIRST"), "id"], unique=False)

    # The newsletter filter without reading the consent log for every supporter. (A plain
    # ADD COLUMN, with a default for the rows already there: altering it afterwards would
    # make SQLite rebuild a table that other rows point at.)
    op.add_column("supporter", sa.Column("newsletter", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute(
        "UPDATE supporter SET newsletter = coalesce(("
        "SELECT c.granted FROM consent c WHERE c.supporter_id = supporter.id AND c.purpose = 'newsletter' "
        "ORDER BY c.recorded_at DESC, c.id DESC LIMIT 1), false)"
    )

    # The supporters list: prefix search through an index, on any database and locale.
    keys = op.create_table(
        "supporter_search_key",
        sa.Column("key", sa.String(length=320).with_variant(sa.String(length=320, collation="C"), "postgresql"),
                  nullable=False),
        sa.Column("supporter_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["supporter_id"], ["supporter.id"],
                                name=op.f("fk_supporter_search_key_supporter_id_supporter"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("key", "supporter_id", name=op.f("pk_supporter_search_key")),
    )
    with op.batch_alter_table("supporter_search_key", schema=None) as batch_op:
        batch_op.create_index("ix_supporter_search_key_supporter_id", ["supporter_id"], unique=False)
    _backfill_search_keys(keys)


def _backfill_search_keys(keys):
    """The keys of the supporters already there (the rule of models/supporter.py, frozen here)."""
    supporter = sa.table("supporter", sa.column("id", sa.Integer), sa.column("name_sort", sa.String),
                         sa.column("email_normalised", sa.String))
    batch = []
    for row in op.get_bind().execute(sa.select(supporter)):
        words = (row.name_sort or "").split(" ")
        found = {" ".join(words[index:]) for index in range(len(words))} | {row.email_normalised}
        batch += [{"key": key[:320], "supporter_id": row.id} for key in sorted(found) if key]
    if batch:
        op.bulk_insert(keys, batch)


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
    op.drop_column("supporter", "newsletter")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_supporter_last_gift_at_nulls_first", table_name="supporter")
    for name, column in (("ix_supporter_last_gift_at", "last_gift_at"),
                         ("ix_supporter_lifetime_total_minor", "lifetime_total_minor"),
                         ("ix_supporter_name_sort", "name_sort")):
        op.drop_index(name, table_name="supporter")
        op.create_index(name, "supporter", [column], unique=False)
    with op.batch_alter_table("supporter_search_key", schema=None) as batch_op:
        batch_op.drop_index("ix_supporter_search_key_supporter_id")
    op.drop_table("supporter_search_key")
    with op.batch_alter_table("gift", schema=None) as batch_op:
        batch_op.drop_index("ix_gift_status_paid_at")
        batch_op.create_index("ix_gift_status_paid_at", ["status", "paid_at"], unique=False)
    op.drop_index("ix_gift_happened_at", table_name="gift")
    op.drop_table('giving_total')
