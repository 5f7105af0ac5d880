"""privacy requests: the log of who asked for access, erasure, rectification or objection, and what was done

Revision ID: 0024
Revises: 0021
Create Date: 2026-12-01 19:42:25.058304

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "privacy_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "access", "erasure", "rectification", "objection", name="privacy_request_kind",
                native_enum=False, create_constraint=True, length=24,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum("open", "closed", name="privacy_request_status", native_enum=False, create_constraint=True, length=24),
            nullable=False,
        ),
        sa.Column("requester_name", sa.String(length=200), nullable=True),
        sa.Column("requester_email", sa.String(length=320), nullable=True),
        sa.Column("supporter_id", sa.Integer(), nullable=True),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("exported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=320), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.CheckConstraint("due_on >= received_on", name=op.f("ck_privacy_request_due_after_received")),
        sa.ForeignKeyConstraint(
            ["supporter_id"], ["supporter.id"], name=op.f("fk_privacy_request_supporter_id_supporter"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_request")),
    )
    op.create_index("ix_privacy_request_status_due_on", "privacy_request", ["status", "due_on"])
    op.create_index("ix_privacy_request_supporter_id", "privacy_request", ["supporter_id"])


def downgrade():
    op.drop_index("ix_privacy_request_supporter_id", table_name="privacy_request")
    op.drop_index("ix_privacy_request_status_due_on", table_name="privacy_request")
    op.drop_table("privacy_request")
