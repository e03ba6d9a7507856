"""The whole deployment under load while nodes die (issue 14): ``scripts/cluster up``, bounded
concurrent deposits, retries, searches and reads through HAProxy; SIGKILL of an app server, a
worker (the in-process indexer's server when there is no ``genpon worker``) and a volume
server, each restarted; then the invariants."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.cluster.cluster import REPO, Cluster

pytestmark = [
    pytest.mark.slow,
    pytest.mark.cluster,
    pytest.mark.postgres,
    pytest.mark.s3,
    pytest.mark.skipif(os.geteuid() != 0, reason="starts PostgreSQL as the postgres user (root)"),
]

DEPOSITS = 72  # logical deposits (each its own Idempotency-Key)
TWIN_SHARE = 0.15  # deposited twice at once: 30 % of the files repeat a content
RETRIED = 10  # acknowledged deposits re-sent with the same key to another server
CLIENTS = 6
FOLDER_ID = 5  # 全庁共用 (demo data)

_WORDS = (
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
)


def _text(token: str, rng: random.Random) -> bytes:
    lines = [f"件名: {token} に関する報告"]
    for _ in range(rng.randint(20, 60)):
        a, b = rng.sample(_WORDS, 2)
        lines.append(f"{a}の{b}について、令和{rng.randint(1, 7)}年度の状況を報告します。")
    return "\n".join(lines).encode()


@dataclass
class Logical:
    key: str
    token: str
    body: bytes
    doc_id: int | None = None
    status: int | None = None
    attempts: int = 0

    @property
    def sha(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def add(self, what: str, status: int | str) -> None:
        with self.lock:
            self.statuses[f"{what} {status}"] += 1


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    base = Path(tempfile.mkdtemp(prefix="genpon-test-cluster-", dir="/tmp"))
    base.chmod(0o755)
    (base / "owner.pid").write_text(str(os.getpid()))
    script = REPO / "scripts" / "cluster"
    env = {**os.environ, "GENPON_CHECKPOINT_EVERY": "40"}
    try:
        up = subprocess.run(
            [str(script), "up", "--base", str(base / "c")],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert up.returncode == 0, up.stderr[-4000:]
        yield Cluster.load(base / "c")
    finally:
        subprocess.run([str(script), "down", "--base", str(base / "c")], timeout=180, check=False)
        shutil.rmtree(base, ignore_errors=True)


def _deposit(
    client: httpx.Client, url: str, auth: dict[str, str], item: Logical, tally: Tally
) -> httpx.Response | None:
    """POST with the item's Idempotency-Key; retried (same key) on transport errors and 5xx."""
    for attempt in range(8):
        item.attempts += 1
        try:
            r = client.post(
                f"{url}/api/v1/documents",
                files={"file": (f"{item.token}.txt", item.body, "text/plain")},
                data={"folder_id": str(FOLDER_ID)},
                headers={**auth, "Idempotency-Key": item.key},
            )
        except httpx.HTTPError as e:
            tally.add("deposit", type(e).__name__)
            time.sleep(0.3 * (attempt + 1))
            continue
        tally.add("deposit", r.status_code)
        if r.status_code >= 500:
            time.sleep(0.3 * (attempt + 1))
            continue
        return r
    return None


