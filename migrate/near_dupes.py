"""Near-duplicate detection (類似ファイル): MinHash over NFKC character shingles, LSH for
candidates, estimated Jaccard for the score.

The signature is a one-permutation MinHash (Li, Owen & Zhang 2012) with rotation densification
(Shrivastava & Li 2014), computed with numpy in time linear in the text: every shingle gets one
64-bit hash (a polynomial over its code points, then the splitmix64 finalizer); the top 8 bits
pick one of ``NUM_PERM`` bins, the low 32 bits are the value, each bin keeps its minimum, and an
empty bin borrows the value of the next non-empty bin (plus an offset per distance). Two texts
agree in a bin with probability ≈ their shingle Jaccard, so the score is the fraction of equal
bins exactly as with ``NUM_PERM`` independent permutations, at a fraction of the cost (no
per-shingle Python work). Stored signatures carry the tag :data:`SIG_TAG`; signatures of an
earlier scheme are not compared and are recomputed.

Text is normalized with NFKC and every whitespace character (full-width spaces, line breaks) is
removed before shingling, so the same text laid out differently (a law as plain text and as
HTML, a Word file and its PDF) shingles the same. Pairs are only *suggested* for review.

The LSH index is built with a candidate threshold ``LSH_MARGIN`` below the reporting threshold;
each candidate pair is then scored with the full signature (``NUM_PERM`` permutations), which
keeps recall for pairs near the threshold without reporting pairs far below it. A candidate
whose estimate lies within ``VERIFY_BAND`` of the threshold is decided, when the caller can
supply both texts, by the exact Jaccard of their shingle sets (:func:`exact_jaccard`), and that
exact value is its score; at most ``VERIFY_MAX_PAIRS`` of them, the closest to the threshold
first, so a tree of heavily overlapping texts costs bounded time.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from genpon.migrate.config import (
    LSH_MARGIN,
    MAX_TEXT_CHARS,
    NUM_PERM,
    SHINGLE_K,
    VERIFY_BAND,
    VERIFY_MAX_PAIRS,
)

_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    return _SPACE.sub("", unicodedata.normalize("NFKC", text[:MAX_TEXT_CHARS]))


def shingles(text: str, k: int = SHINGLE_K) -> set[str]:
    """Character k-shingles of the normalized text (empty when shorter than ``k``)."""
    t = normalize(text)
    return {t[i : i + k] for i in range(len(t) - k + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 0.0
    return len(a & b) / len(a | b)


#: prefix of a stored signature of this scheme (one-permutation MinHash, splitmix64 shingles)
SIG_TAG = b"OPH1"
_PRIME = np.uint64(0x100000001B3)  # polynomial base over code points (mod 2^64)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_LOW32 = np.uint64(0xFFFFFFFF)
_BIN_SHIFT = np.uint64(56)  # top 8 bits: 256 bins
_DENSIFY = np.uint32(0x9E3779B1)  # offset per bin of distance for a borrowed value


def shingle_hashes(text: str, k: int = SHINGLE_K) -> np.ndarray:
    """One 64-bit hash per character k-shingle of the normalized text (duplicates kept)."""
    t = normalize(text)
    n = len(t) - k + 1
    if n <= 0:
        return np.empty(0, dtype=np.uint64)
    cps = np.frombuffer(t.encode("utf-32-le"), dtype="<u4").astype(np.uint64)
    h = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(k):
            h = h * _PRIME + cps[j : j + n]
        h ^= h >> np.uint64(30)  # splitmix64 finalizer
        h *= _M1
        h ^= h >> np.uint64(27)
        h *= _M2
        h ^= h >> np.uint64(31)
    return h


def shingle_set(text: str) -> np.ndarray:
    """The distinct shingles of the text as sorted 64-bit hashes: the set whose Jaccard the
    signature estimates (a collision of two different shingles has odds of ~2^-64)."""
    h = np.sort(shingle_hashes(text))
    return h[np.r_[True, h[1:] != h[:-1]]] if len(h) else h


def exact_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard of two :func:`shingle_set` results (sorted, distinct)."""
    if not len(a) or not len(b):
        return 0.0
    if len(a) < len(b):
        a, b = b, a
    pos = np.searchsorted(a, b)
    pos[pos == len(a)] = 0
    inter = int(np.count_nonzero(a[pos] == b))
    return inter / (len(a) + len(b) - inter)


