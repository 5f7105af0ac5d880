"""supporter.donor_signed_out_at: signing out of the donor's page ends every session begun before

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01 17:00:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("supporter", sa.Column("donor_signed_out_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    op.drop_column("supporter", "donor_signed_out_at")
