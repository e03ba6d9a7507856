"""The home page: one search box over everything the person may read, with filters, facets,
highlighted snippets and one row per original (badge 原本, "写し N件" opening the copies)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from genpon.api.deps import SessionDep
from genpon.api.web.deps import WebActor
from genpon.api.web.lookups import names
from genpon.api.web.render import render
from genpon.core.errors import InvalidInput
from genpon.records.models import Case
from genpon.search import service
from markupsafe import Markup
from sqlmodel import col, select

router = APIRouter(include_in_schema=False)

FILTERS = ("case_id", "organization", "class", "folder_kind", "status", "fiscal_year")
PER_PAGE = 20


def _params(request: Request) -> dict[str, str]:
    qp = request.query_params
    return {k: qp.get(k, "").strip()[:200] for k in ("q", *FILTERS) if qp.get(k, "").strip()}


def case_titles(session: Any, case_ids: set[str]) -> dict[str, str]:
    """件名 of the cases the hits belong to (a hit names its case by title, not only by ID)."""
    if not case_ids:
        return {}
    rows = session.exec(select(Case.case_id, Case.title).where(col(Case.case_id).in_(case_ids)))
    return dict(rows.all())


@router.get("/")
def home(request: Request, session: SessionDep, actor: WebActor) -> Response:
    params = _params(request)
    q = params.get("q", "")
    raw_page = request.query_params.get("page", "1")
    page = int(raw_page) if raw_page.isdigit() and 0 < int(raw_page) < 10_000 else 1
    n = names(session)
    data: dict[str, Any] = {
        "available": True,
        "q": q,
        "params": params,
        "result": None,
        "error": None,
        "n": n,
        "org_by_code": {o.code: o.name for o in n.orgs.values()},
        "class_by_code": {c.code: c.name for c in n.classes.values()},
        "page": page,
    }
    if not (q or any(k in params for k in FILTERS)):
        return render(request, "search.html", **data)
    try:
        fy_raw = params.get("fiscal_year")
        if fy_raw is not None and not fy_raw.isdigit():
            raise InvalidInput("invalid_filter", "年度は西暦4桁の数字で指定してください。")
        if not q:
            raise InvalidInput("empty_query", "検索語を入力してください。")
        filters = service.SearchFilters(
            case_id=params.get("case_id"),
            organization=params.get("organization"),
            doc_class=params.get("class"),
            folder_kind=params.get("folder_kind"),
            status=params.get("status"),
            fiscal_year=int(fy_raw) if fy_raw else None,
        )
        result = service.search_documents(
            request.app.state.ctx,
            session,
            actor,
            q,
            filters=filters,
            page=page,
            per_page=PER_PAGE,
        )
    except InvalidInput as exc:
        data["error"] = exc.message
        return render(request, "search.html", status_code=422, **data)

    def link(**change: str | None) -> str:
        merged = {**params, **change}
        merged.pop("page", None)
        return "/?" + urlencode({k: v for k, v in merged.items() if v})

    data.update(
        case_titles=case_titles(session, {h.case_id for h in result.hits if h.case_id}),
        result=result,
        hits=[(h, Markup(h.snippet_html)) for h in result.hits],
        pages=max(1, -(-result.total // PER_PAGE)),
        link=link,
        pager_query=urlencode(params),
    )
    return render(request, "search.html", **data)
