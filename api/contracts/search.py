"""Search API shapes."""

from __future__ import annotations

from typing import Any

from genpon.api.contracts.common import IsoDate, IsoTime
from pydantic import BaseModel


class HitPublic(BaseModel):
    """A hit. ``snippet_html`` is escaped text with ``<mark>`` highlights; ``copy_locations``
    lists the other placements of the same content the caller may read."""

    document_id: int
    title: str
    filename: str
    snippet_html: str
    case_id: str | None
    folder_id: int
    folder_path: str
    is_original: bool
    copies_count: int
    status: str
    score: float
    sha256: str
    doc_date: IsoDate | None
    mime_type: str
    copy_locations: list[dict[str, Any]]
    fiscal_year: int | None = None
    fiscal_year_label: str = ""  # 令和8年度 (2026)


class FacetValue(BaseModel):
    value: str
    count: int


class SearchPublic(BaseModel):
    """``pending_index``: deposits the caller may read that are not indexed yet (a search
    run now cannot find them; ask again in a few seconds)."""

    total: int
    page: int
    per_page: int
    hits: list[HitPublic]
    facets: dict[str, list[FacetValue]]
    pending_index: int = 0


class TextFailurePublic(BaseModel):
    document_id: int
    title: str
    filename: str
    mime_type: str
    sha256: str
    status: str
    reason: str | None
    extractor: str | None
    extracted_at: IsoTime | None


class TextFailuresPublic(BaseModel):
    total: int
    items: list[TextFailurePublic]
