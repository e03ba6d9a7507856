"""Crash safety: a process killed between blob write and commit, or right after commit.

Each scenario runs a real child process that deposits and dies with os._exit (no cleanup, no
rollback); the parent then checks the invariant "no row points to a blob that is not durably
stored, nothing half-visible", and that `genpon gc` collects the orphan after its grace period.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from genpon.records.gc import collect
from genpon.records.models import AuditEvent, Blob, Document
from sqlmodel import Session, select

from tests.conftest import BOTH_DBS

CHILD = textwrap.dedent("""
    import os, sys
    from sqlmodel import Session
    from genpon.core.db import make_engine
    from genpon.core.settings import Settings
    from genpon.storage.registry import make_store
    from genpon.records import audit, documents
    from genpon.records.access import SYSTEM_ACTOR
    from genpon.records.documents import DepositIn

    point, data_dir, db_url, folder_id = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    settings = Settings(data_dir=data_dir, database_url=db_url)
    store = make_store(settings)
    engine = make_engine(settings.db_url)
    if point == "before_commit":
        real = audit.record
        def dying(*a, **k):  # called after put_staged, before the transaction commits
            os._exit(9)
        audit.record = dying
        documents.audit.record = dying
    staged = store.stage([b"crash-test-content " * 1000])
    with Session(engine) as s:
        o = documents.deposit(s, store, SYSTEM_ACTOR, staged, DepositIn(filename="c.txt", folder_id=folder_id),
                              allowed_types=settings.allowed_types, timezone=settings.timezone)
        s.commit()
    if point == "after_commit":
        os._exit(9)
""")

CONTENT = b"crash-test-content " * 1000


def _run(point: str, ctx, folder_id: int) -> int:
    repo = Path(__file__).resolve().parents[2]
    p = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            point,
            str(ctx.settings.data_dir),
            ctx.settings.db_url,
            str(folder_id),
        ],
        cwd=repo,
        capture_output=True,
        timeout=120,
    )
    return p.returncode


@BOTH_DBS
@pytest.mark.parametrize("point", ["before_commit", "after_commit"])
def test_crash_points(ctx, demo, point):
    from tests.records.helpers import team_folder

    folder = team_folder(ctx)
    with Session(ctx.engine) as s:
        events_before = len(s.exec(select(AuditEvent)).all())
    assert _run(point, ctx, folder) == 9
    sha = hashlib.sha256(CONTENT).hexdigest()
    with Session(ctx.engine) as s:
        docs = s.exec(select(Document).where(Document.sha256 == sha)).all()
        blob_rows = s.exec(select(Blob).where(Blob.sha256 == sha)).all()
        events_after = len(s.exec(select(AuditEvent)).all())
    stored = {h for h, _ in ctx.store.iter_blobs()}
    if point == "before_commit":
        assert docs == [] and blob_rows == [] and events_after == events_before
        assert sha in stored  # durable blob, no row: an orphan for gc
        young = collect(ctx.engine, ctx.store, grace_seconds=3600)
        assert (
            young.orphans == []
            and young.young_orphans == 1
            and sha in {h for h, _ in ctx.store.iter_blobs()}
        )
        dry = collect(ctx.engine, ctx.store, grace_seconds=0, dry_run=True)
        assert dry.orphans == [sha] and sha in {h for h, _ in ctx.store.iter_blobs()}
        done = collect(ctx.engine, ctx.store, grace_seconds=0)
        assert done.orphans == [sha] and sha not in {h for h, _ in ctx.store.iter_blobs()}
    else:
        assert len(docs) == 1 and len(blob_rows) == 1 and events_after == events_before + 1
        assert sha in stored and ctx.store.hash_blob(sha) == sha
        assert collect(ctx.engine, ctx.store, grace_seconds=0).orphans == []  # referenced: kept
        assert sha in {h for h, _ in ctx.store.iter_blobs()}
