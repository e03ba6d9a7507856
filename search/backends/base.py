"""The interface every search backend implements, and the plain data it exchanges.

The index holds one entry per live placement (document row). Content is grouped at query
time without post-filtering: each entry carries

- ``acl``: the tokens under which its folder is readable (see
  :func:`genpon.records.access.folder_acl_tokens`);
- ``prior_acl``: the union of the ``acl`` of the placements of the same content that come
  before it (the original first, then copies by id);
- ``is_first``: it is the first placement (normally the original).

A caller with tokens T sees an entry iff ``acl ∩ T ≠ ∅`` and ``prior_acl ∩ T = ∅``: exactly one
entry per content they may read — the original when they may read it, else the first copy
they may read. Counts, facets and paging are therefore exact and never include what the
caller may not read. City-wide readers (no tokens) see the ``is_first`` entries.

With filters (case, organization, class, folder kind, status, fiscal year) the entry shown is
the first readable placement *that matches them*: a copy filed in case B is found by a case B
filter even when the caller may also read the original in case A. For that each entry also
carries ``prior_keys`` (:func:`prior_filter_keys`): for every earlier placement, each
combination of its filter values joined to each of its permission tokens (and to ``*`` for
city-wide readers). A caller filtering on F sees an entry iff it is readable, matches F, and
``prior_keys`` holds none of :func:`hidden_keys` (F joined to the caller's tokens).

Writes are batched: :meth:`SearchBackend.apply` replaces every entry of each given content hash
and commits once, or not at all.
"""

from __future__ import annotations

import itertools
import shutil
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

SCHEMA_VERSION = "6"  # bump when fields or the analyzer change: the index is rebuilt
# 5: a line break between two CJK characters no longer ends the run (analyzer.soft_breaks)
# 6: reference tokens (第160条, 2023年度) after the text's tokens (analyzer.numbered_tokens)

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
    prior_keys: list[str] = field(default_factory=list)  # see prior_filter_keys
    # aligned with body_tokens: the trigram each starts (analyzer.index_stream), or None when
    # the caller did not make them (the backends then pair the tokens up themselves)
    body_trigrams: list[str | None] | None = None

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
EVERYONE = "*"  # the permission token of city-wide readers in ``prior_keys``


def _filter_key(values: dict[str, Any], dims: tuple[str, ...]) -> str:
    return ";".join(f"{d}={quote(str(values[d]), safe='')}" for d in dims)


def prior_filter_keys(
    own: dict[str, Any], prior: list[tuple[dict[str, Any], list[str]]]
) -> list[str]:
    """``prior_keys`` of an entry with filter values ``own`` from its earlier placements'
    ``(filter values, acl)``: each combination of the filter fields on which the earlier
    placement agrees with this one, with its values and each permission token (and
    ``EVERYONE``). A filter on other fields cannot match both, so it never needs them. Empty
    for the first placement, i.e. for almost every entry."""
    out: set[str] = set()
    for values, acl in prior:
        agree = tuple(d for d in FILTER_FIELDS if values[d] == own[d])
        for r in range(1, len(agree) + 1):
            for dims in itertools.combinations(agree, r):
                key = _filter_key(values, dims)
                out.update(f"{key}|{t}" for t in (*acl, EVERYONE))
    return sorted(out)


def hidden_keys(q: SearchQuery) -> list[str] | None:
    """The ``prior_keys`` that hide an entry from this query (an earlier placement the caller
    may read matches the same filters); None when the query has no filters."""
    dims = tuple(d for d in FILTER_FIELDS if d in q.filters)
    if not dims:
        return None
    key = _filter_key(q.filters, dims)
    return [f"{key}|{t}" for t in (q.acl if q.acl is not None else [EVERYONE])]


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
    def apply(self, session: Any, batch: Mapping[str, list[IndexEntry]]) -> None:
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
    schema_version: str = SCHEMA_VERSION  # a backend with fields of its own adds to it

    def _prepare_dir(self) -> Path:
        """Empty the directory if it holds another schema; return the version file, to be
        written once the index is open."""
        version_file = self.path / "SCHEMA"
        if self.path.exists() and (
            not version_file.exists() or version_file.read_text().strip() != self.schema_version
        ):
            shutil.rmtree(self.path)  # other schema: rebuilt from the database
        self.path.mkdir(parents=True, exist_ok=True)
        return version_file

    def needs_rebuild(self, session: Any) -> bool:
        built = self.path / "BUILT"
        return not built.exists() or built.read_text().strip() != self.schema_version

    def mark_built(self, session: Any) -> None:
        (self.path / "BUILT").write_text(self.schema_version)
