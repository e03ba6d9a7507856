"""Tables of the search domain.

The extracted text itself lives in ``records.models.BlobText`` (one row per content). Here:
``SearchState``, small key/value facts about the index (schema version of the PostgreSQL
tables, the resumable cursor of a running reindex). The PostgreSQL backend's own tables
(``search_entry``, ``search_chunk`` with ``tsvector`` columns) exist on PostgreSQL only and are
created by migration 0002; they are not SQLModel tables so SQLite never sees them.
"""

from __future__ import annotations

from datetime import datetime

from genpon.core.clock import utcnow
from sqlalchemy import JSON, Column, DateTime, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


class SearchState(SQLModel, table=True):
    __tablename__ = "search_state"
    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(default="", max_length=500)
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class SavedSearch(SQLModel, table=True):
    """A person's saved search (保存した検索): a name and the query string of the search page
    (``q`` and its filters), listed on their start page. Private to its owner."""

    __tablename__ = "saved_search"
    __table_args__ = (
        UniqueConstraint("user_id", "name", name="uq_saved_search_user_name"),
        Index("ix_saved_search_user", "user_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user_account.id")
    name: str = Field(max_length=100)
    params: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