def test_cluster_survives_node_loss(cluster: Cluster) -> None:
    rng = random.Random(14)
    auth = {"Authorization": f"Bearer {cluster.api_key('admin')}"}
    front = cluster.front_url
    items: list[Logical] = []
    twins: list[tuple[Logical, Logical]] = []
    while len(items) < DEPOSITS:
        token = f"k{uuid.uuid4().hex[:12]}"
        body = _text(token, rng)
        a = Logical(key=str(uuid.uuid4()), token=token, body=body)
        items.append(a)
        if rng.random() < TWIN_SHARE:
            b = Logical(key=str(uuid.uuid4()), token=token, body=body)
            items.append(b)
            twins.append((a, b))
    singles = [i for i in items if not any(i in t for t in twins)]
    tally = Tally()
    stop_reads = threading.Event()
    acked: list[Logical] = []
    acked_lock = threading.Lock()

    def ack(item: Logical, r: httpx.Response | None) -> None:
        if r is None:
            tally.errors.append(f"deposit {item.key}: no answer after retries")
            return
        if r.status_code not in (200, 201):
            tally.errors.append(f"deposit {item.key}: {r.status_code} {r.text[:200]}")
            return
        item.doc_id, item.status = int(r.json()["id"]), r.status_code
        with acked_lock:
            acked.append(item)

    def deposit_single(item: Logical) -> None:
        with httpx.Client(timeout=30) as c:
            ack(item, _deposit(c, front, auth, item, tally))

    def deposit_twin(pair: tuple[Logical, Logical]) -> None:
        # the same content at two different servers at once (direct, not via HAProxy)
        barrier = threading.Barrier(2)
        servers = rng.sample(["app1", "app2", "app3"], 2)

        def one(item: Logical, server: str) -> None:
            with httpx.Client(timeout=30) as c:
                barrier.wait()
                r = _deposit(c, cluster.app_url(server), auth, item, tally)
                if r is None:  # that server is being killed: go through the front
                    r = _deposit(c, front, auth, item, tally)
                ack(item, r)

        with ThreadPoolExecutor(2) as ex:
            list(ex.map(one, pair, servers))

    def reader() -> None:
        with httpx.Client(timeout=30) as c:
            while not stop_reads.is_set():
                with acked_lock:
                    pick = rng.choice(acked) if acked else None
                if pick is None:
                    time.sleep(0.1)
                    continue
                try:
                    r = c.get(f"{front}/api/v1/documents/{pick.doc_id}", headers=auth)
                    tally.add("read", r.status_code)
                    r = c.get(f"{front}/api/v1/search", params={"q": pick.token}, headers=auth)
                    tally.add("search", r.status_code)
                except httpx.HTTPError as e:
                    tally.add("read", type(e).__name__)
                time.sleep(0.05)

    def chaos() -> None:
        victim_worker = "worker1" if cluster.worker_mode == "worker" else "app1"
        time.sleep(4)
        cluster.kill("app2")
        time.sleep(1.5)
        cluster.kill("weed-vol2")
        time.sleep(1.5)
        cluster.kill(victim_worker)
        time.sleep(3)
        cluster.start("app2", wait=False)
        cluster.start("weed-vol2", wait=False)
        cluster.start(victim_worker, wait=False)

    t0 = time.monotonic()
    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in readers:
        t.start()
    chaos_thread = threading.Thread(target=chaos)
    chaos_thread.start()
    jobs = [*(("s", i) for i in singles), *(("t", p) for p in twins)]
    rng.shuffle(jobs)
    with ThreadPoolExecutor(CLIENTS - 2) as ex:
        futures = [
            ex.submit(deposit_single, j) if kind == "s" else ex.submit(deposit_twin, j)  # type: ignore[arg-type]
            for kind, j in jobs
        ]
        for f in futures:
            f.result()
    chaos_thread.join()

    # idempotent retries: the same request again, on another server than the front picked
    retried = rng.sample([i for i in acked if i.status == 201], RETRIED)
    with httpx.Client(timeout=30) as c:
        for n, item in enumerate(retried):
            server = ("app1", "app2", "app3")[n % 3]
            cluster.wait_answers(server, timeout=60)
            r = _deposit(c, cluster.app_url(server), auth, item, tally)
            assert r is not None and r.status_code == 200, r and r.text
            assert r.json()["id"] == item.doc_id
    stop_reads.set()
    for t in readers:
        t.join()
    load_s = time.monotonic() - t0

    assert not tally.errors, tally.errors
    assert len(acked) == len(items)
    for name in cluster.components:
        cluster.wait_answers(name, timeout=60)

    # every acknowledged deposit exists, its blob readable and intact
    with httpx.Client(timeout=30) as c:
        for item in acked:
            r = c.get(f"{front}/api/v1/documents/{item.doc_id}/content", headers=auth)
            assert r.status_code == 200, (item.doc_id, r.status_code)
            assert hashlib.sha256(r.content).hexdigest() == item.sha
    # no duplicate from retries: one document per logical deposit
    assert len({i.doc_id for i in acked}) == len(acked)
    assert _sql(cluster, "SELECT count(*) FROM document") == str(len(acked))
    # exactly one live original per content
    per_sha = _sql(
        cluster,
        "SELECT count(*) FROM (SELECT sha256 FROM document WHERE state = 'live' GROUP BY sha256"
        " HAVING count(*) FILTER (WHERE original_id IS NULL) <> 1) x",
    )
    assert per_sha == "0"
    assert _sql(cluster, "SELECT count(DISTINCT sha256) FROM document") == str(
        len({i.sha for i in acked})
    )
    # every document searchable once the outbox drains (no row stuck)
    deadline = time.monotonic() + 90
    while _sql(cluster, "SELECT count(*) FROM index_outbox") != "0":
        assert time.monotonic() < deadline, "index outbox did not drain"
        time.sleep(0.5)
    with httpx.Client(timeout=30) as c:
        for token in {i.token for i in acked}:
            r = c.get(f"{front}/api/v1/search", params={"q": token}, headers=auth)
            assert r.status_code == 200
            found = {h["document_id"] for h in r.json()["hits"]}
            want = {i.doc_id for i in acked if i.token == token}
            assert found & want, (token, found, want)
    # the audit log exports and verifies offline; checkpoints from every node: one key, consistent
    out = Path(cluster.base) / "audit-export"
    cluster.genpon("audit", "checkpoint", node="app3")
    cluster.genpon("audit", "export", str(out))
    verify = subprocess.run(
        [str(REPO / ".venv" / "bin" / "genpon-verify"), str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr[-2000:]
    assert int(_sql(cluster, "SELECT count(*) FROM audit_checkpoint")) >= 2
    assert _sql(cluster, "SELECT count(DISTINCT key_id) FROM audit_checkpoint") == "1"
    print(
        json.dumps(
            {
                "load_s": round(load_s, 1),
                "deposits": len(acked),
                "statuses": dict(tally.statuses),
                "worker_mode": cluster.worker_mode,
            },
            ensure_ascii=False,
        )
    )


def _sql(cluster: Cluster, sql: str) -> str:
    return cluster.psql(sql, "genpon").strip()
