"""PDF text: the best of pypdf, poppler's pdftotext and pdfminer.six, with the values filled
into form fields (part of :mod:`search.extract`; runs in the bounded child).

pypdf first; when it yields no text, mojibake (CJK fonts without a usable ToUnicode map),
replacement characters or CJK text in fragments (one character per line: vertical text, glyphs
drawn out of reading order), or asks for a password, ``pdftotext`` and then pdfminer are tried
and the best text wins (:class:`TextScore`). ``extractor`` records which one produced the text
and, when they were compared, ``reason`` why. Values filled into form fields (AcroForm) are
added to the text.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genpon.search.extract_text import Extraction, text_result

# characters that are not mojibake: mojibake from broken CJK fonts is mostly Greek, Coptic,
# Indic, Tibetan and private-use code points mixed together
_GOOD = re.compile(
    "["
    "\x00-\u024f"  # ASCII, Latin-1, Latin extended
    "\u2000-\u206f"  # punctuation
    "\u3000-\u30ff"  # CJK punctuation, kana
    "\u3400-\u9fff"  # ideographs
    "\ufe30-\ufe4f"  # vertical forms
    "\uff00-\uffef"  # full/half width
    "\u2460-\u27bf"  # enclosed numbers, shapes
    "]+"
)
_SPACE = re.compile(r"\s+")


CJK_HEAVY = 0.3  # share of CJK among the good characters from which layout is judged
MIN_CJK_RUN = 1.5  # mean CJK run below this: the text is broken into single characters
MIN_PER_LINE = 2.0  # mean characters per line below this: one character per line
MAX_REPLACEMENT = 0.01  # share of U+FFFD (characters the extractor could not map)


@dataclass(frozen=True)
class TextScore:
    """What a PDF text candidate looks like: mojibake, replacement characters, how long its
    lines and its CJK runs are (a CJK text split into one character per line is unsearchable
    even when every character is right)."""

    chars: int  # non-space characters
    good: int  # ... that are not mojibake (_GOOD)
    replacement: int  # U+FFFD
    cjk: int  # CJK characters (analyzer.char_class)
    lines: int  # non-empty lines
    cjk_runs: int  # maximal runs of CJK characters inside a line

    @property
    def share(self) -> float:
        return self.good / self.chars if self.chars else 0.0

    @property
    def per_line(self) -> float:
        return self.chars / self.lines if self.lines else 0.0

    @property
    def cjk_run(self) -> float:
        return self.cjk / self.cjk_runs if self.cjk_runs else 0.0

    @property
    def cjk_heavy(self) -> bool:
        return self.good > 0 and self.cjk >= CJK_HEAVY * self.good

    @property
    def fragmented(self) -> bool:
        """CJK text cut into pieces of one or two characters, or one character per line."""
        return self.cjk_heavy and (self.cjk_run < MIN_CJK_RUN or self.per_line < MIN_PER_LINE)

    @property
    def usable(self) -> bool:
        return self.good > 0 and self.share >= 0.5

    @property
    def fine(self) -> bool:
        """Good enough that no other extractor needs to be tried."""
        return (
            self.usable
            and self.share >= 0.9
            and self.replacement <= MAX_REPLACEMENT * self.chars
            and not self.fragmented
        )

    @property
    def value(self) -> float:
        """The characters worth indexing: good ones minus unmapped ones, and for CJK text in
        fragments only in proportion to how far its runs and lines fall short."""
        v = float(self.good - 2 * self.replacement)
        if self.cjk_heavy:
            v *= min(1.0, self.cjk_run / MIN_CJK_RUN, self.per_line / MIN_PER_LINE)
        return v

    def describe(self) -> str:
        if not self.chars:
            return "no text"
        out = f"{self.per_line:.1f} chars/line"
        if self.cjk:
            out += f", CJK runs {self.cjk_run:.1f}"
        if self.chars and self.share < 0.999:
            out += f", {1 - self.share:.0%} mojibake"
        if self.replacement:
            out += f", {self.replacement} unmapped"
        return out


SCORE_CHARS = 2_000_000  # a candidate is judged by its first this many characters


def score_text(text: str | None) -> TextScore:
    """:class:`TextScore` of an extractor's output (of its first ``SCORE_CHARS`` characters:
    the cost stays bounded on huge files, and the head shows how the extractor fared)."""
    from genpon.search.analyzer import CJK_RUN

    text = (text or "")[:SCORE_CHARS]
    solid = _SPACE.sub("", text)
    cjk_runs = CJK_RUN.findall(text)  # (a run ends at any space or other character)
    return TextScore(
        chars=len(solid),
        good=len(solid) - len(_GOOD.sub("", solid)),
        replacement=solid.count("\ufffd"),
        cjk=sum(map(len, cjk_runs)),
        lines=sum(1 for line in text.splitlines() if line.strip()),
        cjk_runs=len(cjk_runs),
    )


def _pdf_pypdf(path: Path) -> tuple[str | None, str | None, list[str]]:
    """(page text, why it failed, form field values): the text is None when pypdf could not
    read the file; the form values are read before the pages, so a page that breaks pypdf
    does not lose them."""
    import pypdf

    form: list[str] = []
    try:
        reader = pypdf.PdfReader(str(path))
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")
            except Exception as exc:
                return None, f"encrypted: {type(exc).__name__}", form
            if not ok:
                return None, "encrypted: password required", form
        form = form_values(reader)
        parts = []
        for page in reader.pages:
            parts.append(page.extract_text() or "")
        return "\n".join(parts), None, form
    except Exception as exc:
        return None, f"pypdf: {type(exc).__name__}: {str(exc)[:200]}", form


def form_values(reader: Any) -> list[str]:
    """The values filled into the text and choice fields of an open pypdf reader's AcroForm,
    in field order, each once."""
    try:
        fields = reader.get_fields() or {}
    except Exception:  # a broken form must not cost the page text
        return []
    from pypdf.generic import NameObject

    out: list[str] = []
    for field in fields.values():
        if not hasattr(field, "get") or field.get("/FT") not in ("/Tx", "/Ch"):
            continue  # buttons hold states, signatures hold signature dictionaries
        value = field.get("/V")
        for v in value if isinstance(value, list) else [value]:
            if not isinstance(v, str) or isinstance(v, NameObject):
                continue
            text = v.strip()
            if text and text not in out:
                out.append(text)
    return out


def _with_form_values(text: str | None, values: list[str]) -> str | None:
    """``text`` followed by the form values it does not show already (an extractor that draws
    the fields' appearances, such as pdftotext, often has them)."""
    missing = [v for v in values if not text or v not in text]
    if not missing:
        return text
    return ((text or "").rstrip() + "\n\n" if text and text.strip() else "") + "\n".join(missing)


def _pdf_pdftotext(path: Path, timeout: float) -> tuple[str | None, str | None]:
    exe = shutil.which("pdftotext")
    if exe is None:
        return None, "pdftotext not installed"
    try:
        r = subprocess.run(
            [exe, "-q", "-enc", "UTF-8", str(path), "-"],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, "pdftotext: timeout"
    if r.returncode != 0:
        return None, f"pdftotext: exit {r.returncode}"
    return r.stdout.decode("utf-8", errors="replace"), None


def _pdf_pdfminer(path: Path) -> tuple[str | None, str | None]:
    try:
        from pdfminer.high_level import extract_text

        return extract_text(str(path)), None
    except Exception as exc:
        return None, f"pdfminer: {type(exc).__name__}: {str(exc)[:200]}"


def pdf_text(path: Path, timeout: float = 30) -> Extraction:
    """The best text of three extractors (see :class:`TextScore`), with the form field values.

    pypdf is tried first and kept when its text is :attr:`TextScore.fine`; otherwise pdftotext
    and then pdfminer are tried (also when pypdf asks for a password: poppler reads files whose
    encryption covers only embedded files) and the candidate with the highest
    :attr:`TextScore.value` wins, a later one only when it is clearly (``CLEARLY``) better.
    When candidates were compared, ``reason`` says how each looked."""
    text, failure, form = _pdf_pypdf(path)
    failures = [failure] if failure else []
    tried: list[tuple[str, str, TextScore]] = []
    if text is not None:
        tried.append(("pypdf", text, score_text(text)))
    best = tried[0] if tried and tried[0][2].usable else None
    if best is None or not best[2].fine:
        for name, fn in (
            ("pdftotext", lambda: _pdf_pdftotext(path, timeout)),
            ("pdfminer", lambda: _pdf_pdfminer(path)),
        ):
            t, why = fn()
            if why or t is None:
                failures.append(why or f"{name}: no text")
                continue
            score = score_text(t)
            tried.append((name, t, score))
            if score.usable and (best is None or score.value > CLEARLY * best[2].value):
                best = (name, t, score)
            if best is not None and best[0] == name and score.fine:
                break
    if best is None:  # nothing usable: pypdf's text (empty, or mojibake) as before
        best = tried[0] if tried and tried[0][0] == "pypdf" else None
    if best is None:
        if form:
            return text_result(_with_form_values(None, form), "pypdf")
        who = "pypdf" if failure and failure.startswith("encrypted") else None
        return Extraction(None, "failed", "; ".join(failures)[:500] or "no text", who)
    result = text_result(_with_form_values(best[1], form), best[0])
    if result.status == "ok" and len(tried) + len(failures) > 1:
        result.reason = _choice_reason(best[0], tried, failures)
    return result


CLEARLY = 1.1  # a later extractor replaces an earlier one only when worth this much more


def _choice_reason(
    winner: str, tried: list[tuple[str, str, TextScore]], failures: list[str]
) -> str:
    """Why ``winner``'s text was kept: how every candidate looked, and what failed."""
    parts = [f"{name}: {score.describe()}" for name, _, score in tried]
    return (f"{winner} chosen; " + "; ".join(parts + failures))[:500]
