"""What the PostgreSQL backend writes (:mod:`.postgres_backend` describes the shape): tsvector
literals of the analyzer's tokens with their trigrams, the body cut into vectors, and the
INSERT rows of a batch. This runs for every indexed document (a 20 KB text has some 16,000
lexeme positions), so its loops over positions are kept as short as Python allows.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from typing import Any

from genpon.search.analyzer import is_bigram
from genpon.search.backends.base import IndexEntry

MAX_POS = 16383  # tsvector positions stop here
MAX_PER_LEXEME = 256  # ... and keep at most this many positions per lexeme
OVERLAP = 96  # longest phrase (in tokens) guaranteed whole in one vector
GAP = OVERLAP + 2  # positions left empty between fields, so no phrase spans two
BODY_START = 1000  # body head position in all_tsv; the fields live below it
CHUNK = MAX_POS - BODY_START  # tokens per body vector
# the placement's permission tokens, as lexemes no analyzer token can equal (tokens never
# contain "#"), in the empty stretch before the body: the index answers "may read" too
ACL_PREFIX = "#acl:"
ACL_POS = BODY_START - GAP // 2


def lexeme(tok: str) -> str:
    if "'" in tok or "\\" in tok:
        tok = tok.replace("\\", "\\\\").replace("'", "''")
    return "'" + tok + "'"


def trigrams(tokens: list[str]) -> list[str | None]:
    """For each token but the last, the trigram it starts (``予算`` followed by ``算執`` gives
    ``予算執``), None where the next token is not the next bigram of the same run. In the index
    stream two adjacent bigrams always belong to one run (runs are framed by edge tokens)."""
    bigram = {t: is_bigram(t) for t in set(tokens)}
    return [
        a + b[1] if bigram[a] and bigram[b] and a[1] == b[0] else None
        for a, b in itertools.pairwise(tokens)
    ]


_LABELS: dict[str, list[str]] = {}


def _labels(weight: str) -> list[str]:
    """``str(p) + weight`` for every position ``p`` (index ``p``), made once per weight."""
    if weight not in _LABELS:
        _LABELS[weight] = [f"{p}{weight}" for p in range(MAX_POS + 1)]
    return _LABELS[weight]


def tsvector_literal(parts: list[tuple[list[str], int, str]]) -> str:
    """A tsvector from ``(tokens, first position, weight letter)`` parts, in position order.
    Besides each token, the trigram it starts (:func:`trigrams`) at the same position: a
    phrase query is answered from a few rare trigrams instead of many common bigrams.
    (The position labels come ready-made from :func:`_labels`; each position costs one
    dictionary look-up and one append: 20 % faster than ``defaultdict`` and per-position
    f-strings, and faster than grouping with ``map`` in C, which needs more passes.)"""
    positions: dict[str, list[str]] = {}
    get = positions.get
    for tokens, first, weight in parts:
        n = min(len(tokens), MAX_POS - first + 1)
        if n <= 0:
            continue
        labels = _labels(weight)[first : first + n]
        for tok, label in zip(tokens, labels, strict=False):
            got = get(tok)
            if got is None:
                positions[tok] = [label]
            else:
                got.append(label)
        for tri, label in zip(trigrams(tokens[: n + 1]), labels, strict=False):
            if tri is not None:
                got = get(tri)
                if got is None:
                    positions[tri] = [label]
                else:
                    got.append(label)
    # (positions were added in increasing order: the first MAX_PER_LEXEME are kept)
    return " ".join(f"{lexeme(t)}:{','.join(p[:MAX_PER_LEXEME])}" for t, p in positions.items())


def chunks(tokens: list[str]) -> list[list[str]]:
    """The body cut into vectors of at most ``CHUNK`` tokens in which no token occurs more
    than ``MAX_PER_LEXEME`` times (so no position is dropped), consecutive ones overlapping by
    ``OVERLAP`` tokens."""
    n = len(tokens)
    if n <= CHUNK and (n <= MAX_PER_LEXEME or max(Counter(tokens).values()) <= MAX_PER_LEXEME):
        return [tokens] if tokens else []  # (most texts: one vector, counted in C)
    out: list[list[str]] = []
    start = 0
    while start < n:
        counts: dict[str, int] = {}
        end = start
        while end < n and end - start < CHUNK:
            c = counts.get(tokens[end], 0) + 1
            if c > MAX_PER_LEXEME:
                break
            counts[tokens[end]] = c
            end += 1
        out.append(tokens[start:end])
        if end >= n:
            break
        start = end - OVERLAP  # a chunk holds > MAX_PER_LEXEME > OVERLAP tokens
    return out


def field_parts(e: IndexEntry) -> list[tuple[list[str], int, str]]:
    """Title (A), file name (B) and case/folder (C) at positions below ``BODY_START``."""
    parts: list[tuple[list[str], int, str]] = []
    pos = 1
    for tokens, weight in ((e.title_tokens, "A"), (e.filename_tokens, "B"), (e.meta_tokens, "C")):
        room = BODY_START - GAP - pos
        if room <= 0:
            break
        parts.append((tokens[:room], pos, weight))
        pos += min(len(tokens), room) + GAP
    return parts


CHUNK_INSERT = (
    "INSERT INTO search_chunk (sha256, chunk_no, tsv) VALUES (%(sha)s, %(n)s, %(tsv)s::tsvector)"
)
ENTRY_INSERT = (
    "INSERT INTO search_entry (document_id, sha256, acl, prior_acl, prior_keys, is_first, "
    "is_original, case_id, organization, doc_class, folder_kind, status, fiscal_year, doc_date, "
    "fields_tsv, all_tsv) VALUES (%(id)s, %(sha)s, %(acl)s::text[], %(prior)s::text[], "
    "%(pkeys)s::text[], %(first)s, %(orig)s, %(case_id)s, %(org)s, %(cls)s, %(kind)s, "
    "%(status)s, %(fy)s, %(dd)s, %(f)s::tsvector, %(a)s::tsvector)"
)


def rows(batch: dict[str, list[IndexEntry]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The INSERTs (driver parameter style) of ``batch``, each built when asked for."""
    for sha, entries in batch.items():
        if not entries:
            continue
        body = chunks(entries[0].body_tokens)
        head = body[0] if body else []
        for n, part in enumerate(body[1:], start=1):
            yield CHUNK_INSERT, {"sha": sha, "n": n, "tsv": tsvector_literal([(part, 1, "")])}
        for e in entries:
            fields = field_parts(e)
            acl_parts = [([ACL_PREFIX + t], ACL_POS, "") for t in e.acl]
            yield (
                ENTRY_INSERT,
                {
                    "id": e.document_id,
                    "sha": sha,
                    "acl": list(e.acl),
                    "prior": list(e.prior_acl),
                    "pkeys": list(e.prior_keys),
                    "first": e.is_first,
                    "orig": e.is_original,
                    "case_id": e.case_id,
                    "org": e.organization,
                    "cls": e.doc_class,
                    "kind": e.folder_kind,
                    "status": e.status,
                    "fy": e.fiscal_year,
                    "dd": e.date_key,
                    "f": tsvector_literal(fields),
                    "a": tsvector_literal([*fields, *acl_parts, (head, BODY_START, "")]),
                },
            )
