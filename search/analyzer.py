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

Numbers with their counter (:func:`numbered_tokens`): ``第160条`` is cut into 第|160|条 and the
laws write 第百六十条, so citations and dates get extra *reference tokens* in canonical form,
kanji and full-width numerals read as ASCII (``第160条`` ``160条``; ``2023年`` ``2023年度`` for
令和5年度, 令和五年度, R5年度 and 2023年度). They are appended after the text's own tokens
(the backends number positions by list index, so a token cannot share a position): a
reference token mixes digits with CJK, which no text token does, so no phrase of text tokens
can run into them. Where a kanji numeral is read (the rule; ``一`` alone in ordinary words
such as 同一条件, 一般, 統一 never becomes 1):

- after 第, before a counter 条 項 号 章 節 編 款 目: any kanji numeral (第一条 → 第1条);
- after an era name (明治 大正 昭和 平成 令和), before 年: any kanji numeral or 元 (元年 = 1);
- before a counter or 年 年度 月 日 without 第 or an era: ASCII digits, or a kanji numeral of
  two characters or more that starts with a digit or 十百千 (二十条, 三十日; not 一条, 五日).

Kanji numerals are additive (二百四十八) or positional (二四八, 二〇二三) when they hold no
十百千万. An era year also gives its Western year; R/H/S plus a number (R5, H31年) is read
as an era year only before 年 or a date separator, and R/H alone (R5, H31) as one too.
"""

from __future__ import annotations

import operator
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


class _ClassLetters(dict[int, str]):
    """Code point → its class as a letter (``c`` CJK, ``l`` LATIN, `` `` separator), filled on
    first sight of a character: ``str.translate`` then classes a whole text in C."""

    def __missing__(self, code: int) -> str:
        k = char_class(chr(code))
        letter = "c" if k == CJK else "l" if k == LATIN else " "
        self[code] = letter
        return letter


_CLASS_LETTERS = _ClassLetters()
_RUN_OF_ONE_CLASS = re.compile(r"c+|l+")


def runs(normalized: str) -> Iterator[Run]:
    """Maximal runs of one class in already-normalized text (the classes of every character
    by one ``translate``, the runs by one regular expression: indexing a 300k-character law
    no longer calls :func:`char_class` 300k times)."""
    n = len(normalized)
    for m in _RUN_OF_ONE_CLASS.finditer(normalized.translate(_CLASS_LETTERS)):
        i, j = m.span()
        yield Run(CJK if m.group()[0] == "c" else LATIN, normalized[i:j], i, i > 0, j < n)


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


def _closed_stream(normalized: str, tri: list[str | None] | None = None) -> list[str]:
    """``_stream(normalized, open_edges=False)`` without a :class:`Run` per run: this runs for
    every text the indexer stores (a 20 KB text has some 1,500 runs and 7,000 bigrams). The
    bigrams of the whole text are made by one ``map`` in C and each CJK run takes its slice
    of them; a one-character run gives ``<X``, ``X``, ``X>`` as in :func:`_stream`. With
    ``tri``, appends to it, aligned with the tokens, the trigram each token starts
    (:func:`index_stream`), each run's made by one ``map`` in C."""
    classes = normalized.translate(_CLASS_LETTERS)
    pairs = list(map(operator.add, normalized, normalized[1:]))
    out: list[str] = []
    append = out.append
    for m in _RUN_OF_ONE_CLASS.finditer(classes):
        i, j = m.span()
        if classes[i] == "l":
            append(normalized[i : min(j, i + MAX_WORD)])
            if tri is not None:
                tri.append(None)
        elif j - i > 1:
            append(START + normalized[i])
            out += pairs[i : j - 1]
            append(normalized[j - 1] + END)
            if tri is not None:  # <X, then each bigram but the last starts one, then X>
                tri.append(None)
                tri += map(operator.add, pairs[i : j - 2], normalized[i + 2 : j])
                tri += (None, None)
        else:
            ch = normalized[i]
            out += (START + ch, ch, ch + END)
            if tri is not None:
                tri += (None, None, None)
    return out


def index_tokens(text: str) -> list[str]:
    """The token stream stored in the index (bigrams, words and run-edge tokens), then the
    reference tokens (:func:`numbered_tokens`)."""
    norm = join_soft_breaks(normalize(text))
    return _closed_stream(norm) + numbered_tokens(norm)


def index_stream(text: str) -> tuple[list[str], list[str | None]]:
    """:func:`index_tokens` and, aligned with it, the trigram each token starts: for a CJK
    bigram followed by the next bigram of its run (``予算`` then ``算執``), the three
    characters they spell (``予算執``), else None. The index backends store trigrams beside
    the bigrams so a phrase query needs a few rare lexemes instead of many common ones; made
    here from the text's slices, they cost a fraction of pairing the tokens up afterwards."""
    norm = join_soft_breaks(normalize(text))
    tri: list[str | None] = []
    toks = _closed_stream(norm, tri)
    refs = numbered_tokens(norm)
    return toks + refs, tri + [None] * len(refs)


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


# --- numbers with their counter (reference tokens) --------------------------------------------

