"""retention: holds, extensions, disposition batches and items, tombstones, certificates

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 14:01:42.432827
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "disposition_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("executed_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("executed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("receipt_reference", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("package_path", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.Column("certificate_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("disposition_batch", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_disposition_batch_status"), ["status"], unique=False)

    op.create_table(
        "disposal_certificate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("certificate_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=True),
        sa.Column("key_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["disposition_batch.id"],
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["document.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("batch_id"),
        sa.UniqueConstraint("certificate_id"),
    )
    op.create_table(
        "disposition_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("decision", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("decided_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("result", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("executed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["disposition_batch.id"],
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["document.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("batch_id", "document_id", name="uq_disposition_item"),
    )
    with op.batch_alter_table("disposition_item", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_disposition_item_batch_id"), ["batch_id"], unique=False
        )
        batch_op.create_index("ix_disposition_item_document", ["document_id"], unique=False)

    op.create_table(
        "retention_extension",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=True),
        sa.Column("case_pk", sa.Integer(), nullable=True),
        sa.Column("document_class_id", sa.Integer(), nullable=True),
        sa.Column("years", sa.Integer(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_pk"],
            ["case_record.id"],
        ),
        sa.ForeignKeyConstraint(
            ["document_class_id"],
            ["document_class.id"],
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["document.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("retention_extension", schema=None) as batch_op:
        batch_op.create_index("ix_retention_extension_case", ["case_pk"], unique=False)
        batch_op.create_index("ix_retention_extension_class", ["document_class_id"], unique=False)
        batch_op.create_index("ix_retention_extension_document", ["document_id"], unique=False)

    op.create_table(
        "retention_hold",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hold_type", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=True),
        sa.Column("case_pk", sa.Integer(), nullable=True),
        sa.Column("document_class_id", sa.Integer(), nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("reference", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("placed_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("release_reason", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_pk"],
            ["case_record.id"],
        ),
        sa.ForeignKeyConstraint(
            ["document_class_id"],
            ["document_class.id"],
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["document.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("retention_hold", schema=None) as batch_op:
        batch_op.create_index("ix_retention_hold_active", ["released_at", "scope"], unique=False)
        batch_op.create_index("ix_retention_hold_case", ["case_pk"], unique=False)
        batch_op.create_index("ix_retention_hold_class", ["document_class_id"], unique=False)
        batch_op.create_index("ix_retention_hold_document", ["document_id"], unique=False)

    op.create_table(
        "retention_tombstone",
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("filename", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("case_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("class_code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("retention_start", sa.Date(), nullable=True),
        sa.Column("retention_end", sa.Date(), nullable=True),
        sa.Column("requested_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("approved_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("executed_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("disposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content_removed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["disposition_batch.id"],
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["document.id"],
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
        ),
        sa.PrimaryKeyConstraint("document_id"),
    )
    with op.batch_alter_table("retention_tombstone", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_retention_tombstone_batch_id"), ["batch_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_retention_tombstone_sha256"), ["sha256"], unique=False)

    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.create_index(
            "ix_document_retention_due",
            ["state", "retention_end", "retention_start"],
            unique=False,
        )
        batch_op.create_index(
            "ix_document_retention_page",
            ["state", "case_pk", "document_class_id", "id", "retention_end", "retention_start"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.drop_index("ix_document_retention_page")
        batch_op.drop_index("ix_document_retention_due")

    with op.batch_alter_table("retention_tombstone", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retention_tombstone_sha256"))
        batch_op.drop_index(batch_op.f("ix_retention_tombstone_batch_id"))

    op.drop_table("retention_tombstone")
    with op.batch_alter_table("retention_hold", schema=None) as batch_op:
        batch_op.drop_index("ix_retention_hold_document")
        batch_op.drop_index("ix_retention_hold_class")
        batch_op.drop_index("ix_retention_hold_case")
        batch_op.drop_index("ix_retention_hold_active")

    op.drop_table("retention_hold")
    with op.batch_alter_table("retention_extension", schema=None) as batch_op:
        batch_op.drop_index("ix_retention_extension_document")
        batch_op.drop_index("ix_retention_extension_class")
        batch_op.drop_index("ix_retention_extension_case")

    op.drop_table("retention_extension")
    with op.batch_alter_table("disposition_item", schema=None) as batch_op:
        batch_op.drop_index("ix_disposition_item_document")
        batch_op.drop_index(batch_op.f("ix_disposition_item_batch_id"))

    op.drop_table("disposition_item")
    op.drop_table("disposal_certificate")
    with op.batch_alter_table("disposition_batch", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_disposition_batch_status"))

    op.drop_table("disposition_batch")
