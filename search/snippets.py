"""Snippets whose cost does not grow with the document: the stored text in fixed-size chunks.

A snippet is a window of the original text around the first match of the query's words in the
*normalized* text (NFKC, case folding, soft breaks removed: :mod:`genpon.search.analyzer`),
every match marked. Normalizing a whole text per hit costs ~0.1 s on a 240,000-character law,
so when a content is indexed its text (the first ``MAX_TEXT`` characters) is cut into chunks
of ``CHUNK`` original characters, stored in ``blob_text_chunk``:

- each chunk holds its original characters, their normalized form (plus the first ``OVERLAP``
  normalized characters of the following chunks, so a match starting in the chunk lies whole
  in it) and the offset map back to the original: only the *anchors* where normalization did
  not go one character for one (``㈱`` → ``(株)``, a removed soft break);
- the directory (``blob_text.chunk_dir``) holds per chunk its start in the normalized text
  and a bloom filter of the characters and character pairs in it.

A snippet reads the directory, tests each chunk's bloom (a few bit tests), decompresses only
the chunks that may hold a word (one or two when the word is there, almost never one when it
is not) and the one or two chunks the window lies in. The result is exactly that of cutting
the window from the whole normalized text (:func:`snippet`, the reference the tests use).
"""

from __future__ import annotations

import html
import operator
import re
import struct
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from genpon.records.models import BlobText, BlobTextChunk
from genpon.search.analyzer import normalize, soft_breaks
from sqlalchemy import Integer, LargeBinary, String, TextualSelect, column, delete, text
from sqlmodel import Session, col, select

MAX_TEXT = 500_000  # characters of a text a snippet is cut from
CHUNK = 4096  # original characters per chunk
OVERLAP = 1024  # normalized characters of the next chunk repeated at a chunk's end
BLOOM_BITS = 8192  # per chunk; two bits per character or character pair
BLOOM_BYTES = BLOOM_BITS // 8
SNIPPET_CHARS = 160
_MAGIC = b"GSN2"
_DIR_HEAD = struct.Struct("<4sIIIII")  # magic, chunk size, length, normalized length, n, bloom


def normalized_with_map(text: str) -> tuple[str, Sequence[int]]:
    """``text`` normalized as the analyzer sees it (soft breaks removed, so a word wrapped
    across a line is matched whole), and for each of its characters the position in ``text``
    it comes from: highlights are drawn on the original text."""
    idx: Sequence[int]
    norm = normalize(text)  # one C call; almost always one character for one
    if len(norm) == len(text):
        idx = range(len(text))
    else:  # a compatibility character expanded (㈱ → (株)): map character by character
        chars: list[str] = []
        idx = []
        for i, ch in enumerate(text):
            n = normalize(ch) if not ch.isascii() else ch.lower()
            for c in n:
                chars.append(c)
                idx.append(i)
        norm = "".join(chars)
    cuts = list(soft_breaks(norm))
    if not cuts:
        return norm, idx
    keep_chars: list[str] = []
    keep_idx: list[int] = []  # (slices of a range extend in C)
    pos = 0
    for a, b in cuts:
        keep_chars.append(norm[pos:a])
        keep_idx += idx[pos:a]
        pos = b
    keep_chars.append(norm[pos:])
    keep_idx += idx[pos:]
    return "".join(keep_chars), keep_idx


# --- bloom filters ----------------------------------------------------------------------------


def _bits(gram: str) -> tuple[int, int]:
    h = zlib.crc32(gram.encode("utf-8"))
    return h % BLOOM_BITS, (h >> 16) % BLOOM_BITS


def _bloom(text: str) -> bytes:
    grams = set(text)
    grams.update(map(operator.add, text, text[1:]))  # the bigrams, made in C
    out = bytearray(BLOOM_BYTES)
    for g in grams:
        a, b = _bits(g)
        out[a >> 3] |= 1 << (a & 7)
        out[b >> 3] |= 1 << (b & 7)
    return bytes(out)


def _needle_bits(needle: str) -> list[int] | None:
    """The bloom bits every chunk holding ``needle`` has set (None: test nothing)."""
    if len(needle) > OVERLAP:
        return None  # it may run past the chunk's overlap: read the chunk
    grams = [needle] if len(needle) == 1 else [needle[i : i + 2] for i in range(len(needle) - 1)]
    out: set[int] = set()
    for g in list(dict.fromkeys(grams))[:32]:
        out.update(_bits(g))
    return sorted(out)


# --- storage format ---------------------------------------------------------------------------


