"""Auditor endpoints: events by target/actor/date, checkpoints, proofs that verify offline."""

from __future__ import annotations

from genpon.core.clock import local_date, utcnow

from genpon_verify.verify import Report, load_keys, verify_proof
from tests.audit.helpers import checkpoint, history, keyring


def test_events_checkpoints_and_proofs(client, demo, ctx, tmp_path):
    ring = keyring(ctx)
    docs = history(client, demo, ctx)
    auditor = demo.auth("yamada")

    # role: staff may not read the audit endpoints
    r = client.get("/api/v1/audit/events", headers=demo.auth("tanaka"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "role_required"
    assert client.get("/api/v1/audit/events").status_code == 401

    # by target
    r = client.get(
        "/api/v1/audit/events",
        params={"target_type": "document", "target_id": docs[0]["id"]},
        headers=auditor,
    )
    actions = [e["action"] for e in r.json()["items"]]
    assert actions == ["document.deposited", "document.read"]
    # by actor and action prefix, paged
    r = client.get(
        "/api/v1/audit/events",
        params={"actor": "tanaka", "action": "document.", "limit": 2},
        headers=auditor,
    )
    page = r.json()
    assert len(page["items"]) == 2 and page["next_after"] == page["items"][-1]["seq"]
    r = client.get(
        "/api/v1/audit/events",
        params={"actor": "tanaka", "action": "document.", "after_seq": page["next_after"]},
        headers=auditor,
    )
    assert len(r.json()["items"]) == 4
    # by business date (city time zone)
    today = local_date(utcnow(), ctx.settings.timezone).isoformat()
    r = client.get("/api/v1/audit/events", params={"date": today, "limit": 1000}, headers=auditor)
    assert len(r.json()["items"]) >= 8
    r = client.get("/api/v1/audit/events", params={"date": "2001-01-01"}, headers=auditor)
    assert r.json()["items"] == []
    # bad input: 4xx with a code
    r = client.get("/api/v1/audit/events", params={"target_id": "1"}, headers=auditor)
    assert r.status_code == 422 and r.json()["error"]["code"] == "target_type_required"
    assert (
        client.get("/api/v1/audit/events", params={"limit": 0}, headers=auditor).status_code == 422
    )
    assert client.get("/api/v1/audit/events/99999", headers=auditor).status_code == 404

    # no checkpoint yet: a clear conflict
    r = client.get(f"/api/v1/audit/proofs/document/{docs[0]['id']}", headers=auditor)
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_checkpointed"
    first = checkpoint(ctx, ring)
    history(client, demo, ctx, n=1)
    r = client.post("/api/v1/audit/checkpoints", headers=auditor)
    assert r.status_code == 201
    second = r.json()
    assert second["tree_size"] > first.tree_size and second["signature"]["key_id"] == ring.key_id
    r = client.get("/api/v1/audit/checkpoints", headers=auditor)
    assert r.json()["count"] == 2 and r.json()["items"][0]["id"] == second["id"]
    latest = client.get("/api/v1/audit/checkpoints/latest", headers=auditor).json()
    assert latest["id"] == second["id"]

    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    pems = client.get("/api/v1/audit/keys", headers=demo.auth("tanaka")).json()
    for kid, pem in pems["keys"].items():
        (keys_dir / f"{kid}.pub").write_text(pem)
    keys = load_keys(keys_dir, Report())

    # inclusion proof of a document's deposit, checked with the offline verifier code
    proof = client.get(f"/api/v1/audit/proofs/document/{docs[2]['id']}", headers=auditor).json()
    assert proof["verified"] and proof["event"]["action"] == "document.deposited"
    assert proof["event"]["details"]["sha256"] == docs[2]["sha256"]
    assert verify_proof(proof, keys) == []
    forged = {**proof, "event_hash": proof["path"][0]}
    assert verify_proof(forged, keys)
    # against an older checkpoint
    r = client.get(
        "/api/v1/audit/proofs/inclusion",
        params={"seq": 3, "tree_size": first.tree_size},
        headers=auditor,
    )
    assert r.status_code == 200 and verify_proof(r.json(), keys) == []
    # consistency between the two checkpoints
    r = client.get(
        "/api/v1/audit/proofs/consistency", params={"first": first.tree_size}, headers=auditor
    )
    cons = r.json()
    assert cons["verified"] and cons["second"] == second["tree_size"]
    assert verify_proof(cons, keys) == []
    assert verify_proof({**cons, "first_root": "00" * 32}, keys)
    r = client.get("/api/v1/audit/proofs/consistency", params={"first": 10**6}, headers=auditor)
    assert r.status_code == 409 and r.json()["error"]["code"] == "log_truncated"

    r = client.get("/api/v1/audit/verify", headers=demo.auth("admin"))
    assert r.status_code == 200 and r.json()["ok"] is True
