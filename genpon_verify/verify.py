"""Check an auditor export (監査用エクスポート) offline and name the first thing that fails.

Layout of an export directory (written by ``genpon audit export DIR``)::

    manifest.json       format, counts, SHA-256 of every file below; signed by the system key
    events.jsonl        every audit event in sequence order, one canonical JSON object a line
    checkpoints.jsonl   signed checkpoints {format, tree_size, root_hash, head_hash, signed_at, …}
    keys/<key_id>.pub   every public key (PEM) that ever signed; key_id = sha256(raw key)[:16]
    documents.jsonl     manifest of documents: id, sha256, size, state, case, folder …

Checks, in this order (all are run; the report lists every failure, the first event failure
is the headline):

1. every key file's id matches the key inside it;
2. the manifest's signature and the digest of every file it lists;
3. the hash chain: consecutive ``seq`` from 1, each event's hash over its canonical form,
   each ``prev_hash`` equal to the previous event's hash;
4. every checkpoint: a valid signature by a trusted key (the first signing key or a
   ``--trusted-key``, later keys only after a ``system_key.rotated`` event endorsed by the old
   key), a tree size within the log, a Merkle root and head hash equal to those recomputed from
   the events;
5. checkpoints the auditor kept from earlier (``--checkpoint``): the log must extend them;
6. every document's hash is the one its last content event recorded, and destroyed or
   transferred documents have a disposal or transfer event;
7. with ``--blobs PATH``: every live document's content re-hashed from a copy of the store.

Key ids and signature checks are in :mod:`genpon_verify.keys`, standalone proofs in
:mod:`genpon_verify.proofs` (both names are re-exported here).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from genpon_verify.canonical import GENESIS_HASH, canonical_bytes, signed_bytes
from genpon_verify.keys import check_signature, key_id_of, load_public_key, rotation_statement
from genpon_verify.merkle import EMPTY_ROOT, Frontier, leaf_hash, node_hash
from genpon_verify.proofs import verify_proof

EXPORT_FORMAT = "genpon-audit-export/1"
CHECKPOINT_FORMAT = "genpon-checkpoint/1"
ROTATION_ACTION = "system_key.rotated"
CONTENT_ACTION_RE = re.compile(r"\.(deposited|copied|versioned|imported)$")
DISPOSAL_RE = re.compile(r"destroy|dispos")
TRANSFER_RE = re.compile(r"transfer")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Failure:
    """One failed check. ``kind``: key, manifest, event, checkpoint, known_checkpoint,
    document, blob; ``ref``: the event seq, checkpoint size, document id, sha256 …"""

    kind: str
    ref: str
    message: str

    def __str__(self) -> str:
        return f"[{self.kind} {self.ref}] {self.message}"


@dataclass
class Report:
    events: int = 0
    checkpoints: int = 0
    keys: list[str] = field(default_factory=list)
    anchor_keys: list[str] = field(default_factory=list)
    documents: int = 0
    blobs_checked: int = 0
    tree_size: int = 0
    root_hash: str = ""
    failures: list[Failure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def first_event_failure(self) -> Failure | None:
        return next((f for f in self.failures if f.kind == "event"), None)

    def fail(self, kind: str, ref: object, message: str) -> None:
        self.failures.append(Failure(kind, str(ref), message))

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "checkpoints": self.checkpoints,
            "keys": self.keys,
            "anchor_keys": self.anchor_keys,
            "documents": self.documents,
            "blobs_checked": self.blobs_checked,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "failures": [f.__dict__ for f in self.failures],
            "warnings": self.warnings,
        }


# --- keys ----------------------------------------------------------------------------------


def load_keys(key_dir: Path, report: Report) -> dict[str, Ed25519PublicKey]:
    keys: dict[str, Ed25519PublicKey] = {}
    for path in sorted(key_dir.glob("*.pub")):
        try:
            key = load_public_key(path.read_bytes())
        except ValueError as exc:
            report.fail("key", path.stem, f"公開鍵を読めません: {exc}")
            continue
        kid = key_id_of(key)
        if kid != path.stem:
            report.fail(
                "key", path.stem, f"公開鍵ファイルの中身が鍵ID {path.stem} と一致しません（{kid}）"
            )
            continue
        keys[kid] = key
    return keys


# --- files -----------------------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(view):
            h.update(view[:n])
    return h.hexdigest()


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """(line number, object or None if unreadable) of a JSON-lines file."""
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                yield n, None
                continue
            yield n, obj if isinstance(obj, dict) else None


def blob_candidates(root: Path, sha: str) -> list[Path]:
    """Where a blob may sit in a copy of a store: local layout, S3 layout, or flat."""
    return [
        root / sha[:2] / sha[2:4] / sha,
        root / "blobs" / sha[:2] / sha,
        root / sha[:2] / sha,
        root / sha,
    ]


# --- the verification ------------------------------------------------------------------------


@dataclass
class _Checkpoint:
    line: int
    data: dict[str, Any]

    @property
    def size(self) -> int:
        v = self.data.get("tree_size")
        return v if isinstance(v, int) and v >= 0 else -1

    @property
    def key_id(self) -> str:
        sig = self.data.get("signature")
        return str(sig.get("key_id")) if isinstance(sig, dict) else ""


def verify_export(
    directory: Path | str,
    *,
    blobs: Path | str | None = None,
    known_checkpoints: list[dict[str, Any]] | None = None,
    trusted_keys: list[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Verify the export in ``directory``; see the module docstring for the checks.

    ``trusted_keys``: PEM public keys the auditor obtained independently; when given, the
    first checkpoint must be signed by one of them. ``progress`` is called with the number
    of events read so far (every 100,000 events).
    """
    root = Path(directory)
    report = Report()
    key_dir = root / "keys"
    keys = load_keys(key_dir, report) if key_dir.is_dir() else {}
    report.keys = sorted(keys)
    if not keys:
        report.fail("key", "-", "公開鍵がありません（keys/*.pub）")

    anchors: set[str] = set()
    for pem in trusted_keys or []:
        try:
            k = load_public_key(pem)
        except ValueError as exc:
            report.fail("key", "trusted", f"信頼する公開鍵を読めません: {exc}")
            continue
        kid = key_id_of(k)
        anchors.add(kid)
        if kid in keys:
            continue
        keys[kid] = k

    _check_manifest(root, keys, report)

    checkpoints = _load_checkpoints(root / "checkpoints.jsonl", report)
    known = [_Checkpoint(0, c) for c in known_checkpoints or []]
    wanted = {c.size for c in checkpoints + known if c.size >= 0}

    roots: dict[int, bytes] = {}
    heads: dict[int, str] = {}
    introduced: dict[str, int] = {}  # key id -> seq of the rotation event that introduced it
    doc_content: dict[str, tuple[int, str]] = {}  # document id -> (seq, sha256) of last content
    doc_actions: dict[str, set[str]] = {}

    events_path = root / "events.jsonl"
    if not events_path.is_file():
        report.fail("manifest", "events.jsonl", "イベントファイルがありません")
    else:
        _walk_events(
            events_path,
            report,
            wanted,
            roots,
            heads,
            keys,
            introduced,
            doc_content,
            doc_actions,
            progress,
        )
    if 0 in wanted:
        roots[0] = EMPTY_ROOT
        heads[0] = GENESIS_HASH

    _check_checkpoints(checkpoints, keys, anchors, introduced, roots, heads, report)
    _check_known(known, keys, roots, report)
    docs = _check_documents(root / "documents.jsonl", doc_content, doc_actions, report)
    if blobs is not None:
        _check_blobs(Path(blobs), docs, report)
    return report


