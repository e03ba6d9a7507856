"""Staff screens: document page, originals and copies, cases with their timeline (経緯),
folder browser with upload. Each view parses, calls records services, renders."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from genpon.api import upload
from genpon.api.deps import SessionDep
from genpon.api.web import hooks
from genpon.api.web.deps import WebActor
from genpon.api.web.lookups import names
from genpon.api.web.render import render
from genpon.api.web.session import check_csrf, load
from genpon.api.web.timeline import describe
from genpon.core.errors import GenponError, InvalidInput
from genpon.records import cases, documents, folders
from genpon.records.access import Actor, can_write_folder
from genpon.records.documents import ApprovalIn, DepositIn
from genpon.records.models import Case, Folder
from genpon.search import preview
from markupsafe import Markup
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

router = APIRouter(include_in_schema=False)

MESSAGES = {
    "copy": "同じ内容の原本が既にあるため、写しとして登録しました。",
    "original": "原本として登録しました。",
    "copied": "写しを作りました。",
    "approved": "決裁を登録しました。この文書の内容は今後変更できません。",
}


def writable_folders(session: Session, actor: Actor) -> list[tuple[Folder, str]]:
    """Top-level folders (and case folders) the actor may put documents into."""
    out: list[tuple[Folder, str]] = []
    for kind in ("team", "shared", "case"):
        page = folders.list_folders(session, actor, kind=kind, limit=200)
        for f in page.items:
            case = session.get(Case, f.case_pk) if f.case_pk else None
            if can_write_folder(actor, f, case):
                label = folders.folder_path(session, f)
                if case is not None:
                    label = f"{label}（{case.title}）"
                out.append((f, label))
    return out


# --- documents -----------------------------------------------------------------------------


@router.get("/documents/{document_id}")
def document_page(
    document_id: int,
    request: Request,
    session: SessionDep,
    actor: WebActor,
    msg: str = "",
    page: int = 1,
    q: str = "",
) -> Response:
    v = documents.view(session, actor, document_id)
    doc = v.document
    shown, shown_error = None, None  # the viewer: page images, or the text with terms marked
    settings = request.app.state.ctx.settings
    if doc.state == "live" and settings.preview_enabled:
        try:
            shown = preview.describe(
                session, request.app.state.ctx.store, settings, actor, doc.id or 0
            )
        except GenponError as exc:  # e.g. content missing from the store: the page still opens
            shown_error = exc.message
    text_html = (
        Markup(preview.highlight_html(shown.text, q[:200])) if shown and shown.text else None
    )
    n = names(session)
    cls = n.classes.get(doc.document_class_id or 0)
    return render(
        request,
        "document.html",
        v=v,
        doc=doc,
        n=n,
        cls=cls,
        versions=documents.versions(session, actor, document_id),
        fixity=hooks.fixity_of(session, actor, doc.sha256),
        holds=hooks.holds_of(session, actor, doc),
        targets=writable_folders(session, actor) if doc.state == "live" else [],
        can_approve=(
            doc.status == "working"
            and doc.state == "live"
            and v.case is not None
            and can_write_folder(actor, v.folder, v.case)
        ),
        message=MESSAGES.get(msg),
        today=date.today().isoformat(),
        shown=shown,
        shown_error=shown_error,
        text_html=text_html,
        q=q[:200],
        page=min(max(page, 1), (shown.pages or 1) if shown else 1),
        widths=[w for w in sorted(settings.preview_widths) if w > min(settings.preview_widths)],
    )


@router.get("/documents/{document_id}/download")
def document_download(
    document_id: int, request: Request, session: SessionDep, actor: WebActor
) -> Response:
    ctx = request.app.state.ctx
    doc, sha, stream = documents.open_content(session, ctx.store, actor, document_id)
    session.commit()  # the read is in the audit log before any byte leaves

    def chunks() -> Iterator[bytes]:
        with stream:
            while block := stream.read(1 << 20):
                yield block

    headers = {
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(doc.filename)}",
        "X-Content-SHA256": sha,
    }
    return StreamingResponse(chunks(), media_type=doc.mime_type, headers=headers)


@router.post("/documents/{document_id}/copy")
def document_copy(
    document_id: int,
    request: Request,
    session: SessionDep,
    actor: WebActor,
    csrf: str = Form(""),
    folder_id: int = Form(...),
) -> Response:
    check_csrf(request, csrf)
    copy = documents.copy_to_folder(session, actor, document_id, folder_id)
    return RedirectResponse(f"/documents/{copy.id}?msg=copied", 303)


@router.post("/documents/{document_id}/approve")
def document_approve(
    document_id: int,
    request: Request,
    session: SessionDep,
    actor: WebActor,
    csrf: str = Form(""),
    approved_on: str = Form(""),
    approvers: str = Form("", max_length=2000),
) -> Response:
    check_csrf(request, csrf)
    people = [a.strip() for a in approvers.replace("、", ",").split(",") if a.strip()]
    approval = ApprovalIn.parse({"approved_on": approved_on, "approvers": people})
    if approval is None:
        raise InvalidInput("invalid_approval", "決裁日を入力してください。")
    documents.approve(
        session, actor, document_id, approval, timezone=request.app.state.ctx.settings.timezone
    )
    return RedirectResponse(f"/documents/{document_id}?msg=approved", 303)


@router.get("/originals/{sha256}")
def originals_page(sha256: str, request: Request, session: SessionDep, actor: WebActor) -> Response:
    holding = documents.by_hash(session, actor, sha256)
    return render(request, "originals.html", h=holding, n=names(session))


# --- cases ---------------------------------------------------------------------------------


@router.get("/cases")
def cases_page(
    request: Request, session: SessionDep, actor: WebActor, status: str = "", page: int = 1
) -> Response:
    per = 50
    page = max(page, 1)
    result = cases.list_cases(
        session, actor, status=status or None, offset=(page - 1) * per, limit=per
    )
    n = names(session)
    classes = [c for c in n.classes.values() if c.level == 3 and c.active]
    return render(
        request,
        "cases.html",
        items=result.items,
        count=result.count,
        page=page,
        pages=max(1, -(-result.count // per)),
        status=status,
        n=n,
        classes=classes,
        may_create=actor.kind == "person"
        and (actor.has_role("staff") or actor.has_role("records_officer")),
    )


@router.post("/cases")
def case_create(
    request: Request,
    session: SessionDep,
    actor: WebActor,
    csrf: str = Form(""),
    title: str = Form("", max_length=500),
    class_code: str = Form("", max_length=32),
) -> Response:
    check_csrf(request, csrf)
    org_code = names(session).orgs[actor.organization_id].code
    ctx = request.app.state.ctx
    case, _folder = cases.create_case(
        session,
        actor,
        title=title,
        organization_code=org_code,
        class_code=class_code,
        case_id_format=ctx.settings.case_id_format,
        timezone=ctx.settings.timezone,
    )
    return RedirectResponse(f"/cases/{quote(case.case_id)}", 303)


@router.get("/cases/{case_id}")
def case_page(case_id: str, request: Request, session: SessionDep, actor: WebActor) -> Response:
    case = cases.get_case(session, actor, case_id)
    root = folders.case_root_folder(session, case)
    docs, count = documents.list_folder_documents(session, actor, root.id or 0, limit=500)
    subs = folders.list_folders(session, actor, parent_id=root.id, limit=500).items
    n = names(session)
    events = cases.timeline(session, actor, case_id)
    titles = {d.id or 0: d.title for d in docs}
    lang = load(request).lang
    return render(
        request,
        "case.html",
        case=case,
        root=root,
        docs=docs,
        doc_count=count,
        subs=subs,
        members=cases.members(session, case),
        entries=[describe(e, n, titles, lang) for e in events],
        n=n,
        may_write=can_write_folder(actor, root, case),
    )


@router.post("/cases/{case_id}/close")
def case_close(
    case_id: str, request: Request, session: SessionDep, actor: WebActor, csrf: str = Form("")
) -> Response:
    check_csrf(request, csrf)
    cases.close_case(session, actor, case_id, timezone=request.app.state.ctx.settings.timezone)
    return RedirectResponse(f"/cases/{quote(case_id)}", 303)


# --- folders -------------------------------------------------------------------------------


@router.get("/folders")
def folders_page(request: Request, session: SessionDep, actor: WebActor) -> Response:
    groups = []
    for kind in ("team", "shared", "case"):
        page = folders.list_folders(session, actor, kind=kind, limit=200)
        groups.append((kind, page.items, page.count))
    return render(request, "folders.html", groups=groups, n=names(session))


@router.get("/folders/{folder_id}")
def folder_page(
    folder_id: int, request: Request, session: SessionDep, actor: WebActor, page: int = 1
) -> Response:
    folder, case = folders.get_folder(session, actor, folder_id)
    per = 100
    page = max(page, 1)
    docs, count = documents.list_folder_documents(
        session, actor, folder_id, offset=(page - 1) * per, limit=per
    )
    subs = folders.list_folders(session, actor, parent_id=folder_id, limit=500).items
    crumbs: list[Folder] = []
    current: Folder | None = folder
    while current is not None and len(crumbs) < 50:
        crumbs.insert(0, current)
        current = session.get(Folder, current.parent_id) if current.parent_id else None
    return render(
        request,
        "folder.html",
        folder=folder,
        case=case,
        crumbs=crumbs,
        docs=docs,
        count=count,
        page=page,
        pages=max(1, -(-count // per)),
        subs=subs,
        may_write=can_write_folder(actor, folder, case),
        max_bytes=request.app.state.ctx.settings.max_upload_bytes,
        n=names(session),
    )


@router.post("/folders/{folder_id}/subfolders")
def folder_create_sub(
    folder_id: int,
    request: Request,
    session: SessionDep,
    actor: WebActor,
    csrf: str = Form(""),
    name: str = Form("", max_length=255),
) -> Response:
    check_csrf(request, csrf)
    sub = folders.create_folder(session, actor, name=name, parent_id=folder_id)
    return RedirectResponse(f"/folders/{sub.id}", 303)


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


@router.post("/folders/{folder_id}/upload")
async def folder_upload(
    folder_id: int, request: Request, session: SessionDep, actor: WebActor
) -> Response:
    """Deposit through the form or drag and drop (JS asks for JSON). A file whose content
    already has an original becomes a copy and the answer says so, with a link to the original."""
    ctx = request.app.state.ctx
    up = await upload.receive(
        request,
        ctx.store,
        max_bytes=ctx.settings.max_upload_bytes,
        field_names=("csrf", "title"),
    )
    try:
        check_csrf(request, up.fields.get("csrf"))
    except Exception:
        await run_in_threadpool(ctx.store.discard, up.staged)
        raise
    req = DepositIn(
        filename=up.filename,
        folder_id=folder_id,
        title=up.fields.get("title") or None,
        declared_type=up.content_type,
    )
    outcome = await run_in_threadpool(
        documents.deposit,
        session,
        ctx.store,
        actor,
        up.staged,
        req,
        allowed_types=ctx.settings.allowed_types,
        timezone=ctx.settings.timezone,
    )
    doc_id = outcome.document.id or 0
    v = await run_in_threadpool(documents.view, session, actor, doc_id)
    kind = "copy" if outcome.is_copy else "original"
    if not _wants_json(request):
        return RedirectResponse(f"/documents/{doc_id}?msg={kind}", 303)
    body: dict[str, Any] = {
        "document_id": doc_id,
        "url": f"/documents/{doc_id}",
        "title": v.document.title,
        "is_copy": outcome.is_copy,
        "message": MESSAGES[kind],
    }
    if v.original is not None:
        body["original"] = {
            "visible": v.original_visible,
            "url": f"/documents/{v.original.id}" if v.original_visible else None,
            "folder_path": v.original_folder_path,
            "title": v.original.title if v.original_visible else None,
        }
    return JSONResponse(body, status_code=201 if outcome.created else 200)
