"""imports of supporters and gifts: mappings saved per source, uploads, the rows imported

Revision ID: 0023
Revises: 0021
Create Date: 2026-12-01 20:00:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "import_mapping",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("supporter_columns", sa.JSON(), nullable=False),
        sa.Column("gift_columns", sa.JSON(), nullable=False),
        sa.Column("gifts_by", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=320), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_mapping")),
        sa.UniqueConstraint("name", name=op.f("uq_import_mapping_name")),
    )
    op.create_table(
        "import_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("staff_user_id", sa.Integer(), nullable=True),
        sa.Column("uploaded_by", sa.String(length=320), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("gifts_file_name", sa.String(length=255), nullable=True),
        sa.Column("gifts_sha256", sa.String(length=64), nullable=True),
        sa.Column("gifts_content", sa.LargeBinary(), nullable=True),
        sa.Column("mapping_id", sa.Integer(), nullable=True),
        sa.Column(
            "status",
            sa.Enum("uploaded", "imported", name="import_status", native_enum=False, create_constraint=True, length=24),
            nullable=False,
        ),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("imported_by", sa.String(length=320), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["mapping_id"], ["import_mapping.id"], name=op.f("fk_import_run_mapping_id_import_mapping")),
        sa.ForeignKeyConstraint(["staff_user_id"], ["staff_user.id"], name=op.f("fk_import_run_staff_user_id_staff_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_run")),
    )
    op.create_index("ix_import_run_sha256", "import_run", ["sha256"])
    op.create_table(
        "imported_row",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mapping_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("identity_key", sa.String(length=64), nullable=False),
        sa.Column("row_hash", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("supporter_id", sa.Integer(), nullable=True),
        sa.Column("gift_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("kind IN ('supporter', 'gift')", name=op.f("ck_imported_row_kind_known")),
        sa.ForeignKeyConstraint(
            ["gift_id"], ["gift.id"], name=op.f("fk_imported_row_gift_id_gift"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["mapping_id"], ["import_mapping.id"], name=op.f("fk_imported_row_mapping_id_import_mapping")
        ),
        sa.ForeignKeyConstraint(["run_id"], ["import_run.id"], name=op.f("fk_imported_row_run_id_import_run")),
        sa.ForeignKeyConstraint(
            ["supporter_id"], ["supporter.id"], name=op.f("fk_imported_row_supporter_id_supporter"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imported_row")),
        sa.UniqueConstraint("mapping_id", "kind", "identity_key", name="uq_imported_row_identity"),
    )
    op.create_index("ix_imported_row_supporter_id", "imported_row", ["supporter_id"])
    op.create_index("ix_imported_row_gift_id", "imported_row", ["gift_id"])


def downgrade():
    op.drop_index("ix_imported_row_gift_id", table_name="imported_row")
    op.drop_index("ix_imported_row_supporter_id", table_name="imported_row")
    op.drop_table("imported_row")
    op.drop_index("ix_import_run_sha256", table_name="import_run")
    op.drop_table("import_run")
    op.drop_table("import_mapping")
