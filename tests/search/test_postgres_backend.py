"""PostgreSQL backend specifics: how bodies are cut into vectors, and ranking when more
documents match than it ranks one by one (totals stay exact)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from datetime import date

import pytest
from genpon.search.analyzer import index_stream, index_tokens
from genpon.search.backends import make_backend
from genpon.search.backends.base import IndexEntry, SearchQuery, Term
from genpon.search.backends.postgres_backend import EXACT_RANK, term_tsquery
from genpon.search.backends.postgres_vectors import (
    CHUNK,
    MAX_PER_LEXEME,
    OVERLAP,
    aligned_trigrams,
    chunks,
    rows,
    tsvector_literal,
)
from sqlmodel import Session

pytestmark = pytest.mark.postgres


@pytest.fixture
def search_backend() -> str:
    return "postgres"


def test_chunks_keep_every_phrase_whole_and_every_position():
    rng = random.Random(5)
    for n, vocab in ((10, 50), (5_000, 3), (40_000, 4_000), (CHUNK + 1, 10_000)):
        tokens = [f"t{rng.randrange(vocab)}" for _ in range(n)]
        parts = chunks(tokens)
        assert all(0 < len(p) <= CHUNK for p in parts)
        assert all(max(Counter(p).values()) <= MAX_PER_LEXEME for p in parts)
        # rebuilt with the overlaps removed, the parts are the body
        rebuilt = list(parts[0])
        for p in parts[1:]:
            assert p[:OVERLAP] == rebuilt[-OVERLAP:]
            rebuilt += p[OVERLAP:]
        assert rebuilt == tokens


def test_tsvector_literal_drops_nothing_below_the_limits():
    lit = tsvector_literal([(["a", "b", "a"], 1, "A"), (["a"], 10, "")])
    assert lit == "'a':1A,3A,10 'b':2A"


TEXTS = [
    "",
    "市",
    "予算",
    "令和5年度の予算執行計画、ab 公文書 第3条。東京都の京都\nで\nきる ㈱ R5",
    "予算執行計画書の作成 " * 300,  # under CHUNK tokens, lexemes over MAX_PER_LEXEME: cut
    "予算執行計画書の作成 " * 2000,
    "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(CHUNK + 500)),  # over CHUNK
]


def test_index_stream_trigrams_are_the_pairs_of_its_tokens():
    for text in TEXTS:
        tokens, tri = index_stream(text)
        assert tokens == index_tokens(text)
        assert tri == aligned_trigrams(tokens)


def test_rows_from_the_analyzer_trigrams_equal_rows_paired_afterwards():
    for text in TEXTS:
        tokens, tri = index_stream(text)
        made = [_entry(1, "予算書", tokens, 1), _entry(2, "", tokens, 2)]
        given = [replace(e, body_trigrams=tri) for e in made]
        assert list(rows({"s": given})) == list(rows({"s": made}))


def _entry(i: int, title: str, body: list[str], team: int) -> IndexEntry:
    return IndexEntry(
        document_id=i,
        sha256=f"{i:064x}",
        body_tokens=body,
        title_tokens=[title] if title else [],
        filename_tokens=[f"f{i}"],
        meta_tokens=[],
        acl=[f"team:{team}"],
        prior_acl=[],
        is_first=True,
        is_original=True,
        case_id="",
        organization=f"ORG{team}",
        doc_class="",
        folder_kind="team",
        status="working",
        fiscal_year=2020 + i % 5,
        doc_date=date(2020 + i % 5, 1 + i % 12, 1 + i % 28),
    )


def test_broad_queries_rank_field_matches_first_with_exact_totals(ctx):
    backend = make_backend(ctx)
    n = EXACT_RANK + 300
    # every body holds 予算; only document 7 (an old one) has it in its title
    ents = [
        _entry(i, "予算" if i == 7 else "", ["予算", "執行"] * (1 + i % 9), i % 3)
        for i in range(1, n + 1)
    ]
    with Session(ctx.engine) as session:
        backend.apply(session, {e.sha256: [e] for e in ents})
        session.commit()
        q = SearchQuery(terms=[Term(tokens=["予算"])], acl=None, limit=10, facets=True)
        r = backend.search(session, q)
        assert r.total == n
        assert r.hits[0][0] == 7
        assert len(r.hits) == 10 and len({h for h, _ in r.hits}) == 10
        assert sum(c for _, c in r.facets["organization"]) == n
        visible = SearchQuery(terms=[Term(tokens=["予算"])], acl=["team:1"], limit=10)
        r = backend.search(session, visible)
        assert r.total == sum(1 for e in ents if e.acl == ["team:1"])
        assert all(h % 3 == 1 for h, _ in r.hits)
        by_date = SearchQuery(terms=[Term(tokens=["執行"])], sort="date", limit=5, offset=3)
        r = backend.search(session, by_date)
        newest = sorted(ents, key=lambda e: (e.date_key, e.document_id), reverse=True)
        assert [h for h, _ in r.hits] == [e.document_id for e in newest[3:8]]
        assert r.total == n


def test_without_the_rum_extension_it_refuses_with_a_clear_error(pg_server):
    """A database where the extension was never created and the role may not create it."""
    import uuid

    from genpon.core.db import migrate
    from genpon.core.errors import Unavailable
    from genpon.search.backends.postgres_backend import PostgresBackend
    from sqlalchemy import create_engine

    url = pg_server.create_database(f"norum_{uuid.uuid4().hex[:8]}", template="template0")
    migrate(url)
    engine = create_engine(url)
    try:
        with pytest.raises(Unavailable) as err:
            PostgresBackend(engine)
        assert err.value.code == "search_backend_unavailable"
        assert "CREATE EXTENSION rum" in err.value.message
    finally:
        engine.dispose()


def test_phrases_of_trigrams_are_exact(pg_server):
    """Every substring query, its CJK runs tiled by trigrams up to three positions apart,
    matches exactly the documents that contain it (checked by PostgreSQL against brute force),
    Latin words inside the term included."""
    import psycopg
    from genpon.search.analyzer import index_tokens, query_tokens

    rng = random.Random(11)
    alphabet = "予算執行の契約。a"
    docs = ["".join(rng.choice(alphabet) for _ in range(60)) for _ in range(80)]
    terms = set()
    for _ in range(600):
        d = rng.choice(docs)
        n = rng.randint(2, 11)
        start = rng.randrange(len(d) - n)
        terms.add(d[start : start + n])
        terms.add("".join(rng.choice(alphabet[:7]) for _ in range(n)))
    # (a Latin word at a term's edge is matched as a whole word, not as a substring)
    terms = {t for t in terms if "。" not in t and t[0] != "a" and t[-1] != "a"}
    vectors = [tsvector_literal([(index_tokens(d), 1, "")]) for d in docs]
    queries = [(t, term_tsquery(Term(tokens=query_tokens(t)))) for t in sorted(terms)]
    assert any("<3>" in q for _, q in queries) and any("a" in t for t, _ in queries)
    with psycopg.connect(pg_server.url.replace("postgresql+psycopg", "postgresql")) as conn:
        got = {
            (d, q)
            for d, q in conn.execute(
                "SELECT d.i, q.j FROM unnest(%s::tsvector[]) WITH ORDINALITY d(v, i), "
                "unnest(%s::tsquery[]) WITH ORDINALITY q(t, j) WHERE d.v @@ q.t",
                (vectors, [q for _, q in queries]),
            )
        }
    want = {
        (i + 1, j + 1) for i, d in enumerate(docs) for j, (t, _) in enumerate(queries) if t in d
    }
    assert 0 < len(want) < len(docs) * len(queries) / 2
    assert got == want


def test_an_index_of_an_older_shape_is_rebuilt_by_the_indexer(ctx):
    """Vectors written before trigrams were added cannot answer trigram phrases: a stored
    shape that differs makes the indexer rebuild before it applies anything."""
    from genpon.search import indexer
    from genpon.search.backends.base import SCHEMA_VERSION
    from genpon.search.backends.postgres_backend import INDEX_VERSION, INDEXES, STATE_KEY
    from genpon.search.models import SearchState
    from sqlalchemy import text

    backend = make_backend(ctx)
    with Session(ctx.engine) as s:
        backend.mark_built(s)
        s.commit()
        assert not backend.needs_rebuild(s)
        names = set(s.execute(text("SELECT indexname FROM pg_indexes")).scalars())
        assert set(INDEXES) <= names
        row = s.get(SearchState, STATE_KEY)
        assert row is not None
        row.value = SCHEMA_VERSION  # the shape of the previous release
        s.add(row)
        s.commit()
        assert backend.needs_rebuild(s)
    indexer.drain(ctx)
    with Session(ctx.engine) as s:
        row = s.get(SearchState, STATE_KEY)
        assert row is not None and row.value == INDEX_VERSION
