"""web sign-ins kept on the server, so signing out ends a session everywhere

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "web_sign_in",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key_prefix", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_web_sign_in_token_hash", "web_sign_in", ["token_hash"], unique=True)
    op.create_index("ix_web_sign_in_user_id", "web_sign_in", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_web_sign_in_user_id", table_name="web_sign_in")
    op.drop_index("ix_web_sign_in_token_hash", table_name="web_sign_in")
    op.drop_table("web_sign_in")
