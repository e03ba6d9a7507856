"""legacy import: runs, entries (provenance), text signatures, near-duplicate clusters

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "import_run",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("source_root", sa.Text(), nullable=False),
        sa.Column("source_root_raw", sa.LargeBinary(), nullable=False),
        sa.Column(
            "organization_id", sa.Integer(), sa.ForeignKey("organization.id"), nullable=False
        ),
        sa.Column("folder_kind", sa.String(16), nullable=False),
        sa.Column("folder_name", sa.String(255), nullable=False),
        sa.Column("root_folder_id", sa.Integer(), sa.ForeignKey("folder.id"), nullable=True),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("with_text", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("original_rule", sa.String(200), nullable=False),
        sa.Column("near_threshold", sa.Float(), nullable=False),
        sa.Column("started_by", sa.String(64), nullable=False),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("finished_at", TZ, nullable=True),
        sa.Column("summary", sa.JSON(), nullable=False),
    )
    op.create_index("ix_import_run_organization_id", "import_run", ["organization_id"])
    op.create_index("ix_import_run_status", "import_run", ["status"])

    op.create_table(
        "import_entry",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("import_run.id"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("path_key", sa.String(64), nullable=False),
        sa.Column("rel_path_raw", sa.LargeBinary(), nullable=False),
        sa.Column("rel_path", sa.Text(), nullable=False),
        sa.Column("name_encoding", sa.String(16), nullable=False),
        sa.Column("entry_type", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("mtime", TZ, nullable=True),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=True),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("uid", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("mime_type", sa.String(255), nullable=True),
        sa.Column("role", sa.String(16), nullable=True),
        sa.Column("document_id", sa.Integer(), sa.ForeignKey("document.id"), nullable=True),
        sa.Column("original_document_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", TZ, nullable=False),
        sa.UniqueConstraint("run_id", "path_key", name="uq_import_entry_path"),
    )
    op.create_index("ix_import_entry_run_state", "import_entry", ["run_id", "state"])
    op.create_index("ix_import_entry_run_sha", "import_entry", ["run_id", "sha256"])
    op.create_index("ix_import_entry_document_id", "import_entry", ["document_id"])

    op.create_table(
        "text_signature",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("extractor", sa.String(32), nullable=True),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("chars", sa.Integer(), nullable=False),
        sa.Column("shingle_k", sa.Integer(), nullable=False),
        sa.Column("num_perm", sa.Integer(), nullable=False),
        sa.Column("hashvalues", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
    )

    op.create_table(
        "near_dup_cluster",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("import_run.id"), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("max_score", sa.Float(), nullable=False),
        sa.Column("min_score", sa.Float(), nullable=False),
        sa.Column("members", sa.JSON(), nullable=False),
        sa.Column("pairs", sa.JSON(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_near_dup_cluster_scope", "near_dup_cluster", ["scope"])
    op.create_index("ix_near_dup_cluster_run_id", "near_dup_cluster", ["run_id"])


def downgrade() -> None:
    op.drop_table("near_dup_cluster")
    op.drop_table("text_signature")
    op.drop_table("import_entry")
    op.drop_table("import_run")
