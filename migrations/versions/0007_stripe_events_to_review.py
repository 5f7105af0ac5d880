"""stripe events kept for staff to review

stripe_event.needs_review (indexed with received_at, for the list of payments to review),
review_reason, and who marked it reviewed, when, with what note. Events already there
need no review: they were counted (or ignored) as they came.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 11:20:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    # Adding a foreign key makes SQLite rebuild the table (copy, drop, rename): safe for
    # stripe_event, which no other table points at. Not reflecting the tables its foreign
    # keys point at (gift's expression index cannot be reflected on SQLite).
    with op.batch_alter_table('stripe_event', schema=None, reflect_kwargs={"resolve_fks": False}) as batch_op:
        batch_op.add_column(sa.Column('needs_review', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('review_reason', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reviewed_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('review_note', sa.String(length=500), nullable=True))
        batch_op.create_index('ix_stripe_event_needs_review', ['needs_review', 'received_at'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_stripe_event_reviewed_by_id_staff_user'), 'staff_user',
                                    ['reviewed_by_id'], ['id'], ondelete='SET NULL')


def downgrade():
    # Not reflecting the tables the foreign keys point at (gift's expression index cannot
    # be reflected on SQLite, and the rebuild of stripe_event does not need them).
    with op.batch_alter_table('stripe_event', schema=None, reflect_kwargs={"resolve_fks": False}) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_stripe_event_reviewed_by_id_staff_user'), type_='foreignkey')
        batch_op.drop_index('ix_stripe_event_needs_review')
        batch_op.drop_column('review_note')
        batch_op.drop_column('reviewed_by_id')
        batch_op.drop_column('reviewed_at')
        batch_op.drop_column('review_reason')
        batch_op.drop_column('needs_review')
