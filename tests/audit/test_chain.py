"""The chain under concurrency, checkpoints every N events, key rotation, and the Merkle code
shared with the offline verifier."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from genpon.core.clock import utcnow
from genpon.core.db import session_scope
from genpon.records import audit
from genpon.records.access import SYSTEM_ACTOR
from genpon.records.audit import format as audit_format
from genpon.records.audit.checkpoints import Checkpointer, ensure_checkpoints, rotate_key
from genpon.records.audit.export import export_audit
from genpon.records.audit.models import Checkpoint
from genpon.records.audit.query import check_log
from genpon.records.models import AuditEvent
from sqlmodel import Session, col, select

from genpon_verify import canonical
from genpon_verify.merkle import (
    EMPTY_ROOT,
    Frontier,
    consistency_path,
    inclusion_path,
    leaf_hash,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from genpon_verify.verify import verify_export
from tests.audit.helpers import checkpoint, history, keyring
from tests.conftest import BOTH_DBS


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 MTH written as in the RFC, to check the fast code against."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(_mth(leaves[:k]), _mth(leaves[k:]))


def test_merkle_matches_rfc6962_and_proofs_verify():
    leaves = [leaf_hash(hashlib.sha256(str(i).encode()).hexdigest()) for i in range(40)]
    for n in range(1, 41):
        root = _mth(leaves[:n])
        assert root_of(leaves[:n]) == root
        for m in range(n):
            path = inclusion_path(leaves, m, n)
            assert verify_inclusion(leaves[m], m, n, path, root)
            assert not verify_inclusion(leaves[(m + 1) % 40], m, n, path, root) or n == 1
        for m in range(1, n + 1):
            path = consistency_path(leaves, m, n)
            assert verify_consistency(m, n, _mth(leaves[:m]), root, path)
            if m < n:
                assert not verify_consistency(m, n, _mth(leaves[1 : m + 1]), root, path)
    f = Frontier()
    f.extend(leaves[:13])
    again = Frontier.from_json(json.loads(json.dumps(f.to_json())))
    assert again.root() == f.root() == _mth(leaves[:13])


def test_the_canonical_form_is_pinned_and_shared_with_the_verifier():
    """The event hash is over these exact bytes (keys sorted, no spaces, UTF-8 unescaped, the
    ``hash`` field left out), and the server uses the verifier's function, not a copy."""
    ev = {
        "seq": 1,
        "at": "2026-04-01T00:00:00.000000Z",
        "actor": "田中",
        "action": "document.deposited",
        "target_type": "document",
        "target_id": "7",
        "case_id": None,
        "details": {"title": "予算 ✓", "n": 2, "list": [1, "二"]},
        "prev_hash": "0" * 64,
        "hash": "not part of the hash",
    }
    expected = (
        '{"action":"document.deposited","actor":"田中","at":"2026-04-01T00:00:00.000000Z",'
        '"case_id":null,"details":{"list":[1,"二"],"n":2,"title":"予算 ✓"},'
        f'"prev_hash":"{"0" * 64}","seq":1,"target_id":"7","target_type":"document"}}'
    ).encode()
    assert canonical.canonical_bytes(ev) == expected
    assert audit_format.event_hash(ev) == hashlib.sha256(expected).hexdigest()
    assert audit_format.event_hash is canonical.event_hash
    assert canonical.GENESIS_HASH == audit_format.GENESIS_HASH == "0" * 64


@BOTH_DBS
def test_concurrent_writers_keep_one_chain(ctx):
    ring = keyring(ctx)

    def writer(w: int) -> None:
        for i in range(15):
            with session_scope(ctx.engine) as s:
                audit.record(s, actor=f"w{w}", action="test.write", target_type="t", target_id=i)

    def signer() -> None:
        for _ in range(5):
            with session_scope(ctx.engine) as s:
                ensure_checkpoints(s, ring, every=7)

    with ThreadPoolExecutor(max_workers=7) as pool:
        futs = [pool.submit(writer, w) for w in range(6)] + [pool.submit(signer)]
        for f in futs:
            f.result()
    with Session(ctx.engine) as s:
        seqs = list(s.exec(select(AuditEvent.seq).order_by(col(AuditEvent.seq))).all())
        assert seqs == list(range(1, 91))
        ensure_checkpoints(s, ring, every=7)
        s.commit()
        result = check_log(s, SYSTEM_ACTOR, ring)
        assert result.ok, result
        sizes = sorted(s.exec(select(Checkpoint.tree_size)).all())
        # never more than N events between checkpoints
        assert sizes[-1] >= 84
        assert all(b - a <= 7 for a, b in zip([0, *sizes], sizes, strict=False))


def test_interval_and_daily_checkpoints(ctx):
    ring = keyring(ctx)
    with session_scope(ctx.engine) as s:
        for i in range(25):
            audit.record(s, actor="a", action="test.write", target_type="t", target_id=i)
    with session_scope(ctx.engine) as s:
        made = ensure_checkpoints(s, ring, every=10)
        assert [c.tree_size for c in made] == [10, 20]
        assert [c.reason for c in made] == ["interval", "interval"]
        assert ensure_checkpoints(s, ring, every=10) == []  # nothing due now
        # a day later with no interval due: a daily checkpoint at the head
        later = ensure_checkpoints(s, ring, every=10, now=utcnow() + timedelta(hours=25))
        assert [(c.tree_size, c.reason) for c in later] == [(25, "daily")]


def test_checkpointer_thread_runs(ctx):
    ring = keyring(ctx)
    with session_scope(ctx.engine) as s:
        for i in range(4):
            audit.record(s, actor="a", action="test.write", target_type="t", target_id=i)
    cp = Checkpointer(ctx.engine, ring, every=2, interval=0.05)
    cp.start()
    cp.stop()
    with Session(ctx.engine) as s:
        assert sorted(s.exec(select(Checkpoint.tree_size)).all()) == [2, 4]


def test_key_rotation_is_in_the_log_and_verifies(client, demo, ctx, tmp_path):
    ring = keyring(ctx)
    history(client, demo, ctx, n=1)
    checkpoint(ctx, ring)
    old = ring.key_id
    r = rotate_key(ctx.engine, ring, SYSTEM_ACTOR)
    assert r.old_key_id == old and r.new_key_id == ring.key_id != old
    with Session(ctx.engine) as s:
        ev = s.get(AuditEvent, r.event_seq)
        assert ev is not None and ev.action == "system_key.rotated"
        assert ev.details["new_key_id"] == r.new_key_id
    history(client, demo, ctx, n=1)
    export_audit(ctx.engine, ring, SYSTEM_ACTOR, tmp_path / "x")
    report = verify_export(tmp_path / "x")
    assert report.ok, report.failures
    assert report.keys == sorted([old, r.new_key_id]) and report.anchor_keys == [old]
    # a key that signs without an endorsed rotation event is not trusted
    rogue = ring.rotate()[1]  # rotated on disk, never recorded
    history(client, demo, ctx, n=1)
    export_audit(ctx.engine, ring, SYSTEM_ACTOR, tmp_path / "y")
    report = verify_export(tmp_path / "y")
    assert any(rogue in f.message for f in report.failures if f.kind == "checkpoint")


def test_staff_cannot_rotate(ctx, demo):
    from genpon.core.errors import Forbidden
    from genpon.records.access import actor_for_user
    from genpon.records.master import get_user

    ring = keyring(ctx)
    with Session(ctx.engine) as s:
        staff = actor_for_user(s, get_user(s, "tanaka"))
    with pytest.raises(Forbidden):
        rotate_key(ctx.engine, ring, staff)
