"""Standalone proofs (from the API): an inclusion or consistency proof checked offline.

``genpon-verify PROOF.json --keys DIR`` runs :func:`verify_proof`; the export checks are in
:mod:`genpon_verify.verify`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from genpon_verify.canonical import canonical_bytes
from genpon_verify.keys import check_signature
from genpon_verify.merkle import leaf_hash, verify_consistency, verify_inclusion


def verify_proof(proof: dict[str, Any], keys: dict[str, Ed25519PublicKey]) -> list[str]:
    """Check an inclusion or consistency proof as returned by ``/api/v1/audit/proofs/…``.

    Returns the list of problems (empty when the proof holds). Checkpoint signatures are
    checked against ``keys`` when the proof carries its checkpoints.
    """

    problems: list[str] = []
    try:
        path = [bytes.fromhex(h) for h in proof.get("path", [])]
        if proof.get("type") == "inclusion":
            event = proof.get("event")
            ev_hash = str(proof["event_hash"])
            if isinstance(event, dict) and (
                hashlib.sha256(canonical_bytes(event)).hexdigest() != ev_hash
            ):
                problems.append("イベントの内容がハッシュと一致しません")
            ok = verify_inclusion(
                leaf_hash(ev_hash),
                int(proof["leaf_index"]),
                int(proof["tree_size"]),
                path,
                bytes.fromhex(str(proof["root_hash"])),
            )
            if not ok:
                problems.append("包含証明が成り立ちません")
            cps = [proof.get("checkpoint")]
            sizes = [(proof.get("tree_size"), proof.get("root_hash"))]
        elif proof.get("type") == "consistency":
            ok = verify_consistency(
                int(proof["first"]),
                int(proof["second"]),
                bytes.fromhex(str(proof["first_root"])),
                bytes.fromhex(str(proof["second_root"])),
                path,
            )
            if not ok:
                problems.append("一貫性証明が成り立ちません（ログは追記だけではありません）")
            cps = [proof.get("first_checkpoint"), proof.get("second_checkpoint")]
            sizes = [
                (proof.get("first"), proof.get("first_root")),
                (proof.get("second"), proof.get("second_root")),
            ]
        else:
            return [f"証明の種類が分かりません: {proof.get('type')}"]
    except (KeyError, ValueError, TypeError) as exc:
        return [f"証明の形式が違います: {exc}"]
    for cp, (size, root_hex) in zip(cps, sizes, strict=True):
        if not isinstance(cp, dict):
            continue
        reason = check_signature(cp, keys)
        if reason:
            problems.append(f"チェックポイントの{reason}")
        if cp.get("tree_size") != size or cp.get("root_hash") != root_hex:
            problems.append("証明がチェックポイントの内容と一致しません")
    return problems
