"""Search benchmark: build rate, index size and p50/p95 query latency per backend.

Generates seeded Japanese documents (1–5 KB) from a vocabulary of administrative words,
indexes them through each backend (the same analyzer and entries as the indexer; no database
deposits) and runs mixed queries (2-character words, longer words, two-term AND, phrases),
each with a filter and a caller's permission tokens, top 10 with the exact total.

    .venv/bin/python bench/search.py --docs 100000 --whoosh-docs 10000
    .venv/bin/python bench/search.py --only none --http laws --http-docs 100000
    .venv/bin/python bench/search.py --only none --http generated --http-docs 1000000

The corpus is streamed (a generator, one batch in memory), so --docs 1000000 fits. ``--http``
(bench/search_http.py): the full HTTP path, database and index seeded in bulk, the former
tantivy query (or, with ``--before snippets``, the former whole-text snippets) next to today's
in one run.
"""

from __future__ import annotations

import argparse
import itertools
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import search_http  # bench/search_http.py (this script's folder is on sys.path)
from genpon.search.analyzer import index_tokens, query_tokens
from genpon.search.backends.base import IndexEntry, SearchBackend, SearchQuery, Term

WORDS = [
    "予算",
    "契約",
    "道路",
    "補修",
    "工事",
    "入札",
    "決裁",
    "公文書",
    "保存",
    "期間",
    "廃棄",
    "移管",
    "市民",
    "窓口",
    "住民票",
    "税務",
    "固定資産税",
    "納付",
    "通知",
    "申請",
    "許可",
    "届出",
    "施設",
    "管理",
    "委託",
    "業務",
    "報告",
    "会議",
    "議事録",
    "条例",
    "規則",
    "要綱",
    "補助金",
    "交付",
    "監査",
    "点検",
    "橋梁",
    "下水道",
    "上水道",
    "公園",
    "学校",
    "教育",
    "福祉",
    "介護",
    "保険",
    "年金",
    "防災",
    "避難",
    "訓練",
    "計画",
    "令和",
    "年度",
    "総務",
    "財政",
    "人事",
    "異動",
    "研修",
    "情報",
    "公開",
    "個人情報",
    "保護",
    "審査",
    "承認",
    "変更",
]
PARTICLES = [
    "の",
    "は",
    "を",
    "に",
    "が",
    "と",
    "で",
    "から",
    "まで",
    "より",
    "について",
    "における",
]
ORGS = ["SOUMU-ZAISEI", "KENSETSU-DOURO", "SHIMIN-SHIMIN", "SOUMU-SOUMU"]


def gen_text(rng: random.Random) -> str:
    target = rng.randint(350, 1700)  # ~1–5 KB in UTF-8
    out: list[str] = []
    n = 0
    while n < target:
        s = "".join(rng.choice(WORDS) + rng.choice(PARTICLES) for _ in range(rng.randint(3, 8)))
        s += rng.choice(["。", "、", "。\n"])
        out.append(s)
        n += len(s)
    return "".join(out)


def entries(n: int, seed: int = 7) -> Iterator[IndexEntry]:
    """The corpus, streamed: never more than one batch is in memory (1,000,000 documents)."""
    rng = random.Random(seed)
    for i in range(1, n + 1):
        org = ORGS[i % len(ORGS)]
        yield (
            IndexEntry(
                document_id=i,
                sha256=f"{i:064x}",
                body_tokens=index_tokens(gen_text(rng)),
                title_tokens=index_tokens(f"{rng.choice(WORDS)}{rng.choice(WORDS)}について"),
                filename_tokens=index_tokens(f"doc-{i}.pdf"),
                meta_tokens=[],
                acl=[f"team:{i % len(ORGS)}"],
                prior_acl=[],
                is_first=True,
                is_original=True,
                case_id="",
                organization=org,
                doc_class="",
                folder_kind="team",
                status="working" if i % 3 else "official",
                fiscal_year=2020 + i % 7,
                doc_date=date(2020 + i % 7, 1 + i % 12, 1 + i % 28),
            )
        )


def batches(ents: Iterable[IndexEntry], size: int) -> Iterator[list[IndexEntry]]:
    it = iter(ents)
    while part := list(itertools.islice(it, size)):
        yield part


