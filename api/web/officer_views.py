"""Records officer screens (文書管理担当): what is due, disposition batches (created by one
officer, approved by another), holds and extensions, the file register download."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from genpon.api.deps import SessionDep
from genpon.api.web.deps import WebActor
from genpon.api.web.lookups import names
from genpon.api.web.render import render
from genpon.api.web.session import check_csrf
from genpon.core.errors import Conflict, InvalidInput
from genpon.records.access import Actor
from genpon.records.models import Document
from genpon.retention import (
    batches,
    certificates,
    disposal,
    disposition_list,
    extension,
    holding,
    register,
    service,
    transfers,
)
from genpon.retention import steps as steps_mod
from genpon.retention.rules import HoldType
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

router = APIRouter(prefix="/records", include_in_schema=False)

BATCH_STATUS_JA = {
    "pending": "審査待ち",
    "approved": "承認済",
    "rejected": "却下",
    "executing": "実行中",
    "executed": "廃棄済",
    "exported": "移管パッケージ作成済",
    "acknowledging": "受領処理中",
    "transferred": "移管済",
}
SCOPE_JA = {"document": "文書", "case": "案件", "class": "文書分類"}


def _date_param(raw: str | None, name: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput("invalid_field", f"{name} は YYYY-MM-DD で指定してください。") from None


def _opt(raw: str | None) -> str | None:
    return raw.strip() if raw and raw.strip() else None


def _officer_page(request: Request, template: str, actor: Actor, **data: Any) -> Response:
    service.require_reader(actor)
    return render(
        request,
        template,
        BATCH_STATUS_JA=BATCH_STATUS_JA,
        SCOPE_JA=SCOPE_JA,
        may_act="records_officer" in actor.roles or actor.is_admin,
        **data,
    )


@router.get("/due")
def due_page(request: Request, session: SessionDep, actor: WebActor) -> Response:
    qp = request.query_params
    tz = request.app.state.ctx.settings.timezone
    as_of = _date_param(_opt(qp.get("as_of")), "基準日")
    filters: dict[str, Any] = {
        "organization_code": _opt(qp.get("organization")),
        "class_code": _opt(qp.get("class")),
        "disposition": _opt(qp.get("disposition")),
        "case_id": _opt(qp.get("case_id")),
    }
    due = disposition_list.due_list(session, actor, timezone=tz, as_of=as_of, limit=2000, **filters)
    n = names(session)
    return _officer_page(
        request,
        "officer/due.html",
        actor,
        due=due,
        n=n,
        filters={k: v or "" for k, v in filters.items()},
        as_of=as_of.isoformat() if as_of else "",
    )


@router.get("/batches")
def batches_page(request: Request, session: SessionDep, actor: WebActor) -> Response:
    status = _opt(request.query_params.get("status"))
    items = batches.list_batches(session, actor, status=status)
    return _officer_page(
        request, "officer/batches.html", actor, items=items, status=status or "", n=names(session)
    )


@router.post("/batches")
async def batch_create(request: Request, session: SessionDep, actor: WebActor) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    raw_ids = [str(v) for v in form.getlist("document_id")]
    if not raw_ids:
        raise InvalidInput("documents_required", "伺いに含める文書を1件以上選んでください。")
    if not all(v.isdigit() and len(v) < 19 for v in raw_ids):
        raise InvalidInput("invalid_document_id", "文書IDは数値です。")
    tz = request.app.state.ctx.settings.timezone
    as_of = _date_param(_opt(str(form.get("as_of", ""))), "基準日")
    try:
        batch = await run_in_threadpool(
            batches.create_batch,
            session,
            actor,
            action=str(form.get("action", "")),
            timezone=tz,
            document_ids=[int(v) for v in raw_ids],
            as_of=as_of,
            title=str(form.get("title", ""))[:500],
        )
    except Conflict as exc:
        back = "/records/due" + (f"?as_of={as_of.isoformat()}" if as_of else "")
        return _refused(request, session, actor, exc, back=back, what="create")
    return RedirectResponse(f"/records/batches/{batch.id}", 303)


def _refused(
    request: Request, session: Any, actor: Actor, exc: Conflict, *, back: str, what: str
) -> Response:
    """A refusal that lists its items (not due, held …) as a page with the reason per item;
    any other conflict goes to the ordinary error page."""
    items = exc.details.get("items") if isinstance(exc.details, dict) else None
    if not items:
        raise exc
    ids = [i["document_id"] for i in items if isinstance(i.get("document_id"), int)]
    titles = dict(
        session.exec(select(Document.id, Document.title).where(col(Document.id).in_(ids))).all()
    )
    items = [{"title": titles.get(i.get("document_id"), ""), **i} for i in items]
    return _officer_page(
        request,
        "officer/refused.html",
        actor,
        status_code=409,
        code=exc.code,
        message=exc.message,
        items=items,
        back=back,
        what=what,
        n=names(session),
    )


@router.get("/batches/{batch_id}")
def batch_page(batch_id: int, request: Request, session: SessionDep, actor: WebActor) -> Response:
    summary = batches.get_batch(session, actor, batch_id)
    items = batches.batch_items(session, actor, batch_id)
    b = summary.batch
    steps = steps_mod.available_steps(actor, b)
    return _officer_page(
        request,
        "officer/batch.html",
        actor,
        s=summary,
        b=b,
        items=items,
        n=names(session),
        may_decide="decide" in steps,
        own_batch=b.created_by == actor.login,
        may_execute="execute" in steps,
        may_export="export" in steps,
        may_acknowledge="acknowledge" in steps,
        msg=request.query_params.get("msg", ""),
    )


@router.post("/batches/{batch_id}/decide")
async def batch_decide(
    batch_id: int, request: Request, session: SessionDep, actor: WebActor
) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    decision = str(form.get("decision", ""))
    if decision not in ("approve", "reject"):
        raise InvalidInput("invalid_decision", "承認か却下を選んでください。")
    raw_ids = [str(v) for v in form.getlist("document_id")]
    if not all(v.isdigit() and len(v) < 19 for v in raw_ids):
        raise InvalidInput("invalid_document_id", "文書IDは数値です。")
    try:
        await run_in_threadpool(
            batches.decide,
            session,
            actor,
            batch_id,
            approve=decision == "approve",
            document_ids=[int(v) for v in raw_ids] or None,
            reason=_opt(str(form.get("reason", ""))),
            timezone=request.app.state.ctx.settings.timezone,
        )
    except Conflict as exc:
        return _refused(
            request, session, actor, exc, back=f"/records/batches/{batch_id}", what="decide"
        )
    return RedirectResponse(f"/records/batches/{batch_id}?msg={decision}", 303)


STEP_PATHS = {"execute": "execute", "export": "export", "acknowledge": "acknowledge"}


@router.get("/batches/{batch_id}/{step}/confirm")
def batch_step_confirm(
    batch_id: int, step: str, request: Request, session: SessionDep, actor: WebActor
) -> Response:
    """The confirmation page before a step that cannot be undone: how many documents, of which
    cases, under which holds, and which would stop the step (with the option to leave them
    out). The step's form posts from here only (``confirmed=1``)."""
    if step not in STEP_PATHS:
        raise InvalidInput("invalid_step", "この操作は確認できません。")
    preview = steps_mod.preview_step(
        session, actor, batch_id, step, timezone=request.app.state.ctx.settings.timezone
    )
    service.require_officer(actor)
    return _officer_page(
        request,
        "officer/confirm.html",
        actor,
        p=preview,
        b=preview.batch,
        step=step,
        n=names(session),
        hold_label=lambda t: HoldType(t).label if t in HoldType._value2member_map_ else t,
    )


