"""The Japanese analyzer: one implementation for every backend, at index and at query time.

:func:`normalize`: Unicode NFKC (full-width/half-width, compatibility characters) and case
folding. :func:`tokens`: CJK and kana runs as overlapping character bigrams (a run of one
character kept as a unigram), Latin and digit runs as words. A run is a maximal sequence of
characters of one class; everything else (spaces, punctuation, symbols) separates runs, except
a soft break (see below).

The index stores a slightly richer stream, :func:`index_tokens`: every CJK run is framed by two
edge tokens, ``<X`` (the run starts with X) and ``X>`` (the run ends with X). Edge tokens make
phrase matching exact where a query cuts a run: ``5年`` must find 令和5年度 (the run 年度 starts
with 年), ``第3条`` must find 次第3条例. They cannot collide with text tokens, which never
contain ``<`` or ``>``. A query term is turned into the same stream by :func:`query_tokens`;
the edges of the term itself are left open, so a term matches wherever its text occurs inside
a run (``京都`` finds 東京都; ``東京都`` does not find 京都 alone).

A line break between two CJK characters (with any spaces around it) is a wrap, not a boundary:
PDFs and wrapped text files break lines in the middle of words (``で\nきる``). Such a *soft
break* (:func:`soft_breaks`) is removed before the text is cut into runs, at index time, at
query time and when snippets are matched. A blank line (two line breaks) still ends the run.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

MAX_WORD = 64  # Latin/digit words are cut to this many characters

LATIN, CJK = 1, 2

START, END = "<", ">"


def normalize(text: str) -> str:
    """NFKC, then case folding (ß→ss, Ａ→a); the form every comparison uses."""
    return unicodedata.normalize("NFKC", text).casefold()


# (first, last) code points of the characters cut into bigrams
_CJK_RANGES = (
    (0x3040, 0x30FF),  # hiragana, katakana (incl. ー)
    (0x3400, 0x4DBF),  # CJK ext A
    (0x4E00, 0x9FFF),  # CJK unified
    (0xF900, 0xFAFF),  # compatibility ideographs
    (0x31F0, 0x31FF),  # katakana phonetic extensions
    (0x3005, 0x3007),  # 々 〆 〇
    (0x303B, 0x303B),  # 〻
    (0x20000, 0x3FFFF),  # CJK ext B and later
    (0xAC00, 0xD7AF),  # hangul syllables
)
_CJK_CLASS = "[" + "".join(f"{chr(a)}-{chr(b)}" for a, b in _CJK_RANGES) + "]"
_BIGRAM = re.compile(_CJK_CLASS + "{2}")
CJK_RUN = re.compile(_CJK_CLASS + "+")  # a run of CJK characters (in any text)
# whitespace that is not a line break (NFKC has already turned U+3000 into a space)
_HSPACE = r"[^\S\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]"
_SOFT_BREAK = re.compile(
    f"(?<={_CJK_CLASS}){_HSPACE}*(?:\r\n|[\n\r\u2028]){_HSPACE}*(?={_CJK_CLASS})"
)


def _cjk(ch: str) -> bool:
    """``ch`` lies in one of ``_CJK_RANGES`` (spelled out: this runs for every character)."""
    o = ord(ch)
    return (
        0x3040 <= o <= 0x30FF
        or 0x3400 <= o <= 0x4DBF
        or 0x4E00 <= o <= 0x9FFF
        or 0xF900 <= o <= 0xFAFF
        or 0x31F0 <= o <= 0x31FF
        or o in (0x3005, 0x3006, 0x3007, 0x303B)
        or 0x20000 <= o <= 0x3FFFF
        or 0xAC00 <= o <= 0xD7AF
    )


def soft_breaks(normalized: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of every soft break in normalized text: one line break, with the spaces
    around it, between two CJK characters. Two line breaks (a paragraph) are not one."""
    for m in _SOFT_BREAK.finditer(normalized):
        yield m.start(), m.end()


def join_soft_breaks(normalized: str) -> str:
    """``normalized`` with its soft breaks removed: the text the runs are cut from."""
    return _SOFT_BREAK.sub("", normalized)


def char_class(ch: str) -> int:
    """CJK, LATIN (letters and digits of other scripts) or 0 (a separator)."""
    if _cjk(ch):
        return CJK
    if ch.isalnum():
        return LATIN
    if unicodedata.category(ch) in ("Mn", "Mc"):  # combining marks stay with their word
        return LATIN
    return 0


@dataclass(frozen=True)
class Run:
    kind: int  # LATIN | CJK
    text: str
    start: int  # offset in the normalized text
    left_bound: bool  # something (separator or other class) precedes it in the text
    right_bound: bool


def runs(normalized: str) -> Iterator[Run]:
    """Maximal runs of one class in already-normalized text."""
    n = len(normalized)
    i = 0
    while i < n:
        k = char_class(normalized[i])
        if k == 0:
            i += 1
            continue
        j = i + 1
        while j < n and char_class(normalized[j]) == k:
            j += 1
        yield Run(k, normalized[i:j], i, i > 0, j < n)
        i = j


def _bigrams(text: str) -> list[str]:
    if len(text) == 1:
        return [text]
    return [text[i : i + 2] for i in range(len(text) - 1)]


def tokens(text: str) -> list[str]:
    """Analyzer tokens of ``text`` in order: CJK bigrams (unigram for a single character run),
    Latin/digit words. Positions are list indexes."""
    out: list[str] = []
    for run in runs(join_soft_breaks(normalize(text))):
        if run.kind == CJK:
            out += _bigrams(run.text)
        else:
            out.append(run.text[:MAX_WORD])
    return out


def _stream(normalized: str, *, open_edges: bool) -> list[str]:
    out: list[str] = []
    for run in runs(normalized):
        if run.kind != CJK:
            out.append(run.text[:MAX_WORD])
            continue
        t = run.text
        left = run.left_bound or not open_edges
        right = run.right_bound or not open_edges
        if left:
            out.append(START + t[0])
        if len(t) > 1:
            out += _bigrams(t)
        elif left == right:  # a one-character run: unigram between its edges (or alone)
            out.append(t)
        if right:
            out.append(t[-1] + END)
    return out


def index_tokens(text: str) -> list[str]:
    """The token stream stored in the index (bigrams, words and run-edge tokens)."""
    return _stream(join_soft_breaks(normalize(text)), open_edges=False)


def query_tokens(term: str) -> list[str]:
    """The token stream a query term must match as a phrase (edges of the term left open).

    Returns ``[]`` when the term has no searchable characters, and for a single CJK character
    with open edges ``[X]``: backends match it as "any token containing X"."""
    return _stream(join_soft_breaks(normalize(term)), open_edges=True)


def is_bigram(token: str) -> bool:
    """A two-character kanji/kana token: a bigram from inside a run (not an edge marker)."""
    return _BIGRAM.fullmatch(token) is not None


def is_single_char(qtokens: list[str]) -> bool:
    """A term that is one CJK character with nothing around it: matched by substring of tokens."""
    return len(qtokens) == 1 and len(qtokens[0]) == 1 and _cjk(qtokens[0])


def token_text(tokens_: list[str]) -> str:
    """Tokens joined for a whitespace-tokenized field (tokens never contain whitespace)."""
    return " ".join(tokens_)
