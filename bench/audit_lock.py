"""Audit head lock benchmark (監査ログの先頭ロック): prints its figures; not a test.

Starts a throwaway PostgreSQL (``tests.servers.PostgresServer``), loads the demo data and runs
``--threads`` threads that each deposit ``--per-thread`` small unique files through the service
(``records.documents.deposit`` and, as the HTTP route does, the document view, in one
transaction), in two modes in the same run:

- ``eager`` (the old behaviour): each event is appended as soon as it is recorded, so the
  ``audit_head`` row lock is held from the transaction's first event to its commit;
- ``at commit`` (now): events are buffered and appended by the commit hook, so the lock is held
  from the append to the end of the commit.

The lock hold time of a transaction is measured from the moment its ``SELECT … FROM audit_head
… FOR UPDATE`` returned to the end of its commit (engine and session events, per thread).

Usage: ``.venv/bin/python bench/audit_lock.py [--threads 8] [--per-thread 40] [--kb 20]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


def run(
    label: str,
    deposit_one: Callable[[int, int], None],
    timer: HoldTimer,
    threads: int,
    per_thread: int,
) -> None:
    timer.holds.clear()
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            for i in range(per_thread):
                deposit_one(t, i)
        except BaseException as exc:  # report, don't hang the run
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    t0 = time.perf_counter()
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise errors[0]
    holds = sorted(timer.holds)
    n = threads * per_thread
    p50 = statistics.median(holds) * 1000
    p95 = holds[int(0.95 * (len(holds) - 1))] * 1000
    print(
        f"{label:10s} {n} deposits, {threads} threads: {n / elapsed:6.1f} deposits/s, "
        f"head lock held per transaction p50 {p50:6.2f} ms, p95 {p95:6.2f} ms "
        f"({len(holds)} transactions)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--per-thread", type=int, default=40)
    ap.add_argument("--kb", type=int, default=20)
    args = ap.parse_args()

    with PostgresServer() as pg, tempfile.TemporaryDirectory(prefix="genpon-bench-") as work:
        settings = Settings(
            data_dir=Path(work) / "data", database_url=pg.url, index_autostart=False
        )
        engine = make_engine(settings.db_url, pool_size=args.threads + 2)
        initialize(settings, engine, demo=True)
        store = make_store(settings)
        with session_scope(engine) as s:
            team = s.exec(select(Folder).where(Folder.name == "財政課チーム")).one()
            folder_id = int(team.id or 0)
            actor = actor_for_user(s, s.exec(select(User).where(User.login == "tanaka")).one())

        timer = HoldTimer()
        event.listen(engine, "after_cursor_execute", timer.locked)
        event.listen(OrmSession, "after_commit", timer.committed)
        event.listen(OrmSession, "after_rollback", timer.rolled_back)
        size = args.kb * 1024

        def deposit_one(mode: str) -> Callable[[int, int], None]:
            def one(t: int, i: int) -> None:
                staged = store.stage([HEADER + os.urandom(size - len(HEADER))])
                with session_scope(engine) as s:
                    out = documents.deposit(
                        s,
                        store,
                        actor,
                        staged,
                        documents.DepositIn(filename=f"{mode}-{t}-{i}.bin", folder_id=folder_id),
                        allowed_types=settings.allowed_types,
                        timezone=settings.timezone,
                    )
                    documents.view(s, actor, out.document.id or 0)  # as the HTTP route does

            return one

        print(f"PostgreSQL {pg.url.rsplit('@', 1)[-1]}, {args.kb} KB files, local blob store")
        with eager_appends():
            run("eager", deposit_one("eager"), timer, args.threads, args.per_thread)
        run("at commit", deposit_one("commit"), timer, args.threads, args.per_thread)
        engine.dispose()


if __name__ == "__main__":
    main()
