"""Records officer screen: documents whose text could not be extracted (本文抽出の失敗)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from genpon.api.deps import SessionDep
from genpon.api.web.deps import WebActor
from genpon.api.web.render import render
from genpon.search.text_status import text_failures

router = APIRouter(prefix="/records", include_in_schema=False)


@router.get("/text-failures")
def text_failures_page(request: Request, session: SessionDep, actor: WebActor) -> Response:
    show_all = request.query_params.get("show") == "all"
    total, items = text_failures(session, actor, limit=200, include_unsupported=show_all)
    return render(
        request, "officer/text_failures.html", total=total, items=items, show_all=show_all
    )
