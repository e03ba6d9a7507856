"""Cluster benchmark (複数ノード構成の性能): prints its figures; not a test.

Brings up the reference deployment (``scripts/cluster``: PostgreSQL primary + replica, SeaweedFS
with 3 volume servers, HAProxy, ``genpon serve`` processes, workers) in a throwaway directory
and, in one run, with **1** app server (the other two stopped; HAProxy's checks take them out)
and then **3**:

- deposits/s and p95 latency: ``--clients`` clients each depositing ``--kb`` KB Japanese text
  files (all different) through HAProxy for ``--seconds`` s;
- search p95: the same clients searching for words of the deposited files;
- CPU seconds per process (the process and its children: PostgreSQL backends, weed, haproxy)
  during each phase, from /proc;
- the audit head lock: per committing transaction, the wait for ``SELECT … FROM audit_head …
  FOR UPDATE`` and the hold time from its return to the end of the commit, measured inside
  every genpon process (servers and workers) by a probe the benchmark puts on their
  ``PYTHONPATH`` (a ``sitecustomize`` with SQLAlchemy event listeners; nothing in genpon);
- indexing: the outbox rows left when the deposits stop and how long the workers take to
  empty it, i.e. the documents/s the index kept up with.

Usage: ``.venv/bin/python bench/cluster.py [--clients 8] [--kb 20] [--seconds 20]
[--searches 20] [--keep]``  (as root: PostgreSQL runs as the postgres user)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.cluster.cluster import APPS, WORKERS, Cluster

WORDS = (
    "道路",
    "補修",
    "予算",
    "市民課",
    "住民票",
    "会議録",
    "議会",
    "入札",
    "契約",
    "下水道",
    "防災",
    "避難所",
    "学校",
    "給食",
    "福祉",
    "介護",
    "都市計画",
    "固定資産税",
)
TICK = os.sysconf("SC_CLK_TCK")

PROBE = """
import os, threading, time
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

_local = threading.local()
_out = os.path.join(os.path.dirname(__file__), f"holds-{os.getpid()}.txt")


@event.listens_for(Engine, "before_cursor_execute")
def _before(conn, cursor, statement, *rest):
    if "FROM audit_head" in statement and "FOR UPDATE" in statement:
        _local.asked = time.perf_counter()


@event.listens_for(Engine, "after_cursor_execute")
def _after(conn, cursor, statement, *rest):
    if getattr(_local, "asked", None) is not None and getattr(_local, "at", None) is None:
        _local.at = time.perf_counter()


@event.listens_for(Session, "after_commit")
def _committed(session):
    at = getattr(_local, "at", None)
    if at is not None:
        with open(_out, "a") as fh:
            fh.write(f"{(at - _local.asked) * 1000:.3f} {(time.perf_counter() - at) * 1000:.3f}\\n")
    _local.at = _local.asked = None


@event.listens_for(Session, "after_rollback")
def _rolled_back(session):
    _local.at = _local.asked = None
"""


def install_probe(cluster: Cluster, probe: Path) -> None:
    """Put the lock probe on every genpon process's PYTHONPATH and restart them."""
    probe.mkdir()
    probe.chmod(0o755)
    (probe / "sitecustomize.py").write_text(PROBE)
    env = cluster.secrets / "genpon.env"
    env.write_text(env.read_text() + f"PYTHONPATH={probe}\n")
    for name in (*APPS, *WORKERS):
        if name in cluster.components:
            cluster.stop(name)
            cluster.start(name, wait=False)
    for name in APPS:
        cluster.wait_answers(name, timeout=120)


def lock_figures(probe: Path) -> tuple[list[float], list[float]]:
    """Waits and holds (ms) recorded since the last call; the files are emptied."""
    waits: list[float] = []
    holds: list[float] = []
    for f in probe.glob("holds-*.txt"):
        lines = f.read_text().split()
        f.write_text("")
        waits += [float(x) for x in lines[0::2]]
        holds += [float(x) for x in lines[1::2]]
    return waits, holds


def outbox(cluster: Cluster) -> int:
    return int(cluster.psql("SELECT count(*) FROM index_outbox", "genpon").strip() or 0)


def japanese_text(token: str, kb: int, rng: random.Random) -> bytes:
    lines = [f"件名: {token} に関する報告書"]
    size = 0
    while size < kb * 1024:
        a, b = rng.sample(WORDS, 2)
        line = f"{a}の{b}について、令和{rng.randint(1, 7)}年度第{rng.randint(1, 40)}回の状況を報告する。"
        lines.append(line)
        size += len(line.encode())
    return "\n".join(lines).encode()


