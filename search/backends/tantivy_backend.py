"""tantivy (official Python bindings): the embedded default, on disk.

The analyzer's tokens are joined by spaces into fields with tantivy's whitespace tokenizer and
positions, so a phrase over bigrams is exact.

``body3`` holds the body's token stream with every CJK bigram that the next bigram of its run
continues replaced by the trigram starting there (:func:`trigram_stream`): same positions and
token count as ``body``. A query word of one CJK run and three or more characters is then one
trigram term (three characters) or a phrase of trigrams instead of a phrase of common bigrams,
whose position checks in long documents cost most of a query. It matches the same documents
with the same phrase frequency and field length; a boost of (sum of the bigrams' idf) / (sum
of the trigrams' idf) gives it the bigram phrase's BM25 score (:meth:`TantivyBackend._body`). ``SCHEMA`` (a file beside the index) holds the
schema version; a different or missing version wipes the index, and ``BUILT`` records that a
full rebuild finished. One writer at a time (a process lock plus tantivy's own lock file); a
batch commits only when every document was added, else it is rolled back, and the writer is
always released.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import tantivy
from genpon.search.analyzer import CJK, char_class, is_bigram
from genpon.search.backends.base import (
    BOOSTS,
    SCHEMA_VERSION,
    BackendHits,
    IndexEntry,
    OnDiskBackend,
    SearchQuery,
    Term,
    date_key,
    hidden_keys,
    sort_facets,
)

_RAW = ("sha256", "case_id", "organization", "doc_class", "folder_kind", "status")
_TEXT = ("body", "title", "filename", "meta")
_FACET_SRC = {
    "organization": "organization",
    "class": "doc_class",
    "folder_kind": "folder_kind",
    "fiscal_year": "fiscal_year",
}
WRITER_HEAP = 128 * 1024 * 1024
SCHEMA = f"{SCHEMA_VERSION}+body3"  # this backend's fields on top of the analyzer's version


class _Classes(dict[int, str]):
    """Code point → ``c`` (CJK), ``|`` (the line feed joining tokens, which hold no
    whitespace) or ``.``, filled on first sight: ``str.translate`` classes a stream at once."""

    def __missing__(self, code: int) -> str:
        letter = "|" if code == 10 else "c" if char_class(chr(code)) == CJK else "."
        self[code] = letter
        return letter


_CLASSES = _Classes()


def trigram_stream(tokens: list[str]) -> list[str]:
    """``body3``: ``tokens`` with each CJK bigram followed by the next bigram of its run (every
    run is framed by edge tokens, so two adjacent bigrams belong to one run) replaced by the
    trigram starting at it; everything else as it is, so positions and length are the body's.
    Which tokens are bigrams comes from one ``translate`` of the stream (a regular expression
    per token made indexing three times slower than bare tantivy)."""
    out = list(tokens)
    cls = "\n".join(tokens).translate(_CLASSES).split("|")
    for i in range(len(tokens) - 1):
        if cls[i] == "cc" and cls[i + 1] == "cc" and tokens[i][1] == tokens[i + 1][0]:
            out[i] = tokens[i] + tokens[i + 1][1]
    return out


def body_fields(tokens: list[str], trigrams: list[str | None] | None = None) -> tuple[str, str]:
    """The ``body`` and ``body3`` field texts of a body token stream. ``trigrams``: the
    trigram each token starts, as :func:`genpon.search.analyzer.index_stream` made them with
    the tokens (the indexer's entries carry them): then not worked out a second time."""
    if trigrams is None:
        body3 = trigram_stream(tokens)
    else:
        body3 = [tri or tok for tok, tri in zip(tokens, trigrams, strict=True)]
    return " ".join(tokens), " ".join(body3)


def _trigrams(tokens: list[str]) -> list[str] | None:
    """The trigrams of a query term that is a chain of two or more bigrams of one CJK run (a
    word of 3+ characters), else None."""
    if len(tokens) < 2 or not all(is_bigram(t) for t in tokens):
        return None
    if any(a[1] != b[0] for a, b in itertools.pairwise(tokens)):
        return None
    return [a + b[1] for a, b in itertools.pairwise(tokens)]


def _idf(doc_freq: int, docs: int) -> float:
    """tantivy's BM25 idf (query/bm25.rs)."""
    return math.log(1.0 + (docs - doc_freq + 0.5) / (doc_freq + 0.5))


def build_schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_integer_field("document_id", stored=True, indexed=True, fast=True)
    for name in _RAW:
        sb.add_text_field(name, tokenizer_name="raw", fast=name != "sha256")
    for name in (*_TEXT, "body3"):
        sb.add_text_field(name, tokenizer_name="whitespace", index_option="position")
    sb.add_text_field("acl", tokenizer_name="raw", index_option="basic")
    sb.add_text_field("prior_acl", tokenizer_name="raw", index_option="basic")
    sb.add_text_field("prior_keys", tokenizer_name="raw", index_option="basic")
    sb.add_boolean_field("is_first", indexed=True)
    sb.add_integer_field("fiscal_year", indexed=True, fast=True)
    sb.add_integer_field("doc_date", indexed=True, fast=True)
    return sb.build()


class TantivyBackend(OnDiskBackend):
    name = "tantivy"
    schema_version = SCHEMA

    def __init__(self, path: Path, *, writer_heap: int = WRITER_HEAP) -> None:
        self.path = path
        self.writer_heap = writer_heap
        self._write_lock = threading.Lock()
        self.schema = build_schema()
        self._open()

    # --- lifecycle -------------------------------------------------------------------------

    def _open(self) -> None:
        version_file = self._prepare_dir()
        self.index = tantivy.Index(self.schema, path=str(self.path), reuse=True)
        version_file.write_text(self.schema_version)

    def close(self) -> None:
        self.index = None  # type: ignore[assignment]

    # --- writes ----------------------------------------------------------------------------

    def _doc(self, e: IndexEntry, body: tuple[str, str] | None = None) -> tantivy.Document:
        """``body``: :func:`body_fields` of ``e.body_tokens`` when the caller has it already
        (a bulk load of many documents with the same text)."""
        body_text, body3 = body or body_fields(e.body_tokens, e.body_trigrams)
        return tantivy.Document(
            document_id=e.document_id,
            sha256=e.sha256,
            case_id=e.case_id,
            organization=e.organization,
            doc_class=e.doc_class,
            folder_kind=e.folder_kind,
            status=e.status,
            body=body_text,
            body3=body3,
            title=" ".join(e.title_tokens),
            filename=" ".join(e.filename_tokens),
            meta=" ".join(e.meta_tokens),
            acl=list(e.acl) or ["-"],
            prior_acl=list(e.prior_acl) or ["-"],
            prior_keys=list(e.prior_keys) or ["-"],
            is_first=e.is_first,
            fiscal_year=e.fiscal_year,
            doc_date=e.date_key,
        )

    def _write(self, fn: Any) -> None:
        with self._write_lock:
            writer = self.index.writer(heap_size=self.writer_heap, num_threads=1)
            try:
                fn(writer)
                writer.commit()
            except BaseException:
                writer.rollback()
                raise
            finally:
                writer.wait_merging_threads()  # drops the writer and its lock file
            self.index.reload()

    @contextmanager
    def bulk(
        self, *, heap: int = 1024 * 1024 * 1024, threads: int = 2
    ) -> Iterator[Callable[[IndexEntry, tuple[str, str] | None], None]]:
        """One writer for many new documents (a benchmark's seeding): yields ``add(entry,
        body)`` (``body``: :func:`body_fields` when known, else None), commits once at the end,
        or rolls back. No deletes: the entries must be of content not in the index yet."""
        with self._write_lock:
            writer = self.index.writer(heap_size=heap, num_threads=threads)

            def add(e: IndexEntry, body: tuple[str, str] | None) -> None:
                writer.add_document(self._doc(e, body))

            try:
                yield add
                writer.commit()
            except BaseException:
                writer.rollback()
                raise
            finally:
                writer.wait_merging_threads()
            self.index.reload()

    def apply(self, session: Any, batch: Mapping[str, list[IndexEntry]]) -> None:
        if not batch:
            return
        docs = {sha: [self._doc(e) for e in entries] for sha, entries in batch.items()}

        def run(writer: Any) -> None:
            for sha, items in docs.items():
                writer.delete_documents_by_term("sha256", sha)
                for d in items:
                    writer.add_document(d)

        self._write(run)

    def clear(self, session: Any) -> None:
        self._write(lambda w: w.delete_all_documents())
        (self.path / "BUILT").unlink(missing_ok=True)

    def count(self, session: Any) -> int:
        return int(self.index.searcher().num_docs)

    # --- queries ---------------------------------------------------------------------------

    def _term_in_field(self, term: Term, fld: str) -> tantivy.Query:
        if term.contains:
            ch = term.tokens[0]
            return tantivy.Query.regex_query(self.schema, fld, _regex_escape(ch) + ".*")
        if len(term.tokens) == 1:
            return tantivy.Query.term_query(self.schema, fld, term.tokens[0])
        words: list[str | tuple[int, str]] = list(term.tokens)
        return tantivy.Query.phrase_query(self.schema, fld, words)

    def _body(self, term: Term, searcher: tantivy.Searcher | None) -> tantivy.Query:
        """The term in the body: its trigrams in ``body3`` when it is a word of one CJK run
        (boosted to the bigram phrase's score: the same phrase frequency and field length, the
        idf sums differ), else the phrase of its tokens in ``body``."""
        tri = _trigrams(term.tokens) if searcher is not None and not term.contains else None
        if tri is None or searcher is None:
            return self._term_in_field(term, "body")
        # tantivy's N counts deleted documents too, as its doc_freq does: every document has
        # is_first either true or false
        docs = searcher.doc_freq("is_first", True) + searcher.doc_freq("is_first", False)
        bigrams = sum(_idf(searcher.doc_freq("body", t), docs) for t in term.tokens)
        trigrams = sum(_idf(searcher.doc_freq("body3", t), docs) for t in tri)
        Q = tantivy.Query
        words: list[str | tuple[int, str]] = list(tri)
        q = (
            Q.term_query(self.schema, "body3", tri[0])
            if len(tri) == 1
            else Q.phrase_query(self.schema, "body3", words)
        )
        return Q.boost_query(q, BOOSTS["body"] * bigrams / trigrams)

    def _term_query(self, term: Term, searcher: tantivy.Searcher | None = None) -> tantivy.Query:
        Q, Occ = tantivy.Query, tantivy.Occur
        parts = [
            (
                Occ.Should,
                self._body(term, searcher)
                if f == "body"
                else Q.boost_query(self._term_in_field(term, f), boost),
            )
            for f, boost in BOOSTS.items()
        ]
        return Q.boolean_query(parts)

    def _any_of(self, fld: str, values: list[str]) -> tantivy.Query:
        """Documents holding any of ``values`` in a raw field: a union of term postings, read
        as the intersection advances (a term-set query first collects every match of the
        field into a bit set, for each query and pass: 60 % of the index for a caller who may
        read 3 of 5 folders)."""
        Q, Occ = tantivy.Query, tantivy.Occur
        return Q.boolean_query([(Occ.Should, Q.term_query(self.schema, fld, v)) for v in values])

    def _build(self, q: SearchQuery, searcher: tantivy.Searcher | None = None) -> tantivy.Query:
        """The query; with ``searcher``, words of 3+ CJK characters look up ``body3``."""
        Q, Occ = tantivy.Query, tantivy.Occur
        clauses: list[tuple[Any, tantivy.Query]] = []
        if q.mode == "any":
            seen: list[str] = []
            for t in q.terms:
                for tok in t.tokens:
                    if tok not in seen and not t.negated:
                        seen.append(tok)
            should = []
            for tok in seen:
                for f, boost in BOOSTS.items():
                    should.append(
                        (Occ.Should, Q.boost_query(Q.term_query(self.schema, f, tok), boost))
                    )
            clauses.append((Occ.Must, Q.boolean_query(should) if should else Q.empty_query()))
            for t in q.terms:
                if t.negated:
                    clauses.append((Occ.MustNot, self._term_query(t, searcher)))
        else:
            for t in q.terms:
                occ = Occ.MustNot if t.negated else Occ.Must
                clauses.append((occ, self._term_query(t, searcher)))
        filters: list[tantivy.Query] = []
        hidden = hidden_keys(q)
        if q.acl is not None:
            filters.append(self._any_of("acl", list(q.acl)))
        if hidden is not None:  # the first readable placement matching the filters
            clauses.append((Occ.MustNot, self._any_of("prior_keys", hidden)))
        elif q.acl is None:
            filters.append(Q.term_query(self.schema, "is_first", True))
        else:
            clauses.append((Occ.MustNot, self._any_of("prior_acl", list(q.acl))))
        for name, value in q.filters.items():
            filters.append(Q.term_query(self.schema, name, value))
        if q.date_from or q.date_to:
            lo = date_key(q.date_from) if q.date_from else 0
            hi = date_key(q.date_to) if q.date_to else 99991231
            filters.append(
                Q.range_query(self.schema, "doc_date", tantivy.FieldType.Integer, lo, hi)
            )
        for flt in filters:
            clauses.append((Occ.Must, Q.const_score_query(flt, 0.0)))
        if not any(occ == Occ.Must for occ, _ in clauses):
            clauses.append((Occ.Must, Q.all_query()))
        return Q.boolean_query(clauses)

    def search(self, session: Any, query: SearchQuery) -> BackendHits:
        searcher = self.index.searcher()
        tq = self._build(query, searcher)
        kwargs: dict[str, Any] = {}
        if query.sort == "date":
            kwargs = {"order_by_field": "doc_date", "order": tantivy.Order.Desc}
        res = searcher.search(tq, query.limit, count=True, offset=query.offset, **kwargs)
        # the hit count of search(count=True); tantivy's stub leaves the attribute out
        total: int | None = res.count  # type: ignore[attr-defined]
        addrs = [a for _, a in res.hits]
        # document_id is an integer fast field of every document
        ids = cast(list[int], searcher.fast_field_values("document_id", addrs)) if addrs else []
        hits = [
            (int(i), float(s) if query.sort == "relevance" else 0.0)
            for (s, _), i in zip(res.hits, ids, strict=True)
        ]
        facets: dict[str, list[tuple[str, int]]] = {}
        if query.facets and total:
            aggs = {
                name: {"terms": {"field": src, "size": 200}} for name, src in _FACET_SRC.items()
            }
            raw = searcher.aggregate(tq, aggs)
            facets = sort_facets(
                {
                    name: {
                        b["key"]: int(b["doc_count"]) for b in raw.get(name, {}).get("buckets", [])
                    }
                    for name in _FACET_SRC
                }
            )
        return BackendHits(total=int(total or 0), hits=hits, facets=facets)


def _regex_escape(ch: str) -> str:
    return "\\" + ch if ch in r".^$*+?()[]{}|\\" else ch
