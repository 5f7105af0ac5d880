"""payments that settle later: when Stripe said the gift's payment is processing

gift.processing_at (SEPA Direct Debit, some Przelewy24 payments): a pending gift with
it set is "processing" (docs/payments.md, "Payment methods"). Nullable: no gift before
this migration was reported so.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 15:00:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("gift", sa.Column("processing_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    op.drop_column("gift", "processing_at")
