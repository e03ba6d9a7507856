"""Whoosh (pure Python): supported and tested, not the default — far slower than tantivy.

The analyzer's tokens are stored space-separated in phrase-enabled fields read by Whoosh's
``SpaceSeparatedTokenizer``, so positions (and exact bigram phrases) are the same as in the
other backends. Permissions and the other restrictions go into Whoosh's ``filter``/``mask``
(they restrict, without scoring). A batch commits once or is cancelled; cancelling releases
the writer lock. The schema version sits beside the index; a mismatch wipes it for a rebuild.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from genpon.search.backends.base import (
    BOOSTS,
    BackendHits,
    IndexEntry,
    OnDiskBackend,
    SearchQuery,
    Term,
    date_key,
    hidden_keys,
    sort_facets,
)
from whoosh import index as windex
from whoosh import query as wq
from whoosh import sorting
from whoosh.analysis import SpaceSeparatedTokenizer
from whoosh.fields import BOOLEAN, ID, KEYWORD, NUMERIC, TEXT, Schema

_FACET_SRC = {
    "organization": "organization",
    "class": "doc_class",
    "folder_kind": "folder_kind",
    "fiscal_year": "fiscal_year",
}


def build_schema() -> Schema:
    def text() -> TEXT:
        return TEXT(analyzer=SpaceSeparatedTokenizer(), phrase=True)

    return Schema(
        document_id=NUMERIC(int, bits=64, stored=True, unique=True),
        sha256=ID,
        body=text(),
        title=text(),
        filename=text(),
        meta=text(),
        acl=KEYWORD(lowercase=False, commas=False),
        prior_acl=KEYWORD(lowercase=False, commas=False),
        prior_keys=KEYWORD(lowercase=False, commas=False),
        is_first=BOOLEAN,
        case_id=ID(sortable=True),
        organization=ID(sortable=True),
        doc_class=ID(sortable=True),
        folder_kind=ID(sortable=True),
        status=ID,
        fiscal_year=ID(sortable=True),
        doc_date=NUMERIC(int, bits=32, sortable=True),
    )


class WhooshBackend(OnDiskBackend):
    name = "whoosh"

    def __init__(self, path: Path, *, limitmb: int = 128) -> None:
        self.path = path
        self.limitmb = limitmb
        self._write_lock = threading.Lock()
        self.schema = build_schema()
        self._open()

    def _open(self) -> None:
        version_file = self._prepare_dir()
        if windex.exists_in(str(self.path)):
            self.ix = windex.open_dir(str(self.path))
        else:
            self.ix = windex.create_in(str(self.path), self.schema)
        version_file.write_text(self.schema_version)

    def close(self) -> None:
        self.ix.close()

    # --- writes ----------------------------------------------------------------------------

    @staticmethod
    def _fields(e: IndexEntry) -> dict[str, Any]:
        return {
            "document_id": e.document_id,
            "sha256": e.sha256,
            "body": " ".join(e.body_tokens),
            "title": " ".join(e.title_tokens),
            "filename": " ".join(e.filename_tokens),
            "meta": " ".join(e.meta_tokens),
            "acl": " ".join(e.acl) or "-",
            "prior_acl": " ".join(e.prior_acl) or "-",
            "prior_keys": " ".join(e.prior_keys) or "-",
            "is_first": e.is_first,
            "case_id": e.case_id or "-",
            "organization": e.organization or "-",
            "doc_class": e.doc_class or "-",
            "folder_kind": e.folder_kind,
            "status": e.status,
            "fiscal_year": str(e.fiscal_year),
            "doc_date": e.date_key,
        }

    def _write(self, fn: Any) -> None:
        with self._write_lock:
            writer = self.ix.writer(limitmb=self.limitmb)
            try:
                fn(writer)
            except BaseException:
                writer.cancel()  # releases the lock, nothing written
                raise
            writer.commit()

    def apply(self, session: Any, batch: Mapping[str, list[IndexEntry]]) -> None:
        if not batch:
            return
        docs = {sha: [self._fields(e) for e in entries] for sha, entries in batch.items()}

        def run(writer: Any) -> None:
            for sha, items in docs.items():
                writer.delete_by_term("sha256", sha)
                for d in items:
                    writer.add_document(**d)

        self._write(run)

    def clear(self, session: Any) -> None:
        with self._write_lock:
            self.ix = windex.create_in(str(self.path), self.schema)
        (self.path / "BUILT").unlink(missing_ok=True)

    def count(self, session: Any) -> int:
        with self.ix.searcher() as s:
            return int(s.doc_count())

    # --- queries ---------------------------------------------------------------------------

    @staticmethod
    def _in_field(term: Term, fld: str, boost: float) -> wq.Query:
        if term.contains:
            return wq.Prefix(fld, term.tokens[0], boost=boost)
        if len(term.tokens) == 1:
            return wq.Term(fld, term.tokens[0], boost=boost)
        return wq.Phrase(fld, term.tokens, boost=boost)

    def _term_query(self, term: Term) -> wq.Query:
        return wq.Or([self._in_field(term, f, b) for f, b in BOOSTS.items()])

    def _build(self, q: SearchQuery) -> tuple[wq.Query, wq.Query, wq.Query | None]:
        positives: list[wq.Query] = []
        negatives: list[wq.Query] = [self._term_query(t) for t in q.terms if t.negated]
        if q.mode == "any":
            toks = list(dict.fromkeys(tok for t in q.terms if not t.negated for tok in t.tokens))
            positives.append(
                wq.Or([wq.Term(f, tok, boost=b) for tok in toks for f, b in BOOSTS.items()])
            )
        else:
            positives += [self._term_query(t) for t in q.terms if not t.negated]
        main: wq.Query = wq.And(positives) if len(positives) > 1 else positives[0]
        if negatives:
            main = wq.AndNot(main, wq.Or(negatives))
        filters: list[wq.Query] = []
        mask: wq.Query | None = None
        hidden = hidden_keys(q)
        if q.acl is not None:
            filters.append(wq.Or([wq.Term("acl", t) for t in q.acl] or [wq.NullQuery()]))
        if hidden is not None:  # the first readable placement matching the filters
            mask = wq.Or([wq.Term("prior_keys", k) for k in hidden])
        elif q.acl is None:
            filters.append(wq.Term("is_first", True))
        else:
            mask = wq.Or([wq.Term("prior_acl", t) for t in q.acl]) if q.acl else None
        for name, value in q.filters.items():
            filters.append(wq.Term(name, str(value)))
        if q.date_from or q.date_to:
            lo = date_key(q.date_from) if q.date_from else None
            hi = date_key(q.date_to) if q.date_to else None
            filters.append(wq.NumericRange("doc_date", lo, hi))
        return main, wq.And(filters) if len(filters) > 1 else filters[0], mask

    def search(self, session: Any, query: SearchQuery) -> BackendHits:
        main, flt, mask = self._build(query)
        with self.ix.searcher() as s:
            kwargs: dict[str, Any] = {"filter": flt, "mask": mask}
            if query.sort == "date":
                kwargs.update(sortedby="doc_date", reverse=True)
            if query.facets:
                kwargs["groupedby"] = {
                    name: sorting.FieldFacet(src, maptype=sorting.Count)
                    for name, src in _FACET_SRC.items()
                }
            res = s.search(main, limit=query.offset + query.limit, **kwargs)
            total = len(res)
            hits = [
                (int(h["document_id"]), float(h.score or 0.0) if query.sort == "relevance" else 0.0)
                for h in res[query.offset : query.offset + query.limit]
            ]
            facets: dict[str, list[tuple[str, int]]] = {}
            if query.facets:
                facets = sort_facets(
                    {name: dict(res.groups(name)) for name in _FACET_SRC} if total else {}
                )
        return BackendHits(total=total, hits=hits, facets=facets)
