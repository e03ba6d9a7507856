"""廃棄証明書 (disposal certificate): a signed JSON document listing every destroyed item.

Shape (``type = "genpon.disposal_certificate"``, ``version = 1``)::

    {"type", "version", "title": "廃棄証明書", "statement", "certificate_id", "issuer",
     "batch_id", "requested_by", "approved_by", "executed_at", "issued_at",
     "items": [{"document_id", "title", "case_id", "class", "sha256", "size",
                "retention_end", "approved_by", "destroyed_at"}, …],   # sorted by document_id
     "item_count", "total_size",
     "signature": {"alg": "Ed25519", "key_id": "…", "value": "<base64>"}}

Signature: Ed25519 over the canonical JSON of the certificate without its ``signature``
field (:func:`genpon_verify.canonical.signed_bytes`, the one copy of that rule, which
``core.signing`` uses too). Every value is a string, an
int, ``None``, a list or an object (no floats), so the canonical form is the same in any
language. Dates are ISO 8601; timestamps are UTC.

Any object with ``sign_json(obj) -> dict`` signs (``core.signing.SystemKeyring`` in the
service); :func:`verify_certificate` needs only the public keys, by key id, so an auditor can
check a certificate offline.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from genpon_verify.canonical import signed_bytes
from genpon_verify.keys import SIGNATURE_ALG

CERT_TYPE = "genpon.disposal_certificate"
CERT_VERSION = 1
CERT_TITLE = "廃棄証明書"
CERT_STATEMENT = (
    "下記の行政文書は、承認された廃棄伺いに基づき、保存期間満了により廃棄したことを証明する。"
)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_BATCH_REQUIRED = ("issuer", "batch_id", "requested_by", "approved_by", "executed_at")
_BATCH_OPTIONAL = ("certificate_id", "issued_at", "notes")
_ITEM_REQUIRED = (
    "document_id",
    "title",
    "case_id",
    "class",
    "sha256",
    "size",
    "retention_end",
    "approved_by",
    "destroyed_at",
)


class JsonSigner(Protocol):
    """Signs a JSON object. Returns either the object with a ``signature`` field added or the
    signature field itself (``{"alg", "key_id", "value"}``)."""

    def sign_json(self, obj: Mapping[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    reason: str
    key_id: str | None = None
    item_count: int | None = None

    def __bool__(self) -> bool:
        return self.ok


# --- building -----------------------------------------------------------------------------


def _ts(key: str, value: Any) -> str:
    if isinstance(value, str) and value:
        value = datetime.fromisoformat(value)  # validates
    if isinstance(value, datetime):
        dt = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return dt.isoformat()
    raise ValueError(f"{key}: not a timestamp: {value!r}")


def _day(key: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        raise ValueError(f"{key}: pass a date, not a datetime")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return date.fromisoformat(value).isoformat()
    raise ValueError(f"{key}: not a date: {value!r}")


def _person(key: str, value: Any) -> str | list[str]:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueError(f"{key}: a user name (or a list of them) is required")


def _plain(key: str, value: Any) -> Any:
    """Only JSON-native values with one canonical form (no floats)."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(f"{key}.{k}", v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(key, v) for v in value]
    raise ValueError(f"{key}: unsupported value {type(value).__name__}")


