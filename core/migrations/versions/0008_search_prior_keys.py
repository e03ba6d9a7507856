"""search on PostgreSQL: ``prior_keys``, so a filter finds the first placement matching it

Each search entry gets the filter keys of the earlier placements of its content (see
``search.backends.base.prior_filter_keys``): with a case, organization, class, folder kind,
status or fiscal-year filter, the hit shown is the first readable placement that matches the
filter, not only the first readable one. Existing rows get an empty array; the index state is
cleared so the next start rebuilds the entries with their keys.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE search_entry ADD COLUMN prior_keys text[] NOT NULL DEFAULT '{}'")
    op.execute("DELETE FROM search_state WHERE key = 'postgres_index_built'")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE search_entry DROP COLUMN prior_keys")
    op.execute("DELETE FROM search_state WHERE key = 'postgres_index_built'")
