"""blob_text.words_z: where OCR read each word, for highlighting search terms on page images

Per OCR'd page its lines of words with their boxes as fractions of the page (``search.ocr``),
zlib-compressed JSON. Derived data like the text: NULL for texts read from a text layer or a
file format, and rebuilt by ``genpon ocr DOC_ID``.

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("blob_text") as batch:
        batch.add_column(sa.Column("words_z", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("blob_text") as batch:
        batch.drop_column("words_z")
