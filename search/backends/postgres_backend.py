"""PostgreSQL (scale): the analyzer's tokens in ``tsvector`` columns behind a RUM index.

The index lives in the same database, and :meth:`PostgresBackend.apply` writes in the
caller's transaction (the one that deletes the outbox rows), so index and outbox commit
together. Tokens are written as tsvector literals with their positions (no PostgreSQL parser
or dictionary touches them, so ``simple`` config semantics, exactly our analyzer's tokens);
queries use the phrase operator ``<->``.

Shape (migration 0006). One row per live placement (``search_entry``) carries permissions,
filters and ``all_tsv``: title (weight A), file name (B), case and folder (C) and the head of
the body (D), each field apart from the next by more than the longest phrase, so no phrase
spans two fields, and the placement's permission tokens as lexemes (``#acl:…``), so the
index also answers "may the caller read it". Beside each bigram that starts a run of two the
vector holds the trigram they spell, at the same position (:func:`tsvector_literal`); a query
term of three or more characters becomes a phrase of a few trigrams at most three positions
apart (:func:`term_tsquery`), exact and far cheaper than the phrase of its common bigrams.

Two indexes answer the main query. A term with a phrase goes to the RUM index over
``all_tsv``: RUM keeps the positions in the index, so phrases are decided without reading rows
(a GIN index must re-read and decompress each candidate's vector to check a phrase, which at
100,000 documents made a common bigram cost seconds). A query without phrases (two-character
words, three-character words as one trigram, permissions) goes to a plain GIN index over the
stripped vector, whose row lists are several times faster to read than RUM's position lists.
A tsvector keeps positions only up to 16383 and
at most 256 positions per lexeme, so a body that does not fit continues in ``search_chunk``
(once per content, chunks overlapping by ``OVERLAP`` tokens so a phrase of up to ``OVERLAP``
tokens lies whole in some vector); those long contents are matched on a second, exact path.

Ranking. The score is ``ts_rank`` over ``all_tsv`` with the field weights (title and file name
boosted) plus the best overflow chunk. Ranking needs each candidate's vector, so when more than
``EXACT_RANK`` visible documents match, only a bounded candidate set is ranked: the documents
whose title, file name or case match (best first, by their small ``fields_tsv``) and the newest
body matches. Totals, facets and filters stay exact in every case.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping
from typing import Any

import psycopg
from genpon.core.errors import Unavailable
from genpon.search.backends.base import (
    BOOSTS,
    SCHEMA_VERSION,
    BackendHits,
    IndexEntry,
    SearchBackend,
    SearchQuery,
    Term,
    date_key,
    hidden_keys,
    sort_facets,
)
from genpon.search.backends.postgres_vectors import (
    ACL_PREFIX,
    OVERLAP,
    lexeme,
    rows,
    trigrams,
)
from genpon.search.models import SearchState
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

log = logging.getLogger(__name__)

EXACT_RANK = 1000  # rank every match up to this many; above, a bounded candidate set
RECENT = 200  # newest body matches ranked besides the field matches, above EXACT_RANK
STATE_KEY = "postgres_index_built"
# the index shape this code writes: a stored value that differs (older vectors without
# trigrams) makes ``needs_rebuild`` ask for a rebuild
INDEX_VERSION = f"{SCHEMA_VERSION}+trigrams"
# ts_rank weights in the order {D, C, B, A}: body, case/folder, file name, title (max 1.0)
WEIGHTS = (
    "{"
    + ",".join(
        f"{BOOSTS[k] / max(BOOSTS.values()):.4f}" for k in ("body", "meta", "filename", "title")
    )
    + "}"
)
_FACET_COLS = {
    "organization": "organization",
    "class": "doc_class",
    "folder_kind": "folder_kind",
    "fiscal_year": "fiscal_year",
}
# Created by the backend (RUM needs its extension) and, on a full rebuild, only after the
# rows are in (see ``clear``): RUM for phrases (positions in the index), plain GIN over the
# stripped vector for queries without phrases (row lists only, far smaller to read).
INDEXES = {
    "ix_search_entry_all": "search_entry USING rum (all_tsv rum_tsvector_ops)",
    "ix_search_chunk_tsv": "search_chunk USING rum (tsv rum_tsvector_ops)",
    "ix_search_entry_lex": "search_entry USING gin (strip(all_tsv))",
}


def term_tsquery(term: Term) -> str:
    """The term as a tsquery phrase over as few and as rare lexemes as stay exact. Inside a CJK
    run the bigrams are replaced by trigrams at most three positions apart (``予算執 <3> 行計画``
    for 予算執行計画), the last one ending where the run does. In the index a bigram is followed
    only by the next bigram of its run or the run's end marker, and a trigram sits only where
    two bigrams of one run follow each other, so trigrams at p and p+3 imply the bigrams at
    p+1 and p+2 and with them every character in between. Each lexeme costs the RUM index one
    posting list, so this is exact and much cheaper than the bigram phrase."""
    if term.contains:
        return lexeme(term.tokens[0]) + ":*"
    toks = term.tokens[:OVERLAP]
    tris = trigrams(toks)
    picks: list[tuple[int, str]] = []  # (offset in the term, lexeme)
    j, n = 0, len(toks)
    while j < n:
        k = j
        while k < len(tris) and tris[k] is not None:  # bigrams j..k+1 form one run
            k += 1
        if k == j:
            picks.append((j, toks[j]))
            j += 1
            continue
        offsets = list(range(j, k, 3))
        if offsets[-1] != k - 1:
            offsets.append(k - 1)
        picks += [(o, tris[o] or "") for o in offsets]
        j = k + 1
    out = lexeme(picks[0][1])
    for (prev, _), (cur, lex) in itertools.pairwise(picks):
        gap = cur - prev
        out += (" <-> " if gap == 1 else f" <{gap}> ") + lexeme(lex)
    return out


def _any(parts: list[str]) -> str:
    return " | ".join(f"({p})" for p in parts)


def _text_queries(q: SearchQuery) -> tuple[list[str], list[str], str]:
    """(tsquery of each positive term, of each negated term, the whole text condition): all
    terms in mode ``all``, any of their tokens in mode ``any``, none of the negated ones."""
    pos = [term_tsquery(t) for t in q.terms if not t.negated]
    neg = [term_tsquery(t) for t in q.terms if t.negated]
    if q.mode == "any":
        toks = list(dict.fromkeys(tok for t in q.terms if not t.negated for tok in t.tokens))
        pos = [" | ".join(lexeme(t) for t in toks) or "''"]
    main = " & ".join(f"({p})" for p in pos) if q.mode == "all" else pos[0]
    main += "".join(f" & !({n})" for n in neg)
    return pos, neg, main


def _visibility(q: SearchQuery, params: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(conditions every match must meet, tested on the row; the permission test on the row,
    which the main path leaves to the index): one entry per content the caller may read."""
    vis: list[str] = []
    acl_row: list[str] = []
    hidden = hidden_keys(q)
    if q.acl is not None and not q.acl:
        vis.append("false")
    elif q.acl is not None:
        params["acl"] = list(q.acl)
        acl_row.append("e.acl && CAST(:acl AS text[])")
    # (most placements have no earlier placement: skip the array tests for them)
    if hidden is not None:  # the first readable placement matching the filters
        params["hidden"] = hidden
        vis.append(
            "(cardinality(e.prior_keys) = 0 OR NOT (e.prior_keys && CAST(:hidden AS text[])))"
        )
    elif q.acl is None:
        vis.append("e.is_first")
    elif q.acl:
        vis.append("(cardinality(e.prior_acl) = 0 OR NOT (e.prior_acl && CAST(:acl AS text[])))")
    return vis, acl_row


