"""The interface every search backend implements, and the plain data it exchanges.

The index holds one entry per live placement (document row). Content is grouped at query
time without post-filtering: each entry carries

- ``acl``: the tokens under which its folder is readable (see :func:`search.acl.entry_acl`);
- ``prior_acl``: the union of the ``acl`` of the placements of the same content that come
  before it (the original first, then copies by id);
- ``is_first``: it is the first placement (normally the original).

A caller with tokens T sees an entry iff ``acl ∩ T ≠ ∅`` and ``prior_acl ∩ T = ∅``: exactly one
entry per content they may read — the original when they may read it, else the first copy
they may read. Counts, facets and paging are therefore exact and never include what the
caller may not read. City-wide readers (no tokens) see the ``is_first`` entries.

Writes are batched: :meth:`SearchBackend.apply` replaces every entry of each given content hash
and commits once, or not at all.
"""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

SCHEMA_VERSION = "3"  # bump when fields or the analyzer change: the index is rebuilt

FACET_FIELDS = ("organization", "class", "folder_kind", "fiscal_year")


@dataclass
class IndexEntry:
    document_id: int
    sha256: str
    body_tokens: list[str]
    title_tokens: list[str]
    filename_tokens: list[str]
    meta_tokens: list[str]  # case ID, case title, folder name
    acl: list[str]
    prior_acl: list[str]
    is_first: bool
    is_original: bool
    case_id: str
    organization: str
    doc_class: str
    folder_kind: str
    status: str
    fiscal_year: int
    doc_date: date

    @property
    def date_key(self) -> int:
        return self.doc_date.year * 10000 + self.doc_date.month * 100 + self.doc_date.day


@dataclass
class Term:
    """One query term: a phrase of index tokens that must (or, negated, must not) occur in the
    body, title, file name or case fields. ``contains`` marks a lone CJK character, matched by
    any token that starts with it (every occurrence of X yields ``<X``, ``X?`` or ``X>``)."""

    tokens: list[str]
    negated: bool = False
    contains: bool = False


@dataclass
class SearchQuery:
    terms: list[Term]
    mode: Literal["all", "any"] = "all"  # any: natural-language question, OR of its tokens
    acl: list[str] | None = None  # None: reads everything
    filters: dict[str, str | int] = field(default_factory=dict)  # field -> exact value
    date_from: date | None = None
    date_to: date | None = None
    sort: Literal["relevance", "date"] = "relevance"
    offset: int = 0
    limit: int = 20
    facets: bool = True


FILTER_FIELDS = ("case_id", "organization", "doc_class", "folder_kind", "status", "fiscal_year")

BOOSTS = {"body": 1.0, "title": 3.0, "filename": 2.0, "meta": 1.5}


@dataclass
class BackendHits:
    total: int
    hits: list[tuple[int, float]]  # (document_id, score)
    facets: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


def date_key(d: date) -> int:
    return d.year * 10000 + d.month * 100 + d.day


def sort_facets(raw: dict[str, dict[Any, int]]) -> dict[str, list[tuple[str, int]]]:
    return {
        name: sorted(
            ((str(k), n) for k, n in raw.get(name, {}).items() if n and str(k) not in ("", "-")),
            key=lambda x: (-x[1], x[0]),
        )
        for name in FACET_FIELDS
    }


class SearchBackend(ABC):
    name: str = "base"

    @abstractmethod
    def apply(self, session: Any, batch: dict[str, list[IndexEntry]]) -> None:
        """Replace all entries of each content hash in ``batch`` (empty list: remove) and commit
        once. On-disk engines ignore ``session``; PostgreSQL writes in it (same transaction)."""

    @abstractmethod
    def clear(self, session: Any) -> None:
        """Remove every entry (before a full rebuild)."""

    @abstractmethod
    def search(self, session: Any, query: SearchQuery) -> BackendHits: ...

    @abstractmethod
    def count(self, session: Any) -> int:
        """Number of entries (placements) in the index."""

    def needs_rebuild(self, session: Any) -> bool:
        """True when the index was created empty or its schema version changed."""
        return False

    def mark_built(self, session: Any) -> None:  # noqa: B027 - optional hook
        """Record that a full rebuild finished under the current schema version."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files and locks."""


class OnDiskBackend(SearchBackend):
    """An index in a directory of its own (tantivy, Whoosh): ``SCHEMA`` beside it holds the
    schema version it was created with (another one: the directory is rebuilt from the
    database), ``BUILT`` the version of the last completed full rebuild."""

    path: Path

    def _prepare_dir(self) -> Path:
        """Empty the directory if it holds another schema; return the version file, to be
        written once the index is open."""
        version_file = self.path / "SCHEMA"
        if self.path.exists() and (
            not version_file.exists() or version_file.read_text().strip() != SCHEMA_VERSION
        ):
            shutil.rmtree(self.path)  # other schema: rebuilt from the database
        self.path.mkdir(parents=True, exist_ok=True)
        return version_file

    def needs_rebuild(self, session: Any) -> bool:
        built = self.path / "BUILT"
        return not built.exists() or built.read_text().strip() != SCHEMA_VERSION

    def mark_built(self, session: Any) -> None:
        (self.path / "BUILT").write_text(SCHEMA_VERSION)
