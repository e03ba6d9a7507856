"""blob_text_chunk and blob_text.chunk_dir: snippets read the piece of text holding the match

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # filled when a content is next indexed (the outbox or `genpon search reindex`); until
    # then a snippet is cut from the whole stored text, as before
    with op.batch_alter_table("blob_text") as batch:
        batch.add_column(sa.Column("chunk_dir", sa.LargeBinary(), nullable=True))
    op.create_table(
        "blob_text_chunk",
        sa.Column(
            "sha256", sa.String(length=64), sa.ForeignKey("blob_text.sha256"), nullable=False
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", "seq"),
    )


def downgrade() -> None:
    op.drop_table("blob_text_chunk")
    with op.batch_alter_table("blob_text") as batch:
        batch.drop_column("chunk_dir")
