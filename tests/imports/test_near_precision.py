"""Precision and recall of near-duplicate detection at its default threshold, measured against
the exact character-shingle Jaccard of every pair of a few hundred real texts.

The share test (test_import.py) checks the whole import on a dozen true pairs; this one checks
the detector (:func:`near_dupes.near_pairs` over :func:`near_dupes.signature`) on enough pairs
for the figures to mean something. Versions of laws from ``../shared/data/ja/laws`` are made the
way documents drift apart in a file share: most versions differ a little (a draft and its final
copy), some more (an amended text), a few a lot, so the pairs spread over the whole range of
similarity, many of them near the threshold.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import numpy as np
import pytest
from genpon.migrate import near_dupes
from genpon.migrate.config import DEFAULT_THRESHOLD
from scipy.sparse import csr_matrix

pytestmark = pytest.mark.corpus


def _version(lines: list[str], frac: float, rnd: random.Random) -> str:
    """``lines`` with about ``frac`` of them rewritten, deleted or joined by inserted ones."""
    out = list(lines)
    for _ in range(round(len(out) * frac)):
        i = rnd.randrange(len(out))
        op = rnd.random()
        if op < 0.5:
            out[i] = f"（第{rnd.randrange(1000)}条改正）{out[i][len(out[i]) // 2 :]}"
        elif op < 0.75 and len(out) > 2:
            del out[i]
        else:
            out.insert(
                i,
                f"附則{rnd.randrange(10**6)}：この規定は令和{rnd.randrange(1, 8)}年から施行する。\n",
            )
    return "".join(out)


def _edit_fraction(rnd: random.Random) -> float:
    r = rnd.random()
    if r < 0.5:
        return rnd.uniform(0.0, 0.06)  # a draft and its final copy
    if r < 0.85:
        return rnd.uniform(0.06, 0.2)  # an amended text
    return rnd.uniform(0.2, 0.5)  # heavily reworked


def _texts(shared_data: Path, rnd: random.Random) -> list[str]:
    laws = [
        p.read_text(encoding="utf-8")[:8000]
        for p in sorted((shared_data / "ja" / "laws").glob("*.txt"))
    ]
    laws = [t for t in laws if len(t) >= 3000 and t.count("\n") >= 20]
    texts: list[str] = []
    for base in rnd.sample(laws, 120):
        lines = base.splitlines(keepends=True)
        texts.append(base)
        texts += [_version(lines, _edit_fraction(rnd), rnd) for _ in range(rnd.randint(1, 3))]
    return texts


def _exact_jaccard(texts: list[str]) -> np.ndarray:
    """Exact shingle Jaccard of every pair (shingle strings, not hashes), as a matrix."""
    ids: dict[str, int] = {}
    rows, cols = [], []
    for n, t in enumerate(texts):
        for sh in near_dupes.shingles(t):
            rows.append(n)
            cols.append(ids.setdefault(sh, len(ids)))
    m = csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, cols)), (len(texts), len(ids)))
    inter = (m @ m.T).toarray().astype(np.float64)
    sizes = np.diag(inter)
    union = sizes[:, None] + sizes[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def test_near_duplicate_precision_and_recall(shared_data: Path):
    rnd = random.Random(11)
    texts = _texts(shared_data, rnd)
    keys = [f"{n:064x}" for n in range(len(texts))]
    truth_j = _exact_jaccard(texts)
    truth = {
        (keys[a], keys[b])
        for a, b in itertools.combinations(range(len(texts)), 2)
        if truth_j[a, b] >= DEFAULT_THRESHOLD
    }
    sigs = []
    for k, t in zip(keys, texts, strict=True):
        sig = near_dupes.signature(t)
        assert sig is not None
        sigs.append((k, near_dupes.to_bytes(sig)))
    idx = {k: n for n, k in enumerate(keys)}
    near = sum(
        1
        for a, b in itertools.combinations(range(len(texts)), 2)
        if abs(truth_j[a, b] - DEFAULT_THRESHOLD) < 0.05
    )
    assert len(truth) >= 150 and near >= 20  # enough pairs, and enough hard ones

    # the signatures alone: the estimate decides every pair
    found = {(a, b) for a, b, _score in near_dupes.near_pairs(sigs, DEFAULT_THRESHOLD)}
    precision, recall = _figures(found, truth)
    missed = sorted(round(float(truth_j[idx[a], idx[b]]), 3) for a, b in truth - found)
    wrong = sorted(round(float(truth_j[idx[a], idx[b]]), 3) for a, b in found - truth)
    print(
        f"texts={len(texts)} true pairs={len(truth)} within 0.05 of the threshold={near}\n"
        f"estimate only: found={len(found)} precision={precision:.3f} recall={recall:.3f} "
        f"missed J={missed} reported below the threshold J={wrong}"
    )
    assert precision >= 0.95 and recall >= 0.9
    # mistakes only happen near the threshold (the estimate's error), never far from it
    assert all(j >= DEFAULT_THRESHOLD - 0.08 for j in wrong)
    assert all(j < DEFAULT_THRESHOLD + 0.08 for j in missed)

    # with the texts at hand (as the import and `duplicates near` have them), candidates near
    # the threshold are decided by their exact Jaccard, which becomes their score
    sets = {k: near_dupes.shingle_set(t) for k, t in zip(keys, texts, strict=True)}
    asked: list[tuple[str, str]] = []

    def exact(a: str, b: str) -> float:
        asked.append((a, b))
        return near_dupes.exact_jaccard(sets[a], sets[b])

    pairs = list(near_dupes.near_pairs(sigs, DEFAULT_THRESHOLD, exact))
    found = {(a, b) for a, b, _score in pairs}
    precision, recall = _figures(found, truth)
    print(
        f"borderline pairs checked exactly ({len(asked)} asked): found={len(found)} "
        f"precision={precision:.3f} recall={recall:.3f}"
    )
    assert precision == 1.0 and recall >= 0.99
    assert len(asked) < len(texts)  # only borderline candidates are checked
    for a, b, score in pairs:
        if (a, b) in asked:
            assert score == round(float(truth_j[idx[a], idx[b]]), 4)

    # with a budget, the candidates closest to the threshold are the ones checked
    by_key = {k: near_dupes.from_bytes(raw) for k, raw in sigs}

    def distance(pair: tuple[str, str]) -> float:
        return abs(near_dupes.estimate(by_key[pair[0]], by_key[pair[1]]) - DEFAULT_THRESHOLD)

    every = list(asked)
    asked.clear()
    list(near_dupes.near_pairs(sigs, DEFAULT_THRESHOLD, exact, max_exact=10))
    assert len(asked) == 10
    assert max(map(distance, asked)) <= min(distance(p) for p in every if p not in asked)


def _figures(found: set[tuple[str, str]], truth: set[tuple[str, str]]) -> tuple[float, float]:
    tp = len(found & truth)
    return tp / len(found), tp / len(truth)
