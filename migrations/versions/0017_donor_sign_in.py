"""donor_sign_in: a donor's single-use sign-in link and code (hashes only)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01 15:45:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "donor_sign_in",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("supporter_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_donor_sign_in_attempts_not_negative")),
        sa.ForeignKeyConstraint(["supporter_id"], ["supporter.id"], name=op.f("fk_donor_sign_in_supporter_id_supporter")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_donor_sign_in")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_donor_sign_in_token_hash")),
    )
    op.create_index("ix_donor_sign_in_supporter_id_created_at", "donor_sign_in", ["supporter_id", "created_at"])


def downgrade():
    op.drop_index("ix_donor_sign_in_supporter_id_created_at", table_name="donor_sign_in")
    op.drop_table("donor_sign_in")