def queries(k: int, seed: int = 11) -> list[SearchQuery]:
    rng = random.Random(seed)
    out = []
    for j in range(k):
        kind = j % 4
        if kind == 0:
            words = [rng.choice([w for w in WORDS if len(w) == 2])]
        elif kind == 1:
            words = [rng.choice([w for w in WORDS if len(w) >= 3])]
        elif kind == 2:
            words = [rng.choice(WORDS), rng.choice(WORDS)]
        else:
            words = [rng.choice(WORDS) + rng.choice(PARTICLES) + rng.choice(WORDS)]
        terms = [Term(tokens=query_tokens(w)) for w in words]
        out.append(
            SearchQuery(
                terms=terms,
                acl=["team:1", "team:2"],
                filters={"status": "working"} if j % 2 else {},
                limit=10,
                facets=False,
            )
        )
    return out


def dir_size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def phrases(q: SearchQuery) -> list[list[str]]:
    """The query's terms as phrases of index tokens (the yardsticks' view: no permissions)."""
    return [t.tokens for t in q.terms if t.tokens]


class Result:
    def __init__(self, name: str, docs: int, build_rate: float, size: float, lat: list[float]):
        lat = sorted(lat)
        self.name, self.docs, self.build_rate, self.size = name, docs, build_rate, size
        self.p50 = statistics.median(lat)
        self.p95 = lat[int(len(lat) * 0.95) - 1]


def measure(
    name: str,
    ents: Iterable[IndexEntry],
    qs: list[SearchQuery],
    add: Callable[[list[IndexEntry]], None],
    search: Callable[[SearchQuery], int],
    size: Callable[[], int],
    batch: int = 2000,
) -> Result:
    t0 = time.perf_counter()
    n = 0
    for part in batches(ents, batch):
        add(part)
        n += len(part)
        if n % 100_000 == 0:
            print(f"  {name}: {n} documents in {time.perf_counter() - t0:.0f} s", flush=True)
    build = time.perf_counter() - t0  # (generating and analyzing the documents included)
    lat = []
    totals = 0
    for q in qs:
        t = time.perf_counter()
        totals += search(q)
        lat.append((time.perf_counter() - t) * 1000)
    r = Result(name, n, n / build, size() / 1e6, lat)
    print(
        f"{name:12s} docs={r.docs:7d} build={r.build_rate:7.0f} docs/s "
        f"size={r.size:7.1f} MB  p50={r.p50:7.1f} ms "
        f"p95={r.p95:7.1f} ms  (queries={len(qs)}, mean hits={totals / len(qs):.0f})",
        flush=True,
    )
    return r


def run_backend(
    name: str,
    backend: SearchBackend,
    ents: Iterable[IndexEntry],
    qs: list[SearchQuery],
    path: Path,
) -> Result:
    return measure(
        name,
        ents,
        qs,
        lambda b: backend.apply(None, {e.sha256: [e] for e in b}),
        lambda q: backend.search(None, q).total,
        lambda: dir_size(path),
    )


def run_bare_tantivy(ents: Iterable[IndexEntry], qs: list[SearchQuery], path: Path) -> Result:
    """tantivy bindings directly: one whitespace-tokenized body field with positions, the
    terms as phrase queries (AND), top 10 by BM25 with the exact count, no filters."""
    import tantivy
    from genpon.search.backends.tantivy_backend import WRITER_HEAP

    sb = tantivy.SchemaBuilder()
    sb.add_integer_field("id", stored=True, indexed=True, fast=True)
    sb.add_text_field("body", tokenizer_name="whitespace", index_option="position")
    schema = sb.build()
    path.mkdir(parents=True)
    index = tantivy.Index(schema, path=str(path))

    def add(batch: list[IndexEntry]) -> None:
        # same writer settings as the backend (heap, one thread, a commit per batch)
        w = index.writer(heap_size=WRITER_HEAP, num_threads=1)
        for e in batch:
            w.add_document(tantivy.Document(id=e.document_id, body=" ".join(e.body_tokens)))
        w.commit()
        w.wait_merging_threads()
        index.reload()

    def search(q: SearchQuery) -> int:
        Q, Occ = tantivy.Query, tantivy.Occur
        parts = [
            (
                Occ.Must,
                Q.term_query(schema, "body", p[0])
                if len(p) == 1
                else Q.phrase_query(schema, "body", p),
            )
            for p in phrases(q)
        ]
        searcher = index.searcher()
        res = searcher.search(Q.boolean_query(parts), 10, count=True)
        addrs = [a for _, a in res.hits]
        if addrs:
            searcher.fast_field_values("id", addrs)
        return int(res.count or 0)

    return measure("bare-tantivy", ents, qs, add, search, lambda: dir_size(path))


