"""recurring_plan: the donor's changes (pause, ordering of changes, the cancel offer)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01 17:00:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("recurring_plan", sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("recurring_plan", sa.Column("paused_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("recurring_plan", sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("recurring_plan", sa.Column("change_count", sa.Integer(), server_default="0", nullable=False))
    op.add_column("recurring_plan", sa.Column("cancel_offer_shown_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    # Plain DROP COLUMN (SQLite 3.35+): a batch copy of recurring_plan would drop a table
    # that gift and stripe_event point at.
    for name in ("cancel_offer_shown_at", "change_count", "changed_at", "paused_until", "paused_at"):
        op.drop_column("recurring_plan", name)
