"""廃棄証明書: built, signed with Ed25519, verified; any tampering or a wrong key fails."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from genpon.core.signing import SystemKeyring
from genpon.retention.certificate import (
    CERT_TYPE,
    build_certificate,
    certificate_bytes,
    verify_certificate,
)

from genpon_verify.canonical import signed_bytes

BATCH = {
    "issuer": {"name": "架空市", "system": "Genpon"},
    "batch_id": 42,
    "requested_by": "tanaka",
    "approved_by": "suzuki",
    "executed_at": datetime(2032, 4, 2, 10, 0, tzinfo=timezone(timedelta(hours=9))),
}


def _items() -> list[dict[str, Any]]:
    return [
        {
            "document_id": doc_id,
            "title": f"令和8年度 文書{doc_id}",
            "case_id": "2026-SOUMU-00001",
            "class": {"code": "01-02-03", "name": "文書廃棄"},
            "sha256": hashlib.sha256(str(doc_id).encode()).hexdigest(),
            "size": 1000 + doc_id,
            "retention_end": date(2032, 3, 31),
            "approved_by": "suzuki",
            "destroyed_at": datetime(2032, 4, 2, 1, 0, doc_id, tzinfo=UTC),
        }
        for doc_id in (12, 3, 7)
    ]


class _ForeignSigner:
    """An attacker's own Ed25519 key, signing under a key id it claims."""

    def __init__(self, key_id: str) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.key_id = key_id

    def sign_json(self, obj: dict[str, Any]) -> dict[str, Any]:
        value = base64.b64encode(self.key.sign(signed_bytes(obj))).decode("ascii")
        body = {k: v for k, v in obj.items() if k != "signature"}
        return {**body, "signature": {"alg": "Ed25519", "key_id": self.key_id, "value": value}}


@pytest.fixture()
def signer(tmp_path: Path) -> SystemKeyring:
    ring = SystemKeyring(tmp_path / "keys")
    ring.ensure()
    return ring


@pytest.fixture()
def keys(signer: SystemKeyring) -> dict[str, Any]:
    return {signer.key_id: signer.public_key()}


def test_certificate_contents(signer: SystemKeyring) -> None:
    cert = build_certificate(
        BATCH, _items(), signer=signer, issued_at=datetime(2032, 4, 2, tzinfo=UTC)
    )
    assert cert["type"] == CERT_TYPE
    assert cert["title"] == "廃棄証明書"
    assert cert["batch_id"] == 42
    assert cert["certificate_id"] == "DC-42"
    assert cert["requested_by"] == "tanaka" and cert["approved_by"] == "suzuki"
    assert cert["executed_at"] == "2032-04-02T01:00:00+00:00"  # stored in UTC
    assert cert["item_count"] == 3
    assert cert["total_size"] == 1012 + 1003 + 1007
    assert [i["document_id"] for i in cert["items"]] == [3, 7, 12]  # deterministic order
    item = cert["items"][0]
    assert set(item) == {
        "document_id", "title", "case_id", "class", "sha256", "size", "retention_end",
        "approved_by", "destroyed_at",
    }  # fmt: skip
    assert item["retention_end"] == "2032-03-31"
    assert item["sha256"] == hashlib.sha256(b"3").hexdigest()
    sig = cert["signature"]
    assert sig["alg"] == "Ed25519" and sig["key_id"] == signer.key_id
    assert len(base64.b64decode(sig["value"])) == 64


def test_signature_is_over_the_agreed_canonical_json(signer: SystemKeyring) -> None:
    cert = build_certificate(BATCH, _items(), signer=signer)
    body = {k: v for k, v in cert.items() if k != "signature"}
    expected = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert signed_bytes(cert) == expected
    signer.public_key().verify(base64.b64decode(cert["signature"]["value"]), expected)


def test_verify_ok_from_dict_and_file(
    signer: SystemKeyring, keys: dict[str, Any], tmp_path: Path
) -> None:
    cert = build_certificate(BATCH, _items(), signer=signer)
    result = verify_certificate(cert, keys)
    assert result.ok and result.reason == "ok" and result.item_count == 3
    path = tmp_path / "cert.json"
    path.write_bytes(certificate_bytes(cert))
    assert verify_certificate(path, keys).ok
    assert verify_certificate(str(path), keys).ok
    # public key given as raw bytes or PEM works too
    pub = signer.public_key()
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    pem = pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert verify_certificate(path, {signer.key_id: raw}).ok
    assert verify_certificate(path, {signer.key_id: pem.decode()}).ok


