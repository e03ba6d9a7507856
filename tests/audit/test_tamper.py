"""Tampering with the log in the database, or with an export, is detected and named.

The application has no path that updates or deletes events (and the database refuses: the
first test). The others play someone with DDL rights: they drop the guard triggers, change rows
directly, and the offline verifier must name the event that fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from genpon.core.db import session_scope
from genpon.core.errors import Conflict
from genpon.core.signing import public_pem
from genpon.records import audit
from genpon.records.access import SYSTEM_ACTOR
from genpon.records.audit.checkpoints import ChainBroken, create_checkpoint, event_dict, statement
from genpon.records.audit.format import event_hash
from genpon.records.audit.models import Checkpoint
from genpon.records.audit.query import consistency_proof
from genpon.records.models import AuditEvent, AuditHead
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select

from genpon_verify.canonical import signed_bytes
from genpon_verify.merkle import verify_consistency
from genpon_verify.verify import verify_export
from tests.audit.helpers import (
    checkpoint,
    drop_guard,
    event_count,
    export_and_verify,
    history,
    keyring,
    sql,
)
from tests.conftest import BOTH_DBS


@pytest.fixture
def logged(client, demo, ctx):
    """Some history, signed: (keyring, number of events)."""
    ring = keyring(ctx)
    history(client, demo, ctx)
    checkpoint(ctx, ring)
    return ring, event_count(ctx)


@BOTH_DBS
def test_untampered_export_verifies(logged, ctx, tmp_path):
    ring, n = logged
    report = export_and_verify(ctx, ring, tmp_path / "x", blobs=ctx.settings.blob_dir)
    assert report.ok, report.failures
    assert report.events == n + 1  # the export itself is an event
    assert report.documents == 5 and report.blobs_checked == 5
    assert report.checkpoints == 2


@BOTH_DBS
def test_database_refuses_update_and_delete(logged, ctx):
    with pytest.raises(DBAPIError):
        sql(ctx.engine, "UPDATE audit_event SET actor = 'x' WHERE seq = 3")
    with pytest.raises(DBAPIError):
        sql(ctx.engine, "DELETE FROM audit_event WHERE seq = 3")


@BOTH_DBS
def test_edited_event_is_named(logged, ctx, tmp_path):
    ring, _ = logged
    drop_guard(ctx.engine)
    sql(ctx.engine, "UPDATE audit_event SET actor = 'yamada' WHERE seq = 5")
    report = export_and_verify(ctx, ring, tmp_path / "x")
    first = report.first_event_failure
    assert first is not None and first.ref == "5" and "改ざん" in first.message
    # the signed checkpoint no longer matches either
    assert any(f.kind == "checkpoint" for f in report.failures)


@BOTH_DBS
def test_deleted_event_is_named(logged, ctx, tmp_path):
    ring, _ = logged
    drop_guard(ctx.engine)
    sql(ctx.engine, "DELETE FROM audit_event WHERE seq = 7")
    report = export_and_verify(ctx, ring, tmp_path / "x")
    first = report.first_event_failure
    assert first is not None and first.ref == "7" and "ありません" in first.message


def _shift_from(ctx, seq: int) -> None:
    """Make room at ``seq`` by renumbering the later events (two steps: unique keys)."""
    sql(ctx.engine, "UPDATE audit_event SET seq = seq + 1000000 WHERE seq >= :s", s=seq)
    sql(ctx.engine, "UPDATE audit_event SET seq = seq - 999999 WHERE seq >= 1000000")


@BOTH_DBS
def test_inserted_event_is_named(logged, ctx, tmp_path):
    ring, _ = logged
    drop_guard(ctx.engine)
    _shift_from(ctx, 6)
    with session_scope(ctx.engine) as s:
        before = s.get(AuditEvent, 5)
        assert before is not None
        forged = {
            **event_dict(before),
            "seq": 6,
            "action": "document.approved",
            "prev_hash": before.hash,
        }
        forged["hash"] = event_hash(forged)
        s.add(AuditEvent(**forged))
        head = s.get(AuditHead, 1)
        assert head is not None
        head.seq += 1  # keep appenders going after the forged row
        s.add(head)
    report = export_and_verify(ctx, ring, tmp_path / "x")
    first = report.first_event_failure
    assert first is not None and first.ref == "6" and "挿入" in first.message


@BOTH_DBS
def test_reordered_events_are_named(logged, ctx, tmp_path):
    ring, _ = logged
    drop_guard(ctx.engine)
    sql(ctx.engine, "UPDATE audit_event SET seq = -1 WHERE seq = 8")
    sql(ctx.engine, "UPDATE audit_event SET seq = 8 WHERE seq = 9")
    sql(ctx.engine, "UPDATE audit_event SET seq = 9 WHERE seq = -1")
    report = export_and_verify(ctx, ring, tmp_path / "x")
    first = report.first_event_failure
    assert first is not None and first.ref == "8"


def test_rewritten_chain_fails_against_the_signed_checkpoint(logged, ctx, tmp_path):
    """An attacker who re-hashes every later event keeps the chain intact; the root does not."""
    ring, n = logged
    drop_guard(ctx.engine)
    with session_scope(ctx.engine) as s:
        rows = list(s.exec(select(AuditEvent).order_by(col(AuditEvent.seq))).all())
        prev = rows[3].hash
        for e in rows[4:]:
            d = event_dict(e)
            d["prev_hash"] = prev
            if e.seq == 5:
                d["actor"] = "yamada"
            d["hash"] = event_hash(d)
            s.exec(  # type: ignore[call-overload]
                AuditEvent.__table__.update()  # type: ignore[attr-defined]
                .where(AuditEvent.__table__.c.seq == e.seq)  # type: ignore[attr-defined]
                .values(actor=d["actor"], prev_hash=d["prev_hash"], hash=d["hash"])
            )
            prev = d["hash"]
        head = s.get(AuditHead, 1)
        assert head is not None
        head.hash = prev
        s.add(head)
    # the system refuses to sign on top of a log that no longer matches its last checkpoint
    with pytest.raises(ChainBroken), session_scope(ctx.engine) as s:
        audit.record(s, actor="system", action="test.appended", target_type="t", target_id=1)
        create_checkpoint(s, ring)
    report = export_and_verify(ctx, ring, tmp_path / "x")
    assert report.first_event_failure is None  # the chain itself is consistent …
    bad = [f for f in report.failures if f.kind == "checkpoint"]
    assert bad and f"1〜{n}" in bad[0].message  # … but not what was signed


def test_forged_checkpoint_signature_fails(logged, ctx, tmp_path):
    ring, n = logged
    attacker = Ed25519PrivateKey.generate()
    with session_scope(ctx.engine) as s:
        cp = s.exec(select(Checkpoint)).one()
        cp.root_hash = "ab" * 32
        body = {k: v for k, v in statement(cp).items() if k != "signature"}
        import base64

        cp.signature = base64.b64encode(attacker.sign(signed_bytes(body))).decode()
        s.add(cp)
    report = export_and_verify(ctx, ring, tmp_path / "x")
    bad = [f for f in report.failures if f.kind == "checkpoint"]
    assert bad and bad[0].ref == f"size={n}" and "署名が正しくありません" in bad[0].message


def test_replaced_public_key_fails(logged, ctx, tmp_path):
    ring, _ = logged
    out = tmp_path / "x"
    assert export_and_verify(ctx, ring, out).ok
    kid = ring.key_id
    (out / "keys" / f"{kid}.pub").write_text(public_pem(Ed25519PrivateKey.generate().public_key()))
    report = verify_export(out)
    assert any(f.kind == "key" and f.ref == kid for f in report.failures)
    assert any(f.kind == "checkpoint" for f in report.failures)


def test_resigned_export_fails_against_a_trusted_key(logged, ctx, tmp_path):
    """Someone re-signs everything with their own key: the auditor's pinned key catches it."""
    ring, _ = logged
    out = tmp_path / "x"
    assert export_and_verify(ctx, ring, out).ok
    trusted = (out / "keys" / f"{ring.key_id}.pub").read_text()
    from genpon.core.signing import SystemKeyring

    fake = SystemKeyring(tmp_path / "fake")
    fake.ensure()
    lines = []
    for line in (out / "checkpoints.jsonl").read_text().splitlines():
        cp = json.loads(line)
        lines.append(json.dumps(fake.sign_json(cp), ensure_ascii=False))
    (out / "checkpoints.jsonl").write_text("\n".join(lines) + "\n")
    manifest = json.loads((out / "manifest.json").read_text())
    from genpon_verify.verify import file_sha256

    manifest["files"]["checkpoints.jsonl"]["sha256"] = file_sha256(out / "checkpoints.jsonl")
    (out / "manifest.json").write_text(json.dumps(fake.sign_json(manifest), ensure_ascii=False))
    for p in (out / "keys").iterdir():
        p.unlink()
    (out / "keys" / f"{fake.key_id}.pub").write_text(fake.public_keys_pem()[fake.key_id])
    assert verify_export(out).ok  # self-consistent without an anchor (trust on first use) …
    report = verify_export(out, trusted_keys=[trusted])
    assert not report.ok  # … but not signed by the key the auditor holds
    assert any("信頼する鍵" in f.message for f in report.failures)