def _check_manifest(root: Path, keys: dict[str, Ed25519PublicKey], report: Report) -> None:
    path = root / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        report.fail("manifest", "manifest.json", f"マニフェストを読めません: {exc}")
        return
    if manifest.get("format") != EXPORT_FORMAT:
        report.fail("manifest", "format", f"形式が違います: {manifest.get('format')}")
    reason = check_signature(manifest, keys)
    if reason:
        report.fail("manifest", "signature", f"マニフェストの{reason}")
    for name, meta in sorted((manifest.get("files") or {}).items()):
        target = root / name
        if not target.is_file() or "/" in name or name.startswith("."):
            report.fail("manifest", name, "マニフェストに記載のファイルがありません")
            continue
        if file_sha256(target) != meta.get("sha256"):
            report.fail("manifest", name, "ファイルの内容がマニフェストのハッシュと一致しません")


def _load_checkpoints(path: Path, report: Report) -> list[_Checkpoint]:
    out: list[_Checkpoint] = []
    if not path.is_file():
        report.fail("checkpoint", "-", "チェックポイントファイルがありません")
        return out
    for n, obj in _jsonl(path):
        if obj is None:
            report.fail("checkpoint", f"line {n}", "JSONとして読めません")
            continue
        out.append(_Checkpoint(n, obj))
    report.checkpoints = len(out)
    if not out:
        report.fail("checkpoint", "-", "署名済みチェックポイントが一つもありません")
    return out


