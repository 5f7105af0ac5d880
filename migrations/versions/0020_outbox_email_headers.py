"""outbox_email.headers: an e-mail's own header lines (List-Unsubscribe for newsletter-type mail)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01 17:00:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("outbox_email") as batch_op:
        batch_op.add_column(sa.Column("headers", sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table("outbox_email") as batch_op:
        batch_op.drop_column("headers")