@BOTH_DBS
def test_truncated_log_fails_consistency_with_an_older_checkpoint(client, demo, ctx, tmp_path):
    ring = keyring(ctx)
    history(client, demo, ctx, n=2)
    base = checkpoint(ctx, ring)
    history(client, demo, ctx, n=2)
    kept = statement(checkpoint(ctx, ring))  # the auditor keeps this one
    size = kept["tree_size"]

    # truncate the last 5 events and hide the checkpoint that covered them
    drop_guard(ctx.engine)
    sql(ctx.engine, "DELETE FROM audit_event WHERE seq > :n", n=size - 5)
    sql(ctx.engine, "DELETE FROM audit_checkpoint WHERE tree_size > :n", n=base.tree_size)
    with session_scope(ctx.engine) as s:
        last = s.get(AuditEvent, size - 5)
        head = s.get(AuditHead, 1)
        assert last is not None and head is not None
        head.seq, head.hash = last.seq, last.hash
        s.add(head)
    with Session(ctx.engine) as s, pytest.raises(Conflict) as exc:
        consistency_proof(s, SYSTEM_ACTOR, size)
    assert exc.value.code == "log_truncated"

    # then grow the log past the old size again and sign it
    history(client, demo, ctx, n=2)
    newer = statement(checkpoint(ctx, ring))
    assert newer["tree_size"] > size
    with Session(ctx.engine) as s:
        proof = consistency_proof(s, SYSTEM_ACTOR, size, newer["tree_size"])
    ok = verify_consistency(
        size,
        newer["tree_size"],
        bytes.fromhex(kept["root_hash"]),
        bytes.fromhex(newer["root_hash"]),
        [bytes.fromhex(h) for h in proof.path],
    )
    assert not ok
    report = export_and_verify(ctx, ring, tmp_path / "x", known_checkpoints=[kept])
    assert any(f.kind == "known_checkpoint" for f in report.failures)


def test_export_refuses_a_non_empty_directory(logged, ctx, tmp_path):
    from genpon.core.errors import InvalidInput
    from genpon.records.audit.export import export_audit

    ring, _ = logged
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f").write_text("x")
    with pytest.raises(InvalidInput):
        export_audit(ctx.engine, ring, SYSTEM_ACTOR, Path(tmp_path / "x"))