def _walk_events(
    path: Path,
    report: Report,
    wanted: set[int],
    roots: dict[int, bytes],
    heads: dict[int, str],
    keys: dict[str, Ed25519PublicKey],
    introduced: dict[str, int],
    doc_content: dict[str, tuple[int, str]],
    doc_actions: dict[str, set[str]],
    progress: Callable[[int], None] | None,
) -> None:
    frontier = Frontier()
    prev = GENESIS_HASH
    prev2 = ""  # hash of the event before the previous one (to recognise an insertion)
    expected = 1
    failed = False

    def fail(seq: object, message: str) -> None:
        nonlocal failed
        if not failed:  # later chain errors are consequences of the first one
            report.fail("event", seq, message)
            failed = True

    sha256 = hashlib.sha256
    for n, ev in _jsonl(path):
        if ev is None:
            fail(expected, f"{n}行目: JSONとして読めません")
            frontier.append(leaf_hash(sha256(b"").hexdigest()))
            expected += 1
            continue
        seq = ev.get("seq")
        computed = sha256(canonical_bytes(ev)).hexdigest()
        if seq != expected:
            if isinstance(seq, int) and seq > expected:
                fail(expected, f"イベント {expected} がありません（削除。次は {seq}）")
            else:
                fail(
                    seq,
                    f"イベント {seq} の位置が違います（{expected} 番目にあります：挿入・並べ替え）",
                )
        elif ev.get("prev_hash") == prev2 and prev2 and ev.get("prev_hash") != prev:
            fail(
                seq - 1,
                f"イベント {seq - 1} は挿入されたものです（イベント {seq} は {seq - 2} に続いていました）",
            )
        elif computed != ev.get("hash"):
            fail(seq, "イベントの内容が記録されたハッシュと一致しません（改ざん）")
        elif ev.get("prev_hash") != prev:
            fail(seq, "直前のイベントのハッシュとつながりません（削除・挿入・並べ替え）")
        prev2, prev = prev, str(ev.get("hash"))
        # the tree is built over what the events say now: edited content changes its leaf
        frontier.append(
            sha256(b"\x00" + bytes.fromhex(computed)).digest()
            if len(computed) == 64
            else EMPTY_ROOT
        )
        expected += 1
        if frontier.size in wanted:
            roots[frontier.size] = frontier.root()
            heads[frontier.size] = computed
        _note_event(ev, keys, introduced, doc_content, doc_actions, report)
        if progress is not None and frontier.size % 100_000 == 0:
            progress(frontier.size)
    report.events = frontier.size
    report.tree_size = frontier.size
    report.root_hash = frontier.root().hex()


def _note_event(
    ev: dict[str, Any],
    keys: dict[str, Ed25519PublicKey],
    introduced: dict[str, int],
    doc_content: dict[str, tuple[int, str]],
    doc_actions: dict[str, set[str]],
    report: Report,
) -> None:
    action = str(ev.get("action", ""))
    seq = int(ev.get("seq") or 0)
    details = ev.get("details") if isinstance(ev.get("details"), dict) else {}
    assert isinstance(details, dict)
    if ev.get("target_type") == "document":
        tid = str(ev.get("target_id"))
        doc_actions.setdefault(tid, set()).add(action)
        if CONTENT_ACTION_RE.search(action) and isinstance(details.get("sha256"), str):
            doc_content[tid] = (seq, details["sha256"])
    if action == ROTATION_ACTION:
        old, new = str(details.get("old_key_id")), str(details.get("new_key_id"))
        pem = details.get("new_public_key")
        try:
            new_key = load_public_key(str(pem))
        except ValueError:
            report.fail("event", seq, "鍵の更新イベントの公開鍵を読めません")
            return
        if key_id_of(new_key) != new:
            report.fail("event", seq, "鍵の更新イベントの鍵IDが公開鍵と一致しません")
            return
        if new in keys and key_id_of(keys[new]) != new:
            report.fail("key", new, "公開鍵ファイルが鍵の更新イベントと一致しません")
        old_key = keys.get(old)
        endorsement = details.get("endorsement")
        try:
            if old_key is None or not isinstance(endorsement, str):
                raise InvalidSignature
            old_key.verify(
                base64.b64decode(endorsement, validate=True),
                signed_bytes(rotation_statement(details)),
            )
        except (InvalidSignature, ValueError):
            report.fail("event", seq, f"鍵の更新 {old} → {new} に旧鍵の署名がありません")
            return
        keys.setdefault(new, new_key)
        introduced.setdefault(new, seq)