@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: c["items"][0].update(sha256="0" * 64),
        lambda c: c["items"][1].update(size=c["items"][1]["size"] + 1),
        lambda c: c["items"][2].update(title="差し替え"),
        lambda c: c["items"][0].update(approved_by="tanaka"),
        lambda c: c["items"][0].update(destroyed_at="2032-04-03T00:00:00+00:00"),
        lambda c: c["items"].pop(),
        lambda c: c["items"].append(copy.deepcopy(c["items"][0]) | {"document_id": 99}),
        lambda c: c.update(approved_by="tanaka"),
        lambda c: c.update(batch_id=43),
        lambda c: c.update(extra="added"),
    ],
)
def test_any_tampering_fails(signer: SystemKeyring, keys: dict[str, Any], tamper: Any) -> None:
    cert = build_certificate(BATCH, _items(), signer=signer)
    assert verify_certificate(cert, keys).ok
    forged = copy.deepcopy(cert)
    tamper(forged)
    result = verify_certificate(forged, keys)
    assert not result.ok
    assert result.reason == "bad_signature"


def test_tampered_file_fails(signer: SystemKeyring, keys: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "cert.json"
    path.write_bytes(certificate_bytes(build_certificate(BATCH, _items(), signer=signer)))
    text = path.read_text("utf-8").replace("令和8年度 文書7", "令和8年度 文書8")
    path.write_text(text, "utf-8")
    assert verify_certificate(path, keys).reason == "bad_signature"


def test_wrong_key_fails(signer: SystemKeyring) -> None:
    cert = build_certificate(BATCH, _items(), signer=signer)
    other = Ed25519PrivateKey.generate().public_key()
    # same key id, different key: the signature does not verify
    assert verify_certificate(cert, {signer.key_id: other}).reason == "bad_signature"
    # key id not trusted at all
    assert verify_certificate(cert, {"someone-else": other}).reason == "unknown_key"
    # re-signed by an attacker's key under the system's key id
    attacker = _ForeignSigner(signer.key_id)
    forged = build_certificate(BATCH, _items()[:1], signer=attacker)
    assert not verify_certificate(forged, {signer.key_id: signer.public_key()}).ok


def test_malformed_inputs_fail_cleanly(
    signer: SystemKeyring, keys: dict[str, Any], tmp_path: Path
) -> None:
    cert = build_certificate(BATCH, _items(), signer=signer)
    unsigned = {k: v for k, v in cert.items() if k != "signature"}
    assert verify_certificate(unsigned, keys).reason.startswith("malformed")
    bad_b64 = copy.deepcopy(cert)
    bad_b64["signature"]["value"] = "!!not base64!!"
    assert verify_certificate(bad_b64, keys).reason.startswith("malformed")
    other_alg = copy.deepcopy(cert)
    other_alg["signature"]["alg"] = "RS256"
    assert verify_certificate(other_alg, keys).reason.startswith("malformed")
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"\xff\xfe not json")
    assert verify_certificate(garbage, keys).reason.startswith("malformed")
    assert verify_certificate(tmp_path / "missing.json", keys).reason.startswith("malformed")
    array = tmp_path / "array.json"
    array.write_text("[]")
    assert verify_certificate(array, keys).reason.startswith("malformed")


def test_signed_but_inconsistent_is_refused(signer: SystemKeyring, keys: dict[str, Any]) -> None:
    cert = build_certificate(BATCH, _items())
    cert["item_count"] = 5  # a buggy issuer: signature valid, content inconsistent
    signed = signer.sign_json(cert)
    result = verify_certificate(signed, keys)
    assert not result.ok and result.reason.startswith("inconsistent")


def test_signer_returning_only_the_signature_field(
    keys: dict[str, Any], signer: SystemKeyring
) -> None:
    class FieldSigner:
        def sign_json(self, obj: dict[str, Any]) -> dict[str, Any]:
            return signer.sign_json(obj)["signature"]

    cert = build_certificate(BATCH, _items(), signer=FieldSigner())
    assert verify_certificate(cert, keys).ok


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sha256", "ABC"),
        ("sha256", "G" * 64),
        ("size", -1),
        ("size", 1.5),
        ("retention_end", datetime(2032, 3, 31, tzinfo=UTC)),
        ("approved_by", ""),
        ("destroyed_at", "yesterday"),
        ("document_id", None),
    ],
)
def test_bad_items_are_refused(field: str, value: Any) -> None:
    items = _items()
    items[0][field] = value
    with pytest.raises(ValueError):
        build_certificate(BATCH, items)


def test_missing_fields_and_duplicates_are_refused() -> None:
    with pytest.raises(ValueError):
        build_certificate({k: v for k, v in BATCH.items() if k != "approved_by"}, _items())
    items = _items()
    del items[0]["sha256"]
    with pytest.raises(ValueError):
        build_certificate(BATCH, items)
    with pytest.raises(ValueError):
        build_certificate(BATCH, [*_items(), _items()[0]])
    with pytest.raises(ValueError):
        build_certificate(BATCH, [_items()[0] | {"mime_type": "application/pdf"}])


def test_signed_garbage_fields_do_not_raise(signer: SystemKeyring, keys: dict[str, Any]) -> None:
    cert = build_certificate(BATCH, _items())
    cert["items"][0]["size"] = "lots"
    result = verify_certificate(signer.sign_json(cert), keys)
    assert not result.ok and result.reason.startswith("inconsistent")
