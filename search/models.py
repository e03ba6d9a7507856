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
from sqlalchemy import Column, DateTime
from sqlmodel import Field, SQLModel


class SearchState(SQLModel, table=True):
    __tablename__ = "search_state"
    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(default="", max_length=500)
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