@dataclass
class Directory:
    length: int  # original characters (at most MAX_TEXT)
    norm_length: int
    nstarts: list[int]  # per chunk: where its own characters start in the normalized text
    blooms: bytes | None  # per chunk BLOOM_BYTES (None: every chunk is a candidate)

    def pack(self) -> bytes:
        assert self.blooms is not None
        n = len(self.nstarts)
        head = _DIR_HEAD.pack(_MAGIC, CHUNK, self.length, self.norm_length, n, BLOOM_BYTES)
        return head + struct.pack(f"<{n}I", *self.nstarts) + self.blooms

    @classmethod
    def unpack(cls, data: bytes) -> Directory | None:
        """The directory, or None when it was written with other parameters (rebuild it)."""
        magic, chunk, length, norm_length, n, bloom = _DIR_HEAD.unpack_from(data)
        if magic != _MAGIC or chunk != CHUNK or bloom != BLOOM_BYTES:
            return None
        at = _DIR_HEAD.size
        nstarts = list(struct.unpack_from(f"<{n}I", data, at))
        return cls(length, norm_length, nstarts, data[at + 4 * n :])

    @staticmethod
    def current(data: bytes | None) -> bool:
        """``data`` is a directory of today's format (else the chunks are built again)."""
        return data is not None and data[:4] == _MAGIC and Directory.unpack(data) is not None

    def may_hold(self, k: int, bits: list[int] | None) -> bool:
        if self.blooms is None or bits is None:
            return True
        base = k * BLOOM_BYTES
        b = self.blooms
        return all(b[base + (p >> 3)] >> (p & 7) & 1 for p in bits)


@dataclass
class Chunk:
    nstart: int  # start of its own characters in the normalized text
    own: int  # how many of ``norm`` are its own (the rest repeats the following chunks)
    norm: str
    orig: str  # original characters CHUNK*k ... CHUNK*(k+1)
    anchor_n: list[int]  # offsets in ``norm`` where the map to the original jumps
    anchor_o: list[int]  # ... and the original position there

    def pack(self) -> bytes:
        o, n = self.orig.encode("utf-8"), self.norm.encode("utf-8")
        a = len(self.anchor_n)
        head = struct.pack("<IIIII", self.nstart, self.own, a, len(o), len(n))
        anchors = struct.pack(f"<{2 * a}I", *self.anchor_n, *self.anchor_o)
        return zlib.compress(head + anchors + o + n, 6)

    @classmethod
    def unpack(cls, data: bytes) -> Chunk:
        raw = zlib.decompress(data)
        nstart, own, a, lo, ln = struct.unpack_from("<IIIII", raw)
        at = 20
        anchors = struct.unpack_from(f"<{2 * a}I", raw, at)
        at += 8 * a
        orig = raw[at : at + lo].decode("utf-8")
        norm = raw[at + lo : at + lo + ln].decode("utf-8")
        return cls(nstart, own, norm, orig, list(anchors[:a]), list(anchors[a:]))

    def orig_of(self, rel: int) -> int:
        """Original position of normalized offset ``rel`` (one of its own)."""
        j = bisect_right(self.anchor_n, rel) - 1
        return self.anchor_o[j] + rel - self.anchor_n[j]


def _anchors(idx: Sequence[int], a: int, e: int) -> tuple[list[int], list[int]]:
    if a >= e:
        return [0], [idx[a] if a < len(idx) else 0]
    if isinstance(idx, range):
        return [0], [idx[a]]
    an, ao = [0], [idx[a]]
    prev = idx[a]
    for rel in range(1, e - a):
        v = idx[a + rel]
        if v != prev + 1:
            an.append(rel)
            ao.append(v)
        prev = v
    return an, ao


