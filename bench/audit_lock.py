"""Audit head lock benchmark (監査ログの先頭ロック): prints its figures; not a test.

Starts a throwaway PostgreSQL (``tests.servers.PostgresServer``), loads the demo data and runs
``--procs`` processes (as several servers would; threads in one process would mostly measure the
GIL) that each deposit ``--per-proc`` small unique files through the service
(``records.documents.deposit`` and, as the HTTP route does, the document view, in one
transaction). The two modes alternate for ``--rounds`` rounds in the same run, so drift in the
machine's load hits both:

- ``eager`` (the old behaviour): each event is appended as soon as it is recorded, so the
  ``audit_head`` row lock is held from the transaction's first event to its commit;
- ``at commit`` (now): events are buffered and appended by the commit hook, so the lock is held
  from the append to the end of the commit.

The lock hold time of a transaction is measured from the moment its ``SELECT … FROM audit_head
… FOR UPDATE`` returned to the end of its commit (engine and session events, per thread).

Usage: ``.venv/bin/python bench/audit_lock.py [--procs 6] [--per-proc 30] [--rounds 2] [--kb 20]``
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import select

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import genpon.records.audit as audit_pkg  # noqa: E402
from genpon.core.db import make_engine, session_scope  # noqa: E402
from genpon.core.settings import Settings  # noqa: E402
from genpon.records import documents  # noqa: E402
from genpon.records.access import actor_for_user  # noqa: E402
from genpon.records.audit import chain  # noqa: E402
from genpon.records.bootstrap import initialize  # noqa: E402
from genpon.records.models import Folder, User  # noqa: E402
from genpon.storage.registry import make_store  # noqa: E402

from tests.servers import PostgresServer  # noqa: E402

HEADER = b"\x00GENPON-BENCH\x00" * 4


class HoldTimer:
    """Per thread: when the head lock was taken; per commit: how long it was held."""

    def __init__(self) -> None:
        self.local = threading.local()
        self.holds: list[float] = []
        self.lock = threading.Lock()

    def locked(self, _conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        first = getattr(self.local, "at", None) is None
        if first and "FROM audit_head" in statement and "FOR UPDATE" in statement:
            self.local.at = time.perf_counter()

    def committed(self, _session: OrmSession) -> None:
        at = getattr(self.local, "at", None)
        if at is not None:
            with self.lock:
                self.holds.append(time.perf_counter() - at)
        self.local.at = None

    def rolled_back(self, _session: OrmSession) -> None:
        self.local.at = None


@contextmanager
def eager_appends() -> Iterator[None]:
    """The old behaviour: append (and lock the head) as soon as an event is recorded."""
    real_record, real_many = audit_pkg.record, audit_pkg.record_many

    def record(session: Any, **kw: Any) -> Any:
        ev = real_record(session, **kw)
        chain.append_pending(session)
        return ev

    def record_many(session: Any, **kw: Any) -> Any:
        hashes = real_many(session, **kw)
        chain.append_pending(session)
        return hashes

    audit_pkg.record, audit_pkg.record_many = record, record_many  # type: ignore[assignment]
    try:
        yield
    finally:
        audit_pkg.record, audit_pkg.record_many = real_record, real_many  # type: ignore[assignment]


@dataclass
class Job:
    db_url: str
    data_dir: str
    folder_id: int
    eager: bool
    label: str
    count: int
    size: int


def worker(job: Job, ready: Any, go: Any, out: Any) -> None:
    """One depositing process: ``job.count`` deposits, then its lock hold times and end time."""
    settings = Settings(data_dir=Path(job.data_dir), database_url=job.db_url, index_autostart=False)
    engine = make_engine(settings.db_url, pool_size=2)
    store = make_store(settings)
    with session_scope(engine) as s:
        actor = actor_for_user(s, s.exec(select(User).where(User.login == "tanaka")).one())
    timer = HoldTimer()
    event.listen(engine, "after_cursor_execute", timer.locked)
    event.listen(OrmSession, "after_commit", timer.committed)
    event.listen(OrmSession, "after_rollback", timer.rolled_back)
    with eager_appends() if job.eager else nullcontext():
        ready.put(os.getpid())
        go.wait()
        for i in range(job.count):
            staged = store.stage([HEADER + os.urandom(job.size - len(HEADER))])
            with session_scope(engine) as s:
                done = documents.deposit(
                    s,
                    store,
                    actor,
                    staged,
                    documents.DepositIn(
                        filename=f"{job.label}-{os.getpid()}-{i}.bin", folder_id=job.folder_id
                    ),
                    allowed_types=settings.allowed_types,
                    timezone=settings.timezone,
                )
                documents.view(s, actor, done.document.id or 0)  # as the HTTP route does
    out.put((timer.holds, time.perf_counter()))
    engine.dispose()


def run(jobs: list[Job]) -> tuple[float, list[float]]:
    """Start one process per job, release them together; (deposits/s, lock hold times)."""
    mp = multiprocessing.get_context("spawn")
    ready, out, go = mp.Queue(), mp.Queue(), mp.Event()
    procs = [mp.Process(target=worker, args=(job, ready, go, out)) for job in jobs]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    t0 = time.perf_counter()
    go.set()
    results = [out.get(timeout=1800) for _ in procs]
    for p in procs:
        p.join()
    elapsed = max(end for _h, end in results) - t0  # perf_counter is system-wide on Linux
    holds = [h for hs, _end in results for h in hs]
    return sum(j.count for j in jobs) / elapsed, holds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--procs", type=int, default=6)
    ap.add_argument("--per-proc", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--kb", type=int, default=20)
    args = ap.parse_args()

    with PostgresServer() as pg, tempfile.TemporaryDirectory(prefix="genpon-bench-") as work:
        settings = Settings(
            data_dir=Path(work) / "data", database_url=pg.url, index_autostart=False
        )
        engine = make_engine(settings.db_url)
        initialize(settings, engine, demo=True)
        with session_scope(engine) as s:
            team = s.exec(select(Folder).where(Folder.name == "財政課チーム")).one()
            folder_id = int(team.id or 0)
        engine.dispose()
        print(
            f"PostgreSQL {pg.url.rsplit('@', 1)[-1]}, {args.procs} processes x {args.per_proc} "
            f"deposits of {args.kb} KB per round, local blob store, {os.cpu_count()} CPUs"
        )
        figures: dict[str, tuple[list[float], list[float]]] = {
            "eager": ([], []),
            "at commit": ([], []),
        }
        for r in range(args.rounds):
            for label, eager in (("eager", True), ("at commit", False)):
                jobs = [
                    Job(
                        pg.url,
                        str(settings.data_dir),
                        folder_id,
                        eager,
                        f"r{r}{label[0]}",
                        args.per_proc,
                        args.kb * 1024,
                    )
                    for _ in range(args.procs)
                ]
                rate, holds = run(jobs)
                figures[label][0].append(rate)
                figures[label][1].extend(holds)
                print(f"  round {r + 1} {label:9s} {rate:6.1f} deposits/s, {_quantiles(holds)}")
        for label, (rates, holds) in figures.items():
            print(
                f"{label:9s} {statistics.mean(rates):6.1f} deposits/s (mean of rounds), "
                f"head lock held per transaction {_quantiles(holds)}"
            )


def _quantiles(holds: list[float]) -> str:
    ordered = sorted(holds)
    p50 = statistics.median(ordered) * 1000
    p95 = ordered[int(0.95 * (len(ordered) - 1))] * 1000
    return f"p50 {p50:6.2f} ms, p95 {p95:6.2f} ms ({len(ordered)} transactions)"


if __name__ == "__main__":
    main()
