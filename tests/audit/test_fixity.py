"""Fixity audits re-hash stored blobs: a flipped byte or a lost blob is reported with the
documents, cases and folders it backs — on the local store and on S3 (SeaweedFS)."""

from __future__ import annotations

import os
import random

import pytest
from fastapi.testclient import TestClient
from genpon.api.app import create_app
from genpon.records.access import SYSTEM_ACTOR
from genpon.records.audit.fixity import run_fixity
from genpon.records.audit.models import FixityFinding
from genpon.records.models import AuditEvent, Blob
from genpon.storage.context import AppContext
from sqlmodel import Session, select

from tests.audit.helpers import history, keyring
from tests.records.helpers import deposit, new_case


def _flip_local(ctx: AppContext, sha: str) -> None:
    path = ctx.store.local_path(sha)
    assert path is not None
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_flipped_byte_and_missing_blob_are_reported(client, demo, ctx):
    docs = history(client, demo, ctx)
    corrupt, lost = docs[1], docs[4]
    _flip_local(ctx, corrupt["sha256"])
    path = ctx.store.local_path(lost["sha256"])
    assert path is not None
    path.unlink()

    ticks: list[int] = []
    run = run_fixity(ctx.engine, ctx.store, SYSTEM_ACTOR, workers=2, progress=ticks.append)
    assert (run.selected, run.checked, run.ok, run.corrupt, run.missing) == (5, 5, 3, 1, 1)
    assert len(ticks) == 5 and run.status == "done"
    with Session(ctx.engine) as s:
        findings = {f.sha256: f for f in s.exec(select(FixityFinding)).all()}
        bad = findings[corrupt["sha256"]]
        assert bad.problem == "corrupt" and bad.actual_sha256 not in (None, corrupt["sha256"])
        [d] = bad.documents
        assert d["document_id"] == corrupt["id"]
        assert d["case_id"] == corrupt["case_id"] and d["folder_id"] == corrupt["folder_id"]
        assert d["folder_path"] == corrupt["folder_path"]
        [m] = findings[lost["sha256"]].documents
        assert findings[lost["sha256"]].problem == "missing"
        assert m["document_id"] == lost["id"] and m["folder_path"] == "/財政課チーム"
        blob = s.get(Blob, corrupt["sha256"])
        assert blob is not None and blob.fixity_ok is False and blob.last_fixity_at is not None
        ok_blob = s.get(Blob, docs[0]["sha256"])
        assert ok_blob is not None and ok_blob.fixity_ok is True
        events = s.exec(select(AuditEvent).where(AuditEvent.action.startswith("fixity."))).all()  # type: ignore[attr-defined]
        failed = [e for e in events if e.action == "fixity.failed"]
        assert {e.target_id for e in failed} == {corrupt["sha256"], lost["sha256"]}
        assert any(e.case_id == corrupt["case_id"] for e in failed)
        assert [e.details["corrupt"] for e in events if e.action == "fixity.completed"] == [1]


def test_sample_and_older_than_select_blobs(client, demo, ctx):
    history(client, demo, ctx)
    run = run_fixity(
        ctx.engine, ctx.store, SYSTEM_ACTOR, mode="sample", sample=2, rng=random.Random(1)
    )
    assert run.checked == 2 and run.ok == 2
    run = run_fixity(ctx.engine, ctx.store, SYSTEM_ACTOR, mode="older_than", older_than_days=1)
    assert run.selected == 3  # the two sampled ones were checked just now
    run = run_fixity(ctx.engine, ctx.store, SYSTEM_ACTOR, mode="older_than", older_than_days=1)
    assert run.selected == 0


def test_fixity_api_and_roles(client, demo, ctx):
    docs = history(client, demo, ctx, n=1)
    _flip_local(ctx, docs[0]["sha256"])
    r = client.post("/api/v1/audit/fixity", json={"mode": "all"}, headers=demo.auth("tanaka"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "role_required"
    r = client.post("/api/v1/audit/fixity", json={"mode": "sample"}, headers=demo.auth("yamada"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_sample"
    r = client.post("/api/v1/audit/fixity", json={"mode": "nope"}, headers=demo.auth("yamada"))
    assert r.status_code == 422
    r = client.post(
        "/api/v1/audit/fixity", json={"mode": "all", "workers": 2}, headers=demo.auth("yamada")
    )
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["corrupt"] == 1 and run["actor"] == "yamada"
    r = client.get(f"/api/v1/audit/fixity/runs/{run['id']}", headers=demo.auth("yamada"))
    [finding] = r.json()["findings"]
    assert finding["documents"][0]["document_id"] == docs[0]["id"]
    r = client.get("/api/v1/audit/fixity/runs", headers=demo.auth("admin"))
    assert r.json()["count"] == 1
    assert (
        client.get("/api/v1/audit/fixity/runs/999", headers=demo.auth("admin")).status_code == 404
    )


@pytest.mark.s3
def test_fixity_on_s3(ctx, s3_store, settings):
    s3_ctx = AppContext(settings=settings, engine=ctx.engine, store=s3_store)
    from genpon.records.bootstrap import InitResult, load_demo

    result = InitResult()
    with Session(ctx.engine) as s:
        load_demo(s, result)
        s.commit()
    auth = {"Authorization": f"Bearer {result.demo_keys['tanaka']}"}
    keyring(s3_ctx)
    with TestClient(create_app(settings, s3_ctx), raise_server_exceptions=False) as client:
        case = new_case(client, auth)
        docs = [
            deposit(client, auth, f"S3の文書{i}".encode() * 50, case_id=case["case_id"]).json()
            for i in range(3)
        ]
    sha = docs[2]["sha256"]
    body = bytearray(s3_store.open(sha).read())
    body[0] ^= 0xFF
    s3_store.client.put_object(Bucket=s3_store.bucket, Key=s3_store.key(sha), Body=bytes(body))
    s3_store.client.delete_object(Bucket=s3_store.bucket, Key=s3_store.key(docs[1]["sha256"]))
    run = run_fixity(ctx.engine, s3_store, SYSTEM_ACTOR, workers=2)
    assert (run.store, run.checked, run.ok, run.corrupt, run.missing) == ("s3", 3, 1, 1, 1)
    with Session(ctx.engine) as s:
        f = s.exec(select(FixityFinding).where(FixityFinding.sha256 == sha)).one()
        assert f.documents[0]["document_id"] == docs[2]["id"]
        assert f.documents[0]["case_id"] == case["case_id"]