def _item(raw: Mapping[str, Any]) -> dict[str, Any]:
    missing = [k for k in _ITEM_REQUIRED if k not in raw]
    extra = sorted(set(raw) - set(_ITEM_REQUIRED))
    if missing or extra:
        raise ValueError(f"certificate item: missing {missing}, unknown {extra}")
    doc_id = raw["document_id"]
    if isinstance(doc_id, bool) or not isinstance(doc_id, (int, str)) or doc_id == "":
        raise ValueError(f"document_id must be an int or a string: {doc_id!r}")
    sha = raw["sha256"]
    if not isinstance(sha, str) or not _SHA256.match(sha):
        raise ValueError(f"document {doc_id}: sha256 must be 64 lowercase hex digits")
    size = raw["size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"document {doc_id}: size must be a non-negative int")
    return {
        "document_id": doc_id,
        "title": str(raw["title"]),
        "case_id": None if raw["case_id"] is None else str(raw["case_id"]),
        "class": _plain("class", raw["class"]),
        "sha256": sha,
        "size": size,
        "retention_end": _day("retention_end", raw["retention_end"]),
        "approved_by": _person("approved_by", raw["approved_by"]),
        "destroyed_at": _ts("destroyed_at", raw["destroyed_at"]),
    }


def _doc_sort_key(item: Mapping[str, Any]) -> tuple[int, int, str]:
    doc_id = item["document_id"]
    return (0, doc_id, "") if isinstance(doc_id, int) else (1, 0, doc_id)


def build_certificate(
    batch_info: Mapping[str, Any],
    items: Iterable[Mapping[str, Any]],
    *,
    signer: JsonSigner | None = None,
    issued_at: datetime | None = None,
) -> dict[str, Any]:
    """Build the certificate of a disposal batch; signed when ``signer`` is given.

    ``batch_info``: issuer, batch_id, requested_by, approved_by, executed_at (and optionally
    certificate_id, issued_at, notes). Each item: document_id, title, case_id, class, sha256,
    size, retention_end, approved_by, destroyed_at. Raises ``ValueError`` on a missing or
    malformed field or a document listed twice; nothing is signed then.
    """
    missing = [k for k in _BATCH_REQUIRED if batch_info.get(k) in (None, "")]
    extra = sorted(set(batch_info) - set(_BATCH_REQUIRED) - set(_BATCH_OPTIONAL))
    if missing or extra:
        raise ValueError(f"certificate batch info: missing {missing}, unknown {extra}")
    rows = sorted((_item(raw) for raw in items), key=_doc_sort_key)
    ids = [r["document_id"] for r in rows]
    if len(set(ids)) != len(ids):
        raise ValueError("a document is listed twice in the certificate")
    batch_id = _plain("batch_id", batch_info["batch_id"])
    issued = batch_info.get("issued_at") or issued_at or datetime.now(UTC)
    cert: dict[str, Any] = {
        "type": CERT_TYPE,
        "version": CERT_VERSION,
        "title": CERT_TITLE,
        "statement": CERT_STATEMENT,
        "certificate_id": str(batch_info.get("certificate_id") or f"DC-{batch_id}"),
        "issuer": _plain("issuer", batch_info["issuer"]),
        "batch_id": batch_id,
        "requested_by": _person("requested_by", batch_info["requested_by"]),
        "approved_by": _person("approved_by", batch_info["approved_by"]),
        "executed_at": _ts("executed_at", batch_info["executed_at"]),
        "issued_at": _ts("issued_at", issued),
        "notes": _plain("notes", batch_info.get("notes")),
        "items": rows,
        "item_count": len(rows),
        "total_size": sum(r["size"] for r in rows),
    }
    if signer is None:
        return cert
    return sign_certificate(cert, signer)


def sign_certificate(cert: Mapping[str, Any], signer: JsonSigner) -> dict[str, Any]:
    """Sign (or re-sign) a certificate with any ``sign_json`` signer."""
    body = {k: v for k, v in cert.items() if k != "signature"}
    out = signer.sign_json(body)
    if "signature" in out:  # the signed object
        signed = dict(out)
    elif {"alg", "value"} <= set(out):  # the signature field alone
        signed = {**body, "signature": dict(out)}
    else:
        raise ValueError("signer returned neither a signed object nor a signature")
    if signed_bytes(signed) != signed_bytes(body):
        raise ValueError("signer changed the certificate body")
    return signed


def certificate_bytes(cert: Mapping[str, Any]) -> bytes:
    """The certificate as a downloadable file (indented UTF-8 JSON; verification does not
    depend on the layout)."""
    return json.dumps(cert, ensure_ascii=False, sort_keys=True, indent=2).encode("utf-8") + b"\n"


# --- verifying ----------------------------------------------------------------------------


def _load_public_key(value: Ed25519PublicKey | bytes | str) -> Ed25519PublicKey:
    if isinstance(value, Ed25519PublicKey):
        return value
    data = value.encode("ascii") if isinstance(value, str) else bytes(value)
    if len(data) == 32:
        return Ed25519PublicKey.from_public_bytes(data)
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def _structure_problem(cert: Mapping[str, Any]) -> str | None:
    if cert.get("type") != CERT_TYPE:
        return "not a disposal certificate"
    if cert.get("version") != CERT_VERSION:
        return f"unsupported certificate version {cert.get('version')!r}"
    items = cert.get("items")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        return "items is not a list of objects"
    if cert.get("item_count") != len(items):
        return "item_count does not match the items"
    ids = [i.get("document_id") for i in items]
    if len(set(map(repr, ids))) != len(ids):
        return "a document is listed twice"
    for item in items:
        if not isinstance(item.get("sha256"), str) or not _SHA256.match(item["sha256"]):
            return f"document {item.get('document_id')!r}: bad sha256"
    if cert.get("total_size") != sum(int(i.get("size") or 0) for i in items):
        return "total_size does not match the items"
    return None


def verify_certificate(
    cert_or_path: Mapping[str, Any] | str | os.PathLike[str],
    public_keys: Mapping[str, Ed25519PublicKey | bytes | str],
) -> VerifyResult:
    """Check a certificate's Ed25519 signature against the trusted ``public_keys`` (by key
    id), then its internal consistency. Never raises on bad input: ``ok`` is False and
    ``reason`` says why (malformed, unknown_key, bad_signature, inconsistent: …)."""
    try:
        if isinstance(cert_or_path, Mapping):
            cert: Any = dict(cert_or_path)
        else:
            cert = json.loads(Path(cert_or_path).read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        return VerifyResult(False, f"malformed: {exc}")
    if not isinstance(cert, dict):
        return VerifyResult(False, "malformed: not a JSON object")
    sig = cert.get("signature")
    if not isinstance(sig, dict):
        return VerifyResult(False, "malformed: no signature")
    key_id = sig.get("key_id")
    if sig.get("alg") != SIGNATURE_ALG:
        return VerifyResult(False, f"malformed: unsupported alg {sig.get('alg')!r}", key_id)
    if not isinstance(key_id, str) or key_id not in public_keys:
        return VerifyResult(False, "unknown_key", key_id if isinstance(key_id, str) else None)
    try:
        raw_sig = base64.b64decode(str(sig.get("value", "")), validate=True)
        key = _load_public_key(public_keys[key_id])
        body = signed_bytes(cert)
    except (binascii.Error, ValueError, TypeError, RecursionError) as exc:
        return VerifyResult(False, f"malformed: {exc}", key_id)
    try:
        key.verify(raw_sig, body)
    except InvalidSignature:
        return VerifyResult(False, "bad_signature", key_id)
    try:
        problem = _structure_problem(cert)
    except (TypeError, ValueError) as exc:
        problem = f"unreadable field ({exc})"
    if problem:
        return VerifyResult(False, f"inconsistent: {problem}", key_id)
    return VerifyResult(True, "ok", key_id, cert["item_count"])
