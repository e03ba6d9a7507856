"""Download several documents at once: a ZIP with a manifest of their SHA-256 hashes.

:func:`open_bundle` checks that the caller may read every document and records each read in
the audit log (the caller commits before any byte leaves); :func:`zip_stream` then streams the
archive without holding it in memory or on disk. The archive holds one entry per document
(``<document id>_<file name>``), ``manifest-sha256.txt`` (``<hash>  <entry>`` lines, as BagIt
writes them, hashed from the bytes actually sent) and ``manifest.json`` (the same with titles,
sizes and where each document lives)."""

from __future__ import annotations

import hashlib
import json
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from genpon.core.errors import Conflict, InvalidInput
from genpon.records.access import Actor
from genpon.records.documents import open_content
from genpon.records.folders import folder_path
from genpon.records.models import Case, Folder
from genpon.storage.base import BlobStore
from sqlmodel import Session

MAX_DOCUMENTS = 500


@dataclass
class BundleItem:
    document_id: int
    name: str  # the entry's name in the archive
    title: str
    filename: str
    sha256: str  # recorded hash (the manifest has the hash of the bytes sent; they must agree)
    size: int
    folder_path: str
    case_id: str | None
    is_original: bool
    status: str


def _entry_name(document_id: int, filename: str) -> str:
    name = unicodedata.normalize("NFC", filename).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip(". ")
    return f"{document_id}_{name or 'content'}"[:200]


def open_bundle(
    session: Session, store: BlobStore, actor: Actor, document_ids: list[int]
) -> list[BundleItem]:
    """Every document readable and live, each read audited (as a single download is)."""
    ids = list(dict.fromkeys(document_ids))
    if not ids:
        raise InvalidInput("documents_required", "文書を1件以上選んでください。")
    if len(ids) > MAX_DOCUMENTS:
        raise InvalidInput(
            "too_many_documents", f"一度にまとめてダウンロードできるのは{MAX_DOCUMENTS}件までです。"
        )
    items: list[BundleItem] = []
    for doc_id in ids:
        doc, sha, stream = open_content(session, store, actor, doc_id)
        stream.close()
        folder = session.get(Folder, doc.folder_id)
        case = session.get(Case, doc.case_pk) if doc.case_pk else None
        items.append(
            BundleItem(
                document_id=doc.id or 0,
                name=_entry_name(doc.id or 0, doc.filename),
                title=doc.title,
                filename=doc.filename,
                sha256=sha,
                size=doc.size,
                folder_path=folder_path(session, folder) if folder else "",
                case_id=case.case_id if case else None,
                is_original=doc.original_id is None,
                status=str(doc.status),
            )
        )
    return items


class _Sink:
    """A write-only file for :class:`zipfile.ZipFile` whose written bytes are taken out as
    they come (no ``seek``: the archive uses data descriptors, fit for streaming)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        if data:
            self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def zip_stream(
    store: BlobStore, items: list[BundleItem], *, chunk: int = 1 << 20
) -> Iterator[bytes]:
    """The archive, piece by piece. A content whose bytes no longer match its recorded hash
    stops the archive (the download breaks rather than passing wrong content as intact)."""
    sink = _Sink()
    manifest: list[dict[str, Any]] = []
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for item in items:
            digest = hashlib.sha256()
            size = 0
            with store.open(item.sha256) as source, archive.open(item.name, "w") as entry:
                while block := source.read(chunk):
                    digest.update(block)
                    size += len(block)
                    entry.write(block)
                    if data := sink.take():
                        yield data
            if digest.hexdigest() != item.sha256:
                raise Conflict("content_corrupted", "保管された内容がハッシュ値と一致しません。")
            manifest.append(
                {
                    "document_id": item.document_id,
                    "path": item.name,
                    "sha256": digest.hexdigest(),
                    "size": size,
                    "title": item.title,
                    "filename": item.filename,
                    "folder": item.folder_path,
                    "case_id": item.case_id,
                    "original": item.is_original,
                    "status": item.status,
                }
            )
            if data := sink.take():
                yield data
        lines = "".join(f"{m['sha256']}  {m['path']}\n" for m in manifest)
        archive.writestr("manifest-sha256.txt", lines.encode("utf-8"))
        body = {"algorithm": "sha256", "documents": manifest}
        archive.writestr(
            "manifest.json", json.dumps(body, ensure_ascii=False, indent=2).encode("utf-8")
        )
    if data := sink.take():
        yield data