ERAS = {"明治": 1867, "大正": 1911, "昭和": 1925, "平成": 1988, "令和": 2018}
ERA_LETTERS = {"m": "明治", "t": "大正", "s": "昭和", "h": "平成", "r": "令和"}
_ERA_LAST = {"明治": 45, "大正": 15, "昭和": 64, "平成": 31, "令和": 99}
_KDIGITS = {c: i for i, c in enumerate("〇一二三四五六七八九")} | {"零": 0}
_KUNITS = {"十": 10, "百": 100, "千": 1000}
_KNUM = "[〇零一二三四五六七八九十百千万]+"
_NUM = f"(?:[0-9]+|{_KNUM})"
COUNTERS = "条項号章節編款目"
_REF = re.compile(
    # (first a look-ahead for the characters a reference starts with: at any other character
    # the search moves on after one test instead of trying every alternative, 40 % faster)
    "(?=[明大昭平令mtshr第0-9〇零一二三四五六七八九十百千万])(?:"
    # an era year: 令和5年度, 令和五年, 平成元年, r5年, h31.4.1, r5 (a word of its own)
    f"(?P<era>明治|大正|昭和|平成|令和) ?(?P<en>[0-9]+|{_KNUM}|元) ?年(?P<ed>度)?"
    "|(?<![0-9a-z])(?P<el>[mtshr])(?P<ln>[0-9]{1,2})"
    "(?:(?P<ly> ?年(?P<ld>度)?)|(?=[./][0-9])|(?![0-9a-z.]))"
    # 第160条, 第百六十条 (and 160条, 百六十条 ...)
    f"|(?P<dai>第) ?(?P<dn>{_NUM}) ?(?P<dc>[{COUNTERS}])"
    f"|(?<![0-9])(?P<n>{_NUM})(?P<c>[{COUNTERS}]|年度|年|月|日)"
    ")"
)


_DATE_AFTER = re.compile("[./][0-9]")


def kanji_number(s: str) -> int | None:
    """The value of an ASCII or kanji numeral (二百四十八, 二四八, 二〇二三, 元), else None."""
    if s.isascii():
        return int(s) if s.isdigit() else None
    if s == "元":
        return 1
    if not any(c in _KUNITS or c == "万" for c in s):
        return int("".join(str(_KDIGITS[c]) for c in s)) if all(c in _KDIGITS for c in s) else None
    total = section = 0
    digit: int | None = None
    for c in s:
        if c in _KDIGITS:
            if digit is not None:
                return None  # 二三百: not a numeral
            digit = _KDIGITS[c]
        elif c in _KUNITS:
            section += (1 if digit is None else digit) * _KUNITS[c]
            digit = None
        else:  # 万
            total += (section + (digit or 0) or 1) * 10000
            section, digit = 0, None
    return total + section + (digit or 0)


def _plain_number_ok(s: str) -> bool:
    """A numeral read without 第 or an era before it: ASCII digits, or two kanji or more that
    start with a digit or 十百千 (一 in 同一条件 or 五日 alone stays text)."""
    return s.isascii() or (len(s) >= 2 and s[0] != "万")


def _refs(m: re.Match[str]) -> list[str]:
    g = m.groupdict()
    if g["era"] or g["el"]:
        era = g["era"] or ERA_LETTERS[g["el"]]
        n = kanji_number(g["en"] or g["ln"])
        if n is None or not 1 <= n <= _ERA_LAST[era]:
            return []
        if (
            g["el"]
            and g["el"] in "mts"
            and not g["ly"]
            and not _DATE_AFTER.match(m.string, m.end())
        ):
            return []  # s3, t2, m1 alone are not years (only r and h are read alone)
        year = ERAS[era] + n
        fy = bool(g["ed"] or g["ld"])
        out = [f"{year}年", f"{year}年度"] if fy else [f"{year}年"]
        if g["era"] or g["ly"]:  # the era's own count too: 5年 is in 令和5年度, R5年度
            out += [f"{n}年", f"{n}年度"] if fy else [f"{n}年"]
        return out
    if g["dai"]:
        n = kanji_number(g["dn"])
        return [] if n is None else [f"第{n}{g['dc']}", f"{n}{g['dc']}"]
    if not _plain_number_ok(g["n"]):
        return []
    n = kanji_number(g["n"])
    if n is None:
        return []
    c = g["c"]
    if c == "年度":
        return [f"{n}年", f"{n}年度"]
    return [f"{n}{c}"]


def numbered_tokens(normalized: str) -> list[str]:
    """Reference tokens of already-normalized text (soft breaks joined), in text order."""
    out: list[str] = []
    for m in _REF.finditer(normalized):
        out += _refs(m)
    return out


def reference_token(term: str) -> str | None:
    """The one reference token a whole query term stands for (``第160条``, ``令和5年度`` →
    ``2023年度``, ``R5`` → ``2023年``), or None: the term is matched as text. A kanji numeral
    with neither 第 nor an era before it stays text, so a term keeps matching wherever its
    characters occur (二十条 inside 第百二十条)."""
    t = join_soft_breaks(normalize(term)).strip()
    m = _REF.fullmatch(t)
    if m is None:
        return None
    g = m.groupdict()
    if g["n"] is not None and not g["n"].isascii():
        return None
    refs = _refs(m)
    if not refs:
        return None
    if g["dai"]:
        return refs[0]
    if g["era"] or g["el"]:
        return refs[1] if len(refs) > 1 and refs[1].endswith("年度") else refs[0]
    return refs[-1]
