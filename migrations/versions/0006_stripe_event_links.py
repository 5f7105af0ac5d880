"""stripe events name the gift and the plan they were about

stripe_event.gift_id and plan_id, each indexed with received_at, so a gift's or a plan's
history is read from an index rather than matched in the outcome's text. The events
already there are linked to what their outcome names.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 09:49:18.275614

"""
import re

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


BATCH = 1000

#: what the handlers wrote before this revision (supporters/giving/stripe_events.py, frozen
#: here): "gift 12 …" and "plan 3 …" at the start, an instalment's "… (plan 3)" at the end
GIFT_FIRST = re.compile(r"gift (\d+)(?: |$)")
PLAN_FIRST = re.compile(r"plan (\d+)(?: |$)")
PLAN_LAST = re.compile(r" \(plan (\d+)\)$")


def upgrade():
    # Adding a foreign key makes SQLite rebuild the table (copy, drop, rename): safe for
    # stripe_event, which no other table points at.
    with op.batch_alter_table('stripe_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('gift_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('plan_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_stripe_event_gift_id', ['gift_id', 'received_at'], unique=False)
        batch_op.create_index('ix_stripe_event_plan_id', ['plan_id', 'received_at'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_stripe_event_gift_id_gift'), 'gift', ['gift_id'], ['id'],
                                    ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_stripe_event_plan_id_recurring_plan'), 'recurring_plan',
                                    ['plan_id'], ['id'], ondelete='SET NULL')
    _backfill()


def _named(outcome):
    """The (gift id, plan id) an outcome names."""
    gift = GIFT_FIRST.match(outcome)
    plan = PLAN_FIRST.match(outcome) or PLAN_LAST.search(outcome)
    return (int(gift.group(1)) if gift else None), (int(plan.group(1)) if plan else None)


def _backfill():
    """Link the events already there, a batch at a time in the order of their ids, to the
    gift and plan their outcome names, where that gift or plan still exists."""
    connection = op.get_bind()
    event = sa.table("stripe_event", sa.column("id", sa.String), sa.column("outcome", sa.String),
                     sa.column("gift_id", sa.Integer), sa.column("plan_id", sa.Integer))
    gift = sa.table("gift", sa.column("id", sa.Integer))
    plan = sa.table("recurring_plan", sa.column("id", sa.Integer))
    named = sa.or_(event.c.outcome.like("gift %"), event.c.outcome.like("plan %"),
                   event.c.outcome.like("% (plan %)"))
    update = (
        sa.update(event).where(event.c.id == sa.bindparam("event_id"))
        .values(gift_id=sa.bindparam("link_gift"), plan_id=sa.bindparam("link_plan"))
    )
    last = None
    while True:
        query = sa.select(event.c.id, event.c.outcome).where(named).order_by(event.c.id).limit(BATCH)
        if last is not None:
            query = query.where(event.c.id > last)
        rows = connection.execute(query).all()
        if not rows:
            return
        last = rows[-1].id
        links = {row.id: _named(row.outcome) for row in rows}
        gifts = _existing(connection, gift, {g for g, _ in links.values() if g is not None})
        plans = _existing(connection, plan, {p for _, p in links.values() if p is not None})
        changes = [
            {"event_id": event_id, "link_gift": g if g in gifts else None, "link_plan": p if p in plans else None}
            for event_id, (g, p) in links.items() if g in gifts or p in plans
        ]
        if changes:
            connection.execute(update, changes)


def _existing(connection, table, ids):
    if not ids:
        return set()
    return set(connection.execute(sa.select(table.c.id).where(table.c.id.in_(sorted(ids)))).scalars())


def downgrade():
    # Not reflecting the tables the foreign keys point at (gift's expression index cannot
    # be reflected on SQLite, and the rebuild of stripe_event does not need them).
    with op.batch_alter_table('stripe_event', schema=None, reflect_kwargs={"resolve_fks": False}) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_stripe_event_plan_id_recurring_plan'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_stripe_event_gift_id_gift'), type_='foreignkey')
        batch_op.drop_index('ix_stripe_event_plan_id')
        batch_op.drop_index('ix_stripe_event_gift_id')
        batch_op.drop_column('plan_id')
        batch_op.drop_column('gift_id')
