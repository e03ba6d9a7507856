"""Search benchmark: build rate, index size and p50/p95 query latency per backend.

Generates seeded Japanese documents (1–5 KB) from a vocabulary of administrative words,
indexes them through each backend (the same analyzer and entries as the indexer; no database
deposits) and runs mixed queries (2-character words, longer words, two-term AND, phrases),
each with a filter and a caller's permission tokens, top 10 with the exact total.

    .venv/bin/python bench/search.py --docs 100000 --whoosh-docs 10000
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search.analyzer import index_tokens, query_tokens
from search.backends.base import IndexEntry, SearchBackend, SearchQuery, Term

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


def entries(n: int, seed: int = 7) -> list[IndexEntry]:
    rng = random.Random(seed)
    out = []
    for i in range(1, n + 1):
        org = ORGS[i % len(ORGS)]
        out.append(
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
    return out


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


def run(
    name: str, backend: SearchBackend, ents: list[IndexEntry], qs: list[SearchQuery], path: Path
) -> None:
    t0 = time.perf_counter()
    for start in range(0, len(ents), 2000):
        backend.apply(None, {e.sha256: [e] for e in ents[start : start + 2000]})
    build = time.perf_counter() - t0
    lat = []
    totals = 0
    for q in qs:
        t = time.perf_counter()
        r = backend.search(None, q)
        lat.append((time.perf_counter() - t) * 1000)
        totals += r.total
    lat.sort()
    p95 = lat[int(len(lat) * 0.95) - 1]
    print(
        f"{name:8s} docs={len(ents):7d} build={len(ents) / build:7.0f} docs/s "
        f"size={dir_size(path) / 1e6:7.1f} MB  p50={statistics.median(lat):7.1f} ms "
        f"p95={p95:7.1f} ms  (queries={len(qs)}, mean hits={totals / len(qs):.0f})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--whoosh-docs", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="genpon-bench-search-"))
    try:
        t = time.perf_counter()
        ents = entries(max(args.docs, args.whoosh_docs))
        print(f"generated+analyzed {len(ents)} documents in {time.perf_counter() - t:.1f} s")
        qs = queries(args.queries)
        from search.backends.tantivy_backend import TantivyBackend

        run("tantivy", TantivyBackend(work / "tantivy"), ents[: args.docs], qs, work / "tantivy")
        if args.whoosh_docs:
            from search.backends.whoosh_backend import WhooshBackend

            run(
                "whoosh",
                WhooshBackend(work / "whoosh"),
                ents[: args.whoosh_docs],
                qs,
                work / "whoosh",
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
