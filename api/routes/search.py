"""Search API: ``GET /api/v1/search`` (and the index worker's lifecycle in the server)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import date
from typing import Any

from fastapi import APIRouter, FastAPI, Query, Request
from genpon.api.contracts.common import errors
from genpon.api.contracts.search import SearchPublic, TextFailuresPublic
from genpon.api.deps import ActorDep, CtxDep, ReadSessionDep, SessionDep
from genpon.api.schemas import iso
from genpon.core.errors import InvalidInput
from genpon.search import service, text_status, wareki
from genpon.search.service import MAX_OFFSET, SearchFilters

router = APIRouter(prefix="/api/v1", tags=["search"])

PARAMS = frozenset(
    {
        "q",
        "case_id",
        "organization",
        "class",
        "folder_kind",
        "status",
        "fiscal_year",
        "date_from",
        "date_to",
        "sort",
        "mode",
        "page",
        "per_page",
    }
)


# The query is parsed by hand (unknown or repeated parameters are refused): declared here.
def _param(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


_NINE_DIGITS = {"type": "integer", "minimum": 0, "maximum": 999_999_999}
SEARCH_PARAMS = [
    _param("q", '語の AND、"フレーズ"、-除外'),
    _param("case_id", "案件ID"),
    _param("organization", "所属コード"),
    _param("class", "文書分類コード"),
    _param("folder_kind", "フォルダの種類"),
    _param("status", "working / official"),
    _param("fiscal_year", "年度（2023、令和5年度、R5 など）"),
    _param("date_from", "文書の日付（以降。YYYY-MM-DD、令和5年度、平成31年、R5.4.1 など）"),
    _param("date_to", "文書の日付（以前。YYYY-MM-DD、令和5年度、平成31年、R5.4.1 など）"),
    _param("sort", "並び順", type="string", enum=["relevance", "date"]),
    _param("mode", "語の結合", type="string", enum=["all", "any"]),
    _param("page", "ページ（1から）", **_NINE_DIGITS),
    _param("per_page", "1ページの件数", **_NINE_DIGITS),
]


def _int(params: Any, name: str, default: int | None) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    raw = raw.strip()
    if not raw.isdigit() or len(raw) > 9:
        raise InvalidInput("invalid_field", f"{name} は整数で指定してください。", {"field": name})
    return int(raw)


def _fiscal_year(params: Any) -> int | None:
    """``fiscal_year``: 2023, or in 和暦 (令和5年度, 令和5年, R5)."""
    raw = (params.get("fiscal_year") or "").strip()
    if not raw:
        return None
    try:
        return wareki.fiscal_year(raw)
    except wareki.WarekiError:
        raise InvalidInput(
            "invalid_field",
            "fiscal_year は 2023、令和5年度、R5 のように指定してください。",
            {"field": "fiscal_year"},
        ) from None


def _date(params: Any, name: str) -> date | None:
    """A date, or in 和暦 or as a year or 年度: ``date_from`` takes its first day, ``date_to``
    its last (date_to=令和5年度 is 2024-03-31)."""
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        pass
    try:
        return wareki.date_bound(raw, last=name == "date_to")
    except wareki.WarekiError:
        raise InvalidInput(
            "invalid_field",
            f"{name} は YYYY-MM-DD、令和5年4月1日、令和5年度 のように指定してください。",
            {"field": name},
        ) from None


def _str(params: Any, name: str) -> str | None:
    raw = params.get(name)
    return raw.strip() if raw and raw.strip() else None


def hit_json(h: service.SearchHit) -> dict[str, Any]:
    d = asdict(h)
    d["doc_date"] = h.doc_date.isoformat() if h.doc_date else None
    d["score"] = round(h.score, 4)
    return d


@router.get(
    "/search",
    response_model=SearchPublic,
    responses=errors(401, 403, 422, 503),
    openapi_extra={"parameters": SEARCH_PARAMS},
)
def search(
    request: Request, session: ReadSessionDep, actor: ActorDep, ctx: CtxDep
) -> dict[str, Any]:
    """全文検索: ``q`` (AND of terms, "phrases", -exclusions), filters ``case_id``,
    ``organization``, ``class``, ``folder_kind``, ``status``, ``fiscal_year`` (年度),
    ``date_from``/``date_to``; ``sort`` relevance|date; ``mode`` all|any; ``page``, ``per_page``."""
    params = request.query_params
    unknown = sorted(set(params.keys()) - PARAMS)
    if unknown:
        raise InvalidInput(
            "unknown_filter", f"不明な検索条件です: {', '.join(unknown)}", {"unknown": unknown}
        )
    for name in params:
        if len(params.getlist(name)) > 1:
            raise InvalidInput(
                "duplicate_param", f"{name} は1回だけ指定してください。", {"field": name}
            )
    filters = SearchFilters(
        case_id=_str(params, "case_id"),
        organization=_str(params, "organization"),
        doc_class=_str(params, "class"),
        folder_kind=_str(params, "folder_kind"),
        status=_str(params, "status"),
        fiscal_year=_fiscal_year(params),
        date_from=_date(params, "date_from"),
        date_to=_date(params, "date_to"),
    )
    result = service.search_documents(
        ctx,
        session,
        actor,
        params.get("q") or "",
        filters=filters,
        page=_int(params, "page", 1) or 0,
        per_page=_int(params, "per_page", 20) or 0,
        sort=(_str(params, "sort") or "relevance"),  # type: ignore[arg-type]
        mode=(_str(params, "mode") or "all"),  # type: ignore[arg-type]
    )
    return {
        "total": result.total,
        "page": result.page,
        "per_page": result.per_page,
        "hits": [hit_json(h) for h in result.hits],
        "facets": {
            name: [{"value": v, "count": n} for v, n in items]
            for name, items in result.facets.items()
        },
        "pending_index": result.pending_index,
    }


@router.get(
    "/search/text-failures",
    response_model=TextFailuresPublic,
    responses=errors(401, 403, 422),
)
def text_failures(
    session: SessionDep,
    actor: ActorDep,
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    include_unsupported: bool = False,
) -> dict[str, Any]:
    """本文を抽出できなかった文書（文書管理担当・管理者）: 新しい順、理由つき。"""
    total, items = text_status.text_failures(
        session, actor, limit=limit, offset=offset, include_unsupported=include_unsupported
    )
    return {
        "total": total,
        "items": [asdict(i) | {"extracted_at": iso(i.extracted_at)} for i in items],
    }


def install(app: FastAPI) -> None:
    """Add the router; while the server runs, register it as a node (heartbeat, topology
    check) and, in the embedded default (``settings.runs_worker_in_server``: SQLite), run the
    background loops (index worker, checkpointer) in the server, as `genpon worker` would."""
    app.include_router(router)
    previous = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        from genpon.api.worker import BackgroundWork

        ctx = app.state.ctx
        work = BackgroundWork(ctx, "serve", with_loops=ctx.settings.runs_worker_in_server)
        work.start()  # a wrong topology (TopologyError) stops the server here, with the fix
        app.state.node = work.node
        try:
            async with previous(a) as state:
                yield state
        finally:
            work.stop()

    app.router.lifespan_context = lifespan
