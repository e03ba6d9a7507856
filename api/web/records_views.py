"""Staff screens: document page, originals and copies, cases with their timeline (経緯),
folder browser with upload. Each view parses, calls records services, renders."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from genpon.api import upload
from genpon.api.deps import SessionDep, deposit_upload, in_transaction
from genpon.api.web import hooks
from genpon.api.web.deps import WebActor
from genpon.api.web.lookups import names
from genpon.api.web.render import render
from genpon.api.web.session import check_csrf, load
from genpon.api.web.timeline import describe
from genpon.core import clock
from genpon.core.errors import GenponError, InvalidInput
from genpon.records import bundle, cases, documents, folders, master
from genpon.records.access import Actor, can_write_folder
from genpon.records.documents import ApprovalIn, DepositIn, DepositOutcome, DocumentView
from genpon.records.models import Case, Folder
from genpon.retention import batches as retention_batches
from genpon.retention import holding
from genpon.retention.rules import HoldType
from genpon.search import preview
from markupsafe import Markup
from sqlmodel import Session
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

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


def approval_form_default(timezone: str) -> str:
    """決裁日 of the approval form: today in the city (before 09:00 JST the UTC date, and the
    server's own date when it runs in UTC, is still yesterday)."""
    return clock.today(timezone).isoformat()


@router.get("/documents/{document_id}")
def document_page(
    document_id: int,
    request: Request,
    session: SessionDep,
    actor: WebActor,
    msg: str = "",
    page: int | None = None,
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
    page, positions, marks = preview.viewer_marks(
        session, request.app.state.ctx.store, settings, doc, shown, page, q[:200]
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
        today=approval_form_default(request.app.state.ctx.settings.timezone),
        shown=shown,
        shown_error=shown_error,
        text_html=text_html,
        q=q[:200],
        page=page,
        positions=positions,
        marks=marks,
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


def _int_param(raw: str, label: str) -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 6:
        raise InvalidInput("invalid_filter", f"{label}は数字で指定してください。")
    return int(raw)


def _page_param(raw: str) -> int:
    return int(raw) if raw.isdigit() and 0 < int(raw) < 100_000 else 1


def _sorter(params: dict[str, str], current: str) -> Any:
    """``sort_link(key)``: the list's URL sorted by ``key`` (again: the other direction)."""

    def sort_link(key: str) -> str:
        flip = f"-{key}" if current == key else key
        return "?" + urlencode({**{k: v for k, v in params.items() if v}, "sort": flip})

    def aria(key: str) -> str:
        if current.removeprefix("-") != key:
            return ""
        return Markup(
            ' aria-sort="descending"' if current.startswith("-") else ' aria-sort="ascending"'
        )

    return sort_link, aria


@router.get("/cases")
def cases_page(
    request: Request,
    session: SessionDep,
    actor: WebActor,
    status: str = "",
    page: str = "1",
    sort: str = "-created",
    fiscal_year: str = "",
    per: str = "50",
) -> Response:
    class_code = request.query_params.get("class", "").strip()[:32]
    per_page = int(per) if per in ("20", "50", "100", "200") else 50
    page_no = _page_param(page)
    fy = _int_param(fiscal_year, "年度")
    result = cases.list_cases(
        session,
        actor,
        status=status or None,
        class_code=class_code or None,
        fiscal_year=fy,
        sort=sort,
        offset=(page_no - 1) * per_page,
        limit=per_page,
    )
    n = names(session)
    classes = [c for c in n.classes.values() if c.level == 3 and c.active]
    filters = {"status": status, "class": class_code, "fiscal_year": fiscal_year.strip()}
    if per_page != 50:
        filters["per"] = str(per_page)
    sort_link, aria_sort = _sorter(filters, sort)
    return render(
        request,
        "cases.html",
        items=result.items,
        count=result.count,
        page=page_no,
        pages=max(1, -(-result.count // per_page)),
        pager_query=urlencode({**{k: v for k, v in filters.items() if v}, "sort": sort}),
        status=status,
        filters=filters,
        sort=sort,
        sort_link=sort_link,
        aria_sort=aria_sort,
        per=per_page,
        all_classes=sorted(n.classes.values(), key=lambda c: c.code),
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
        holds=holding.holds_for_case(session, case),
        hold_label=lambda t: HoldType(t).label if t in HoldType._value2member_map_ else t,
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
def folders_page(
    request: Request,
    session: SessionDep,
    actor: WebActor,
    kind: str = Query("", max_length=16),
    org: str = Query("", max_length=64),
    page: int = Query(1, ge=1, le=100_000),
    per: int = Query(50, ge=1, le=500),
) -> Response:
    """Top-level folders: an overview of each kind (the first 20), or one kind paged and
    filtered by organization (``?kind=team&org=SOUMU-ZAISEI&page=2``)."""
    kinds = (kind,) if kind in ("team", "shared", "case") else ("team", "shared", "case")
    one = len(kinds) == 1
    per = per if one else 20
    groups = []
    count = 0
    for k in kinds:
        result = folders.list_folders(
            session,
            actor,
            kind=k,
            organization_code=org or None,
            offset=(page - 1) * per if one else 0,
            limit=per,
        )
        groups.append((k, result.items, result.count))
        count = result.count
    return render(
        request,
        "folders.html",
        groups=groups,
        n=names(session),
        kind=kind if one else "",
        org=org,
        per=per,
        page=page,
        pages=max(1, -(-count // per)) if one else 1,
        pager_query=urlencode(
            {k: v for k, v in {"kind": kind, "org": org, "per": per}.items() if v}
        ),
        organizations=master.list_organizations(session),
    )


FOLDER_MESSAGES = {
    "copied": "{n}件の写しを作りました。",
    "held": "{n}件に保留を設定しました。",
}


@router.get("/folders/{folder_id}")
def folder_page(
    folder_id: int,
    request: Request,
    session: SessionDep,
    actor: WebActor,
    page: str = "1",
    sort: str = "created",
    status: str = "",
    fiscal_year: str = "",
    per: str = "100",
    msg: str = "",
    count_done: str = Query("", alias="n"),
) -> Response:
    folder, case = folders.get_folder(session, actor, folder_id)
    class_code = request.query_params.get("class", "").strip()[:32]
    per_page = int(per) if per in ("20", "50", "100", "200", "500") else 100
    page_no = _page_param(page)
    result = folders.list_documents(
        session,
        actor,
        folder_id,
        status=status or None,
        class_ids=cases.class_ids_under(session, class_code) if class_code else None,
        fiscal_year=_int_param(fiscal_year, "年度"),
        sort=sort,
        offset=(page_no - 1) * per_page,
        limit=per_page,
    )
    subs = folders.list_folders(session, actor, parent_id=folder_id, limit=500).items
    crumbs: list[Folder] = []
    current: Folder | None = folder
    while current is not None and len(crumbs) < 50:
        crumbs.insert(0, current)
        current = session.get(Folder, current.parent_id) if current.parent_id else None
    filters = {"status": status, "class": class_code, "fiscal_year": fiscal_year.strip()}
    if per_page != 100:
        filters["per"] = str(per_page)
    sort_link, aria_sort = _sorter(filters, sort)
    n = names(session)
    message = FOLDER_MESSAGES.get(msg)
    return render(
        request,
        "folder.html",
        folder=folder,
        case=case,
        crumbs=crumbs,
        docs=result.items,
        count=result.count,
        page=page_no,
        pages=max(1, -(-result.count // per_page)),
        pager_query=urlencode({**{k: v for k, v in filters.items() if v}, "sort": sort}),
        filters=filters,
        sort=sort,
        sort_link=sort_link,
        aria_sort=aria_sort,
        per=per_page,
        all_classes=sorted(n.classes.values(), key=lambda c: c.code),
        subs=subs,
        may_write=can_write_folder(actor, folder, case),
        may_act=actor.has_role("records_officer"),
        targets=writable_folders(session, actor) if result.items else [],
        hold_types=[(t.value, t.label) for t in HoldType],
        message=message.format(n=count_done) if message and count_done.isdigit() else None,
        max_bytes=request.app.state.ctx.settings.max_upload_bytes,
        n=n,
    )


BULK_ACTIONS = ("copy", "hold", "propose", "zip")


@router.post("/folders/{folder_id}/bulk")
async def folder_bulk(
    folder_id: int, request: Request, session: SessionDep, actor: WebActor
) -> Response:
    """An action on the documents selected in a folder: copy them into another folder, place
    a hold or put them in a new disposal/transfer proposal (records officers), or download them
    as one ZIP with a manifest of hashes. Each service checks the caller's rights per document;
    one refusal refuses the whole action (nothing half done)."""
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    await run_in_threadpool(folders.get_folder, session, actor, folder_id)
    raw_ids = [str(v) for v in form.getlist("document_id")]
    if not raw_ids:
        raise InvalidInput("documents_required", "文書を1件以上選んでください。")
    if not all(v.isdigit() and len(v) < 19 for v in raw_ids):
        raise InvalidInput("invalid_document_id", "文書IDは数値です。")
    ids = list(dict.fromkeys(int(v) for v in raw_ids))
    do = str(form.get("do", ""))
    if do not in BULK_ACTIONS:
        raise InvalidInput("invalid_action", "操作を選んでください。")
    ctx = request.app.state.ctx
    if do == "zip":
        items = await run_in_threadpool(bundle.open_bundle, session, ctx.store, actor, ids)
        session.commit()  # every read is in the audit log before any byte leaves
        name = f"folder-{folder_id}-{len(items)}.zip"
        return StreamingResponse(
            iterate_in_threadpool(bundle.zip_stream(ctx.store, items)),
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    if do == "copy":
        target = str(form.get("target_folder_id", ""))
        if not target.isdigit():
            raise InvalidInput("target_required", "写しを作るフォルダを選んでください。")
        for doc_id in ids:
            await run_in_threadpool(documents.copy_to_folder, session, actor, doc_id, int(target))
        return RedirectResponse(f"/folders/{int(target)}?msg=copied&n={len(ids)}", 303)
    if do == "hold":
        for doc_id in ids:
            await run_in_threadpool(
                holding.place_hold,
                session,
                actor,
                scope="document",
                ref=doc_id,
                hold_type=str(form.get("hold_type", "")),
                reason=str(form.get("reason", "")),
                reference=(str(form.get("reference", "")).strip() or None),
            )
        return RedirectResponse(f"/folders/{folder_id}?msg=held&n={len(ids)}", 303)
    batch = await run_in_threadpool(
        retention_batches.create_batch,
        session,
        actor,
        action=str(form.get("action", "")),
        timezone=ctx.settings.timezone,
        document_ids=ids,
        as_of=None,
        title=str(form.get("title", ""))[:500],
    )
    return RedirectResponse(f"/records/batches/{batch.id}", 303)


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
async def folder_upload(folder_id: int, request: Request, actor: WebActor) -> Response:
    """Deposit through the form or drag and drop (JS asks for JSON). A file whose content
    already has an original becomes a copy and the answer says so, with a link to the original.
    The last part of the body, the file's fsync and the whole transaction run in one worker
    call (as the API's deposit): no transaction is held across an ``await``."""
    ctx = request.app.state.ctx

    def work(up: upload.Upload) -> tuple[DepositOutcome, DocumentView]:
        check_csrf(request, up.fields.get("csrf"))
        req = DepositIn(
            filename=up.filename,
            folder_id=folder_id,
            title=up.fields.get("title") or None,
            declared_type=up.content_type,
        )

        def transaction(session: Session) -> tuple[DepositOutcome, DocumentView]:
            outcome = deposit_upload(ctx, session, actor, up.staged, req)
            return outcome, documents.deposited_view(session, actor, outcome)

        return in_transaction(ctx.engine, transaction)

    outcome, v = await upload.receive_then(
        request,
        ctx.store,
        max_bytes=ctx.settings.max_upload_bytes,
        field_names=("csrf", "title"),
        work=work,
    )
    doc_id = outcome.document.id or 0
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
