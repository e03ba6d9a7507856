"""search: index state; on PostgreSQL the tsvector tables of the postgres search backend

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "search_state",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=500), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    # One row per live placement (metadata, permissions, title/file name/case tokens) ...
    op.execute(
        """
        CREATE TABLE search_entry (
            document_id integer PRIMARY KEY,
            sha256 varchar(64) NOT NULL,
            acl text[] NOT NULL,
            prior_acl text[] NOT NULL,
            is_first boolean NOT NULL,
            is_original boolean NOT NULL,
            case_id varchar(64) NOT NULL,
            organization varchar(32) NOT NULL,
            doc_class varchar(32) NOT NULL,
            folder_kind varchar(16) NOT NULL,
            status varchar(16) NOT NULL,
            fiscal_year integer NOT NULL,
            doc_date integer NOT NULL,
            title_tsv tsvector NOT NULL,
            filename_tsv tsvector NOT NULL,
            meta_tsv tsvector NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX ix_search_entry_sha ON search_entry (sha256)")
    op.execute("CREATE INDEX ix_search_entry_acl ON search_entry USING gin (acl)")
    op.execute("CREATE INDEX ix_search_entry_title ON search_entry USING gin (title_tsv)")
    op.execute("CREATE INDEX ix_search_entry_filename ON search_entry USING gin (filename_tsv)")
    op.execute("CREATE INDEX ix_search_entry_meta ON search_entry USING gin (meta_tsv)")
    op.execute("CREATE INDEX ix_search_entry_date ON search_entry (doc_date)")
    # ... and the body once per content, in chunks (tsvector positions stop at 16383).
    op.execute(
        """
        CREATE TABLE search_chunk (
            sha256 varchar(64) NOT NULL,
            chunk_no integer NOT NULL,
            tsv tsvector NOT NULL,
            PRIMARY KEY (sha256, chunk_no)
        )
        """
    )
    op.execute("CREATE INDEX ix_search_chunk_tsv ON search_chunk USING gin (tsv)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE IF EXISTS search_chunk")
        op.execute("DROP TABLE IF EXISTS search_entry")
    op.drop_table("search_state")
