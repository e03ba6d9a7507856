"""tantivy's ``body3`` (words of 3+ CJK characters as trigram terms) and its ACL unions find
what the bigram phrases over ``body`` and the term-set queries found: same totals, same facets,
same hits in the same order, the same scores (to float rounding), with deleted documents in
the index."""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import pytest
import tantivy
from genpon.search.analyzer import index_stream, index_tokens, query_tokens
from genpon.search.backends.base import IndexEntry, SearchQuery, Term, sort_facets
from genpon.search.backends.tantivy_backend import (
    _FACET_SRC,
    TantivyBackend,
    _trigrams,
    body_fields,
    trigram_stream,
)

WORDS = ["予算", "予算書", "契約", "道路補修", "補修工事", "の", "を", "について", "東京都",
         "京都", "第3条", "令和5年度", "公文書", "保存期間", "ああ", "あああ", "する", "ことができる",
         "abc", "R5", "、", "。\n", " "]  # fmt: skip
QUERIES = ["予算", "予算書", "算書", "道路補修工事", "補修工", "ことができ", "東京都", "京都",
           "ああああ", "あああ", "保存期間 予算", "契約 -東京都", '"予算 契約"', "の予算", "補",
           "公文書の保存", "できる", "第3条", "abc 京都"]  # fmt: skip


def _entries(n: int, seed: int) -> list[IndexEntry]:
    rng = random.Random(seed)
    out = []
    for i in range(1, n + 1):
        text = "".join(rng.choice(WORDS) for _ in range(rng.choice([5, 40, 400])))
        out.append(
            IndexEntry(
                i, f"{i:064x}", index_tokens(text), index_tokens(rng.choice(WORDS)), [], [],
                [f"team:{i % 5}"], [f"team:{(i + 1) % 5}"] if i % 7 == 0 else [], i % 7 != 0,
                i % 7 != 0, "", f"ORG{i % 3}", "", "team", "working" if i % 2 else "official",
                2020 + i % 4, date(2020 + i % 4, 1 + i % 12, 1 + i % 28),
            )
        )  # fmt: skip
    return out


def test_trigram_stream_keeps_positions() -> None:
    toks = index_tokens("東京都の予算、ab 公文書")
    tri = trigram_stream(toks)
    assert len(tri) == len(toks)
    assert "東京都" in tri and "京都" not in tri and "予算" in tri  # the run's last bigram stays
    assert "公文書" in tri and "<東" in tri and "ab" in tri
    assert _trigrams(query_tokens("予算書")) == ["予算書"]
    assert _trigrams(query_tokens("道路補修")) == ["道路補", "路補修"]
    assert _trigrams(query_tokens("予算")) is None  # one bigram: a term of its own
    assert _trigrams(query_tokens("予算 契約")) is None  # edges inside: the phrase


def test_body3_from_the_analyzers_trigrams_equals_the_token_rule() -> None:
    """The indexer's entries carry the analyzer's trigrams (index_stream); ``body3`` made
    from them is the stream :func:`trigram_stream` works out from the tokens alone."""
    text = (
        "東京都の予算、ab 公文書 令和5年度 第160条 百六十条 h31.4.1 ひらがなカタカナ漢字 一二三四"
    )
    toks, tris = index_stream(text)
    assert body_fields(toks, tris) == body_fields(toks)


@pytest.mark.parametrize("acl", [None, ["team:1", "team:2", "team:3"]])
def test_trigram_path_equals_the_bigram_phrase(tmp_path: Path, acl: list[str] | None) -> None:
    from genpon.search.service import parse_query

    be = TantivyBackend(tmp_path / "t")
    ents = _entries(300, seed=3)
    be.apply(None, {e.sha256: [e] for e in ents[:150]})
    be.apply(None, {e.sha256: [e] for e in ents[150:]})
    # replaced entries leave deleted documents behind (tantivy counts them in its idf)
    be.apply(None, {e.sha256: [e] for e in _entries(40, seed=4)})
    searcher = be.index.searcher()
    former = TantivyBackend(tmp_path / "t")  # the query as built before body3: term sets
    former._any_of = lambda fld, values: tantivy.Query.term_set_query(  # type: ignore[method-assign]
        former.schema, fld, values
    )
    aggs = {name: {"terms": {"field": src, "size": 200}} for name, src in _FACET_SRC.items()}
    for text in QUERIES:
        for filters in ({}, {"status": "working"}):
            terms: list[Term] = parse_query(text).terms
            q = SearchQuery(terms=terms, acl=acl, filters=dict(filters), limit=50)
            old_q = former._build(q)  # no searcher: every word a phrase of bigrams in body
            old = searcher.search(old_q, 50, count=True)
            new = be.search(None, q)
            assert new.total == old.count, text  # type: ignore[attr-defined]
            if new.total:
                raw = searcher.aggregate(old_q, aggs)
                assert new.facets == sort_facets(
                    {
                        n: {b["key"]: int(b["doc_count"]) for b in raw[n]["buckets"]}
                        for n in _FACET_SRC
                    }
                ), text
            addrs = [a for _, a in old.hits]
            old_ids = searcher.fast_field_values("document_id", addrs) if addrs else []
            assert [d for d, _ in new.hits] == old_ids, text
            for (_, s_new), (s_old, _) in zip(new.hits, old.hits, strict=True):
                assert s_new == pytest.approx(s_old, rel=1e-5), text
    assert any(_trigrams(t.tokens) for q in QUERIES for t in parse_query(q).terms)


def test_an_index_without_body3_is_rebuilt(tmp_path: Path) -> None:
    from genpon.search.backends.base import SCHEMA_VERSION
    from genpon.search.backends.tantivy_backend import SCHEMA

    path = tmp_path / "t"
    be = TantivyBackend(path)
    be.apply(None, {e.sha256: [e] for e in _entries(5, seed=1)})
    be.mark_built(None)
    assert not be.needs_rebuild(None) and be.count(None) == 5
    be.close()
    for name in ("SCHEMA", "BUILT"):  # as the previous release left them
        (path / name).write_text(SCHEMA_VERSION)
    again = TantivyBackend(path)
    assert again.count(None) == 0 and again.needs_rebuild(None)
    assert (path / "SCHEMA").read_text() == SCHEMA != SCHEMA_VERSION
