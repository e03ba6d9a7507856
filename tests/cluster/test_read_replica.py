"""Read scaling (GENPON_DATABASE_READ_URL) on a real PostgreSQL primary + streaming replica:
searches and document reads go to the replica, and a caller always sees its own deposit."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from genpon.api.app import create_app
from genpon.core.db import make_engine, migrate
from genpon.core.settings import Settings
from genpon.records.bootstrap import InitResult, load_demo
from genpon.search.indexer import drain
from genpon.storage.context import AppContext
from genpon.storage.registry import make_store
from sqlmodel import Session

from tests.cluster.cluster import Cluster

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(os.geteuid() != 0, reason="starts PostgreSQL as the postgres user (root)"),
]
ROUNDS = 15


@pytest.fixture(scope="module")
def pair() -> Iterator[Cluster]:
    """A PostgreSQL primary and its streaming replica (scripts/cluster's recipe)."""
    base = Path(tempfile.mkdtemp(prefix="genpon-test-pgpair-", dir="/tmp"))
    base.chmod(0o755)  # the postgres user must traverse it
    (base / "owner.pid").write_text(str(os.getpid()))
    c = Cluster(base=base / "cluster")
    try:
        c.prepare()
        c.up_postgres()
        migrate(c.pg_url("pg-primary"))
        engine = make_engine(c.pg_url("pg-primary"))
        with Session(engine) as s:
            result = InitResult()
            load_demo(s, result)
            s.commit()
        engine.dispose()
        c.demo_keys = result.demo_keys  # type: ignore[attr-defined]
        yield c
    finally:
        c.down()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def rctx(pair: Cluster, tmp_path: Path) -> Iterator[AppContext]:
    settings = Settings(
        environment="test",
        data_dir=tmp_path / "data",
        database_url=pair.pg_url("pg-primary"),
        database_read_url=pair.pg_url("pg-replica"),
        search_backend="postgres",
        index_autostart=False,
        ocr_enabled=False,
        read_wait_ms=300,
    )
    settings.data_dir.mkdir(parents=True)
    engine = make_engine(settings.db_url)
    yield AppContext(settings=settings, engine=engine, store=make_store(settings))
    engine.dispose()


@pytest.fixture
def rclient(rctx: AppContext) -> Iterator[TestClient]:
    with TestClient(create_app(rctx.settings, rctx), raise_server_exceptions=False) as c:
        yield c


def _auth(pair: Cluster) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair.demo_keys['admin']}"}  # type: ignore[attr-defined]


def _deposit(client: TestClient, pair: Cluster, word: str) -> int:
    body = f"市道第{word}号線の舗装補修について報告します。".encode()
    r = client.post(
        "/api/v1/documents",
        files={"file": (f"{word}.txt", body, "text/plain")},
        data={"folder_id": "5"},
        headers=_auth(pair),
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_caller_reads_its_own_deposit_from_the_replica(
    pair: Cluster, rctx: AppContext, rclient: TestClient
) -> None:
    served: Counter[str] = Counter()
    for _ in range(ROUNDS):
        word = f"r{uuid.uuid4().hex[:10]}"
        doc_id = _deposit(rclient, pair, word)
        r = rclient.get(f"/api/v1/documents/{doc_id}", headers=_auth(pair))
        assert r.status_code == 200, r.text
        served[r.headers["X-Genpon-Read"]] += 1
        r = rclient.get(f"/api/v1/originals/{r.json()['sha256']}", headers=_auth(pair))
        assert r.status_code == 200, r.text
        assert drain(rctx) >= 1  # the indexer's write, then a search at once
        r = rclient.get("/api/v1/search", params={"q": word}, headers=_auth(pair))
        assert r.status_code == 200, r.text
        served[r.headers["X-Genpon-Read"]] += 1
        assert [h["document_id"] for h in r.json()["hits"]] == [doc_id]
    # the replica took the reads (a fallback to the primary is allowed, but not the rule)
    assert served["replica"] >= ROUNDS, served


def test_a_lagging_replica_is_waited_for_then_bypassed(
    pair: Cluster, rctx: AppContext, rclient: TestClient
) -> None:
    pair.psql("SELECT pg_wal_replay_pause()", server="pg-replica")
    try:
        word = f"p{uuid.uuid4().hex[:10]}"
        doc_id = _deposit(rclient, pair, word)
        # the replica really is behind: the document is not there
        on_replica = pair.psql(
            f"SELECT count(*) FROM document WHERE id = {doc_id}", "genpon", "pg-replica"
        )
        assert on_replica.strip() == "0"
        r = rclient.get(f"/api/v1/documents/{doc_id}", headers=_auth(pair))
        assert r.status_code == 200, r.text
        assert r.headers["X-Genpon-Read"] == "primary"
    finally:
        pair.psql("SELECT pg_wal_replay_resume()", server="pg-replica")
    r = rclient.get(f"/api/v1/documents/{doc_id}", headers=_auth(pair))
    assert r.status_code == 200
    assert r.headers["X-Genpon-Read"] == "replica"


def test_without_a_read_url_reads_stay_on_the_primary(
    pair: Cluster, rctx: AppContext, tmp_path: Path
) -> None:
    settings = rctx.settings.model_copy(update={"database_read_url": None})
    ctx = AppContext(settings=settings, engine=rctx.engine, store=rctx.store)
    with TestClient(create_app(settings, ctx), raise_server_exceptions=False) as client:
        doc_id = _deposit(client, pair, f"n{uuid.uuid4().hex[:10]}")
        r = client.get(f"/api/v1/documents/{doc_id}", headers=_auth(pair))
        assert r.status_code == 200
        assert "X-Genpon-Read" not in r.headers