def signature(text: str, num_perm: int = NUM_PERM) -> np.ndarray | None:
    """One-permutation MinHash (uint32 per bin) of the text's shingles; None without shingles."""
    if num_perm != 256:
        raise ValueError("the one-permutation signature has 256 bins")
    h = shingle_hashes(text)
    if not len(h):
        return None
    empty = np.uint32(0xFFFFFFFF)
    sig = np.full(num_perm, empty, dtype=np.uint32)
    np.minimum.at(sig, (h >> _BIN_SHIFT).astype(np.intp), (h & _LOW32).astype(np.uint32))
    filled = np.flatnonzero(sig != empty)
    if len(filled) < num_perm:  # rotation densification: borrow from the next filled bin
        bins = np.arange(num_perm)
        pos = np.searchsorted(filled, bins) % len(filled)
        src = filled[pos]
        dist = ((src - bins) % num_perm).astype(np.uint32)
        with np.errstate(over="ignore"):
            sig = sig[src] + dist * _DENSIFY
    return sig


def to_bytes(sig: np.ndarray) -> bytes:
    return SIG_TAG + sig.astype("<u4").tobytes()


def from_bytes(raw: bytes) -> np.ndarray:
    """Signature values; empty for a signature of another scheme (never compared)."""
    if not raw.startswith(SIG_TAG):
        return np.empty(0, dtype=np.uint32)
    return np.frombuffer(raw[len(SIG_TAG) :], dtype="<u4").astype(np.uint32)


def current(raw: bytes | None) -> bool:
    """Whether a stored signature is of this scheme."""
    return raw is not None and raw.startswith(SIG_TAG) and len(raw) == len(SIG_TAG) + 4 * NUM_PERM


def estimate(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.count_nonzero(a == b)) / len(a)


@dataclass
class TextSig:
    sha256: str
    status: str  # ok | empty | failed | unsupported
    extractor: str | None
    reason: str | None
    chars: int
    hashvalues: bytes | None
    #: the extraction's own outcome and its text (zlib), kept as the content's stored text so the
    #: search indexer does not extract it again (None: not from a fresh extraction)
    text_status: str | None = None
    text_reason: str | None = None
    text_z: bytes | None = None


def text_signature(path: Path, mime: str | None, sha256: str) -> TextSig:
    """Extract the text of a file (the search extractor's rules, :mod:`.extract_pool`) and
    compute its signature. Never raises."""
    try:
        from genpon.migrate.extract_pool import shared

        ex = shared().extract(path, mime)  # PDF/Office in this process's persistent child
        text, status, reason, extractor = ex.text, ex.status, ex.reason, ex.extractor
    except Exception as exc:  # a broken file must not stop the import
        text, status, reason, extractor = None, "failed", f"{type(exc).__name__}: {exc}", None
    sig = sign_text(sha256, text, status, extractor, reason)
    sig.text_status, sig.text_reason = status, reason
    if status == "ok" and text:
        # level 1: three times faster than the indexer's 6 for a quarter more bytes; the import
        # is bound by CPU, and the stored text reads back the same either way
        sig.text_z = zlib.compress(text.encode("utf-8"), 1)
    return sig


def sign_text(
    sha256: str, text: str | None, status: str, extractor: str | None, reason: str | None
) -> TextSig:
    """The signature record of a content from an extraction's outcome (fresh or stored)."""
    if status != "ok" or not text:
        return TextSig(sha256, status if status != "ok" else "empty", extractor, reason, 0, None)
    sig = signature(text)
    if sig is None:
        return TextSig(sha256, "empty", extractor, "too_short", len(text), None)
    return TextSig(sha256, "ok", extractor, None, len(text), to_bytes(sig))