def _filter_conditions(q: SearchQuery, params: dict[str, Any]) -> list[str]:
    """The exact-value filters and the date range, as row conditions."""
    out: list[str] = []
    for name, value in q.filters.items():
        params[f"f_{name}"] = value
        out.append(f"e.{name} = :f_{name}")
    # ``+ 0``: the date must never be chosen as an index path (it would read every vector)
    if q.date_from:
        params["dfrom"] = date_key(q.date_from)
        out.append("e.doc_date + 0 >= :dfrom")
    if q.date_to:
        params["dto"] = date_key(q.date_to)
        out.append("e.doc_date + 0 <= :dto")
    return out


def _main_path_match(q: SearchQuery, pos: list[str], neg: list[str]) -> str:
    """The main path's text condition on ``all_tsv``. Without a phrase (only one-lexeme terms
    and the permissions) positions are not needed, and the plain GIN index over the stripped
    vectors answers from a compact list of rows instead of the RUM index's position lists.
    (Only one index is named per statement: given both, the planner may pick one and test the
    other on each row.)"""
    if q.mode == "all" and not neg and all(" <" not in p for p in pos):
        return "strip(e.all_tsv) @@ CAST(:qmain AS tsquery)"
    return "e.all_tsv @@ CAST(:qmain AS tsquery)"