def build(text: str, *, blooms: bool = True) -> tuple[Directory, list[Chunk]]:
    """Cut ``text`` (its first MAX_TEXT characters) into chunks with their directory."""
    text = text[:MAX_TEXT]
    norm, idx = normalized_with_map(text)
    n = max(1, -(-len(text) // CHUNK))
    nstarts = [bisect_left(idx, k * CHUNK) for k in range(n)]
    chunks: list[Chunk] = []
    for k in range(n):
        a = nstarts[k]
        e = nstarts[k + 1] if k + 1 < n else len(norm)
        an, ao = _anchors(idx, a, e)
        orig = text[k * CHUNK : (k + 1) * CHUNK]
        chunks.append(Chunk(a, e - a, norm[a : e + OVERLAP], orig, an, ao))
    bl = b"".join(_bloom(c.norm) for c in chunks) if blooms else None
    return Directory(len(text), len(norm), nstarts, bl), chunks


# --- reading ----------------------------------------------------------------------------------


class ChunkedText:
    """The normalized text, its map to the original and the original text, read chunk by
    chunk on demand (``load(k)``: the k-th chunk)."""

    def __init__(self, directory: Directory, load: Callable[[int], Chunk]) -> None:
        self.dir = directory
        self._load = load
        self._cache: dict[int, Chunk] = {}
        self.loaded = 0  # chunks read (for tests and the benchmark)

    def chunk(self, k: int) -> Chunk:
        c = self._cache.get(k)
        if c is None:
            c = self._cache[k] = self._load(k)
            self.loaded += 1
        return c

    def _nend(self, k: int) -> int:
        ns = self.dir.nstarts
        return ns[k + 1] if k + 1 < len(ns) else self.dir.norm_length

    def _owner(self, n: int) -> int:
        return max(0, bisect_right(self.dir.nstarts, n) - 1)

    def idx(self, n: int) -> int:
        """Original position of normalized position ``n``."""
        k = self._owner(n)
        c = self.chunk(k)
        return c.orig_of(n - c.nstart)

    def norm_index(self, a: int) -> int:
        """First normalized position that comes from original position ``a`` or later."""
        k = min(a // CHUNK, len(self.dir.nstarts) - 1)
        c = self.chunk(k)
        segs = [*c.anchor_n, c.own]
        for j in range(len(c.anchor_n)):
            r, o = segs[j], c.anchor_o[j]
            if segs[j + 1] > r and o + (segs[j + 1] - r) - 1 >= a:
                return c.nstart + r + max(0, a - o)
        return self._nend(k)

    def norm_slice(self, lo: int, hi: int) -> str:
        out: list[str] = []
        hi = min(hi, self.dir.norm_length)
        while lo < hi:
            k = self._owner(lo)
            c = self.chunk(k)
            end = min(hi, self._nend(k))
            out.append(c.norm[lo - c.nstart : end - c.nstart])
            lo = end  # (the owner of lo ends after it)
        return "".join(out)

    def orig_slice(self, a: int, b: int) -> str:
        out: list[str] = []
        b = min(b, self.dir.length)
        while a < b:
            k = a // CHUNK
            end = min(b, (k + 1) * CHUNK)
            out.append(self.chunk(k).orig[a - k * CHUNK : end - k * CHUNK])
            a = end
        return "".join(out)

    def find_first(self, needles: list[str]) -> int | None:
        """Normalized position of the first match of any needle (as ``norm.find``)."""
        bits = {n: _needle_bits(n) for n in needles}
        for k in range(len(self.dir.nstarts)):
            cand = [n for n in needles if self.dir.may_hold(k, bits[n])]
            if not cand:
                continue
            c = self.chunk(k)
            best: int | None = None
            for n in cand:
                hay = c.norm
                if len(n) > len(hay) - c.own:  # runs past the overlap: join what follows
                    hay = self.norm_slice(c.nstart, c.nstart + c.own + len(n) - 1)
                p = hay.find(n, 0, c.own + len(n) - 1)
                if p >= 0 and (best is None or p < best):
                    best = p
            if best is not None:
                return c.nstart + best
        return None


def render(t: ChunkedText, needles: list[str], width: int = SNIPPET_CHARS) -> str:
    """An escaped window of the text around the first match, every match in ``<mark>``."""
    length = t.dir.length
    needles = sorted({n for n in needles if n}, key=len, reverse=True)
    first = t.find_first(needles) if needles else None
    a = 0 if first is None else t.idx(max(0, first - width // 4))
    b = min(length, a + width)
    spans: list[tuple[int, int]] = []
    if first is not None:
        lo = t.norm_index(a)
        region = t.norm_slice(lo, lo + width * 3)
        for n in needles:
            for m in re.finditer(re.escape(n), region):
                sa, sb = t.idx(lo + m.start()), t.idx(lo + m.end() - 1) + 1
                if sa >= a and sb <= b:
                    spans.append((sa, sb))
    return marked(t.orig_slice, length, a, b, spans)


def marked(
    piece: Callable[[int, int], str], length: int, a: int, b: int, spans: list[tuple[int, int]]
) -> str:
    """The escaped window ``[a, b)`` of a text of ``length`` characters (``piece(i, j)`` gives
    its characters ``i..j``) with the ``spans`` (overlapping ones merged) in ``<mark>``, an
    ellipsis where it is cut, whitespace runs as one space."""
    merged: list[tuple[int, int]] = []
    for sa, sb in sorted(spans):
        if merged and sa <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], sb))
        else:
            merged.append((sa, sb))
    out: list[str] = ["…"] if a > 0 else []
    pos = a
    for sa, sb in merged:
        out.append(html.escape(piece(pos, sa)))
        out.append("<mark>" + html.escape(piece(sa, sb)) + "</mark>")
        pos = sb
    out.append(html.escape(piece(pos, b)))
    if b < length:
        out.append("…")
    return re.sub(r"\s+", " ", "".join(out)).strip()


def snippet(text: str | None, needles: list[str], width: int = SNIPPET_CHARS) -> str:
    """The snippet of a text in memory (the stored chunks give the same)."""
    if not text:
        return ""
    directory, chunks = build(text, blooms=False)
    return render(ChunkedText(directory, chunks.__getitem__), needles, width)


# --- the database -----------------------------------------------------------------------------


def store_chunks(
    session: Session, sha256: str, text: str | None, *, replace: bool = True
) -> bytes | None:
    """Replace the chunks of content ``sha256`` by those of ``text``; returns the directory
    for ``blob_text.chunk_dir`` (None for no text). The caller stores it. ``replace=False``:
    the caller knows there are none yet (a text row it just created), no DELETE is sent."""
    if replace:
        session.execute(delete(BlobTextChunk).where(col(BlobTextChunk.sha256) == sha256))
    if not text:
        return None
    directory, chunks = build(text)
    session.flush()
    session.add_all(
        BlobTextChunk(sha256=sha256, seq=k, data=c.pack()) for k, c in enumerate(chunks)
    )
    return directory.pack()


def _first_candidate(directory: Directory, needles: list[str]) -> int:
    """The chunk a snippet reads first: the first that may hold a needle (else the start)."""
    bits = [_needle_bits(n) for n in needles if n]
    for k in range(len(directory.nstarts)):
        if any(directory.may_hold(k, b) for b in bits):
            return k
    return 0


@lru_cache(maxsize=128)  # one per page size (at most 100 hits a page)
def _first_chunks(n: int) -> TextualSelect:
    """The chunks of ``n`` (content, chunk number) pairs: ``(sha256, seq) = ... OR ...``, each
    term a primary key lookup (SQLite scans the whole table for a row-value IN). Written as
    text once per page size: building it as an expression took ~4 ms a page of 20 hits."""
    cond = " OR ".join(f"(sha256 = :s{j} AND seq = :k{j})" for j in range(n))
    sql = f"SELECT sha256, seq, data FROM {BlobTextChunk.__tablename__} WHERE {cond}"
    # typed columns: the driver's values come back as the ORM gives them
    return text(sql).columns(
        column("sha256", String), column("seq", Integer), column("data", LargeBinary)
    )


def _pairs(want: list[tuple[str, int]]) -> dict[str, Any]:
    return {f"{p}{j}": v for j, pair in enumerate(want) for p, v in zip("sk", pair, strict=True)}


def stored_snippets(session: Session, shas: list[str], needles: list[str]) -> dict[str, str]:
    """The snippets of stored contents, reading only the chunks they need: the directories in
    one query, the first chunk each needs in another, any further chunk (rare: a window across
    a chunk's edge, a bloom's false positive) by itself. A content whose chunks were not built
    yet (indexed before they existed) is cut from its whole text."""
    out: dict[str, str] = {}
    if not shas:
        return out
    dirs: dict[str, Directory] = {}
    rows = session.exec(
        select(BlobText.sha256, BlobText.chunk_dir).where(col(BlobText.sha256).in_(shas))
    ).all()
    for sha, data in rows:
        d = Directory.unpack(data) if data else None
        if d is None:
            row = session.get(BlobText, sha)
            text = zlib.decompress(row.text_z).decode("utf-8") if row and row.text_z else None
            out[sha] = snippet(text, needles)
        else:
            dirs[sha] = d
    want = [(sha, _first_candidate(d, needles)) for sha, d in dirs.items()]
    got: dict[tuple[str, int], bytes] = {}
    if want:
        for sha, seq, blob in session.execute(_first_chunks(len(want)), _pairs(want)).all():
            got[(sha, seq)] = blob

    def loader(sha: str) -> Callable[[int], Chunk]:
        def load(k: int) -> Chunk:
            blob = got.get((sha, k))
            if blob is None:
                blob = session.exec(
                    select(BlobTextChunk.data).where(
                        BlobTextChunk.sha256 == sha, BlobTextChunk.seq == k
                    )
                ).one()
            return Chunk.unpack(blob)

        return load

    for sha, d in dirs.items():
        out[sha] = render(ChunkedText(d, loader(sha)), needles)
    return out
