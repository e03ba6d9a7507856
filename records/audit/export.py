"""Auditor export (監査用エクスポート): everything ``genpon-verify`` needs, in one directory.

Files (see :mod:`genpon_verify.verify` for the checks made on them)::

    manifest.json         format, counts, tree size and root, SHA-256 of each file; signed
    events.jsonl          events 1..n, canonical JSON a line
    checkpoints.jsonl     signed checkpoints of size <= n
    keys/<key_id>.pub     every public key ever used
    documents.jsonl       every document: id, sha256, size, state, case, folder path …
    fixity_runs.jsonl     fixity audits with their findings

The export first records an ``audit.exported`` event and signs a checkpoint, then reads events,
checkpoints and documents from **one snapshot** of the database (REPEATABLE READ on
PostgreSQL, a deferred read transaction on SQLite in WAL mode), so documents and the log agree
and writers are not blocked while the files are written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from genpon.core.clock import utcnow
from genpon.core.db import session_scope
from genpon.core.errors import InvalidInput
from genpon.core.signing import SystemKeyring
from genpon.records import audit
from genpon.records.access import Actor, require_role
from genpon.records.audit.actions import AuditAction
from genpon.records.audit.checkpoints import ChainBroken, create_checkpoint, statement
from genpon.records.audit.format import format_time
from genpon.records.audit.models import Checkpoint, FixityFinding, FixityRun
from genpon.records.folders import folder_path
from genpon.records.models import AuditEvent, AuditHead, Case, Document, Folder
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from genpon_verify.merkle import Frontier, leaf_hash
from genpon_verify.verify import EXPORT_FORMAT, file_sha256

__all__ = ["ExportResult", "export_audit", "snapshot_session"]

_BATCH = 20_000


@dataclass(frozen=True)
class ExportResult:
    directory: Path
    tree_size: int
    root_hash: str
    events: int
    checkpoints: int
    documents: int
    keys: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "directory": str(self.directory)}


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


@contextmanager
def snapshot_session(engine: Engine) -> Iterator[Session]:
    """A read-only session on one consistent snapshot, without taking the write lock."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with Session(bind=conn) as s:
                yield s
                s.rollback()
        return
    # core.db starts every SQLite transaction with BEGIN IMMEDIATE (the write lock); a reader
    # engine with a deferred BEGIN sees one WAL snapshot from its first read on.
    reader = create_engine(engine.url, connect_args={"check_same_thread": False, "timeout": 60})

    @event.listens_for(reader, "connect")
    def _connect(dbapi_conn: Any, _rec: Any) -> None:
        dbapi_conn.isolation_level = None
        dbapi_conn.execute("PRAGMA busy_timeout=60000")

    @event.listens_for(reader, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")

    try:
        with Session(reader) as s:
            yield s
            s.rollback()
    finally:
        reader.dispose()


def _write_events(s: Session, fh: IO[str], size: int) -> Frontier:
    frontier = Frontier()
    lo = 1
    while lo <= size:
        hi = min(size, lo + _BATCH - 1)
        rows = s.exec(
            select(  # type: ignore[call-overload]  # sqlmodel's select() types four columns at most
                AuditEvent.seq,
                AuditEvent.at,
                AuditEvent.actor,
                AuditEvent.action,
                AuditEvent.target_type,
                AuditEvent.target_id,
                AuditEvent.case_id,
                AuditEvent.details,
                AuditEvent.prev_hash,
                AuditEvent.hash,
            )
            .where(col(AuditEvent.seq) >= lo, col(AuditEvent.seq) <= hi)
            .order_by(col(AuditEvent.seq))
        ).all()
        for r in rows:
            ev = {
                "seq": r[0],
                "at": r[1],
                "actor": r[2],
                "action": r[3],
                "target_type": r[4],
                "target_id": r[5],
                "case_id": r[6],
                "details": r[7],
                "prev_hash": r[8],
                "hash": r[9],
            }
            fh.write(_dumps(ev) + "\n")
            frontier.append(leaf_hash(r[9]))
        lo = hi + 1
    return frontier


def _document_rows(s: Session) -> Iterator[dict[str, Any]]:
    paths: dict[int, str] = {}
    cases: dict[int, str | None] = {}
    for d in s.exec(select(Document).order_by(col(Document.id))).all():
        if d.folder_id not in paths:
            f = s.get(Folder, d.folder_id)
            paths[d.folder_id] = folder_path(s, f) if f else ""
        if d.case_pk and d.case_pk not in cases:
            c = s.get(Case, d.case_pk)
            cases[d.case_pk] = c.case_id if c else None
        yield {
            "document_id": d.id,
            "sha256": d.sha256,
            "size": d.size,
            "state": d.state,
            "status": d.status,
            "version": d.version,
            "is_original": d.original_id is None,
            "original_id": d.original_id,
            "case_id": cases.get(d.case_pk) if d.case_pk else None,
            "folder_id": d.folder_id,
            "folder_path": paths[d.folder_id],
            "title": d.title,
            "filename": d.filename,
            "mime_type": d.mime_type,
            "retention_end": d.retention_end,
        }


def export_audit(
    engine: Engine, keyring: SystemKeyring, actor: Actor, directory: Path | str
) -> ExportResult:
    """Write an auditor export into ``directory`` (new or empty). Auditors and admins only."""
    require_role(actor, "auditor", "admin")
    out = Path(directory)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidInput("export_dir_not_empty", f"出力先は空のディレクトリにしてください: {out}")
    out.mkdir(parents=True, exist_ok=True)
    _record_export(engine, keyring, actor, out)
    with snapshot_session(engine) as s:
        size = int(s.exec(select(AuditHead.seq).where(AuditHead.id == 1)).one())
        with open(out / "events.jsonl", "w", encoding="utf-8") as fh:
            frontier = _write_events(s, fh, size)
        with open(out / "checkpoints.jsonl", "w", encoding="utf-8") as fh:
            n_checkpoints = _write_checkpoints(s, fh, size)
        with open(out / "documents.jsonl", "w", encoding="utf-8") as fh:
            n_docs = _write_documents(s, fh)
        with open(out / "fixity_runs.jsonl", "w", encoding="utf-8") as fh:
            _write_fixity_runs(s, fh)
    counts = {"events": size, "checkpoints": n_checkpoints, "documents": n_docs}
    root_hash = frontier.root().hex()
    keys = _write_keys_and_manifest(out, keyring, actor, size, root_hash, counts)
    return ExportResult(
        directory=out,
        tree_size=size,
        root_hash=root_hash,
        events=size,
        checkpoints=n_checkpoints,
        documents=n_docs,
        keys=keys,
    )


def _record_export(engine: Engine, keyring: SystemKeyring, actor: Actor, out: Path) -> None:
    """The ``audit.exported`` event and a checkpoint signed with it, each export's own."""

    def note(s: Session) -> None:
        audit.record(
            s,
            actor=actor.login,
            action=AuditAction.AUDIT_EXPORTED,
            target_type="audit_log",
            target_id="export",
            details={"directory": out.name},
        )

    try:
        with session_scope(engine) as s:
            note(s)
            create_checkpoint(s, keyring, reason="export")
    except ChainBroken:
        # never sign a broken log, but still hand the evidence to the auditor
        with session_scope(engine) as s:
            note(s)


def _write_checkpoints(s: Session, fh: IO[str], size: int) -> int:
    cps = s.exec(
        select(Checkpoint)
        .where(col(Checkpoint.tree_size) <= size)
        .order_by(col(Checkpoint.tree_size), col(Checkpoint.id))
    ).all()
    for cp in cps:
        fh.write(_dumps(statement(cp)) + "\n")
    return len(cps)


def _write_documents(s: Session, fh: IO[str]) -> int:
    n_docs = 0
    for row in _document_rows(s):
        fh.write(_dumps(row) + "\n")
        n_docs += 1
    return n_docs


def _write_fixity_runs(s: Session, fh: IO[str]) -> None:
    for run in s.exec(select(FixityRun).order_by(col(FixityRun.id))).all():
        findings = s.exec(select(FixityFinding).where(FixityFinding.run_id == run.id)).all()
        fh.write(
            _dumps(
                {
                    **run.model_dump(),
                    "findings": [f.model_dump(exclude={"run_id"}) for f in findings],
                }
            )
            + "\n"
        )


def _write_keys_and_manifest(
    out: Path,
    keyring: SystemKeyring,
    actor: Actor,
    size: int,
    root_hash: str,
    counts: dict[str, int],
) -> list[str]:
    """Every public key, then the signed manifest (written last, atomically: its presence says
    the export is complete). Returns the key ids."""
    keys_dir = out / "keys"
    keys_dir.mkdir()
    pems = keyring.public_keys_pem()
    for kid, pem in pems.items():
        (keys_dir / f"{kid}.pub").write_text(pem)
    files: dict[str, dict[str, Any]] = {}
    for name in ("events.jsonl", "checkpoints.jsonl", "documents.jsonl", "fixity_runs.jsonl"):
        path = out / name
        files[name] = {"sha256": file_sha256(path), "bytes": path.stat().st_size}
    manifest = keyring.sign_json(
        {
            "format": EXPORT_FORMAT,
            "created_at": format_time(utcnow()),
            "created_by": actor.login,
            "tree_size": size,
            "root_hash": root_hash,
            "counts": counts,
            "keys": sorted(pems),
            "files": files,
        }
    )
    tmp = out / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, out / "manifest.json")
    return sorted(pems)
