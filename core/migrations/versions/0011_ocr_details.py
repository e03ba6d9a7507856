"""blob_text.details: how OCR produced a text

The engine and its version, the models, and per page its outcome, orientation, deskew and mean
confidence (``search.ocr``). NULL for texts read from a text layer or a file format.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("blob_text") as batch:
        batch.add_column(sa.Column("details", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("blob_text") as batch:
        batch.drop_column("details")
