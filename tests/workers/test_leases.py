"""Several workers on one outbox (PostgreSQL): every item applied exactly once, none lost,
an expired lease taken over, a stale worker writes nothing."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest
from genpon.core.db import session_scope
from genpon.records.audit import chain as audit
from genpon.records.audit.checkpoints import ensure_checkpoints
from genpon.records.audit.models import Checkpoint
from genpon.search import indexer
from genpon.search.backends import make_backend
from genpon.search.backends.base import IndexEntry, SearchBackend
from genpon.storage.context import AppContext
from sqlmodel import Session, select

from tests.audit.helpers import keyring
from tests.search.helpers import bulk_deposit

pytestmark = pytest.mark.postgres


class Counting:
    """The real backend, counting the contents each call writes (shared by the workers)."""

    def __init__(self, inner: SearchBackend, counts: Counter[str], lock: threading.Lock) -> None:
        self.inner, self.counts, self.lock = inner, counts, lock

    def apply(self, session: Any, batch: dict[str, list[IndexEntry]]) -> None:
        self.inner.apply(session, batch)
        with self.lock:
            self.counts.update(batch.keys())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(autouse=True)
def built_index(ctx: AppContext) -> None:
    """The index exists before the deposits (else the first drain rebuilds everything)."""
    indexer.rebuild(ctx)


def _files(n: int, tag: str) -> list[tuple[str, bytes]]:
    return [(f"{tag}{i}.txt", f"{tag} 予算資料 第{i}号 {i * 7919}".encode()) for i in range(n)]


def _shas(ctx: AppContext) -> list[str]:
    from genpon.records.models import IndexOutbox

    with Session(ctx.engine) as s:
        return list(s.exec(select(IndexOutbox.sha256)).all())


def test_two_workers_apply_each_item_exactly_once(ctx, demo, monkeypatch) -> None:
    monkeypatch.setattr(indexer, "BATCH", 3)  # many small claims, so the workers interleave
    bulk_deposit(ctx, _files(40, "w"))
    expected = set(_shas(ctx))
    assert len(expected) == 40
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    done: dict[str, int] = {}

    def work(name: str) -> None:
        backend = Counting(make_backend(ctx), counts, lock)
        done[name] = indexer.drain(ctx, owner=name, backend=backend)  # type: ignore[arg-type]

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert indexer.pending(ctx) == 0
    assert set(counts) == expected
    assert max(counts.values()) == 1, counts.most_common(3)  # none written twice
    assert sum(done.values()) == 40


def test_an_expired_lease_is_taken_over_and_the_stale_worker_writes_nothing(ctx, demo) -> None:
    bulk_deposit(ctx, _files(6, "d"))
    dead = indexer.claim(ctx, "dead-worker", 4)  # claimed, then the worker "dies"
    assert len(dead) == 4
    counts: Counter[str] = Counter()
    backend = Counting(make_backend(ctx), counts, threading.Lock())
    assert indexer.drain(ctx, owner="live", backend=backend) == 2  # type: ignore[arg-type]
    assert indexer.pending(ctx) == 4  # leased rows are not taken while the lease runs
    time.sleep(ctx.settings.index_lease_seconds + 0.5)
    assert indexer.drain(ctx, owner="live", backend=backend) == 4  # type: ignore[arg-type]
    assert indexer.pending(ctx) == 0
    assert sum(counts.values()) == 6
    # the dead worker wakes up and finishes its batch: it lost the lease, so it writes nothing
    stale: Counter[str] = Counter()
    late = Counting(make_backend(ctx), stale, threading.Lock())
    ids = [i for i, _ in dead]
    applied = indexer.process(ctx, late, [s for _, s in dead], ids, owner="dead-worker")  # type: ignore[arg-type]
    assert applied == 0 and not stale


def test_a_batch_longer_than_its_lease_keeps_it(ctx, demo) -> None:
    """The lease is renewed while the batch runs: a slow batch is not taken over."""
    bulk_deposit(ctx, _files(3, "r"))
    mine = indexer.claim(ctx, "slow", 3)
    ids = [i for i, _ in mine]
    with indexer.LeaseKeeper(ctx, "slow", ids):
        time.sleep(ctx.settings.index_lease_seconds * 2 + 0.5)
        assert indexer.claim(ctx, "other", 3) == []
    time.sleep(ctx.settings.index_lease_seconds + 0.5)  # renewal stopped: the lease runs out
    assert [i for i, _ in indexer.claim(ctx, "other", 3)] == ids


def test_a_lost_lease_keeps_the_newer_claim(ctx, demo) -> None:
    bulk_deposit(ctx, _files(2, "n"))
    first = indexer.claim(ctx, "old", 2)
    time.sleep(ctx.settings.index_lease_seconds + 0.5)
    second = indexer.claim(ctx, "new", 2)
    assert [i for i, _ in second] == [i for i, _ in first]
    backend = make_backend(ctx)
    ids = [i for i, _ in first]
    assert indexer.process(ctx, backend, [s for _, s in first], ids, owner="old") == 0
    assert indexer.pending(ctx) == 2  # still there for the new owner
    assert indexer.process(ctx, backend, [s for _, s in second], ids, owner="new") == 2
    assert indexer.pending(ctx) == 0


def test_checkpointers_of_several_workers_take_turns(ctx) -> None:
    ring = keyring(ctx)
    with session_scope(ctx.engine) as s:
        for i in range(9):
            audit.record(s, actor="a", action="test.write", target_type="t", target_id=i)
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def run() -> None:
        try:
            barrier.wait()
            with session_scope(ctx.engine) as s:
                ensure_checkpoints(s, ring, every=3)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    with Session(ctx.engine) as s:
        sizes = sorted(s.exec(select(Checkpoint.tree_size)).all())
    assert sizes == [3, 6, 9]  # one each, never signed twice
