"""What the PostgreSQL backend writes (:mod:`.postgres_backend` describes the shape): tsvector
literals of the analyzer's tokens with their trigrams, the body cut into vectors, and the
INSERT rows of a batch. This runs for every indexed document (a 20 KB text has some 16,000
lexeme positions), so its loops over positions are kept as short as Python allows.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator, Mapping
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


def aligned_trigrams(tokens: list[str]) -> list[str | None]:
    """:func:`trigrams` with one entry per token (None at the last): the form
    :func:`genpon.search.analyzer.index_stream` gives, for entries made without it."""
    return [*trigrams(tokens), None] if tokens else []


_LABELS: dict[str, list[str]] = {}


def _labels(weight: str) -> list[str]:
    """``str(p) + weight`` for every position ``p`` (index ``p``), made once per weight."""
    if weight not in _LABELS:
        _LABELS[weight] = [f"{p}{weight}" for p in range(MAX_POS + 1)]
    return _LABELS[weight]


Positions = dict[str, list[str]]  # lexeme -> its position labels, in increasing order


def add_positions(
    positions: Positions,
    tokens: list[str],
    first: int,
    weight: str,
    tris: list[str | None] | None = None,
) -> None:
    """Add ``tokens`` from position ``first`` with ``weight`` to ``positions`` and, at the same
    positions, the trigrams they start: ``tris`` aligned with ``tokens`` (its last entry is
    not used: a trigram needs the next token in the same vector), else :func:`trigrams`.
    (The position labels come ready-made from :func:`_labels`; each position costs one
    dictionary look-up and one append: 20 % faster than ``defaultdict`` and per-position
    f-strings, and faster than grouping with ``map`` in C, which needs more passes. The
    trigrams and their labels are picked by ``filter`` and ``compress`` in C.)"""
    n = min(len(tokens), MAX_POS - first + 1)
    if n <= 0:
        return
    tri = trigrams(tokens[: n + 1]) if tris is None else tris[: n - 1]
    labels = _labels(weight)[first : first + n]
    get = positions.get
    head = tokens if len(tokens) == n else tokens[:n]
    for tok, label in zip(
        itertools.chain(head, filter(None, tri)),
        itertools.chain(labels, itertools.compress(labels, tri)),
        strict=True,
    ):
        got = get(tok)
        if got is None:
            positions[tok] = [label]
        else:
            got.append(label)


def literal(positions: Positions) -> str:
    """The tsvector literal of ``positions``: the first ``MAX_PER_LEXEME`` positions of each
    lexeme (they were added in increasing order, so these are the lowest)."""
    keys = "".join(positions)
    if "'" in keys or "\\" in keys:
        return " ".join(f"{lexeme(t)}:{','.join(p[:MAX_PER_LEXEME])}" for t, p in positions.items())
    # (analyzer tokens hold neither: no call per lexeme to quote it, no copy of short lists)
    return " ".join(
        [
            f"'{t}':{','.join(p if len(p) <= MAX_PER_LEXEME else p[:MAX_PER_LEXEME])}"
            for t, p in positions.items()
        ]
    )


def tsvector_literal(parts: list[tuple[list[str], int, str]]) -> str:
    """A tsvector from ``(tokens, first position, weight letter)`` parts, in position order.
    Besides each token, the trigram it starts (:func:`trigrams`) at the same position: a
    phrase query is answered from a few rare trigrams instead of many common bigrams."""
    positions: Positions = {}
    for tokens, first, weight in parts:
        add_positions(positions, tokens, first, weight)
    return literal(positions)


def spans(tokens: list[str]) -> list[tuple[int, int]]:
    """The body cut into vectors (``tokens[a:b]``) of at most ``CHUNK`` tokens in which no
    token occurs more than ``MAX_PER_LEXEME`` times (so no position is dropped), consecutive
    ones overlapping by ``OVERLAP`` tokens."""
    n = len(tokens)
    if n <= CHUNK and (n <= MAX_PER_LEXEME or max(Counter(tokens).values()) <= MAX_PER_LEXEME):
        return [(0, n)] if tokens else []  # (most texts: one vector, counted in C)
    out: list[tuple[int, int]] = []
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
        out.append((start, end))
        if end >= n:
            break
        start = end - OVERLAP  # a chunk holds > MAX_PER_LEXEME > OVERLAP tokens
    return out


def chunks(tokens: list[str]) -> list[list[str]]:
    """The token lists of :func:`spans`."""
    return [tokens[a:b] for a, b in spans(tokens)]


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


def _body(e: IndexEntry) -> tuple[Positions, list[Positions]]:
    """The positions of the body's head (from ``BODY_START``) and of each vector that continues
    it (from 1). A body of at most ``CHUNK`` tokens is counted as it is added: when no lexeme
    has more than ``MAX_PER_LEXEME`` positions it is the head alone (most texts)."""
    tokens = e.body_tokens
    tris = e.body_trigrams if e.body_trigrams is not None else aligned_trigrams(tokens)
    if len(tokens) <= CHUNK:
        head: Positions = {}
        add_positions(head, tokens, BODY_START, "", tris)
        # (a trigram never has more positions than the bigram it starts with)
        if not head or max(map(len, head.values())) <= MAX_PER_LEXEME:
            return head, []
    parts: list[Positions] = []
    for a, b in spans(tokens):
        p: Positions = {}
        add_positions(p, tokens[a:b], BODY_START if a == 0 else 1, "", tris[a:b])
        parts.append(p)
    return parts[0], parts[1:]


def rows(batch: Mapping[str, list[IndexEntry]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The INSERTs (driver parameter style) of ``batch``, each built when asked for (and the
    entries of a content taken from ``batch`` only then)."""
    for sha, entries in batch.items():
        if not entries:
            continue
        head, more = _body(entries[0])
        for n, part in enumerate(more, start=1):
            yield CHUNK_INSERT, {"sha": sha, "n": n, "tsv": literal(part)}
        for e in entries:
            fields: Positions = {}
            for tokens, first, weight in field_parts(e):
                add_positions(fields, tokens, first, weight)
            f = literal(fields)
            for t in e.acl:  # (no analyzer token holds "#")
                got = fields.get(ACL_PREFIX + t)
                if got is None:
                    fields[ACL_PREFIX + t] = [_labels("")[ACL_POS]]
                else:
                    got.append(_labels("")[ACL_POS])
            for tok, labels in head.items():  # (head's lists are shared: never appended to)
                got = fields.get(tok)
                fields[tok] = labels if got is None else got + labels
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
                    "f": f,
                    "a": literal(fields),
                },
            )
