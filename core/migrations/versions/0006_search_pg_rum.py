"""search on PostgreSQL: one searchable vector per placement (fields + body head) for RUM

The first shape (0002) kept title, file name and case vectors apart from the body chunks and
joined them per query; at 100,000 documents a common bigram made every query read and rank
most bodies (p95 ≈ 2 s). Now each placement row carries ``all_tsv`` (title A, file name B,
case/folder C, the first body chunk D) searched through a RUM index, which keeps positions in
the index so phrases need no row reads, plus a small ``fields_tsv`` for field matches; bodies
longer than one vector continue in ``search_chunk``. The search tables hold derived data only:
they are recreated empty and the index state is cleared, so the next start rebuilds them.
The RUM indexes themselves are created by the backend (``PostgresBackend``), which needs the
``rum`` extension (Debian: postgresql-<major>-rum; ``CREATE EXTENSION rum`` as superuser).

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ENTRY_COLUMNS = """
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
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TABLE IF EXISTS search_entry")
    op.execute("DROP TABLE IF EXISTS search_chunk")
    op.execute(
        f"CREATE TABLE search_entry ({_ENTRY_COLUMNS}"
        " fields_tsv tsvector NOT NULL, all_tsv tsvector NOT NULL)"
    )
    op.execute("CREATE INDEX ix_search_entry_sha ON search_entry (sha256)")
    op.execute("CREATE INDEX ix_search_entry_fields ON search_entry USING gin (fields_tsv)")
    op.execute(
        "CREATE TABLE search_chunk (sha256 varchar(64) NOT NULL, chunk_no integer NOT NULL,"
        " tsv tsvector NOT NULL, PRIMARY KEY (sha256, chunk_no))"
    )
    op.execute("DELETE FROM search_state WHERE key = 'postgres_index_built'")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TABLE IF EXISTS search_entry")
    op.execute("DROP TABLE IF EXISTS search_chunk")
    op.execute(
        f"CREATE TABLE search_entry ({_ENTRY_COLUMNS}"
        " title_tsv tsvector NOT NULL, filename_tsv tsvector NOT NULL,"
        " meta_tsv tsvector NOT NULL)"
    )
    op.execute("CREATE INDEX ix_search_entry_sha ON search_entry (sha256)")
    op.execute("CREATE INDEX ix_search_entry_acl ON search_entry USING gin (acl)")
    op.execute("CREATE INDEX ix_search_entry_title ON search_entry USING gin (title_tsv)")
    op.execute("CREATE INDEX ix_search_entry_filename ON search_entry USING gin (filename_tsv)")
    op.execute("CREATE INDEX ix_search_entry_meta ON search_entry USING gin (meta_tsv)")
    op.execute("CREATE INDEX ix_search_entry_date ON search_entry (doc_date)")
    op.execute(
        "CREATE TABLE search_chunk (sha256 varchar(64) NOT NULL, chunk_no integer NOT NULL,"
        " tsv tsvector NOT NULL, PRIMARY KEY (sha256, chunk_no))"
    )
    op.execute("CREATE INDEX ix_search_chunk_tsv ON search_chunk USING gin (tsv)")
    op.execute("DELETE FROM search_state WHERE key = 'postgres_index_built'")
