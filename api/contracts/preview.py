"""The document viewer (shapes of :mod:`genpon.search.preview`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class PreviewPublic(BaseModel):
    """What the viewer shows for a document: ``kind`` ``pdf``/``image`` (page images at
    ``…/pages/{n}.png``, ``pages`` of them), ``text`` (the extracted text, to be shown escaped)
    or ``none``; ``status`` is ``ok``, ``pending`` (text not extracted yet), ``failed`` or
    ``unsupported``, with ``code`` and ``message`` saying why."""

    document_id: int
    sha256: str
    mime_type: str
    kind: Literal["pdf", "image", "text", "none"]
    status: Literal["ok", "pending", "failed", "unsupported"]
    pages: int | None = Field(description="ページ数（pdf と image のみ）")
    code: str | None = Field(description="表示できない理由（機械可読）")
    message: str | None
    text: str | None = Field(description="本文（text のみ、HTML としてではなく文字として表示）")
    text_truncated: bool


class HighlightBoxPublic(BaseModel):
    """An area to mark on the page image: fractions (0–1) of its width and height."""

    x: float
    y: float
    w: float
    h: float


class HighlightsPublic(BaseModel):
    """Where the terms of ``query`` are on page ``page``. ``positions`` is false when the page
    has no word positions (only OCR'd pages have them): then ``boxes`` is empty."""

    document_id: int
    page: int
    query: str
    positions: bool
    boxes: list[HighlightBoxPublic]
