"""Which placement of a content becomes the original (phase 4): candidates ranked by the
configured rule (:mod:`.config`), an official document already held never displaced."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import Any

from genpon.migrate.job import (
    JobState,
)
from genpon.migrate.models import ImportEntry
from genpon.records import documents
from genpon.records.folders import folder_path
from genpon.records.models import Document, Folder
from sqlmodel import Session


@dataclass
class _Candidate:
    key: tuple[Any, ...]
    entry: ImportEntry | None = None
    document: Document | None = None


class RankingMixin(JobState):
    def _entry_key(self, e: ImportEntry) -> tuple[Any, ...]:
        path = f"/{self.folder_name}/{e.rel_path}"
        return self._key(False, False, e.mtime_ns or 0, path, e.rel_path_raw)

    def _doc_key(self, s: Session, d: Document) -> tuple[Any, ...]:
        prov = d.provenance or {}
        mtime_ns = prov.get("mtime_ns")
        if not isinstance(mtime_ns, int):
            created = d.created_at if d.created_at.tzinfo else d.created_at.replace(tzinfo=UTC)
            mtime_ns = int(created.timestamp() * 1e9)
        f = s.get(Folder, d.folder_id)
        path = (folder_path(s, f) if f else "") + "/" + d.filename
        return self._key(d.status == "official", d.case_pk is not None, mtime_ns, path, b"")

    def _key(
        self, official: bool, in_case: bool, mtime_ns: int, path: str, raw: bytes
    ) -> tuple[Any, ...]:
        parts: list[Any] = []
        for c in self.rule:
            if c == "official":
                parts.append(0 if official else 1)
            elif c == "case":
                parts.append(0 if in_case else 1)
            elif c == "oldest":
                parts.append(mtime_ns)
            elif c == "newest":
                parts.append(-mtime_ns)
            elif c == "shortest":
                parts.append(len(path))
        return (*parts, path, raw)

    def _rank(
        self, s: Session, main: Session, entries: list[ImportEntry]
    ) -> tuple[list[_Candidate], Document | None]:
        existing = documents.current_original(main, entries[0].sha256 or "")
        return self._rank_with(main, entries, existing), existing

    def _rank_with(
        self, main: Session, entries: list[ImportEntry], existing: Document | None
    ) -> list[_Candidate]:
        cands = []
        own: dict[int | None, ImportEntry] = {e.document_id: e for e in entries if e.document_id}
        for e in entries:
            if e.state in ("done", "planned"):
                continue
            cands.append(_Candidate(self._entry_key(e), entry=e))
        if existing is not None:
            own_entry = own.get(existing.id)
            key = self._entry_key(own_entry) if own_entry else self._doc_key(main, existing)
            cands.append(_Candidate(key, document=existing))
        cands.sort(key=lambda c: c.key)
        if existing is not None and existing.status == "official":  # never displaced
            cands.sort(key=lambda c: c.document is None)
        return cands
