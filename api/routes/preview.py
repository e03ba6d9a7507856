"""Document viewer: page images (PNG), thumbnails, the preview outline of a document and where
the search terms are on a page.

Each request is authorized like a download (hidden: 404) and audited (``document.previewed``;
a thumbnail or highlights only once an hour per person and document, see
:mod:`genpon.search.preview`); rendering runs in the thread pool (sync route functions), bounded
by :mod:`genpon.search.preview`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from genpon.api.contracts.common import FileDownload, errors, file_response
from genpon.api.contracts.preview import HighlightsPublic, PreviewPublic
from genpon.api.deps import ActorDep, CtxDep, Id, Limit, SessionDep
from genpon.search import preview
from genpon.search.preview import PageImage

router = APIRouter(prefix="/api/v1", tags=["documents"], responses=errors(401, 404, 409, 422, 503))

# A rendering of the document's content: never cached by a browser or proxy (shared PCs).
NO_STORE = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}


def _png(image: PageImage) -> Response:
    headers = {**NO_STORE, "X-Page-Count": str(image.pages), "X-Page-Width": str(image.width)}
    return Response(content=image.png, media_type="image/png", headers=headers)


@router.get("/documents/{document_id}/preview", response_model=PreviewPublic)
def get_preview(
    document_id: Id, session: SessionDep, actor: ActorDep, ctx: CtxDep
) -> dict[str, Any]:
    """How the viewer shows the document: page count for PDFs and images, the extracted text
    for text, HTML, mail and Office files, or why it cannot be shown."""
    return asdict(preview.describe(session, ctx.store, ctx.settings, actor, document_id))


@router.get(
    "/documents/{document_id}/pages/{page}.png",
    response_class=FileDownload,
    responses=file_response("ページ画像（PNG）", "image/png"),
)
def get_page(
    document_id: Id,
    page: Id,
    session: SessionDep,
    actor: ActorDep,
    ctx: CtxDep,
    width: Limit | None = None,
) -> Response:
    """Page ``page`` (from 1) as PNG, ``width`` rounded up to a configured width (160, 800,
    1200, 1600 px by default); a page beyond the last is 404 ``page_not_found``."""
    image = preview.page_image(session, ctx.store, ctx.settings, actor, document_id, page, width)
    return _png(image)


@router.get(
    "/documents/{document_id}/thumbnail.png",
    response_class=FileDownload,
    responses=file_response("1ページ目の縮小画像（PNG）", "image/png"),
)
def get_thumbnail(document_id: Id, session: SessionDep, actor: ActorDep, ctx: CtxDep) -> Response:
    return _png(preview.thumbnail(session, ctx.store, ctx.settings, actor, document_id))


@router.get("/documents/{document_id}/pages/{page}/highlights", response_model=HighlightsPublic)
def get_highlights(
    document_id: Id,
    page: Id,
    session: SessionDep,
    actor: ActorDep,
    ctx: CtxDep,
    q: str = Query(..., min_length=1, max_length=200),
) -> dict[str, Any]:
    """Where the terms of the search ``q`` are on page ``page``, as boxes to draw over its
    image (fractions of the page); for pages whose word positions are known (OCR'd pages and
    a PDF's text layer)."""
    return asdict(
        preview.page_highlights(session, ctx.store, ctx.settings, actor, document_id, page, q)
    )
