"""events in any order: waiting events, a gift's dispute, a plan's status time

stripe_event.waiting_for (indexed): the Stripe object (subscription, invoice, payment
intent) an event names but we did not know yet; the event is applied when it appears.
gift.dispute_status: open / won / lost, as Stripe last reported the gift's dispute.
recurring_plan.status_at: Stripe's time of the fact the plan's status was last taken from.
Plain nullable columns: ALTER TABLE ADD COLUMN on both databases, no table rebuild.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 12:20:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('stripe_event', sa.Column('waiting_for', sa.String(length=255), nullable=True))
    op.create_index('ix_stripe_event_waiting_for', 'stripe_event', ['waiting_for'], unique=False)
    op.add_column('gift', sa.Column('dispute_status', sa.String(length=16), nullable=True))
    op.add_column('recurring_plan', sa.Column('status_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    # SQLite drops a column in place since 3.35; no foreign key or index is on these.
    op.drop_column('recurring_plan', 'status_at')
    op.drop_column('gift', 'dispute_status')
    op.drop_index('ix_stripe_event_waiting_for', table_name='stripe_event')
    op.drop_column('stripe_event', 'waiting_for')
