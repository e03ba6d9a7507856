"""Resume after kill -9 at random points: the CLI import killed in a real subprocess, run
again until it completes; no duplicate documents and nothing lost."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from genpon.migrate.models import ImportEntry, ImportRun
from genpon.records.models import Blob, Document
from sqlalchemy import func
from sqlmodel import Session, select

from tests.conftest import BOTH_DBS

REPO = Path(__file__).resolve().parents[2]


def _tree(root: Path, n: int = 120) -> dict[str, bytes]:
    files = {}
    for i in range(n):
        body = (f"文書 {i % 80} の本文です。" * (200 + (i % 80) * 7)).encode()
        rel = f"課{i % 7}/年度{i % 3}/文書{i:04d}.txt"
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(body)
        files[rel] = body
    return files


@BOTH_DBS
def test_kill9_at_random_points_then_resume(ctx, demo, tmp_path):
    root = tmp_path / "share"
    files = _tree(root)
    env = {
        **os.environ,
        "GENPON_DATA_DIR": str(ctx.settings.data_dir),
        "GENPON_DATABASE_URL": ctx.settings.db_url,
        "GENPON_ENVIRONMENT": "test",
        "GENPON_CLI_USER": "admin",  # the import is a person's action
    }
    cmd = [
        sys.executable,
        "-m",
        "genpon.api.cli.main",
        "import",
        str(root),
        "--org",
        "SOUMU-ZAISEI",
        "--kind",
        "team",
        "--workers",
        "2",
    ]
    seed = int(os.environ.get("GENPON_TEST_SEED", time.time_ns() % 10_000))
    rnd = random.Random(seed)
    kills = 0
    for _attempt in range(4):
        p = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            p.wait(timeout=rnd.uniform(0.8, 3.0))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)  # kill -9, with its worker processes
            p.wait()
            kills += 1
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (seed, done.stderr)
    with Session(ctx.engine) as s:
        runs = s.exec(select(ImportRun)).all()
        completed = [r for r in runs if r.status == "completed"]
        assert completed, seed
        docs = s.exec(select(Document)).all()
        by_path: dict[str, list[Document]] = {}
        for d in docs:
            by_path.setdefault(d.provenance["source_path"], []).append(d)
        assert sorted(by_path) == sorted(files), seed  # nothing lost
        assert all(len(v) == 1 for v in by_path.values()), seed  # no duplicates
        for rel, body in files.items():
            assert by_path[rel][0].size == len(body)
        originals = s.exec(
            select(Document.sha256, func.count())
            .where(Document.original_id.is_(None))  # type: ignore[union-attr]
            .group_by(Document.sha256)
        ).all()
        assert all(n == 1 for _sha, n in originals) and len(originals) == 80
        for sha, _n in originals:
            assert ctx.store.exists(sha) and s.get(Blob, sha) is not None
        # all runs but the last were resumed, not restarted
        assert len(runs) == 1 or all(r.status == "completed" or r.phase == "done" for r in runs), [
            (r.id, r.status, r.phase) for r in runs
        ]
        assert s.exec(select(func.count()).select_from(ImportEntry)).one() >= len(files)
    print(f"kill -9 resume: seed={seed} kills={kills}")
