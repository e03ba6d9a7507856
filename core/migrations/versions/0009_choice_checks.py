"""status and kind columns: CHECK constraints naming their allowed values

Each status/kind column is a ``StrEnum`` in its domain's models; the column stays a VARCHAR
holding the value, and from now on the database refuses any other value. The values are
written out here (a migration must not change when a model does later). SQLite cannot add a
constraint to a table, so each table is rebuilt (batch mode); PostgreSQL adds them in place.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = ("pending", "ok", "empty", "failed", "unsupported")
_SCOPES = ("document", "case", "class")

CHOICES: dict[str, dict[str, tuple[str, ...]]] = {
    "user_account": {"kind": ("person", "service")},
    "document_class": {
        "retention": ("lt1", "1", "3", "5", "10", "30", "permanent"),
        "disposition": ("destroy", "transfer"),
        "start_rule": ("next_fiscal_year", "closing_date"),
    },
    "case_record": {"status": ("open", "closed")},
    "folder": {"kind": ("case", "team", "shared")},
    "blob": {"state": ("stored", "deleted")},
    "document": {
        "status": ("working", "official"),
        "state": ("live", "destroyed", "transferred"),
    },
    "index_outbox": {"reason": ("deposit", "copy", "approve", "version", "destroy", "ocr")},
    "blob_text": {"status": _TEXT},
    "retention_hold": {
        "hold_type": ("litigation", "disclosure", "appeal", "audit", "other"),
        "scope": _SCOPES,
    },
    "retention_extension": {"scope": _SCOPES},
    "disposition_batch": {
        "action": ("destroy", "transfer"),
        "status": (
            "pending",
            "approved",
            "rejected",
            "executing",
            "executed",
            "exported",
            "acknowledging",
            "transferred",
        ),
    },
    "disposition_item": {
        "decision": ("pending", "approved", "rejected"),
        "status": ("pending", "done", "skipped"),
    },
    "retention_tombstone": {"action": ("destroyed", "transferred")},
    "import_run": {
        "folder_kind": ("team", "shared"),
        "status": ("running", "completed", "failed"),
        "phase": ("scan", "hash", "text", "deposit", "near", "done"),
    },
    "import_entry": {
        "name_encoding": ("utf-8", "cp932", "undecodable"),
        "entry_type": ("file", "symlink", "special", "directory"),
        "state": ("seen", "hashed", "done", "planned", "skipped"),
        "role": ("original", "copy"),
    },
    "text_signature": {"status": _TEXT[1:]},
    "near_dup_cluster": {"scope": ("import", "genpon")},
    "audit_checkpoint": {"reason": ("interval", "daily", "manual", "key_rotation", "export")},
    "fixity_run": {
        "mode": ("all", "sample", "older_than"),
        "status": ("running", "done", "failed"),
    },
    "fixity_finding": {"problem": ("missing", "corrupt", "error")},
}


def _condition(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join("'" + v + "'" for v in values)
    return f"{column} IN ({quoted})"


def upgrade() -> None:
    for table, columns in CHOICES.items():
        with op.batch_alter_table(table) as batch_op:
            for column, values in columns.items():
                batch_op.create_check_constraint(f"ck_{table}_{column}", _condition(column, values))


def downgrade() -> None:
    for table, columns in CHOICES.items():
        with op.batch_alter_table(table) as batch_op:
            for column in columns:
                batch_op.drop_constraint(f"ck_{table}_{column}", type_="check")