def _check_checkpoints(
    checkpoints: list[_Checkpoint],
    keys: dict[str, Ed25519PublicKey],
    anchors: set[str],
    introduced: dict[str, int],
    roots: dict[int, bytes],
    heads: dict[int, str],
    report: Report,
) -> None:
    if checkpoints and not anchors:
        anchors.add(checkpoints[0].key_id)  # trust on first use, reported to the auditor
    report.anchor_keys = sorted(anchors)
    last_good = 0
    last_size = -1
    for cp in checkpoints:
        ref = f"size={cp.size}"
        d = cp.data
        if d.get("format") != CHECKPOINT_FORMAT or cp.size < 0:
            report.fail("checkpoint", ref, "チェックポイントの形式が違います")
            continue
        reason = check_signature(d, keys)
        if reason:
            report.fail("checkpoint", ref, f"チェックポイントの{reason}")
            continue
        kid = cp.key_id
        if kid not in anchors and not (kid in introduced and introduced[kid] <= cp.size):
            report.fail(
                "checkpoint",
                ref,
                f"署名鍵 {kid} は信頼する鍵でも、ログの鍵の更新で導入された鍵でもありません",
            )
        if cp.size < last_size:
            report.fail("checkpoint", ref, "チェックポイントの順序が逆です（ログが縮んでいます）")
        last_size = max(last_size, cp.size)
        if cp.size > report.tree_size:
            report.fail(
                "checkpoint",
                ref,
                f"署名済みの {cp.size} 件に対しログは {report.tree_size} 件しかありません（切り詰め）",
            )
            continue
        root = roots.get(cp.size)
        if (
            root is None
            or root.hex() != d.get("root_hash")
            or heads.get(cp.size) != d.get("head_hash")
        ):
            report.fail(
                "checkpoint",
                ref,
                f"イベント 1〜{cp.size} から計算したMerkleルートが署名と一致しません"
                f"（署名後に書き換え。変更はイベント {last_good + 1}〜{cp.size} の間）",
            )
            continue
        last_good = max(last_good, cp.size)
    if checkpoints and report.tree_size > last_size >= 0:
        report.warnings.append(
            f"イベント {last_size + 1}〜{report.tree_size} はまだチェックポイントに署名されていません"
        )


def _check_known(
    known: list[_Checkpoint],
    keys: dict[str, Ed25519PublicKey],
    roots: dict[int, bytes],
    report: Report,
) -> None:
    for cp in known:
        ref = f"size={cp.size}"
        reason = check_signature(cp.data, keys)
        if reason:
            report.fail("known_checkpoint", ref, f"手元のチェックポイントの{reason}")
            continue
        if cp.size > report.tree_size:
            report.fail(
                "known_checkpoint",
                ref,
                f"手元のチェックポイント（{cp.size} 件）よりログが短くなっています（切り詰め）",
            )
            continue
        root = roots.get(cp.size)
        if root is None or root.hex() != cp.data.get("root_hash"):
            report.fail(
                "known_checkpoint",
                ref,
                "ログは手元のチェックポイントの続きではありません（過去の書き換え）",
            )


def _check_documents(
    path: Path,
    doc_content: dict[str, tuple[int, str]],
    doc_actions: dict[str, set[str]],
    report: Report,
) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    if not path.is_file():
        report.warnings.append("文書の一覧（documents.jsonl）がありません")
        return docs
    for n, doc in _jsonl(path):
        if doc is None:
            report.fail("document", f"line {n}", "JSONとして読めません")
            continue
        docs.append(doc)
        did = str(doc.get("document_id"))
        recorded = doc_content.get(did)
        if recorded is None:
            report.fail("document", did, "文書の登録がログに記録されていません")
        elif recorded[1] != doc.get("sha256"):
            report.fail(
                "document",
                did,
                f"文書のハッシュがログ（イベント {recorded[0]}）の記録と一致しません",
            )
        actions = doc_actions.get(did, set())
        state = doc.get("state")
        if state == "destroyed" and not any(DISPOSAL_RE.search(a) for a in actions):
            report.fail("document", did, "廃棄の記録がないのに廃棄されています")
        if state == "transferred" and not any(TRANSFER_RE.search(a) for a in actions):
            report.fail("document", did, "移管の記録がないのに移管されています")
    report.documents = len(docs)
    return docs


def _check_blobs(root: Path, docs: list[dict[str, Any]], report: Report) -> None:
    by_sha: dict[str, list[str]] = {}
    for d in docs:
        if d.get("state", "live") == "live" and isinstance(d.get("sha256"), str):
            by_sha.setdefault(d["sha256"], []).append(str(d.get("document_id")))
    for sha, ids in sorted(by_sha.items()):
        path = next((p for p in blob_candidates(root, sha) if p.is_file()), None)
        where = "文書 " + ", ".join(ids)
        if path is None:
            report.fail("blob", sha, f"保管データがありません（{where}）")
            continue
        if file_sha256(path) != sha:
            report.fail("blob", sha, f"保管データの内容がハッシュと一致しません（{where}）")
        report.blobs_checked += 1


__all__ = [
    "Failure",
    "Report",
    "check_signature",
    "key_id_of",
    "load_public_key",
    "node_hash",
    "rotation_statement",
    "verify_export",
    "verify_proof",
]
