"""Integrity benchmark (監査・定期点検の性能): prints its figures; not a test.

In one throwaway data directory (SQLite + local store), measures:

1. **fixity throughput** over ``--blob-mb`` MB of blobs (default 2,048 MB as 32 files) with
   ``genpon``'s fixity audit (1 and 2 workers) versus ``sha256sum`` over the very same files,
   in the same run, page cache warm for both (each figure is the best of ``--repeat`` runs);
2. **audit append rate** during deposits: documents/s and audit events/s through the deposit
   service (one transaction per document, as the API does), and bare ``audit.record`` calls
   (one transaction per event);
3. **offline verification** of a log of ``--events`` events (default 1,000,000, generated
   directly in export form with a signed checkpoint every 1,000 events) with
   ``genpon_verify.verify_export``.

Usage: ``.venv/bin/python bench/integrity.py [--blob-mb 2048] [--blob-count 32] [--repeat 2]
[--deposits 2000] [--events 1000000] [--workdir DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from genpon.core.db import make_engine, session_scope  # noqa: E402
from genpon.core.settings import Settings  # noqa: E402
from genpon.core.signing import SystemKeyring  # noqa: E402
from genpon.records import audit, documents  # noqa: E402
from genpon.records.access import SYSTEM_ACTOR, actor_for_user  # noqa: E402
from genpon.records.audit.fixity import run_fixity  # noqa: E402
from genpon.records.bootstrap import initialize  # noqa: E402
from genpon.records.models import AuditHead, Blob, Folder, User  # noqa: E402
from genpon.storage.registry import make_store  # noqa: E402
from sqlmodel import select  # noqa: E402

from genpon_verify.canonical import GENESIS_HASH, canonical_bytes  # noqa: E402
from genpon_verify.merkle import Frontier, leaf_hash  # noqa: E402
from genpon_verify.verify import (  # noqa: E402
    CHECKPOINT_FORMAT,
    EXPORT_FORMAT,
    file_sha256,
    verify_export,
)

MB = 1_000_000


def make_blobs(store, engine, total_mb: int, count: int) -> list[Path]:  # type: ignore[no-untyped-def]
    """``count`` random blobs of ``total_mb`` MB in all, stored and registered."""
    size = total_mb * MB // count
    paths: list[Path] = []
    chunk = 8 << 20
    with session_scope(engine) as s:
        for _ in range(count):
            with store.stager() as st:
                left = size
                while left:
                    n = min(chunk, left)
                    st.write(os.urandom(n))
                    left -= n
                staged = st.finish()
            store.put_staged(staged)
            s.add(
                Blob(sha256=staged.sha256, size=staged.size, mime_type="application/octet-stream")
            )
            paths.append(store.local_path(staged.sha256))
    return paths


def bench_fixity(settings, engine, store, args) -> None:  # type: ignore[no-untyped-def]
    print(f"== fixity: {args.blob_count} blobs, {args.blob_mb} MB", flush=True)
    t0 = time.perf_counter()
    paths = make_blobs(store, engine, args.blob_mb, args.blob_count)
    total = sum(p.stat().st_size for p in paths)
    print(f"   blobs written in {time.perf_counter() - t0:.1f} s")
    subprocess.run(["sha256sum", *map(str, paths)], check=True, capture_output=True)  # warm

    def sha256sum() -> float:
        t = time.perf_counter()
        subprocess.run(["sha256sum", *map(str, paths)], check=True, capture_output=True)
        return time.perf_counter() - t

    def fixity(workers: int) -> float:
        run = run_fixity(engine, store, SYSTEM_ACTOR, workers=workers)
        assert run.ok == args.blob_count and run.bytes_read == total, run
        return run.seconds

    best: dict[str, float] = {}
    for _ in range(args.repeat):
        for name, fn in (
            ("sha256sum", sha256sum),
            ("fixity_1", lambda: fixity(1)),
            ("fixity_2", lambda: fixity(2)),
        ):
            sec = fn()
            best[name] = min(best.get(name, sec), sec)
    ref = total / best["sha256sum"] / MB
    for name in ("sha256sum", "fixity_1", "fixity_2"):
        rate = total / best[name] / MB
        print(f"   {name:10s} {best[name]:6.2f} s  {rate:7.0f} MB/s  ratio {rate / ref:.2f}")


def bench_append(settings, engine, store, args) -> None:  # type: ignore[no-untyped-def]
    print(f"== audit append rate: {args.deposits} deposits", flush=True)
    with session_scope(engine) as s:
        user = s.exec(select(User).where(User.login == "tanaka")).one()
        actor = actor_for_user(s, user)
        folder_id = s.exec(select(Folder).where(Folder.name == "財政課チーム")).one().id

    def head() -> int:
        with session_scope(engine) as s:
            return s.exec(select(AuditHead.seq)).one()

    start = head()
    t0 = time.perf_counter()
    for i in range(args.deposits):
        staged = store.stage([f"監査ベンチ文書 {i} ".encode() * 200])
        with session_scope(engine) as s:
            documents.deposit(
                s,
                store,
                actor,
                staged,
                documents.DepositIn(filename=f"bench-{i}.txt", folder_id=folder_id),
                allowed_types=settings.allowed_types,
                timezone=settings.timezone,
            )
    sec = time.perf_counter() - t0
    events = head() - start
    print(
        f"   deposits   {args.deposits / sec:7.0f} docs/s   {events / sec:7.0f} events/s "
        f"({events} events)"
    )
    n = args.deposits * 2
    t0 = time.perf_counter()
    for i in range(n):
        with session_scope(engine) as s:
            audit.record(s, actor="bench", action="bench.event", target_type="t", target_id=i)
    sec = time.perf_counter() - t0
    print(f"   record()   {n / sec:7.0f} events/s (one transaction each)")


def make_export(out: Path, n: int, every: int = 1000) -> None:
    """A valid export of ``n`` synthetic events, signed every ``every`` events."""
    out.mkdir(parents=True)
    ring = SystemKeyring(out / ".key")
    ring.ensure()
    frontier = Frontier()
    prev = GENESIS_HASH
    dumps = json.dumps
    import hashlib

    with (
        open(out / "events.jsonl", "w", encoding="utf-8") as fh,
        open(out / "checkpoints.jsonl", "w", encoding="utf-8") as cf,
    ):
        for seq in range(1, n + 1):
            ev = {
                "seq": seq,
                "at": "2026-11-29T00:00:00.000000Z",
                "actor": "denshi-kessai",
                "action": "document.read",
                "target_type": "document",
                "target_id": str(seq % 5000 + 1),
                "case_id": "2026-SOUMU-ZAISEI-00001",
                "details": {"sha256": "ab" * 32, "version": 1},
                "prev_hash": prev,
            }
            h = hashlib.sha256(canonical_bytes(ev)).hexdigest()
            ev["hash"] = h
            fh.write(dumps(ev, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n")
            frontier.append(leaf_hash(h))
            prev = h
            if seq % every == 0 or seq == n:
                cp = ring.sign_json(
                    {
                        "format": CHECKPOINT_FORMAT,
                        "tree_size": seq,
                        "root_hash": frontier.root().hex(),
                        "head_hash": h,
                        "signed_at": "2026-11-29T00:00:00.000000Z",
                        "reason": "interval",
                    }
                )
                cf.write(dumps(cp, ensure_ascii=False) + "\n")
    (out / "documents.jsonl").write_text("")
    (out / "keys").mkdir()
    for kid, pem in ring.public_keys_pem().items():
        (out / "keys" / f"{kid}.pub").write_text(pem)
    files = {
        name: {"sha256": file_sha256(out / name)}
        for name in ("events.jsonl", "checkpoints.jsonl", "documents.jsonl")
    }
    manifest = ring.sign_json(
        {
            "format": EXPORT_FORMAT,
            "tree_size": n,
            "root_hash": frontier.root().hex(),
            "files": files,
        }
    )
    (out / "manifest.json").write_text(json.dumps(manifest))
    shutil.rmtree(out / ".key")


def bench_verify(workdir: Path, args) -> None:  # type: ignore[no-untyped-def]
    print(f"== offline verification of {args.events:,} events", flush=True)
    out = workdir / "export"
    t0 = time.perf_counter()
    make_export(out, args.events)
    size = (out / "events.jsonl").stat().st_size
    print(f"   generated in {time.perf_counter() - t0:.1f} s ({size / MB:.0f} MB of events)")
    t0 = time.perf_counter()
    report = verify_export(out)
    sec = time.perf_counter() - t0
    assert report.ok, report.failures[:3]
    print(
        f"   verify     {sec:6.1f} s  ({args.events / sec:,.0f} events/s, "
        f"{report.checkpoints} checkpoints)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--blob-mb", type=int, default=2048)
    p.add_argument("--blob-count", type=int, default=32)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--deposits", type=int, default=2000)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--workdir", type=Path)
    p.add_argument("--skip", action="append", default=[], help="fixity | append | verify")
    args = p.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="genpon-bench-integrity-"))
    try:
        settings = Settings(environment="test", data_dir=workdir / "data")
        engine = make_engine(settings.db_url)
        initialize(settings, engine, demo=True)
        store = make_store(settings)
        print(f"cpus {os.cpu_count()}, python {sys.version.split()[0]}, data {workdir}")
        if "fixity" not in args.skip:
            bench_fixity(settings, engine, store, args)
        if "append" not in args.skip:
            bench_append(settings, engine, store, args)
        if "verify" not in args.skip:
            bench_verify(workdir, args)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