def _long_path_terms(q: SearchQuery, pos: list[str], params: dict[str, Any]) -> list[str]:
    """For contents with a body beyond the head: each positive term (mode ``all``) in the
    entry's vector or in one of its chunks, tested exactly term by term."""
    if q.mode != "all":
        return []
    out: list[str] = []
    for i, p in enumerate(pos):
        params[f"p{i}"] = p
        in_chunks = (
            f"EXISTS (SELECT 1 FROM search_chunk c WHERE c.sha256 = e.sha256 "
            f"AND c.tsv @@ CAST(:p{i} AS tsquery))"
        )
        out.append(f"(e.all_tsv @@ CAST(:p{i} AS tsquery) OR {in_chunks})")
    return out


def _exclude_chunks(
    neg: list[str], params: dict[str, Any], main_where: list[str], long_where: list[str]
) -> str:
    """The ``negl`` CTE (contents with a negated term in an overflow chunk), and the
    conditions that keep them, and entries with one in ``all_tsv``, out of both paths."""
    params["qneg"] = _any(neg)
    main_where.append("e.sha256 NOT IN (SELECT sha256 FROM negl)")
    long_where += [
        "NOT (e.all_tsv @@ CAST(:qneg AS tsquery))",
        "e.sha256 NOT IN (SELECT sha256 FROM negl)",
    ]
    return (
        "negl AS MATERIALIZED (SELECT DISTINCT sha256 FROM search_chunk WHERE tsv @@ "
        "CAST(:qneg AS tsquery))"
    )


