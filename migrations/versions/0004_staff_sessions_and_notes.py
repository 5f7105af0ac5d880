"""staff sessions and supporter notes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 04:39:49.202485

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    # Sessions are rows now: logout, timeouts and deactivation end them one by one.
    with op.batch_alter_table('staff_user', schema=None) as batch_op:
        batch_op.drop_column('session_token')

    op.create_table('staff_session',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('staff_user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('user_agent', sa.String(length=300), nullable=False),
    sa.ForeignKeyConstraint(['staff_user_id'], ['staff_user.id'], name=op.f('fk_staff_session_staff_user_id_staff_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_staff_session'))
    )
    with op.batch_alter_table('staff_session', schema=None) as batch_op:
        batch_op.create_index('ix_staff_session_staff_user_id', ['staff_user_id'], unique=False)

    op.create_table('supporter_note',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('supporter_id', sa.Integer(), nullable=False),
    sa.Column('staff_user_id', sa.Integer(), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['staff_user_id'], ['staff_user.id'], name=op.f('fk_supporter_note_staff_user_id_staff_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['supporter_id'], ['supporter.id'], name=op.f('fk_supporter_note_supporter_id_supporter'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_supporter_note'))
    )
    with op.batch_alter_table('supporter_note', schema=None) as batch_op:
        batch_op.create_index('ix_supporter_note_supporter_id', ['supporter_id', 'created_at'], unique=False)

    # ### end Alembic commands ###


def downgrade():
    with op.batch_alter_table('staff_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_token', sa.String(length=64), nullable=False, server_default=''))

    with op.batch_alter_table('supporter_note', schema=None) as batch_op:
        batch_op.drop_index('ix_supporter_note_supporter_id')

    op.drop_table('supporter_note')
    with op.batch_alter_table('staff_session', schema=None) as batch_op:
        batch_op.drop_index('ix_staff_session_staff_user_id')

    op.drop_table('staff_session')
    # ### end Alembic commands ###
