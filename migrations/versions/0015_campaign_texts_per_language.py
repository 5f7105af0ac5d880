"""a campaign's name, appeal and the words beside its amounts, per language

campaign.texts (JSON): {"pl": {"name", "appeal_heading", "appeal_text", "notes": {"PLN": {"2000": "…"}}}}.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 15:10:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("campaign", sa.Column("texts", sa.JSON(), nullable=True))


def downgrade():
    op.drop_column("campaign", "texts")