def p95(values: list[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def cpu_tree() -> dict[int, float]:
    """CPU seconds (user + system, children reaped included) of every process."""
    out: dict[int, float] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(d.name)] = sum(int(x) for x in fields[11:15]) / TICK
    return out


def parents() -> dict[int, int]:
    out: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError):
                out[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
    return out


def component_cpu(cluster: Cluster) -> dict[str, float]:
    cpu, ppid = cpu_tree(), parents()
    children: dict[int, list[int]] = {}
    for pid, parent in ppid.items():
        children.setdefault(parent, []).append(pid)
    out: dict[str, float] = {}
    for name, comp in cluster.components.items():
        if not comp.pid or not cluster.alive(name):
            continue
        total, todo = 0.0, [comp.pid]
        while todo:
            pid = todo.pop()
            total += cpu.get(pid, 0.0)
            todo += children.get(pid, [])
        out[name] = total
    return out


def run_phase(cluster: Cluster, label: str, args: argparse.Namespace, probe: Path) -> None:
    auth = {"Authorization": f"Bearer {cluster.api_key('admin')}"}
    front = cluster.front_url
    lat: list[float] = []
    tokens: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + args.seconds

    def depositor(n: int) -> None:
        rng = random.Random(n)
        with httpx.Client(timeout=60) as c:
            while time.monotonic() < stop_at:
                token = f"b{uuid.uuid4().hex[:12]}"
                body = japanese_text(token, args.kb, rng)
                t = time.perf_counter()
                r = c.post(
                    f"{front}/api/v1/documents",
                    files={"file": (f"{token}.txt", body, "text/plain")},
                    data={"folder_id": "5"},
                    headers={**auth, "Idempotency-Key": token},
                )
                dt = time.perf_counter() - t
                with lock:
                    if r.status_code in (200, 201):
                        lat.append(dt)
                        tokens.append(token)
                    else:
                        errors.append(f"{r.status_code} {r.text[:100]}")

    lock_figures(probe)  # forget what came before the phase
    cpu0 = component_cpu(cluster)
    own0 = sum(os.times()[:2])
    t0 = time.monotonic()
    threads = [threading.Thread(target=depositor, args=(i,)) for i in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    cpu1 = component_cpu(cluster)
    cpu1["bench clients"] = sum(os.times()[:2]) - own0
    rate = len(lat) / wall
    print(
        f"{label}: deposits {len(lat)} in {wall:.1f} s = {rate:.1f}/s, "
        f"p50 {statistics.median(lat) * 1000:.0f} ms, p95 {p95(lat) * 1000:.0f} ms"
        + (f", errors {len(errors)}: {errors[:3]}" if errors else "")
    )
    busy = {n: cpu1.get(n, 0.0) - cpu0.get(n, 0.0) for n in cpu1}
    print(
        f"{label}: CPU s during deposits (wall {wall:.1f} s, 2 cores = {2 * wall:.0f} CPU s): "
        + ", ".join(
            f"{n} {v:.1f}" for n, v in sorted(busy.items(), key=lambda x: -x[1]) if v >= 0.1
        )
    )
    waits, holds = lock_figures(probe)
    if holds:
        print(
            f"{label}: audit head lock over {len(holds)} commits: hold mean "
            f"{statistics.mean(holds):.1f} ms, p95 {p95(holds):.1f} ms, max {max(holds):.1f} ms; "
            f"wait mean {statistics.mean(waits):.1f} ms, p95 {p95(waits):.1f} ms; "
            f"held {sum(holds) / 1000 / wall * 100:.0f} % of the wall time"
        )
    left, t0 = outbox(cluster), time.monotonic()
    while outbox(cluster) and time.monotonic() - t0 < args.drain_timeout:
        time.sleep(0.5)
    drained, rest = time.monotonic() - t0, outbox(cluster)
    print(
        f"{label}: outbox {left} rows when the deposits stopped, "
        + (f"{rest} still left after {drained:.0f} s" if rest else f"empty {drained:.1f} s later")
        + f": indexing {len(lat) / (wall + drained):.1f} docs/s over the phase "
        f"({len(WORKERS)} workers), deposits {rate:.1f}/s"
    )

    slat: list[float] = []
    rng = random.Random(7)
    picks = [rng.choice(tokens) for _ in range(args.clients * args.searches)] if tokens else []
    queries = [
        f"{rng.choice(WORDS)} {p}" if i % 2 else rng.choice(WORDS) for i, p in enumerate(picks)
    ]

    def searcher(part: list[str]) -> None:
        with httpx.Client(timeout=60) as c:
            for q in part:
                t = time.perf_counter()
                r = c.get(f"{front}/api/v1/search", params={"q": q}, headers=auth)
                dt = time.perf_counter() - t
                with lock:
                    if r.status_code == 200:
                        slat.append(dt)
                    else:
                        errors.append(f"search {r.status_code}")

    parts = [queries[i :: args.clients] for i in range(args.clients)]
    t0 = time.monotonic()
    threads = [threading.Thread(target=searcher, args=(p,)) for p in parts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    swall = time.monotonic() - t0
    if slat:
        print(
            f"{label}: searches {len(slat)} in {swall:.1f} s = {len(slat) / swall:.1f}/s, "
            f"p50 {statistics.median(slat) * 1000:.0f} ms, p95 {p95(slat) * 1000:.0f} ms"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--kb", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--searches", type=int, default=20, help="searches per client and phase")
    ap.add_argument("--keep", action="store_true", help="leave the cluster running")
    ap.add_argument("--drain-timeout", type=float, default=300, help="s to wait for the outbox")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="genpon-bench-cluster-", dir="/tmp"))
    root.chmod(0o755)
    cluster = Cluster(base=root / "c")
    try:
        t = time.monotonic()
        cluster.up()
        print(f"cluster up in {time.monotonic() - t:.1f} s (worker mode: {cluster.worker_mode})")
        probe = root / "probe"
        install_probe(cluster, probe)
        for name in APPS[1:]:
            cluster.stop(name)
        time.sleep(2.5)  # HAProxy: inter 500 fall 2
        run_phase(cluster, "1 app server ", args, probe)
        for name in APPS[1:]:
            cluster.start(name)
        time.sleep(2.5)  # rise 2
        run_phase(cluster, "3 app servers", args, probe)
    finally:
        if not args.keep:
            cluster.down()
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"cluster left running in {cluster.base}: scripts/cluster down --base ...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
