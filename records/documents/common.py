"""What every document operation shares: names and titles, the blob row, the current original
of a content, the index outbox, and reading a document with its permission checks."""

from __future__ import annotations

import unicodedata
from pathlib import PurePosixPath, PureWindowsPath

from genpon.core.clock import utcnow
from genpon.core.errors import Conflict, InvalidInput, NotFound
from genpon.records.access import Actor, can_read_folder, require_write
from genpon.records.models import (
    Blob,
    BlobState,
    Case,
    Document,
    Folder,
    IndexOutbox,
    IndexReason,
)
from genpon.storage.base import StagedBlob
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

SHA256_HEX = frozenset("0123456789abcdef")


def clean_filename(name: str) -> str:
    """NFC, no directories (either slash), no control characters, at most 255 characters."""
    name = unicodedata.normalize("NFC", name or "")
    name = PureWindowsPath(PurePosixPath(name.replace("\\", "/")).name).name
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().strip(".")
    if not name:
        name = "file"
    if len(name) > 255:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 255 - len(ext) - 1] + dot + ext) if dot and len(ext) < 20 else name[:255]
    return name


def _title_from(filename: str, title: str | None) -> str:
    t = unicodedata.normalize("NFC", (title or "").strip())
    if not t:
        t = filename.rsplit(".", 1)[0] if "." in filename else filename
    if len(t) > 500:
        raise InvalidInput("title_too_long", "件名は500文字以内です。")
    return t


def valid_sha256(value: str) -> bool:
    return len(value) == 64 and set(value) <= SHA256_HEX


def _insert_blob(session: Session, staged: StagedBlob, mime: str) -> bool:
    """The blob row of a content; True when this inserted it (nothing referred to the content
    before: no document, no extracted text)."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    result = session.execute(
        insert(Blob)
        .values(
            sha256=staged.sha256,
            size=staged.size,
            mime_type=mime,
            state="stored",
            stored_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["sha256"])
        .returning(col(Blob.sha256))  # a row only when inserted (rowcount is -1 on psycopg)
    )
    if result.first() is not None:
        return True
    blob = session.get(Blob, staged.sha256)
    if blob is not None and blob.state != "stored":  # content destroyed earlier, deposited again
        blob.state, blob.deleted_at = BlobState.STORED, None
        session.add(blob)
    return False


def current_original(session: Session, sha256: str) -> Document | None:
    return session.exec(
        select(Document).where(
            Document.sha256 == sha256, Document.state == "live", col(Document.original_id).is_(None)
        )
    ).first()


def _by_external_ref(session: Session, system: str, ext_id: str) -> Document | None:
    return session.exec(
        select(Document).where(Document.external_system == system, Document.external_id == ext_id)
    ).first()


def enqueue_index(session: Session, sha256: str, reason: IndexReason) -> None:
    session.add(IndexOutbox(sha256=sha256, reason=reason))


def _readable(session: Session, actor: Actor, doc: Document) -> bool:
    if actor.reads_everything:
        return True
    folder = session.get(Folder, doc.folder_id)
    if folder is None:
        return False
    case = session.get(Case, folder.case_pk) if folder.case_pk else None
    return can_read_folder(actor, folder, case)


def get_document(session: Session, actor: Actor, document_id: int) -> Document:
    doc = session.get(Document, document_id)
    if doc is None or not _readable(session, actor, doc):
        raise NotFound("document_not_found", "文書が見つかりません。", {"document_id": document_id})
    return doc


def _require_doc_write(session: Session, actor: Actor, doc: Document) -> tuple[Folder, Case | None]:
    folder = session.get(Folder, doc.folder_id)
    assert folder is not None
    case = session.get(Case, folder.case_pk) if folder.case_pk else None
    require_write(actor, folder, case)
    return folder, case


def _require_live(doc: Document) -> None:
    if doc.state != "live":
        raise Conflict(
            "document_not_live", "この文書は廃棄または移管済みです。", {"state": doc.state}
        )