def run_fts5(ents: Iterable[IndexEntry], qs: list[SearchQuery], path: Path) -> Result:
    """SQLite FTS5: tokens joined by spaces (unicode61 with < and > as token characters),
    phrase MATCH per term (AND), count(*) and the top 10 by bm25, no filters."""
    import sqlite3

    path.mkdir(parents=True)
    db = path / "fts5.db"
    con = sqlite3.connect(db)
    con.execute(
        "CREATE VIRTUAL TABLE doc USING fts5(body, tokenize = \"unicode61 tokenchars '<>'\")"
    )

    def add(batch: list[IndexEntry]) -> None:
        con.executemany(
            "INSERT INTO doc (rowid, body) VALUES (?, ?)",
            [(e.document_id, " ".join(e.body_tokens)) for e in batch],
        )
        con.commit()

    def search(q: SearchQuery) -> int:
        m = " AND ".join('"' + " ".join(p).replace('"', '""') + '"' for p in phrases(q))
        total = con.execute("SELECT count(*) FROM doc WHERE doc MATCH ?", (m,)).fetchone()[0]
        con.execute(
            "SELECT rowid FROM doc WHERE doc MATCH ? ORDER BY bm25(doc) LIMIT 10", (m,)
        ).fetchall()
        return int(total)

    try:
        return measure("fts5", ents, qs, add, search, lambda: dir_size(path))
    finally:
        con.close()


def run_bare_whoosh(ents: Iterable[IndexEntry], qs: list[SearchQuery], path: Path) -> Result:
    """Whoosh directly: one space-tokenized body field with positions, terms as phrases (AND),
    top 10 with the exact count, no filters."""
    from whoosh import index as windex
    from whoosh import query as wq
    from whoosh.analysis import SpaceSeparatedTokenizer
    from whoosh.fields import NUMERIC, TEXT, Schema

    path.mkdir(parents=True)
    schema = Schema(
        id=NUMERIC(int, bits=64, stored=True, unique=True),
        body=TEXT(analyzer=SpaceSeparatedTokenizer(), phrase=True),
    )
    ix = windex.create_in(str(path), schema)

    def add(batch: list[IndexEntry]) -> None:
        w = ix.writer(limitmb=128)
        for e in batch:
            w.add_document(id=e.document_id, body=" ".join(e.body_tokens))
        w.commit()

    def search(q: SearchQuery) -> int:
        parts = [wq.Term("body", p[0]) if len(p) == 1 else wq.Phrase("body", p) for p in phrases(q)]
        with ix.searcher() as s:
            res = s.search(wq.And(parts) if len(parts) > 1 else parts[0], limit=10)
            total = len(res)
            [int(h["id"]) for h in res[:10]]
        return total

    return measure("bare-whoosh", ents, qs, add, search, lambda: dir_size(path))


