"""Search through the HTTP API over a streamed corpus (``bench/search.py --http``).

Seeds a Genpon database (SQLite) and its tantivy index in bulk, batch by batch from a
generator (the corpus is never in memory: only its *pool* of distinct texts, each analysed,
chunked and compressed once; one index writer with a 1 GB heap and 2 threads, one commit),
printing documents/s, peak RSS and the index size. Then times ``GET /api/v1/search`` in
process (query, facets, exact total, 20 hits with snippets) as a staff member who may read 3
of the 5 demo folders, and the index query alone. ``--before`` times a former path next to
today's, query by query in alternating order, in the same run over the same index:

- ``query`` (default): the tantivy query before the trigram field (every word a phrase of
  bigrams in ``body``, ACL term-set queries; :func:`former_query`);
- ``snippets``: the snippets cut from the whole stored text (before the stored chunks);
- ``none``: today's path only.

Corpora:

- ``laws``: every document is one of the laws in ``../shared/data/ja/laws`` (drawn at random,
  so lengths follow theirs, long tail included: median ~4,600, mean ~13,500, max ~299,000
  characters); each document is its own content (own hash, title, folder and date).
- ``generated``: ``bench/search.py``'s documents (350–1,700 characters of administrative
  words); a pool of ``--pool`` texts generated once, documents take them in turn.

Queries: for ``laws``, words cut from the laws (a CJK run of 2–4 characters at a random place,
a quarter of them two words); for ``generated``, those of ``bench/search.py``.
"""

from __future__ import annotations

import hashlib
import random
import re
import statistics
import time
import zlib
from bisect import bisect_left
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from genpon.search.analyzer import CJK_RUN, index_tokens
from genpon.search.backends.base import IndexEntry, SearchQuery
from genpon.search.snippets import marked, normalized_with_map

LAWS = Path(__file__).resolve().parents[2] / "shared" / "data" / "ja" / "laws"
PER_PAGE = 20


# --- the snippet before chunks (search/service.py until issue 16), for "before" --------------