class PostgresBackend(SearchBackend):
    name = "postgres"

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("the postgres search backend needs a PostgreSQL database")
        self.engine = engine
        self._ensure_indexes()

    def _ensure_indexes(self) -> None:
        """Create the search indexes if they are missing (and the ``rum`` extension if allowed);
        without them the backend cannot answer in time, so it refuses to start."""
        with self.engine.begin() as conn:
            have = set(
                conn.execute(
                    text("SELECT indexname FROM pg_indexes WHERE indexname = ANY(:n)"),
                    {"n": list(INDEXES)},
                ).scalars()
            )
            if have == set(INDEXES):
                return
            try:
                with conn.begin_nested():
                    conn.execute(text("CREATE EXTENSION IF NOT EXISTS rum"))
                for name, target in INDEXES.items():
                    if name not in have:
                        conn.execute(text(f"CREATE INDEX IF NOT EXISTS {name} ON {target}"))
            except DBAPIError as exc:
                log.error("search: RUM index unavailable: %s", exc.orig)
                raise Unavailable(
                    "search_backend_unavailable",
                    "PostgreSQL 検索には rum 拡張が必要です。Debian では postgresql-<版>-rum を"
                    "導入し、管理者権限で CREATE EXTENSION rum; を実行してください。",
                ) from None

    def needs_rebuild(self, session: Any) -> bool:
        row = session.get(SearchState, STATE_KEY)
        return row is None or row.value != INDEX_VERSION

    def mark_built(self, session: Any) -> None:
        for name, target in INDEXES.items():
            session.execute(text(f"CREATE INDEX IF NOT EXISTS {name} ON {target}"))
        row = session.get(SearchState, STATE_KEY) or SearchState(key=STATE_KEY)
        row.value = INDEX_VERSION
        session.add(row)

    # --- writes ----------------------------------------------------------------------------

    def apply(self, session: Session, batch: Mapping[str, list[IndexEntry]]) -> None:
        """Replace the rows of every content in ``batch``. The rows are sent one by one in
        psycopg's pipeline mode, each as soon as its vectors are built: PostgreSQL inserts a
        row (mostly RUM index work) while this process builds the next one, and, when
        ``batch`` builds its entries on demand (the indexer's), tokenizes the next content,
        so the two overlap instead of taking turns (without psycopg 3: one statement after
        another)."""
        shas = list(batch)
        if not shas:
            return
        session.execute(text("DELETE FROM search_entry WHERE sha256 = ANY(:s)"), {"s": shas})
        session.execute(text("DELETE FROM search_chunk WHERE sha256 = ANY(:s)"), {"s": shas})
        conn = session.connection()
        raw = conn.connection.driver_connection
        if isinstance(raw, psycopg.Connection):
            with raw.pipeline(), raw.cursor() as cur:
                for sql, params in rows(batch):
                    cur.execute(sql, params)
        else:
            for sql, params in rows(batch):
                conn.exec_driver_sql(sql, params)
        session.flush()

    def clear(self, session: Session) -> None:
        # A full rebuild inserts every row: building the RUM indexes once at the end
        # (mark_built) is several times faster than updating them row by row.
        for name in INDEXES:
            session.execute(text(f"DROP INDEX IF EXISTS {name}"))
        session.execute(text("DELETE FROM search_entry"))
        session.execute(text("DELETE FROM search_chunk"))
        row = session.get(SearchState, STATE_KEY)
        if row is not None:
            session.delete(row)

    def count(self, session: Session) -> int:
        return int(session.execute(text("SELECT count(*) FROM search_entry")).scalar_one())

    # --- queries ---------------------------------------------------------------------------

    def _matches(self, q: SearchQuery, params: dict[str, Any], facets: bool = False) -> str:
        """WITH list defining ``m``: the visible placements matching ``q`` (document_id,
        doc_date and, with ``facets``, the facet columns), binding ``params``.

        ``m`` is the union of two paths: the main one answers from ``all_tsv`` (fields, head
        of the body and permissions) through an index; the long one tests, term by term, the
        contents whose body continues in ``search_chunk``."""
        pos, neg, main = _text_queries(q)
        params["qany"] = _any(pos)
        vis, acl_row = _visibility(q, params)
        if acl_row:  # the index answers the permission test too: it returns visible rows
            main += " & (" + " | ".join(lexeme(ACL_PREFIX + t) for t in q.acl or []) + ")"
        params["qmain"] = main
        vis += _filter_conditions(q, params)
        cols = "e.document_id, e.doc_date"
        if facets:
            cols += "".join(f", e.{c}" for c in _FACET_COLS.values())
        ctes = [
            "long AS MATERIALIZED (SELECT DISTINCT sha256 FROM search_chunk WHERE tsv @@ "
            "CAST(:qany AS tsquery))"
        ]
        main_where = [_main_path_match(q, pos, neg), *vis]
        long_where = [
            "e.sha256 IN (SELECT sha256 FROM long)",
            "NOT (e.all_tsv @@ CAST(:qmain AS tsquery))",  # else found by the main path
            *acl_row,
            *vis,
            *_long_path_terms(q, pos, params),
        ]
        if neg:
            ctes.append(_exclude_chunks(neg, params, main_where, long_where))
        ctes.append(
            f"m AS MATERIALIZED (SELECT {cols} FROM search_entry e WHERE "
            + " AND ".join(main_where)
            + f" UNION ALL SELECT {cols} FROM search_entry e WHERE "
            + " AND ".join(long_where)
            + ")"
        )
        return "WITH " + ", ".join(ctes) + " "

    def search(self, session: Session, query: SearchQuery) -> BackendHits:
        # The planner costs ``@@`` as cheap and may prefer reading rows and testing their
        # vectors (each a decompressed multi-KB value) over the RUM bitmap, which answers
        # without touching them; plain and index scans are switched off for these statements
        # only (the savepoint's rollback restores the settings; the statements only read).
        nested = session.begin_nested()
        try:
            # (JIT compiling costs these statements more than it saves)
            session.execute(
                text(
                    "SELECT set_config('enable_seqscan', 'off', true), "
                    "set_config('enable_indexscan', 'off', true), "
                    "set_config('work_mem', '64MB', true), set_config('jit', 'off', true)"
                )
            )
            return self._search(session, query)
        finally:
            nested.rollback()

    def _search(self, session: Session, query: SearchQuery) -> BackendHits:
        params: dict[str, Any] = {"lim": query.limit, "off": query.offset}
        with_ = self._matches(query, params)
        relevance = query.sort == "relevance"
        if relevance:
            want = query.offset + query.limit
            params.update(w=WEIGHTS, exact=EXACT_RANK, nf=want, nr=max(RECENT, want))
            sql = (
                f"{with_}, n AS MATERIALIZED (SELECT count(*) AS total FROM m), "
                "fm AS MATERIALIZED (SELECT e.document_id, e.fields_tsv FROM search_entry e "
                "WHERE e.fields_tsv @@ CAST(:qany AS tsquery)), "
                "f AS (SELECT fm.document_id FROM fm JOIN m ON m.document_id = fm.document_id "
                "ORDER BY ts_rank(CAST(:w AS float4[]), fm.fields_tsv, CAST(:qany AS tsquery)) "
                "DESC, fm.document_id LIMIT :nf), "
                "r AS (SELECT document_id FROM m ORDER BY doc_date DESC, document_id DESC "
                "LIMIT :nr), "
                "c AS (SELECT document_id FROM m WHERE (SELECT total FROM n) <= :exact "
                "UNION SELECT document_id FROM f UNION SELECT document_id FROM r) "
                "SELECT e.document_id, ts_rank(CAST(:w AS float4[]), e.all_tsv, "
                "CAST(:qany AS tsquery)) + CASE WHEN e.sha256 IN (SELECT sha256 FROM long) "
                "THEN (SELECT coalesce(max(ts_rank(s.tsv, CAST(:qany AS tsquery))), 0) "
                "FROM search_chunk s WHERE s.sha256 = e.sha256) * :wb ELSE 0 END AS score, "
                "(SELECT total FROM n) FROM search_entry e "
                "WHERE e.document_id IN (SELECT document_id FROM c) "
                "ORDER BY score DESC, e.document_id LIMIT :lim OFFSET :off"
            )
            params["wb"] = BOOSTS["body"] / max(BOOSTS.values())
        else:
            sql = (
                f"{with_}SELECT document_id, 0, (SELECT count(*) FROM m) FROM m "
                "ORDER BY doc_date DESC, document_id DESC LIMIT :lim OFFSET :off"
            )
        rows = session.execute(text(sql), params).all()
        hits = [(int(r[0]), float(r[1]) if relevance else 0.0) for r in rows]
        if not query.facets:
            if rows:
                total = int(rows[0][2])
            elif query.offset:
                total = int(
                    session.execute(text(f"{with_}SELECT count(*) FROM m"), params).scalar_one()
                )
            else:
                total = 0
            return BackendHits(total=total, hits=hits, facets={})
        cols = ", ".join(_FACET_COLS.values())
        sets = ", ".join(f"({c})" for c in _FACET_COLS.values())
        params = {}
        with_ = self._matches(query, params, facets=True)
        agg = session.execute(
            text(
                f"{with_}SELECT {cols}, GROUPING({cols}) AS g, count(*) FROM m "
                f"GROUP BY GROUPING SETS ({sets}, ())"
            ),
            params,
        ).all()
        total = 0
        raw: dict[str, dict[Any, int]] = {name: {} for name in _FACET_COLS}
        names = list(_FACET_COLS)
        for row in agg:
            values, g, n = row[: len(names)], int(row[len(names)]), int(row[-1])
            if g == (1 << len(names)) - 1:
                total = n
                continue
            for k, name in enumerate(names):
                # GROUPING bit for column k is 0 when the column is grouped in this set
                if not g & (1 << (len(names) - 1 - k)):
                    raw[name][values[k]] = n
        return BackendHits(total=total, hits=hits, facets=sort_facets(raw))