async def _batch_step(
    request: Request,
    actor: Actor,
    batch_id: int,
    step: Callable[..., Any],
    msg: str,
    options: Callable[[Any], dict[str, Any]],
) -> Response:
    """A form button that runs one step of a batch (execute, export, acknowledge) through the
    retention service, then shows the batch with ``msg``."""
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    name = request.url.path.rstrip("/").rsplit("/", 1)[-1]
    if form.get("confirmed") != "1":  # only the confirmation page runs a step
        return RedirectResponse(f"/records/batches/{batch_id}/{name}/confirm", 303)
    ctx = request.app.state.ctx
    try:
        await run_in_threadpool(
            step, ctx.engine, ctx.store, actor, ctx.settings, batch_id, **options(form)
        )
    except Conflict as exc:
        with Session(ctx.engine) as session:
            return _refused(
                request,
                session,
                actor,
                exc,
                back=f"/records/batches/{batch_id}/{name}/confirm",
                what=name,
            )
    return RedirectResponse(f"/records/batches/{batch_id}?msg={msg}", 303)


def _skip_blocked(form: Any) -> dict[str, Any]:
    return {"skip_blocked": form.get("skip_blocked") == "1"}


@router.post("/batches/{batch_id}/execute")
async def batch_execute(batch_id: int, request: Request, actor: WebActor) -> Response:
    """廃棄: destroy the approved documents and issue the certificate."""
    return await _batch_step(
        request, actor, batch_id, disposal.execute_batch, "executed", _skip_blocked
    )


@router.post("/batches/{batch_id}/export")
async def batch_export(batch_id: int, request: Request, actor: WebActor) -> Response:
    """移管: build the BagIt package of an approved transfer batch."""
    return await _batch_step(
        request, actor, batch_id, transfers.export_transfer, "exported", _skip_blocked
    )