def run_postgres(ents: Iterable[IndexEntry], qs: list[SearchQuery], work: Path) -> Result:
    """The project's PostgreSQL backend (settings search_backend="postgres") on a throwaway
    server (tests.servers.PostgresServer); each batch commits in its own transaction."""
    from genpon.api.context import build_context
    from genpon.core.db import migrate
    from genpon.core.settings import Settings
    from genpon.search.backends import make_backend
    from sqlalchemy import text
    from sqlmodel import Session

    from tests.servers import PostgresServer

    with PostgresServer() as pg:
        settings = Settings(
            data_dir=work / "pg-data", database_url=pg.url, search_backend="postgres"
        )
        migrate(settings.db_url)
        ctx = build_context(settings)
        backend = make_backend(ctx)
        session = Session(ctx.engine)

        def add(batch: list[IndexEntry]) -> None:
            backend.apply(session, {e.sha256: [e] for e in batch})
            session.commit()

        def size() -> int:
            session.execute(text("ANALYZE search_entry; ANALYZE search_chunk"))
            return int(
                session.execute(
                    text(
                        "SELECT pg_total_relation_size('search_entry') "
                        "+ pg_total_relation_size('search_chunk')"
                    )
                ).scalar_one()
            )

        def search(q: SearchQuery) -> int:
            r = backend.search(session, q).total
            session.rollback()
            return r

        try:
            # a build is what `genpon search reindex` does: clear (drops the RUM indexes),
            # insert every row, mark built (creates the RUM indexes once)
            t0 = time.perf_counter()
            backend.clear(session)
            session.commit()
            n = 0
            for part in batches(ents, 2000):
                add(part)
                n += len(part)
            backend.mark_built(session)
            session.commit()
            build = time.perf_counter() - t0
            sz = size()
            session.commit()
            lat = []
            totals = 0
            for q in qs:
                t = time.perf_counter()
                totals += search(q)
                lat.append((time.perf_counter() - t) * 1000)
            r = Result("postgres", n, n / build, sz / 1e6, lat)
            print(
                f"{'postgres':12s} docs={r.docs:7d} build={r.build_rate:7.0f} docs/s "
                f"size={r.size:7.1f} MB  p50={r.p50:7.1f} ms "
                f"p95={r.p95:7.1f} ms  (queries={len(qs)}, mean hits={totals / len(qs):.0f}; "
                "size = tables + indexes after ANALYZE)",
                flush=True,
            )
            # steady state: new documents into the built index, 100 per transaction (the
            # indexer's outbox batches)
            extra = [
                replace(e, document_id=n + i + 1, sha256=f"{n + i + 1:064x}")
                for i, e in enumerate(entries(1000, seed=99))
            ]
            t0 = time.perf_counter()
            for start in range(0, len(extra), 100):
                add(extra[start : start + 100])
            inc = len(extra) / (time.perf_counter() - t0)
            print(f"{'':12s} incremental: {inc:.0f} docs/s into the built index", flush=True)
            return r
        finally:
            session.close()
            ctx.engine.dispose()


def relevance_tantivy(work: Path) -> None:
    """recall@10 and MRR@10 of the tantivy backend on JSQuAD IR dev (as tests/search/
    test_corpus.py: title + text per document, each question in "any" mode, top 10)."""
    import json

    from genpon.search.backends.tantivy_backend import TantivyBackend
    from genpon.search.service import parse_query

    base = Path(__file__).resolve().parents[2] / "shared" / "data" / "ja" / "relevance"
    base = base / "jsquad_ir_dev"
    docs = [json.loads(line) for line in (base / "docs.jsonl").read_text().splitlines() if line]
    ents = []
    for n, d in enumerate(docs, 1):
        ents.append(
            IndexEntry(
                n, f"{n:064x}", index_tokens(f"{d['title']}\n{d['text']}"), [], [], [], [], [],
                True, True, "", "ORG", "", "team", "working", 2026, date(2026, 4, 1),
            )
        )  # fmt: skip
    by_id = {n: d["doc_id"] for n, d in enumerate(docs, 1)}
    qrels: dict[str, set[str]] = {}
    for line in (base / "qrels.trec").read_text().splitlines():
        qid, _, did, rel = line.split()
        if int(rel) > 0:
            qrels.setdefault(qid, set()).add(did)
    qlines = [
        line.split("\t", 1) for line in (base / "queries.tsv").read_text().splitlines() if line
    ]
    backend = TantivyBackend(work / "relevance")
    for start in range(0, len(ents), 2000):
        backend.apply(None, {e.sha256: [e] for e in ents[start : start + 2000]})
    hits10, rr = 0, 0.0
    for qid, qtext in qlines:
        q = SearchQuery(terms=parse_query(qtext).terms, mode="any", limit=10, facets=False)
        ranked = [by_id[d] for d, _ in backend.search(None, q).hits]
        rank = next((k for k, d in enumerate(ranked, 1) if d in qrels.get(qid, ())), None)
        if rank:
            hits10 += 1
            rr += 1 / rank
    n = len(qlines)
    print(
        f"relevance    tantivy JSQuAD IR dev: recall@10={hits10 / n:.3f} MRR@10={rr / n:.3f} "
        f"(queries={n}, docs={len(docs)})",
        flush=True,
    )