@dataclass
class Cluster:
    members: list[str]
    pairs: list[tuple[str, str, float]] = field(default_factory=list)

    @property
    def max_score(self) -> float:
        return max(p[2] for p in self.pairs)

    @property
    def min_score(self) -> float:
        return min(p[2] for p in self.pairs)


def near_pairs(
    sigs: Iterable[tuple[str, bytes]],
    threshold: float,
    exact: Callable[[str, str], float | None] | None = None,
    max_exact: int = VERIFY_MAX_PAIRS,
) -> Iterator[tuple[str, str, float]]:
    """Pairs of distinct contents with Jaccard >= ``threshold`` (a < b), sorted.

    Candidates come from LSH banding with datasketch's optimal (bands, rows) for a candidate
    threshold ``LSH_MARGIN`` below ``threshold`` (two contents are candidates when one band of
    their signatures is equal, exactly as ``MinHashLSH`` buckets them), computed with numpy over
    the whole signature matrix; each candidate is then scored with the full signature. When the
    estimate lies within ``VERIFY_BAND`` of ``threshold``, ``exact(a, b)`` (if given and not
    None) decides instead: the exact Jaccard of the two contents' texts, for the ``max_exact``
    candidates closest to the threshold."""
    keys: list[str] = []
    rows: list[np.ndarray] = []
    seen: set[str] = set()
    for sha, raw in sigs:
        hv = from_bytes(raw)
        if len(hv) != NUM_PERM or sha in seen:
            continue
        seen.add(sha)
        keys.append(sha)
        rows.append(hv)
    if len(keys) < 2:
        return
    from datasketch.lsh import _optimal_param

    bands, r = _optimal_param(max(0.2, threshold - LSH_MARGIN), NUM_PERM, 0.5, 0.5)
    m = np.vstack(rows)
    cands: set[tuple[int, int]] = set()
    for i in range(bands):
        band = np.ascontiguousarray(m[:, i * r : (i + 1) * r]).view(np.dtype((np.void, 4 * r)))
        _u, inv, counts = np.unique(band.ravel(), return_inverse=True, return_counts=True)
        inv = inv.ravel()
        shared = np.flatnonzero(counts[inv] > 1)
        if not len(shared):
            continue
        members = shared[np.argsort(inv[shared], kind="stable")]
        groups = inv[members]
        cuts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1], True])
        for lo, hi in itertools.pairwise(cuts.tolist()):
            cands.update(itertools.combinations(members[lo:hi].tolist(), 2))
    scored = []
    for x, y in cands:
        a, b = sorted((keys[x], keys[y]))
        scored.append((estimate(m[x], m[y]), a, b))
    if exact is not None:
        border = sorted(
            (abs(est - threshold), a, b, n)
            for n, (est, a, b) in enumerate(scored)
            if abs(est - threshold) < VERIFY_BAND
        )
        for _d, a, b, n in border[:max_exact]:
            checked = exact(a, b)
            if checked is not None:
                scored[n] = (checked, a, b)
    yield from sorted((a, b, round(score, 4)) for score, a, b in scored if score >= threshold)


def cluster(pairs: Iterable[tuple[str, str, float]]) -> list[Cluster]:
    """Connected components of the pair graph, largest first."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    plist = list(pairs)
    for a, b, _s in plist:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[str, Cluster] = {}
    for a, b, s in plist:
        c = groups.setdefault(find(a), Cluster(members=[]))
        c.pairs.append((a, b, s))
    for c in groups.values():
        c.members = sorted({x for p in c.pairs for x in p[:2]})
        c.pairs.sort(key=lambda p: (-p[2], p[0], p[1]))
    return sorted(groups.values(), key=lambda c: (-len(c.members), -c.max_score, c.members[0]))
