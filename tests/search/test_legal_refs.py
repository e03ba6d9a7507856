"""Legal references on real laws (../shared/data/ja/laws): a question that cites an article
("〇〇法第160条") must rank that law in the top 10, though the law writes 第百六十条.

The set is drawn here, reproducibly: for sampled laws, an article number the law itself has
(written in kanji in its text), cited with ASCII digits after the law's short title.
"""

from __future__ import annotations

import csv
import random
import re

import pytest

from tests.search.test_corpus import _ids, _index_directly

pytestmark = [pytest.mark.corpus, pytest.mark.slow]

_ARTICLE = re.compile(r"^第([一二三四五六七八九十百千]+)条", re.M)
_KD = {c: i for i, c in enumerate("〇一二三四五六七八九")}


def _kanji(s: str) -> int:
    total, digit = 0, 0
    for c in s:
        if c in _KD:
            digit = _KD[c]
        else:
            total += (digit or 1) * {"十": 10, "百": 100, "千": 1000}[c]
            digit = 0
    return total + digit


def legal_questions(base, n_laws: int = 80, seed: int = 16) -> list[tuple[str, str]]:
    """(question, law file) pairs: one article each for ``n_laws`` sampled laws."""
    with (base / "MANIFEST.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    rng = random.Random(seed)
    out: list[tuple[str, str]] = []
    for row in rng.sample(rows, len(rows)):
        text = (base / row["file"]).read_text(encoding="utf-8")
        arts = sorted({_kanji(m) for m in _ARTICLE.findall(text)} - {1})
        if len(arts) < 3:
            continue
        title = row["title"].split("（", 1)[0]
        n = rng.choice(arts)
        out.append((f"{title}第{n}条には何が定められていますか", row["file"]))
        if len(out) == n_laws:
            break
    return out


def _sections(title: str, text: str, size: int = 3000) -> list[str]:
    """The law cut at article starts into parts of about ``size`` characters, each headed by
    the law's title (as pages of a long document filed one by one)."""
    starts = [m.start() for m in _ARTICLE.finditer(text)]
    cuts, last = [0], 0
    for s in starts:
        if s - last >= size:
            cuts.append(s)
            last = s
    return [f"{title}\n{text[a:b]}" for a, b in zip(cuts, [*cuts[1:], len(text)], strict=True)]


# tantivy only: the analyzer tokens are the same for every backend (conformance runs all three),
# and Whoosh indexes the 2,337 sections ~8x slower, over a minute of the suite for nothing new
@pytest.mark.parametrize("search_backend", ["tantivy"])
@pytest.mark.parametrize(("granularity", "floor"), [("law", 0.9), ("section", 0.8)])
def test_article_citations_find_their_law(
    ctx, shared_data, search_backend, granularity, floor, capsys
):
    """``law``: one document per law. ``section``: laws cut into parts at article starts, the
    question must find the part that holds the article (its number is what tells them apart)."""
    base = shared_data / "ja" / "laws"
    with (base / "MANIFEST.csv").open(encoding="utf-8") as f:
        titles = {r["file"]: r["title"].split("（", 1)[0] for r in csv.DictReader(f)}
    texts: dict[int, str] = {}
    owner: dict[int, str] = {}
    for p in sorted(base.glob("law-*.txt")):
        t = p.read_text(encoding="utf-8")
        parts = [t] if granularity == "law" else _sections(titles[p.name], t)
        for part in parts:
            texts[len(texts) + 1] = part
            owner[len(texts)] = p.name
    _index_directly(ctx, texts)
    hits10, rr = 0, 0.0
    questions = legal_questions(base)
    for q, name in questions:
        n = int(re.search(r"第([0-9]+)条", q).group(1))  # type: ignore[union-attr]
        want = {
            i
            for i, t in texts.items()
            if owner[i] == name and any(_kanji(m) == n for m in _ARTICLE.findall(t))
        }
        _total, top = _ids(ctx, q, mode="any", limit=10)
        rank = next((k for k, d in enumerate(top, 1) if d in want), None)
        if rank:
            hits10 += 1
            rr += 1 / rank
    recall, mrr = hits10 / len(questions), rr / len(questions)
    with capsys.disabled():
        print(
            f"\n[{search_backend}/{granularity}] law article citations: recall@10={recall:.3f} "
            f"MRR@10={mrr:.3f} (n={len(questions)}, {len(texts)} documents)"
        )
    assert recall >= floor
