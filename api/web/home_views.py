"""ホーム (the personal start page): recent documents, my cases, saved searches and, for records
officers, what waits for them. Each part comes from its domain's service; this view only
gathers them. Also saves and deletes searches (the search page's 「この検索を保存」)."""

from __future__ import annotations

import calendar
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from genpon.api.deps import SessionDep
from genpon.api.web.deps import WebActor
from genpon.api.web.lookups import names
from genpon.api.web.render import render
from genpon.api.web.session import check_csrf
from genpon.core.clock import local_date, utcnow
from genpon.records import home
from genpon.retention import batches, disposition_list
from genpon.search import saved

router = APIRouter(include_in_schema=False)


@router.get("/home")
def home_page(request: Request, session: SessionDep, actor: WebActor, msg: str = "") -> Response:
    tz = request.app.state.ctx.settings.timezone
    officer = actor.has_role("records_officer")
    waits = None
    if officer:
        today = local_date(utcnow(), tz)
        month_end = today.replace(day=calendar.monthrange(today.year, today.month)[1])
        pending = [
            b
            for b in batches.list_batches(session, actor, status="pending")
            if b.batch.created_by != actor.login  # four eyes: someone else's to approve
        ]
        due = disposition_list.due_list(session, actor, timezone=tz, as_of=month_end, limit=1)
        waits = {
            "batches": pending,
            "due_total": due.total,
            "month_end": month_end,
            "attention": home.attention(session, actor),
        }
    searches = [(s, "/?" + urlencode(s.params)) for s in saved.list_saved(session, actor)]
    return render(
        request,
        "home.html",
        recent=home.recent_documents(session, actor, limit=10),
        recent_labels=home.RECENT_ACTIONS,
        cases=home.my_cases(session, actor, limit=20),
        searches=searches,
        waits=waits,
        n=names(session),
        message={"saved": "検索を保存しました。", "deleted": "保存した検索を削除しました。"}.get(
            msg
        ),
    )


@router.post("/home/searches")
async def search_save(request: Request, session: SessionDep, actor: WebActor) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    params = {k: str(form.get(k, "")) for k in saved.KEYS}
    saved.save(session, actor, str(form.get("name", "")), params)
    return RedirectResponse("/home?msg=saved", 303)


@router.post("/home/searches/{saved_id}/delete")
def search_delete(
    saved_id: int, request: Request, session: SessionDep, actor: WebActor, csrf: str = Form("")
) -> Response:
    check_csrf(request, csrf)
    saved.delete(session, actor, saved_id)
    return RedirectResponse("/home?msg=deleted", 303)
