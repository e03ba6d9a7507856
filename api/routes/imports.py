"""Legacy imports, read-only: runs, entries ("where did my file go"), reports, near-duplicates.
Records officers and admins only (the report lists paths of every organization)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, StreamingResponse
from genpon.api.contracts.common import FileDownload, errors, file_response
from genpon.api.contracts.imports import (
    DocumentClustersPublic,
    ImportEntriesPublic,
    ImportRunPublic,
    ImportRunsPublic,
    RunClustersPublic,
)
from genpon.api.deps import ActorDep, CtxDep, Id, Limit, Offset, SessionDep
from genpon.migrate import report, service
from genpon.migrate.models import ImportEntry, ImportRun, NearDupCluster

router = APIRouter(prefix="/api/v1", tags=["imports"], responses=errors(401, 403, 422))


def _run(r: ImportRun) -> dict[str, Any]:
    return {
        "id": r.id,
        "source_root": r.source_root,
        "organization_id": r.organization_id,
        "folder_kind": r.folder_kind,
        "folder_name": r.folder_name,
        "root_folder_id": r.root_folder_id,
        "dry_run": r.dry_run,
        "status": r.status,
        "phase": r.phase,
        "original_rule": r.original_rule,
        "near_threshold": r.near_threshold,
        "started_by": r.started_by,
        "started_at": r.started_at,
        "finished_at": r.finished_at,
        "summary": r.summary,
    }


def _entry(e: ImportEntry) -> dict[str, Any]:
    raw_differs = e.rel_path_raw != e.rel_path.encode("utf-8")
    return {
        "id": e.id,
        "run_id": e.run_id,
        "path": e.rel_path,
        "path_raw_hex": e.rel_path_raw.hex() if raw_differs else None,
        "name_encoding": e.name_encoding,
        "entry_type": e.entry_type,
        "state": e.state,
        "reason": e.reason,
        "reason_ja": report.reason_label(e.reason) or None,
        "detail": e.detail,
        "size": e.size,
        "mtime": e.mtime,
        "owner": e.owner,
        "sha256": e.sha256,
        "mime_type": e.mime_type,
        "role": e.role,
        "document_id": e.document_id,
        "original_document_id": e.original_document_id,
    }


def _cluster(c: NearDupCluster) -> dict[str, Any]:
    return {
        "id": c.id,
        "scope": c.scope,
        "run_id": c.run_id,
        "threshold": c.threshold,
        "size": c.size,
        "max_score": c.max_score,
        "min_score": c.min_score,
        "members": c.members,
        "pairs": [{"a": a, "b": b, "score": s} for a, b, s in c.pairs],
    }


@router.get("/imports", response_model=ImportRunsPublic)
def list_runs(
    session: SessionDep, actor: ActorDep, offset: Offset = 0, limit: Limit = 50
) -> dict[str, Any]:
    runs, count = service.list_runs(session, actor, offset=offset, limit=limit)
    return {"data": [_run(r) for r in runs], "count": count}


@router.get("/imports/where", response_model=ImportEntriesPublic)
def where_is(session: SessionDep, actor: ActorDep, path: str = Query(default="")) -> dict[str, Any]:
    """Where did my file go: imported entries whose legacy path ends with ``path``."""
    items = service.where_is(session, actor, path)
    return {"data": [_entry(e) for e in items], "count": len(items)}


@router.get("/imports/{run_id}", response_model=ImportRunPublic, responses=errors(404))
def get_run(run_id: Id, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    return _run(service.get_run(session, actor, run_id))


@router.get("/imports/{run_id}/entries", response_model=ImportEntriesPublic, responses=errors(404))
def list_entries(
    run_id: Id,
    session: SessionDep,
    actor: ActorDep,
    state: str | None = None,
    reason: str | None = None,
    offset: Offset = 0,
    limit: Limit = 100,
) -> dict[str, Any]:
    items, count = service.list_entries(
        session, actor, run_id, state=state, reason=reason, offset=offset, limit=limit
    )
    return {"data": [_entry(e) for e in items], "count": count}


@router.get(
    "/imports/{run_id}/report",
    response_class=FileDownload,
    responses={**file_response("移行報告書", "text/html"), **errors(404)},
)
def report_html(
    run_id: Id, session: SessionDep, actor: ActorDep, ctx: CtxDep, near_page: Id = 1
) -> HTMLResponse:
    service.get_run(session, actor, run_id)
    return HTMLResponse(
        report.render_html(
            session, run_id, timezone=ctx.settings.timezone, near_page=max(1, near_page)
        )
    )


@router.get(
    "/imports/{run_id}/report.csv",
    response_class=FileDownload,
    responses={**file_response("移行報告書（CSV）", "text/csv"), **errors(404)},
)
def report_csv(run_id: Id, session: SessionDep, actor: ActorDep, ctx: CtxDep) -> StreamingResponse:
    service.get_run(session, actor, run_id)
    body = "".join(report.iter_entries_csv(session, run_id, timezone=ctx.settings.timezone)).encode(
        "utf-8"
    )
    return StreamingResponse(
        iter([body]),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{run_id}.csv"'},
    )


@router.get(
    "/imports/{run_id}/near-duplicates", response_model=RunClustersPublic, responses=errors(404)
)
def run_near(
    run_id: Id, session: SessionDep, actor: ActorDep, offset: Offset = 0, limit: Limit = 100
) -> dict[str, Any]:
    items, count = service.near_clusters(session, actor, run_id=run_id, offset=offset, limit=limit)
    paths = service.paths_by_sha(session, run_id, {m for c in items for m in c.members})
    data = []
    for c in items:
        d = _cluster(c)
        d["paths"] = {sha: [e.rel_path for e in paths.get(sha, [])] for sha in c.members}
        data.append(d)
    return {"data": data, "count": count}


@router.get("/duplicates/near", response_model=DocumentClustersPublic)
def genpon_near(
    session: SessionDep, actor: ActorDep, offset: Offset = 0, limit: Limit = 100
) -> dict[str, Any]:
    """Clusters found by the last ``genpon duplicates near`` over documents in Genpon."""
    items, count = service.near_clusters(session, actor, offset=offset, limit=limit)
    docs = service.documents_by_sha(session, actor, {m for c in items for m in c.members})
    data = []
    for c in items:
        d = _cluster(c)
        d["documents"] = {
            sha: [
                {"id": x.id, "title": x.title, "is_original": x.original_id is None}
                for x in docs.get(sha, [])
            ]
            for sha in c.members
        }
        data.append(d)
    return {"data": data, "count": count}
