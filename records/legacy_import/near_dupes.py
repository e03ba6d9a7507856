"""Near-duplicate detection (類似ファイル): MinHash over NFKC character shingles, LSH for
candidates, estimated Jaccard for the score.

Text is normalized with NFKC and every whitespace character (full-width spaces, line breaks) is
removed before shingling, so the same text laid out differently (a law as plain text and as
HTML, a Word file and its PDF) shingles the same. Pairs are only *suggested* for review.

The LSH index is built with a candidate threshold ``LSH_MARGIN`` below the reporting threshold;
each candidate pair is then scored with the full signature (``NUM_PERM`` permutations), which
keeps recall for pairs near the threshold without reporting pairs far below it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from datasketch import MinHash, MinHashLSH

from records.legacy_import.config import (
    LSH_MARGIN,
    MAX_TEXT_CHARS,
    MINHASH_SEED,
    NUM_PERM,
    SCHEME,
    SHINGLE_K,
)

_SPACE = re.compile(r"\s+")
_PERM_CACHE: dict[int, MinHash] = {}


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


def _template(num_perm: int) -> MinHash:
    tpl = _PERM_CACHE.get(num_perm)
    if tpl is None:
        tpl = _PERM_CACHE[num_perm] = MinHash(num_perm=num_perm, seed=MINHASH_SEED, scheme=SCHEME)
    return tpl


def signature(text: str, num_perm: int = NUM_PERM) -> np.ndarray | None:
    """MinHash hash values (uint32, affine32 scheme) of the text's shingles; None when it has no shingles."""
    sh = shingles(text)
    if not sh:
        return None
    m = MinHash(
        num_perm=num_perm,
        seed=MINHASH_SEED,
        permutations=_template(num_perm).permutations,
        scheme=SCHEME,
        hashfunc=_identity,
    )
    m.update_batch(_sha1_32(sh))
    return np.asarray(m.hashvalues, dtype=np.uint32)


def _identity(value: int) -> int:
    return value


def _sha1_32(items: Iterable[str]) -> list[int]:
    """datasketch's default ``sha1_hash32`` of each UTF-8 item (first 4 digest bytes, little
    endian), in one pass: the same values at about half the cost of a call per item."""
    sha1 = hashlib.sha1
    raw = b"".join([sha1(s.encode("utf-8")).digest()[:4] for s in items])
    return np.frombuffer(raw, dtype="<u4").tolist()


def to_bytes(sig: np.ndarray) -> bytes:
    return sig.astype("<u4").tobytes()


def from_bytes(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, dtype="<u4").astype(np.uint32)


def _minhash(hv: np.ndarray) -> MinHash:
    tpl = _template(len(hv))
    return MinHash(hashvalues=hv, permutations=tpl.permutations, scheme=SCHEME)


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


def text_signature(path: Path, mime: str | None, sha256: str) -> TextSig:
    """Extract the text of a file (search.extract) and compute its signature. Never raises."""
    try:
        from search.extract import extract

        ex = extract(path, mime)
        text, status, reason, extractor = ex.text, ex.status, ex.reason, ex.extractor
    except Exception as exc:  # a broken file must not stop the import
        text, status, reason, extractor = None, "failed", f"{type(exc).__name__}: {exc}", None
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
    sigs: Iterable[tuple[str, bytes]], threshold: float
) -> Iterator[tuple[str, str, float]]:
    """Pairs of distinct contents with estimated Jaccard >= ``threshold`` (a < b)."""
    lsh_t = max(0.2, threshold - LSH_MARGIN)
    lsh = MinHashLSH(threshold=lsh_t, num_perm=NUM_PERM)
    vals: dict[str, np.ndarray] = {}
    for sha, raw in sigs:
        hv = from_bytes(raw)
        if len(hv) != NUM_PERM or sha in vals:
            continue
        vals[sha] = hv
        lsh.insert(sha, _minhash(hv))
    for sha in sorted(vals):
        hv = vals[sha]
        for other in lsh.query(_minhash(hv)):
            if other <= sha:
                continue
            score = estimate(hv, vals[other])
            if score >= threshold:
                yield sha, other, round(score, 4)


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
