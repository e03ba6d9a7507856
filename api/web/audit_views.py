"""Auditor screens (監査): audit log search, signed checkpoints, fixity runs and findings,
verification status of the chain. Read-only; every function is in records.audit_query."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import Response
from genpon.api.deps import SessionDep
from genpon.api.web.deps import WebActor
from genpon.api.web.lookups import names
from genpon.api.web.render import render
from genpon.api.web.session import load
from genpon.api.web.timeline import describe
from genpon.core.errors import InvalidInput
from genpon.core.signing import SystemKeyring
from genpon.records.audit import query as audit_query
from genpon.records.models import Document
from sqlmodel import col, select

router = APIRouter(prefix="/audit", include_in_schema=False)
PER_PAGE = 100


def _opt(raw: str | None) -> str | None:
    return raw.strip()[:200] if raw and raw.strip() else None


def _day(raw: str | None, label: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput("invalid_field", f"{label}は YYYY-MM-DD で指定してください。") from None


@router.get("/log")
def log_page(request: Request, session: SessionDep, actor: WebActor) -> Response:
    qp = request.query_params
    tz = request.app.state.ctx.settings.timezone
    f = {k: _opt(qp.get(k)) for k in ("actor", "action", "case_id", "target_type", "target_id")}
    start = _day(_opt(qp.get("from")), "開始日")
    end = _day(_opt(qp.get("to")), "終了日")
    before = _opt(qp.get("before"))
    if before is not None and not before.isdigit():
        raise InvalidInput("invalid_field", "before は数値です。")
    page = audit_query.list_events(
        session,
        actor,
        target_type=f["target_type"],
        target_id=f["target_id"],
        actor_login=f["actor"],
        action=f["action"],
        case_id=f["case_id"],
        since=audit_query.local_day_range(start, tz)[0] if start else None,
        until=audit_query.local_day_range(end, tz)[1] if end else None,
        before_seq=int(before) if before else None,
        limit=PER_PAGE,
        newest_first=True,
    )
    query = {k: v for k, v in qp.items() if k != "before" and v}
    n = names(session)
    lang = load(request).lang
    doc_ids = [
        int(e.target_id)
        for e in page.items
        if e.target_type == "document" and e.target_id.isdigit() and len(e.target_id) < 19
    ]
    titles = {
        doc_id: title
        for doc_id, title in session.exec(
            select(Document.id, Document.title).where(col(Document.id).in_(doc_ids))
        ).all()
        if doc_id is not None
    }
    return render(
        request,
        "audit/log.html",
        page=page,
        sentences={e.seq: describe(e, n, titles, lang).sentence for e in page.items},
        f={k: v or "" for k, v in f.items()},
        start=start.isoformat() if start else "",
        end=end.isoformat() if end else "",
        query=query,
        n=n,
    )


@router.get("/checkpoints")
def checkpoints_page(request: Request, session: SessionDep, actor: WebActor) -> Response:
    items, total = audit_query.list_checkpoints(session, actor, limit=100)
    return render(request, "audit/checkpoints.html", items=items, total=total)


@router.get("/fixity")
def fixity_page(request: Request, session: SessionDep, actor: WebActor) -> Response:
    runs, total = audit_query.list_fixity_runs(session, actor, limit=100)
    return render(request, "audit/fixity.html", runs=runs, total=total, n=names(session))


@router.get("/fixity/{run_id}")
def fixity_run_page(
    run_id: int, request: Request, session: SessionDep, actor: WebActor
) -> Response:
    run, findings = audit_query.get_fixity_run(session, actor, run_id)
    return render(request, "audit/fixity_run.html", run=run, findings=findings, n=names(session))


@router.get("/verify")
def verify_page(request: Request, session: SessionDep, actor: WebActor) -> Response:
    ctx = request.app.state.ctx
    keyring = SystemKeyring.from_settings(ctx.settings, ctx.engine)
    check = audit_query.check_log(session, actor, keyring)
    latest = audit_query.latest_checkpoint(session, actor)
    return render(request, "audit/verify.html", check=check, latest=latest)
