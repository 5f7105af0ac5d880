"""gift corrections by staff, and receipt numbers in one sequence per year

gift.voided_at and void_reason; the status "voided" allowed by the status CHECK;
receipt_sequence (year, last_number). Each year's sequence starts above the highest
number already given that year, so no receipt number is ever given twice.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 12:10:00.000000

"""

import re

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

OLD_STATUSES = ("pending", "succeeded", "failed", "canceled", "partially_refunded", "refunded", "disputed")
NEW_STATUSES = (*OLD_STATUSES, "voided")
NUMBER = re.compile(r"(\d{4})-(\d+)")


def _status_check(statuses):
    return "status IN (" + ", ".join(f"'{status}'" for status in statuses) + ")"


def _sqlite_foreign_keys(state):
    # The copy ends with DROP TABLE gift, which, with foreign keys on, first deletes every row:
    # stripe_event.gift_id and consent_request.gift_id (ON DELETE SET NULL) would lose their gift.
    # SQLite changes the pragma only between transactions: end the migration's, and start another.
    bind = op.get_bind()
    bind.exec_driver_sql("COMMIT")
    bind.exec_driver_sql(f"PRAGMA foreign_keys={state}")
    bind.exec_driver_sql("BEGIN IMMEDIATE")


def _rewrite_status_check(statuses, drop_void_columns=False):
    # SQLite rebuilds the table to change a CHECK (or drop a column), and cannot reflect the
    # expression index (it would be lost in the copy): it is dropped first and made again after.
    op.drop_index("ix_gift_happened_at", table_name="gift")
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        _sqlite_foreign_keys("OFF")
    with op.batch_alter_table("gift", schema=None, reflect_kwargs={"resolve_fks": False}) as batch_op:
        batch_op.drop_constraint(op.f("ck_gift_gift_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_gift_gift_status"), _status_check(statuses))
        if drop_void_columns:
            batch_op.drop_column("void_reason")
            batch_op.drop_column("voided_at")
    if sqlite:
        _sqlite_foreign_keys("ON")
    op.create_index("ix_gift_happened_at", "gift", [sa.text("coalesce(paid_at, created_at)"), "id"])


def upgrade():
    with op.batch_alter_table("gift", schema=None) as batch_op:
        batch_op.add_column(sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("void_reason", sa.String(length=500), nullable=True))
    _rewrite_status_check(NEW_STATUSES)
    sequence = op.create_table(
        "receipt_sequence",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.CheckConstraint("last_number >= 0", name=op.f("ck_receipt_sequence_last_number_not_negative")),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_receipt_sequence")),
    )
    highest = {}
    for (number,) in op.get_bind().execute(sa.text("SELECT receipt_number FROM gift WHERE receipt_number IS NOT NULL")):
        found = NUMBER.fullmatch(number)
        if found:
            year, value = int(found.group(1)), int(found.group(2))
            highest[year] = max(highest.get(year, 0), value)
    if highest:
        op.bulk_insert(sequence, [{"year": year, "last_number": value} for year, value in sorted(highest.items())])


def downgrade():
    op.drop_table("receipt_sequence")
    # A voided gift's money does not count: it goes back as canceled, which counts neither.
    op.execute(sa.text("UPDATE gift SET status = 'canceled' WHERE status = 'voided'"))
    _rewrite_status_check(OLD_STATUSES, drop_void_columns=True)
