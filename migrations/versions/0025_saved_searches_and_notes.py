"""search keys for any word of a name and the e-mail's domain, notes marked edited, saved searches

Rebuilds every supporter's search keys with the new rule (a key from each word's start,
also after a hyphen; "@domain" from the e-mail); the rule is frozen here, not imported.

Revision ID: 0025
Revises: 0021
Create Date: 2026-12-01 20:00:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("supporter_note", sa.Column("edited_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "saved_search",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("page", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("query", sa.String(length=2000), nullable=False),
        sa.Column("staff_user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("page IN ('supporters')", name=op.f("ck_saved_search_page_known")),
        sa.ForeignKeyConstraint(
            ["staff_user_id"], ["staff_user.id"], name=op.f("fk_saved_search_staff_user_id_staff_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_search")),
        sa.UniqueConstraint("page", "name", name=op.f("uq_saved_search_page_name")),
    )
    _rebuild_search_keys(_keys_now)


def downgrade():
    _rebuild_search_keys(_keys_before)
    op.drop_table("saved_search")
    with op.batch_alter_table("supporter_note") as batch_op:
        batch_op.drop_column("edited_at")


def _keys_now(name_sort, email):
    """models/supporter.py search_keys as of this revision."""
    keys = {name_sort[i:] for i, ch in enumerate(name_sort) if ch.isalnum() and (i == 0 or not name_sort[i - 1].isalnum())}
    keys |= {name_sort, email}
    _local, at, domain = email.rpartition("@")
    if at and domain:
        keys.add("@" + domain)
    return keys


def _keys_before(name_sort, email):
    """The rule of 0005: the sort name from each word on, and the e-mail."""
    words = name_sort.split(" ")
    return {" ".join(words[index:]) for index in range(len(words))} | {email}


def _rebuild_search_keys(rule, batch_size=5000):
    """Every supporter's keys by `rule`, a batch of supporters at a time (memory stays flat)."""
    bind = op.get_bind()
    supporter = sa.table("supporter", sa.column("id", sa.Integer), sa.column("name_sort", sa.String),
                         sa.column("email_normalised", sa.String))
    keys = sa.table("supporter_search_key", sa.column("key", sa.String), sa.column("supporter_id", sa.Integer))
    bind.execute(sa.delete(keys))
    last = 0
    while True:
        rows = bind.execute(
            sa.select(supporter).where(supporter.c.id > last).order_by(supporter.c.id).limit(batch_size)
        ).all()
        if not rows:
            break
        batch = [
            {"key": key[:320], "supporter_id": row.id}
            for row in rows
            for key in sorted({key[:320] for key in rule(row.name_sort or "", row.email_normalised or "") if key})
        ]
        if batch:
            bind.execute(sa.insert(keys), batch)
        last = rows[-1].id
