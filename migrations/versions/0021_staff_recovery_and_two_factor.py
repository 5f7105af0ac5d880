"""staff accounts: temporary passwords, two-factor sign-in (TOTP, recovery codes), e-mailed reset and unlock links

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-01 17:00:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMNs with defaults for the rows already there (no table rebuild on SQLite).
    op.add_column("staff_user", sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("staff_user", sa.Column("totp_secret", sa.String(length=64), nullable=True))
    op.add_column("staff_user", sa.Column("totp_pending_secret", sa.String(length=64), nullable=True))
    op.add_column("staff_user", sa.Column("totp_enabled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("staff_user", sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
    op.create_table(
        "staff_recovery_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_user_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["staff_user_id"], ["staff_user.id"], name=op.f("fk_staff_recovery_code_staff_user_id_staff_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_recovery_code")),
    )
    op.create_index("ix_staff_recovery_code_staff_user_id", "staff_recovery_code", ["staff_user_id"])
    op.create_table(
        "staff_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_user_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.CheckConstraint("purpose IN ('reset', 'unlock')", name=op.f("ck_staff_token_purpose_known")),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_staff_token_attempts_not_negative")),
        sa.ForeignKeyConstraint(
            ["staff_user_id"], ["staff_user.id"], name=op.f("fk_staff_token_staff_user_id_staff_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_staff_token_token_hash")),
    )
    op.create_index("ix_staff_token_staff_user_id_created_at", "staff_token", ["staff_user_id", "created_at"])


def downgrade():
    op.drop_index("ix_staff_token_staff_user_id_created_at", table_name="staff_token")
    op.drop_table("staff_token")
    op.drop_index("ix_staff_recovery_code_staff_user_id", table_name="staff_recovery_code")
    op.drop_table("staff_recovery_code")
    with op.batch_alter_table("staff_user") as batch_op:
        batch_op.drop_column("totp_last_step")
        batch_op.drop_column("totp_enabled_at")
        batch_op.drop_column("totp_pending_secret")
        batch_op.drop_column("totp_secret")
        batch_op.drop_column("must_change_password")