def old_snippet(text: str | None, needles: list[str], width: int = 160) -> str:
    if not text:
        return ""
    text = text[:500_000]
    norm, idx = normalized_with_map(text)  # unchanged by the chunks
    needles = sorted({n for n in needles if n}, key=len, reverse=True)
    first = None
    for n in needles:
        p = norm.find(n)
        if p >= 0 and (first is None or p < first):
            first = p
    if first is None:
        a, b = 0, min(len(text), width)
    else:
        a = idx[max(0, first - width // 4)]
        b = min(len(text), a + width)
    spans: list[tuple[int, int]] = []
    if needles:
        lo = max(0, bisect_left(idx, a))
        region = norm[lo : lo + width * 3]
        for n in needles:
            for m in re.finditer(re.escape(n), region):
                sa, sb = idx[lo + m.start()], idx[lo + m.end() - 1] + 1
                if sa >= a and sb <= b:
                    spans.append((sa, sb))
    return marked(lambda i, j: text[i:j], len(text), a, b, spans)


# --- the corpus ---------------------------------------------------------------------------------


@dataclass
class Prepared:
    """A text as the indexer stores it: compressed, its chunks, its index fields (``body`` and
    ``body3`` texts: the token lists themselves would take ~60 bytes a token in memory)."""

    chars: int
    text_z: bytes
    chunk_dir: bytes | None
    chunks: list[bytes]
    body: tuple[str, str]


def prepare(text: str) -> Prepared:
    from genpon.search.backends.tantivy_backend import body_fields
    from genpon.search.snippets import build

    directory, chunks = build(text)
    return Prepared(
        len(text),
        zlib.compress(text.encode("utf-8"), 6),
        directory.pack(),
        [c.pack() for c in chunks],
        body_fields(index_tokens(text)),
    )


class Corpus:
    """Documents ``(pool index, title)`` streamed from a pool of texts prepared on first use."""

    def __init__(self, name: str, pool: int, gen: Any = None, seed: int = 5) -> None:
        self.name, self.gen = name, gen  # gen: bench/search.py (gen_text, WORDS)
        self._memo: dict[int, Prepared] = {}
        self.rng = random.Random(seed)
        if name == "laws":
            self.files = sorted(LAWS.glob("*.txt"))
            if not self.files:
                raise SystemExit(f"no laws in {LAWS}")
            self.size = len(self.files)
        else:
            self.size = pool

    def text(self, k: int) -> str:
        if self.name == "laws":
            return self.files[k].read_text(encoding="utf-8")
        return str(self.gen.gen_text(random.Random(1000 + k)))

    def get(self, k: int) -> Prepared:
        p = self._memo.get(k)
        if p is None:
            p = self._memo[k] = prepare(self.text(k))
        return p

    def docs(self, n: int) -> Iterator[tuple[int, int]]:
        for i in range(n):
            k = self.rng.randrange(self.size) if self.name == "laws" else i % self.size
            yield i, k

    def queries(self, n: int, seed: int = 11) -> list[str]:
        rng = random.Random(seed)
        if self.name != "laws":
            return [" ".join(_gen_words(self.gen, rng, j)) for j in range(n)]
        out: list[str] = []
        while len(out) < n:
            text = self.text(rng.randrange(self.size))
            words = []
            for _ in range(2 if len(out) % 4 == 3 else 1):
                pos = rng.randrange(len(text))
                m = CJK_RUN.search(text, pos)
                if m is None or len(m.group()) < 2:
                    break
                a = rng.randrange(m.start(), max(m.start() + 1, m.end() - 1))
                words.append(text[a : min(m.end(), a + rng.randint(2, 4))])
            if words and all(len(w) >= 2 for w in words):
                out.append(" ".join(words))
        return out


def _gen_words(bench_search: Any, rng: random.Random, j: int) -> list[str]:
    words = bench_search.WORDS
    kind = j % 4
    if kind == 0:
        return [rng.choice([w for w in words if len(w) == 2])]
    if kind == 1:
        return [rng.choice([w for w in words if len(w) >= 3])]
    if kind == 2:
        return [rng.choice(words), rng.choice(words)]
    return [rng.choice(words) + rng.choice(bench_search.PARTICLES) + rng.choice(words)]


# --- seeding ------------------------------------------------------------------------------------


@dataclass
class Place:
    folder_id: int
    organization_id: int
    org_code: str
    kind: str
    acl: list[str]


def _places(session: Any) -> list[Place]:
    from genpon.records.access import folder_acl_tokens
    from genpon.records.models import Folder, Organization
    from sqlmodel import select

    out = []
    for f in session.exec(select(Folder).order_by(Folder.id)).all():
        org = session.get(Organization, f.organization_id)
        out.append(Place(f.id, f.organization_id, org.code, f.kind, folder_acl_tokens(f, None)))
    return out


def seed(ctx: Any, corpus: Corpus, n: int, batch: int = 5000) -> float:
    """Insert ``n`` documents (blob, document, text and its chunks) and index them, batch by
    batch, with one index writer (1 GB heap, 2 threads, one commit at the end: tantivy flushes
    a segment whenever the heap is full) and the pool's analysis done once per distinct text;
    returns documents per second."""
    from genpon.records.models import Blob, BlobText, BlobTextChunk, Document
    from genpon.search.backends import make_backend
    from genpon.search.backends.tantivy_backend import TantivyBackend
    from sqlalchemy import insert
    from sqlmodel import Session

    backend = make_backend(ctx)
    assert isinstance(backend, TantivyBackend)
    with Session(ctx.engine) as s:
        places = _places(s)
        s.rollback()
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    docs = corpus.docs(n)
    done = 0
    with backend.bulk() as add:
        while done < n:
            part = [next(docs) for _ in range(min(batch, n - done))]
            rows = _rows(corpus, places, part, now)
            with ctx.engine.begin() as conn:
                tables = (Blob, Document, BlobText, BlobTextChunk)
                for model, table_rows in zip(tables, rows[:4], strict=True):
                    conn.execute(insert(model.__table__), table_rows)  # type: ignore[attr-defined]
            for e, body in rows[4]:
                add(e, body)
            done += len(part)
            if done % (batch * 20) == 0 or done == n:
                rate = done / (time.perf_counter() - t0)
                print(f"  seeded {done} documents ({rate:.0f} docs/s, peak RSS {_rss()})",
                      flush=True)  # fmt: skip
        print("  committing the index (and waiting for its merges)", flush=True)
    return n / (time.perf_counter() - t0)


def _size(p: Path) -> str:
    return f"{sum(f.stat().st_size for f in p.rglob('*') if f.is_file()) / 1e9:.2f} GB"


def _rss() -> str:
    import resource

    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"


def _rows(corpus: Corpus, places: list[Place], part: list[tuple[int, int]], now: datetime) -> Any:
    """The rows of a batch of documents: blobs, documents, texts, chunks, (entry, body)."""
    blobs, documents, texts, chunks, entries = [], [], [], [], []
    for i, k in part:
        p = corpus.get(k)
        sha = hashlib.sha256(f"bench-{i}".encode()).hexdigest()
        pl = places[i % len(places)]
        d = date(2019 + i % 8, 1 + i % 12, 1 + i % 28)
        title = f"{corpus.name} {k} 第{i}号"
        status = "official" if i % 3 == 0 else "working"
        blobs.append({"sha256": sha, "size": p.chars * 3, "mime_type": "text/plain",
                      "state": "stored", "stored_at": now})  # fmt: skip
        documents.append({
            "id": i + 1000, "folder_id": pl.folder_id, "organization_id": pl.organization_id,
            "title": title, "filename": f"doc-{i}.txt", "sha256": sha, "size": p.chars * 3,
            "mime_type": "text/plain", "status": status, "state": "live", "version": 1,
            "doc_date": d, "created_at": now, "updated_at": now,
        })  # fmt: skip
        texts.append({"sha256": sha, "status": "ok", "extractor": "text", "text_z": p.text_z,
                      "chars": p.chars, "extracted_at": now, "chunk_dir": p.chunk_dir})  # fmt: skip
        chunks += [{"sha256": sha, "seq": q, "data": c} for q, c in enumerate(p.chunks)]
        fy = d.year if d.month >= 4 else d.year - 1
        e = IndexEntry(
            i + 1000, sha, [], index_tokens(title), index_tokens(f"doc-{i}.txt"), [], pl.acl,
            [], True, True, "", pl.org_code, "", pl.kind, status, fy, d,
        )  # fmt: skip
        entries.append((e, p.body))
    return blobs, documents, texts, chunks, entries


# --- measuring ----------------------------------------------------------------------------------


def pct(lat: list[float]) -> tuple[float, float, float]:
    lat = sorted(lat)
    return statistics.median(lat), lat[max(0, int(len(lat) * 0.95) - 1)], lat[-1]


def _old_hit_snippets(session: Any, shas: list[str], needles: list[str]) -> dict[str, str]:
    from genpon.search.indexer import text_of

    return {sha: old_snippet(text_of(session, sha), needles) for sha in shas}


@contextmanager
def former_query(backend: Any) -> Iterator[None]:
    """The tantivy query as it was before the trigrams (issue 16 item 5): ACL term-set queries
    and every word a phrase of bigrams in ``body`` (the index holds ``body3`` either way)."""
    import tantivy
    from genpon.search.backends.base import BOOSTS

    Q = tantivy.Query
    setattr(backend, "_any_of", lambda fld, values: Q.term_set_query(backend.schema, fld, values))  # noqa: B010
    setattr(backend, "_body", lambda term, searcher: Q.boost_query(  # noqa: B010
        backend._term_in_field(term, "body"), BOOSTS["body"]))  # fmt: skip
    try:
        yield
    finally:
        del backend._any_of, backend._body


def measure(ctx: Any, key: str, qs: list[str], before: str) -> dict[str, list[float]]:
    """Latencies (ms) per path, index query alone and HTTP, each query timed before and after
    in alternating order. ``before``: ``query`` (the former tantivy query, snippets from
    chunks), ``snippets`` (the former whole-text snippets, today's query) or ``none``."""
    from fastapi.testclient import TestClient
    from genpon.api.app import create_app
    from genpon.records.access import actor_for_user
    from genpon.records.models import User
    from genpon.search import service
    from genpon.search.backends import make_backend
    from sqlmodel import Session, select

    backend = make_backend(ctx)
    with Session(ctx.engine) as s:
        user = s.exec(select(User).where(User.login == "tanaka")).one()
        acl = actor_for_user(s, user).acl_tokens()
        s.rollback()
    new = service.hit_snippets
    lat: dict[str, list[float]] = {"index before": [], "index": [], "before": [], "after": []}
    hits: list[int] = []

    def setup(which: str) -> Any:
        old = which == "before"
        service.hit_snippets = _old_hit_snippets if old and before == "snippets" else new  # type: ignore[assignment]
        return former_query(backend) if old and before == "query" else nullcontext()

    with TestClient(create_app(ctx.settings, ctx), raise_server_exceptions=True) as client:

        def http(q: str, which: str) -> None:
            with setup(which):
                t = time.perf_counter()
                r = client.get("/api/v1/search", params={"q": q, "per_page": PER_PAGE},
                               headers={"Authorization": f"Bearer {key}"})  # fmt: skip
                lat[which].append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200, r.text
            if which == "after":
                hits.append(r.json()["total"])

        def index(sq: SearchQuery, which: str) -> None:
            with setup(which):
                t = time.perf_counter()
                backend.search(None, sq)
                lat["index" if which == "after" else "index before"].append(
                    (time.perf_counter() - t) * 1000
                )

        for q in qs[:5]:  # warm up (not counted)
            client.get(
                "/api/v1/search", params={"q": q}, headers={"Authorization": f"Bearer {key}"}
            )
        for j, q in enumerate(qs):
            sq = SearchQuery(terms=service.parse_query(q).terms, acl=acl, limit=PER_PAGE)
            order = ["after", "before"] if j % 2 else ["before", "after"]
            order = order if before != "none" else ["after"]
            for which in order:
                if before == "query" or which == "after":
                    index(sq, which)
            for which in order:
                http(q, which)
    service.hit_snippets = new  # type: ignore[assignment]
    print(f"  mean total hits per query: {statistics.mean(hits):.0f}", flush=True)
    return lat


def run(
    corpus_name: str, docs: int, queries: int, pool: int, work: Path, before: str, gen: Any
) -> None:
    from genpon.api.context import build_context
    from genpon.core.db import migrate
    from genpon.core.settings import Settings
    from genpon.records.bootstrap import InitResult, load_demo
    from sqlmodel import Session

    settings = Settings(
        data_dir=work / f"http-{corpus_name}", database_url=f"sqlite:///{work}/{corpus_name}.db",
        search_backend="tantivy", index_autostart=False, environment="test",
    )  # fmt: skip
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings.db_url)
    ctx = build_context(settings)
    result = InitResult()
    with Session(ctx.engine) as s:
        load_demo(s, result)
        s.commit()
    corpus = Corpus(corpus_name, pool, gen)
    t = time.perf_counter()
    rate = seed(ctx, corpus, docs)
    print(f"http {corpus_name}: seeded {docs} documents in {time.perf_counter() - t:.0f} s "
          f"({rate:.0f} docs/s, pool of {len(corpus._memo)} distinct texts, peak RSS {_rss()}, "
          f"index {_size(settings.index_dir)})", flush=True)  # fmt: skip
    lens = sorted(p.chars for p in corpus._memo.values())
    print(f"  text characters of the pool: median={statistics.median(lens):.0f} "
          f"mean={statistics.mean(lens):.0f} max={lens[-1]}", flush=True)  # fmt: skip
    lat = measure(ctx, result.demo_keys["tanaka"], corpus.queries(queries), before)
    was = "former tantivy query" if before == "query" else "snippets from the whole text"
    for name, label in (
        ("index before", "index query only, former tantivy query (before)"),
        ("index", "index query only (filters, facets, exact total)"),
        ("before", f"HTTP full path, {was} (before)"),
        ("after", "HTTP full path (after)"),
    ):
        if lat[name]:
            p50, p95, mx = pct(lat[name])
            print(f"http {corpus_name:9s} docs={docs:7d} {label:55s} p50={p50:7.1f} ms "
                  f"p95={p95:7.1f} ms max={mx:7.1f} ms (queries={len(lat[name])})", flush=True)  # fmt: skip
    p95 = pct(lat["after"])[1]
    verdict = "OK" if p95 <= 50 else "MISSED"
    print(
        f"target  http {corpus_name} full path p95={p95:.1f} ms <= 50 ms (docs={docs}): {verdict}"
    )
    ctx.engine.dispose()


def add_args(ap: Any) -> None:
    ap.add_argument("--http", choices=("laws", "generated"), action="append", default=[],
                    help="the full HTTP path over a streamed corpus (repeatable)")  # fmt: skip
    ap.add_argument("--http-docs", type=int, default=100_000)
    ap.add_argument("--pool", type=int, default=50_000,
                    help="distinct texts of the generated corpus for --http")  # fmt: skip
    ap.add_argument("--before", choices=("query", "snippets", "none"), default="query",
                    help="--http: time the former tantivy query (default) or the former "
                    "whole-text snippets next to today's path")  # fmt: skip


def main_http(args: Any, work: Path, gen: Any) -> None:
    """``gen``: the module of bench/search.py (its generated corpus and queries)."""
    for name in args.http:
        run(name, args.http_docs, args.queries, args.pool, work, args.before, gen)