ENGINES = ("tantivy", "bare-tantivy", "fts5", "postgres", "whoosh", "bare-whoosh")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--whoosh-docs", type=int, default=10_000)
    ap.add_argument("--postgres-docs", type=int, default=None, help="default: --docs")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument(
        "--only",
        default=",".join(ENGINES),
        help=f"comma-separated engines to run, of {','.join(ENGINES)} (default: all; "
        "none: only --http)",
    )
    ap.add_argument("--relevance", action="store_true", help="also recall@10/MRR@10 (tantivy)")
    search_http.add_args(ap)
    args = ap.parse_args()
    only = [e.strip() for e in args.only.split(",") if e.strip() and e.strip() != "none"]
    unknown = [e for e in only if e not in ENGINES]
    if unknown:
        ap.error(f"unknown engine(s): {', '.join(unknown)}")
    pg_docs = args.postgres_docs if args.postgres_docs is not None else args.docs
    work = Path(tempfile.mkdtemp(prefix="genpon-bench-search-"))
    res: dict[str, Result] = {}
    try:
        qs = queries(args.queries)
        for e in only:  # each engine streams its own copy of the corpus (same seed)
            if e == "tantivy":
                from genpon.search.backends.tantivy_backend import TantivyBackend

                p = work / "tantivy"
                res[e] = run_backend(e, TantivyBackend(p), entries(args.docs), qs, p)
            elif e == "bare-tantivy":
                res[e] = run_bare_tantivy(entries(args.docs), qs, work / e)
            elif e == "fts5":
                res[e] = run_fts5(entries(args.docs), qs, work / e)
            elif e == "whoosh":
                from genpon.search.backends.whoosh_backend import WhooshBackend

                p = work / "whoosh"
                res[e] = run_backend(e, WhooshBackend(p), entries(args.whoosh_docs), qs, p)
            elif e == "bare-whoosh":
                res[e] = run_bare_whoosh(entries(args.whoosh_docs), qs, work / e)
            elif e == "postgres":
                res[e] = run_postgres(entries(pg_docs), qs, work)
            shutil.rmtree(work / e, ignore_errors=True)
        targets(res)
        if args.relevance:
            relevance_tantivy(work)
        search_http.main_http(args, work, sys.modules[__name__])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def targets(res: dict[str, Result]) -> None:
    def verdict(ok: bool) -> str:
        return "OK" if ok else "MISSED"

    if "tantivy" in res:
        t = res["tantivy"]
        print(f"target  tantivy p95={t.p95:.1f} ms <= 25 ms: {verdict(t.p95 <= 25)}")
        if "bare-tantivy" in res:
            b = res["bare-tantivy"]
            ratio = t.build_rate / b.build_rate
            print(
                f"target  tantivy build / bare tantivy build = {ratio:.2f} >= 0.5: "
                f"{verdict(ratio >= 0.5)}  (p95 ratio {t.p95 / b.p95:.2f}x)"
            )
        if "fts5" in res:
            f = res["fts5"]
            print(f"info    tantivy p95 / fts5 p95 = {t.p95 / f.p95:.2f}")
    if "postgres" in res:
        p = res["postgres"]
        print(
            f"target  postgres p95={p.p95:.1f} ms <= 100 ms (docs={p.docs}): "
            f"{verdict(p.p95 <= 100)}"
        )
    if "whoosh" in res and "bare-whoosh" in res:
        w, b = res["whoosh"], res["bare-whoosh"]
        ratio = w.p95 / b.p95
        print(
            f"target  whoosh p95 / bare whoosh p95 = {ratio:.2f} <= 1.5: {verdict(ratio <= 1.5)}"
            f"  (p50 ratio {w.p50 / b.p50:.2f}, build ratio {w.build_rate / b.build_rate:.2f})"
        )


if __name__ == "__main__":
    main()