@router.post("/batches/{batch_id}/acknowledge")
async def batch_acknowledge(batch_id: int, request: Request, actor: WebActor) -> Response:
    """The archives acknowledged receipt of the package (受領)."""
    return await _batch_step(
        request,
        actor,
        batch_id,
        transfers.acknowledge_transfer,
        "acknowledged",
        lambda form: {"receipt_reference": _opt(str(form.get("receipt_reference", "")))},
    )


@router.get("/batches/{batch_id}/certificate")
def batch_certificate(
    batch_id: int, request: Request, session: SessionDep, actor: WebActor
) -> Response:
    filename, body = certificates.certificate_file(session, actor, batch_id)
    return Response(
        body,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/batches/{batch_id}/certificate/print")
def batch_certificate_print(
    batch_id: int, request: Request, session: SessionDep, actor: WebActor
) -> Response:
    """The printable 廃棄証明書 (HTML, Japanese) beside the signed JSON."""
    _name, html = certificates.certificate_html(
        session,
        actor,
        batch_id,
        timezone=request.app.state.ctx.settings.timezone,
        stylesheet="/records/certificate.css",
    )
    return HTMLResponse(html)


@router.get("/certificate.css")
def certificate_stylesheet() -> Response:
    return Response(certificates.certificate_css(), media_type="text/css; charset=utf-8")


@router.get("/holds")
def holds_page(request: Request, session: SessionDep, actor: WebActor) -> Response:
    show = request.query_params.get("show", "active")
    active = None if show == "all" else True
    holds = holding.list_holds(session, actor, active=active)
    extensions = extension.list_extensions(session, actor)
    n = names(session)
    return _officer_page(
        request,
        "officer/holds.html",
        actor,
        holds=[(h, holding.hold_target(session, h)) for h in holds],
        extensions=extensions,
        hold_types=[(t.value, t.label) for t in HoldType],
        show=show,
        n=n,
    )


@router.post("/holds")
async def hold_place(request: Request, session: SessionDep, actor: WebActor) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    scope, ref = str(form.get("scope", "")), str(form.get("ref", "")).strip()
    await run_in_threadpool(
        holding.place_hold,
        session,
        actor,
        scope=scope,
        ref=int(ref) if scope == "document" and ref.isdigit() else ref,
        hold_type=str(form.get("hold_type", "")),
        reason=str(form.get("reason", "")),
        reference=_opt(str(form.get("reference", ""))),
    )
    return RedirectResponse("/records/holds", 303)


@router.post("/holds/{hold_id}/release")
async def hold_release(
    hold_id: int, request: Request, session: SessionDep, actor: WebActor
) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    await run_in_threadpool(
        holding.release_hold, session, actor, hold_id, reason=str(form.get("reason", ""))
    )
    return RedirectResponse("/records/holds", 303)


@router.post("/extensions")
async def extension_add(request: Request, session: SessionDep, actor: WebActor) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    scope, ref = str(form.get("scope", "")), str(form.get("ref", "")).strip()
    years = str(form.get("years", "")).strip()
    if not years.isdigit():
        raise InvalidInput("invalid_years", "延長する年数は1〜30の整数です。")
    await run_in_threadpool(
        extension.extend,
        session,
        actor,
        scope=scope,
        ref=int(ref) if scope == "document" and ref.isdigit() else ref,
        years=int(years),
        reason=str(form.get("reason", "")),
        timezone=request.app.state.ctx.settings.timezone,
    )
    return RedirectResponse("/records/holds", 303)


@router.get("/register")
def register_page(request: Request, session: SessionDep, actor: WebActor) -> Response:
    n = names(session)
    return _officer_page(request, "officer/register.html", actor, n=n)


@router.get("/register/download")
def register_download(
    request: Request,
    session: SessionDep,
    actor: WebActor,
    organization: str = "",
    fiscal_year: str = "",
    format: str = "xlsx",
) -> Response:
    if fiscal_year and not fiscal_year.isdigit():
        raise InvalidInput("invalid_fiscal_year", "年度は西暦4桁で指定してください。")
    rows = register.register_rows(
        session,
        actor,
        organization_code=_opt(organization),
        fiscal_year=int(fiscal_year) if fiscal_year else None,
        timezone=request.app.state.ctx.settings.timezone,
    )
    buf = io.BytesIO()
    register.export_register(rows, format, buf)
    media = (
        "text/csv; charset=utf-8"
        if format == "csv"
        else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    name = f"file-register{'-' + fiscal_year if fiscal_year else ''}.{format}"
    return Response(
        buf.getvalue(),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
