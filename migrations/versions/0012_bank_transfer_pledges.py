"""bank-transfer pledges: each has a unique transfer title

gift.transfer_reference ("DAR 2026 000153 0", giving/transfers.py), unique.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 14:30:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("gift", sa.Column("transfer_reference", sa.String(length=32), nullable=True))
    op.create_index("ix_gift_transfer_reference", "gift", ["transfer_reference"], unique=True)


def downgrade():
    op.drop_index("ix_gift_transfer_reference", table_name="gift")
    op.drop_column("gift", "transfer_reference")
