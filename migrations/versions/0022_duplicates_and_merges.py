"""duplicates and merges: pairs found, pairs dismissed, merges (undoable), supporter.merged_into_id

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-01 20:00:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade():
    # No foreign key (see Supporter.merged_into_id): a plain ADD COLUMN and DROP COLUMN on
    # both databases, with no rebuild of the table every other table points at.
    op.add_column("supporter", sa.Column("merged_into_id", sa.Integer(), nullable=True))
    op.create_index("ix_supporter_merged_into_id", "supporter", ["merged_into_id"])
    op.create_table(
        "duplicate_candidate",
        sa.Column("low_id", sa.Integer(), nullable=False),
        sa.Column("high_id", sa.Integer(), nullable=False),
        sa.Column("confidence", sa.Integer(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("found_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("low_id < high_id", name=op.f("ck_duplicate_candidate_pair_ordered")),
        sa.CheckConstraint("confidence BETWEEN 0 AND 100", name=op.f("ck_duplicate_candidate_confidence_percent")),
        sa.ForeignKeyConstraint(
            ["low_id"], ["supporter.id"], name=op.f("fk_duplicate_candidate_low_id_supporter"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["high_id"], ["supporter.id"], name=op.f("fk_duplicate_candidate_high_id_supporter"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("low_id", "high_id", name=op.f("pk_duplicate_candidate")),
    )
    op.create_index(
        "ix_duplicate_candidate_confidence", "duplicate_candidate", ["confidence", "low_id", "high_id"]
    )
    op.create_index("ix_duplicate_candidate_high_id", "duplicate_candidate", ["high_id"])
    op.create_table(
        "duplicate_dismissal",
        sa.Column("low_id", sa.Integer(), nullable=False),
        sa.Column("high_id", sa.Integer(), nullable=False),
        sa.Column("staff_user_id", sa.Integer(), nullable=True),
        sa.Column("dismissed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("low_id < high_id", name=op.f("ck_duplicate_dismissal_pair_ordered")),
        sa.ForeignKeyConstraint(
            ["low_id"], ["supporter.id"], name=op.f("fk_duplicate_dismissal_low_id_supporter"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["high_id"], ["supporter.id"], name=op.f("fk_duplicate_dismissal_high_id_supporter"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["staff_user_id"],
            ["staff_user.id"],
            name=op.f("fk_duplicate_dismissal_staff_user_id_staff_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("low_id", "high_id", name=op.f("pk_duplicate_dismissal")),
    )
    op.create_table(
        "supporter_merge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("survivor_id", sa.Integer(), nullable=False),
        sa.Column("merged_ids", sa.JSON(), nullable=False),
        sa.Column("staff_user_id", sa.Integer(), nullable=True),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("undone_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["survivor_id"], ["supporter.id"], name=op.f("fk_supporter_merge_survivor_id_supporter")),
        sa.ForeignKeyConstraint(
            ["staff_user_id"],
            ["staff_user.id"],
            name=op.f("fk_supporter_merge_staff_user_id_staff_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["undone_by_id"],
            ["staff_user.id"],
            name=op.f("fk_supporter_merge_undone_by_id_staff_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supporter_merge")),
    )
    op.create_index("ix_supporter_merge_survivor_id", "supporter_merge", ["survivor_id", "merged_at"])


def downgrade():
    op.drop_index("ix_supporter_merge_survivor_id", table_name="supporter_merge")
    op.drop_table("supporter_merge")
    op.drop_table("duplicate_dismissal")
    op.drop_index("ix_duplicate_candidate_high_id", table_name="duplicate_candidate")
    op.drop_index("ix_duplicate_candidate_confidence", table_name="duplicate_candidate")
    op.drop_table("duplicate_candidate")
    op.drop_index("ix_supporter_merged_into_id", table_name="supporter")
    op.drop_column("supporter", "merged_into_id")
