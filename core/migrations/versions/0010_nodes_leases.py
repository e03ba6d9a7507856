"""processes and deployment: outbox leases, registered nodes, the deployment's public keys

* ``index_outbox.claimed_by`` / ``lease_until``: a worker claims rows with ``SELECT … FOR
  UPDATE SKIP LOCKED`` and a lease; a lease that expires (the worker died) is claimed again.
* ``node``: every `genpon serve` / `genpon worker` process with its heartbeat.
* ``system_key``: the public system keys and their history (the row without ``retired_at`` is
  current); ``genpon init`` records the key, ``genpon keys rotate`` the next one.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("index_outbox") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "node",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("search_backend", sa.String(length=16), nullable=False),
        sa.Column("writes_index", sa.Boolean(), nullable=False),
        sa.Column("can_sign", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "system_key",
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("public_pem", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id"),
    )


def downgrade() -> None:
    op.drop_table("system_key")
    op.drop_table("node")
    with op.batch_alter_table("index_outbox") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("claimed_by")
