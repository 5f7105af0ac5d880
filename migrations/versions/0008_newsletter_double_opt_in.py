"""newsletter double opt-in: requests waiting for the address, confirmed consents

consent_request holds a ticked newsletter box until the address confirms it through
its e-mailed link (only the token's hash is kept); consent.confirmed_at says when a
grant was confirmed, consent.request_id which request it confirmed.

The consents already there were recorded under the old rule (the box alone) and are
kept as they are: still granted, so the supporters stay subscribed, confirmed_at
NULL, and the donation form's ones say so in their source.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 11:06:34.854777

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


#: what the donation form wrote as a consent's source before this revision, and after it
OLD_SOURCE = 'donation form'
MARKED_SOURCE = 'donation form, before double opt-in'


def upgrade():
    op.create_table('consent_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('supporter_id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('gift_id', sa.Integer(), nullable=True),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('wording', sa.Text(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=True),
    sa.Column('emailed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['gift_id'], ['gift.id'], name=op.f('fk_consent_request_gift_id_gift'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['supporter_id'], ['supporter.id'], name=op.f('fk_consent_request_supporter_id_supporter'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_request')),
    sa.UniqueConstraint('gift_id', name=op.f('uq_consent_request_gift_id')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_consent_request_token_hash'))
    )
    with op.batch_alter_table('consent_request', schema=None) as batch_op:
        batch_op.create_index('ix_consent_request_supporter_id', ['supporter_id', 'purpose', 'requested_at'], unique=False)

    # Nothing points at consent, so SQLite's rebuild of it (for the foreign key) is safe.
    with op.batch_alter_table('consent', schema=None) as batch_op:
        batch_op.add_column(sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('request_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_consent_request_id_consent_request'), 'consent_request', ['request_id'], ['id'], ondelete='SET NULL')

    # Only the source changes: granted, time and wording stay what was recorded, and so
    # does every supporter's newsletter flag (kept from granted and time alone).
    consent = sa.table('consent', sa.column('source', sa.String), sa.column('granted', sa.Boolean))
    op.execute(
        sa.update(consent).where(consent.c.source == OLD_SOURCE, consent.c.granted.is_(True))
        .values(source=MARKED_SOURCE)
    )


def downgrade():
    consent = sa.table('consent', sa.column('source', sa.String))
    op.execute(sa.update(consent).where(consent.c.source == MARKED_SOURCE).values(source=OLD_SOURCE))

    # Not reflecting the tables the foreign keys point at (gift's expression index cannot
    # be reflected on SQLite, and the rebuild of consent does not need them).
    with op.batch_alter_table('consent', schema=None, reflect_kwargs={"resolve_fks": False}) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_consent_request_id_consent_request'), type_='foreignkey')
        batch_op.drop_column('request_id')
        batch_op.drop_column('confirmed_at')

    with op.batch_alter_table('consent_request', schema=None) as batch_op:
        batch_op.drop_index('ix_consent_request_supporter_id')

    op.drop_table('consent_request')
