"""Indexing benchmark (索引の追随): prints its figures; not a test.

Does the PostgreSQL search backend keep up with deposits? Starts a throwaway PostgreSQL
(``tests.servers.PostgresServer``, with the ``rum`` extension), loads the demo data, builds a
search index of ``--docs`` entries (default 100,000) as ``genpon search reindex`` does (clear,
insert, mark built: the RUM indexes are created once, at the end), then, in the same run, for
**1** and then **2** worker processes:

1. deposits ``--per-phase`` ``--kb`` KB Japanese text files through the service
   (``records.documents.deposit``, local store): the outbox fills;
2. starts the workers, each ``search.indexer.drain`` in its own process (what ``genpon worker``
   runs), and measures documents/s from their start until the outbox is empty;
3. prints where the workers' time went: extraction, building entries (reading the placements,
   tokenizing; the indexer builds them while the index write runs, as the backend asks for
   each content, and that time is counted here, not in the write), the index write
   (``PostgresBackend.apply``: the vectors, and waiting for PostgreSQL), and the rest
   (claims, leases, storing the text and its snippet chunks, commits); and the CPU per
   document of the workers and of PostgreSQL (all its processes, read after the workers'
   server processes exited) while they ran.

The index entries of the build are made from ``--distinct`` analyzed texts (as in
``bench/search.py``) repeated under new document ids, so building 100,000 takes a minute, not
an analysis of 100,000 texts; the vocabulary (and so the RUM posting lists) is the same. The
build ends with ``VACUUM ANALYZE``, so autovacuum does not run into the first phase.

The deposited texts are generated from a small vocabulary: a 20 KB one has about 200
distinct tokens and 280 distinct trigrams, so some 500 lexemes go into the RUM index per
document. Real Japanese text has about ten times as many (the first 7,000 characters of a law:
about 2,000 tokens and 2,300 trigrams), and PostgreSQL's share grows with it (docs/cluster.md,
Indexing): these figures are the floor of the indexing cost, not a real workload's.

With ``--baseline REV`` (a git revision) each phase runs twice, alternating: the workers first
import ``genpon.search`` as it was at REV (``git archive`` into a temporary folder), then the
current one, on the same database and index, so before and after are measured in one run
under the same load. Only ``search/`` is taken from REV: the schema must be the same.

Usage: ``.venv/bin/python bench/indexing.py [--docs 100000] [--distinct 2000]
[--per-phase 400] [--kb 20] [--baseline REV]``  (as root: PostgreSQL runs as the postgres user)
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
SEARCH_SRC = "GENPON_BENCH_SEARCH_SRC"  # a folder holding another ``search/`` (--baseline)


def _use_search_from(folder: str) -> None:
    """Import ``genpon.search`` (and so its submodules) from ``folder/search``: set in a
    worker process before anything of genpon is imported."""
    init = Path(folder) / "search" / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        "genpon.search", init, submodule_search_locations=[str(init.parent)]
    )
    assert spec is not None and spec.loader is not None
    import genpon  # the namespace package

    module = importlib.util.module_from_spec(spec)
    sys.modules["genpon.search"] = module
    spec.loader.exec_module(module)
    genpon.search = module  # type: ignore[attr-defined]


if os.environ.get(SEARCH_SRC):
    _use_search_from(os.environ[SEARCH_SRC])

from genpon.api.context import build_context  # noqa: E402
from genpon.core.settings import Settings  # noqa: E402
from genpon.records import documents  # noqa: E402
from genpon.records.access import actor_for_user  # noqa: E402
from genpon.records.bootstrap import initialize  # noqa: E402
from genpon.records.models import Folder, User  # noqa: E402
from genpon.search import indexer  # noqa: E402
from genpon.search.backends import make_backend  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlmodel import Session, select  # noqa: E402

from tests.servers import PostgresServer  # noqa: E402

PARTS = ("extract", "entries", "index write")


def postgres_cpu(postmaster: int) -> float:
    """CPU seconds (user + system) of the PostgreSQL server ``postmaster`` and its children."""
    from cluster import cpu_tree  # bench/cluster.py

    total = 0.0
    for pid, cpu in cpu_tree().items():
        try:
            ppid = int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
        if pid == postmaster or ppid == postmaster:
            total += cpu
    return total


def build_index(settings: Settings, docs: int, distinct: int) -> float:
    """Fill the search tables with ``docs`` entries the way a rebuild does (RUM indexes
    dropped, rows in, indexes created once); returns seconds. ``distinct`` analyzed entries go
    through ``PostgresBackend.apply``; the rest are copies of their rows under new ids, made
    by PostgreSQL (``INSERT … SELECT``): the same vectors, so the same posting lists."""
    from search import entries  # bench/search.py

    ctx = build_context(settings)
    backend = make_backend(ctx)
    base = entries(distinct, seed=7)
    t0 = time.perf_counter()
    with Session(ctx.engine) as s:
        backend.clear(s)
        s.commit()
        start = 10_000_000  # far from the ids the demo and the phases use
        batch = {}
        for i, e in enumerate(base):
            sha = f"{start + i:064x}"
            batch[sha] = [replace(e, document_id=start + i, sha256=sha)]
        backend.apply(s, batch)
        s.commit()
        for k in range(1, -(-docs // distinct)):
            n = min(distinct, docs - k * distinct)
            shift = k * distinct
            s.execute(
                text(
                    "INSERT INTO search_chunk (sha256, chunk_no, tsv) "
                    "SELECT lpad(to_hex(('x' || right(sha256, 15))::bit(60)::bigint + :d), 64, "
                    "'0'), chunk_no, tsv FROM search_chunk WHERE sha256 < :lim"
                ),
                {"d": shift, "lim": f"{start + n:064x}"},
            )
            s.execute(
                text(
                    "INSERT INTO search_entry SELECT document_id + :d, "
                    "lpad(to_hex(document_id + :d), 64, '0'), acl, prior_acl, is_first, "
                    "is_original, case_id, organization, doc_class, folder_kind, status, "
                    "fiscal_year, doc_date, fields_tsv, all_tsv, prior_keys FROM search_entry "
                    "WHERE document_id >= :s AND document_id < :e"
                ),
                {"d": shift, "s": start, "e": start + n},
            )
            s.commit()
        backend.mark_built(s)
        s.commit()
        count = backend.count(s)
    # (autovacuum would otherwise visit the new rows during the first phase and be counted
    # as that phase's PostgreSQL CPU)
    with ctx.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    ctx.engine.dispose()
    if count != docs:
        raise SystemExit(f"built {count} entries, expected {docs}")
    return time.perf_counter() - t0


def deposit_files(settings: Settings, n: int, kb: int, seed: int) -> float:
    """Deposit ``n`` distinct Japanese text files through the service; returns docs/s."""
    from cluster import japanese_text  # bench/cluster.py

    ctx = build_context(settings)
    rng = random.Random(seed)
    with Session(ctx.engine) as s:
        actor = actor_for_user(s, s.exec(select(User).where(User.login == "tanaka")).one())
        folder_id = s.exec(select(Folder.id).where(Folder.name == "財政課チーム")).one()
    t0 = time.perf_counter()
    for i in range(n):
        body = japanese_text(f"idx{seed}-{i}", kb, rng)
        staged = ctx.store.stage([body])
        with Session(ctx.engine) as s:
            documents.deposit(
                s,
                ctx.store,
                actor,
                staged,
                documents.DepositIn(filename=f"idx{seed}-{i}.txt", folder_id=folder_id),
                allowed_types=settings.allowed_types,
                timezone=settings.timezone,
            )
            s.commit()
    rate = n / (time.perf_counter() - t0)
    ctx.engine.dispose()
    return rate


def _timed(fn: Any, totals: dict[str, float], part: str) -> Any:
    """``fn`` adding its seconds to ``totals[part]``. Entries built while the index write runs
    (the lazy batch of the current indexer) are counted as entries, not as index write."""

    def wrapper(*a: Any, **k: Any) -> Any:
        t = time.perf_counter()
        outer = part == "index write"
        totals["in write"] += outer
        try:
            return fn(*a, **k)
        finally:
            dt = time.perf_counter() - t
            totals[part] += dt
            totals["in write"] -= outer
            if not outer and totals["in write"]:
                totals["index write"] -= dt

    return wrapper


def worker(settings: Settings, start: Any, out: Any) -> None:
    """One worker process: wait for the start signal, drain until the outbox is empty."""
    ctx = build_context(settings)
    totals = dict.fromkeys((*PARTS, "total", "in write"), 0.0)
    indexer._extract_blob = _timed(indexer._extract_blob, totals, "extract")  # type: ignore[assignment]
    indexer.build_entries = _timed(indexer.build_entries, totals, "entries")  # type: ignore[assignment]
    backend = make_backend(ctx)
    backend.apply = _timed(backend.apply, totals, "index write")  # type: ignore[method-assign]
    start.wait()
    t0, cpu0 = time.perf_counter(), time.process_time()
    done = 0
    while True:
        n = indexer.drain(ctx, backend=backend)
        done += n
        if n == 0 and indexer.pending(ctx) == 0:
            break
        if n == 0:
            time.sleep(0.05)  # the other worker holds the rest
    totals["total"] = time.perf_counter() - t0
    totals["cpu"] = time.process_time() - cpu0
    out.put((done, totals))
    ctx.engine.dispose()


def run_phase(
    settings: Settings, workers: int, per_phase: int, kb: int, seed: int, pg: int, src: str = ""
) -> None:
    dep = deposit_files(settings, per_phase, kb, seed=seed)
    mp = multiprocessing.get_context("spawn")
    start, out = mp.Event(), mp.Queue()
    procs = [mp.Process(target=worker, args=(settings, start, out)) for _ in range(workers)]
    os.environ[SEARCH_SRC] = src  # (the children inherit it when they start)
    try:
        for p in procs:
            p.start()
    finally:
        os.environ.pop(SEARCH_SRC, None)
    time.sleep(4)  # imports and connections before the clock starts
    t0, pg0 = time.perf_counter(), postgres_cpu(pg)
    start.set()
    results = [out.get(timeout=1800) for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join(30)
    # (after the workers closed their connections and their server processes were reaped:
    # the CPU of a process that has exited but not been reaped yet is not counted anywhere)
    time.sleep(1)
    pg_cpu = postgres_cpu(pg) - pg0
    done = sum(d for d, _ in results)
    label = " (baseline)" if src else ""
    print(
        f"{workers} worker{'s' if workers > 1 else ' '}{label}: indexed {done} in {wall:.1f} s = "
        f"{done / wall:.1f} docs/s  (deposits through the service before it: {dep:.1f}/s)"
    )
    cpu = sum(t["cpu"] for _, t in results)
    print(
        f"   CPU per doc: workers {1000 * cpu / max(done, 1):.0f} ms, "
        f"PostgreSQL {1000 * pg_cpu / max(done, 1):.0f} ms"
    )
    for i, (d, t) in enumerate(results, 1):
        rest = t["total"] - sum(t[p] for p in PARTS)
        parts = ", ".join(f"{p} {t[p]:.1f} s ({1000 * t[p] / max(d, 1):.0f} ms/doc)" for p in PARTS)
        print(f"   worker {i}: {d} docs in {t['total']:.1f} s: {parts}, other {rest:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--distinct", type=int, default=2000)
    ap.add_argument("--per-phase", type=int, default=400)
    ap.add_argument("--kb", type=int, default=20)
    ap.add_argument("--baseline", default="", help="git revision whose search/ runs first")
    args = ap.parse_args()
    with (
        PostgresServer() as pg,
        tempfile.TemporaryDirectory(prefix="genpon-bench-idx-") as d,
    ):
        assert pg.proc is not None
        base = ""
        if args.baseline:
            base = str(Path(d) / "baseline")
            os.makedirs(base)
            tar = subprocess.run(
                ["git", "-C", str(REPO), "archive", args.baseline, "search"],
                check=True,
                capture_output=True,
            ).stdout
            subprocess.run(["tar", "-x", "-C", base], input=tar, check=True)
        settings = Settings(
            data_dir=Path(d) / "data",
            database_url=pg.url,
            search_backend="postgres",
            index_autostart=False,
        )
        ctx = build_context(settings)
        initialize(settings, ctx.engine, demo=True)
        indexer.drain(ctx)  # the demo's own documents; builds the (empty) index
        ctx.engine.dispose()
        build = build_index(settings, args.docs, args.distinct)
        print(
            f"# Genpon indexing benchmark (PostgreSQL backend; built index of {args.docs} "
            f"entries in {build:.0f} s = {args.docs / build:.0f} docs/s)"
        )
        for workers in (1, 2):
            for src in (base, "") if base else ("",):
                seed = 10 * workers + (1 if src else 0)
                run_phase(settings, workers, args.per_phase, args.kb, seed, pg.proc.pid, src)


if __name__ == "__main__":
    main()
