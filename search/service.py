"""Search service: parse the query, ask the backend with the caller's permissions inside the
query, and shape hits (one per content, the original when the caller may read it).

Query language (after NFKC): whitespace-separated terms, all required (AND); ``"..."`` a phrase
(separators inside count as run boundaries); ``-term`` or ``-"..."`` excludes. Each term matches
as a phrase of the analyzer's tokens in the body, title, file name or case (ID, title, folder).
A term that is a whole reference (``第160条``, ``令和5年度``, ``R5``, ``2023年``) matches its
reference token instead (:func:`genpon.search.analyzer.reference_token`), so 第百六十条 and
令和五年度 are found; in ``mode="any"`` the reference tokens found anywhere in the question
are added to its tokens.
``mode="any"`` treats the text as a natural-language question: any of its tokens, ranked by BM25.

Each content is one hit: the first placement the caller may read (the original first, then
copies by id) that matches the filters, so a copy filed in case B is found by a case B filter
even where the original in case A is readable too. Date filters test that same placement.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Literal

from genpon.core.clock import fiscal_year_of
from genpon.core.errors import InvalidInput
from genpon.records.access import Actor, can_read_folder
from genpon.records.folders import folder_path
from genpon.records.models import FOLDER_KINDS, BlobText, Case, Document, Folder
from genpon.search.analyzer import (
    CJK,
    is_single_char,
    join_soft_breaks,
    normalize,
    numbered_tokens,
    query_tokens,
    reference_token,
    runs,
    soft_breaks,
)
from genpon.search.backends import make_backend
from genpon.search.backends.base import SearchQuery, Term
from genpon.search.indexer import text_of
from genpon.search.text_status import pending_index
from genpon.search.wareki import fiscal_year_label
from sqlmodel import Session, col, select

if TYPE_CHECKING:
    from genpon.storage.context import AppContext

MAX_QUERY_CHARS = 500
MAX_TERMS = 24
MAX_PER_PAGE = 100
MAX_OFFSET = 10_000
SNIPPET_CHARS = 160

_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "〝": '"', "〟": '"'})
_TERM = re.compile(r'(-?)"([^"]*)"|(\S+)')


@dataclass
class SearchFilters:
    case_id: str | None = None
    organization: str | None = None  # organization code
    doc_class: str | None = None  # document class code
    folder_kind: str | None = None  # case | team | shared
    status: str | None = None  # official | working
    fiscal_year: int | None = None  # 年度
    date_from: date | None = None
    date_to: date | None = None

    def validate(self) -> None:
        if self.folder_kind is not None and self.folder_kind not in FOLDER_KINDS:
            raise InvalidInput(
                "invalid_filter",
                f"folder_kind は {', '.join(FOLDER_KINDS)} のいずれかです。",
                {"filter": "folder_kind"},
            )
        if self.status is not None and self.status not in ("official", "working"):
            raise InvalidInput(
                "invalid_filter", "status は official か working です。", {"filter": "status"}
            )
        if self.fiscal_year is not None and not 1900 <= self.fiscal_year <= 2200:
            raise InvalidInput(
                "invalid_filter", "fiscal_year（年度）が範囲外です。", {"filter": "fiscal_year"}
            )
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise InvalidInput(
                "invalid_filter",
                "date_from は date_to 以前の日付にしてください。",
                {"filter": "date_from"},
            )
        for name in ("case_id", "organization", "doc_class"):
            v = getattr(self, name)
            if v is not None and (not v.strip() or len(v) > 64):
                raise InvalidInput("invalid_filter", f"{name} が不正です。", {"filter": name})

    def backend_filters(self) -> dict[str, str | int]:
        out: dict[str, str | int] = {}
        for name in (
            "case_id",
            "organization",
            "doc_class",
            "folder_kind",
            "status",
            "fiscal_year",
        ):
            v = getattr(self, name)
            if v is not None:
                out[name] = v
        return out


@dataclass
class SearchHit:
    document_id: int
    title: str
    filename: str
    snippet_html: str  # escaped text with <mark> highlights
    case_id: str | None
    folder_id: int
    folder_path: str
    is_original: bool
    copies_count: int
    status: str
    score: float
    sha256: str = ""
    doc_date: date | None = None
    mime_type: str = ""
    copy_locations: list[dict[str, object]] = field(default_factory=list)  # readable others
    fiscal_year: int | None = None  # 年度: the case's, else that of the document's date
    fiscal_year_label: str = ""  # 令和8年度 (2026)


@dataclass
class SearchResult:
    total: int
    hits: list[SearchHit]
    facets: dict[str, list[tuple[str, int]]]
    page: int = 1
    per_page: int = 20
    pending_index: int = 0  # the caller's readable deposits still waiting to be indexed


@dataclass
class ParsedQuery:
    terms: list[Term]
    highlight: list[str]  # normalized strings to mark in snippets


def parse_query(q: str, mode: str = "all") -> ParsedQuery:
    """Terms of ``q``; raises InvalidInput for an empty, over-long, unbalanced or
    punctuation-only query. In ``mode="any"`` (a question in natural language) quotes and a
    leading ``-`` are plain text: there are no phrases or exclusions to write."""
    raw = (q or "").translate(_QUOTES)
    raw = normalize(raw) if raw else raw
    if not raw.strip():
        raise InvalidInput("empty_query", "検索語を入力してください。")
    if len(q) > MAX_QUERY_CHARS:
        raise InvalidInput(
            "query_too_long",
            f"検索語は{MAX_QUERY_CHARS}文字以内にしてください。",
            {"max_chars": MAX_QUERY_CHARS},
        )
    question = mode == "any"
    if raw.count('"') % 2 and not question:
        raise InvalidInput("unbalanced_quotes", '引用符（"）の数が合いません。')
    terms: list[Term] = []
    highlight: list[str] = []
    for m in _TERM.finditer(raw) if not question else re.finditer(r"(\S+)", raw):
        if question:
            negated, text = False, m.group(1)
        elif m.group(3) is not None:
            text = m.group(3)
            negated = text.startswith("-") and len(text) > 1
            text = text[1:] if negated else text
        else:
            negated, text = m.group(1) == "-", m.group(2)
        ref = None if question else reference_token(text)
        toks = [ref] if ref else query_tokens(text)
        if not toks:
            continue
        terms.append(Term(tokens=toks, negated=negated, contains=is_single_char(toks)))
        if question and (refs := numbered_tokens(join_soft_breaks(text))):
            terms.append(Term(tokens=list(dict.fromkeys(refs))))
        if not negated:
            highlight += [
                r.text
                for r in runs(join_soft_breaks(text))
                if len(r.text) > 1 or is_single_char(toks) or r.kind != CJK
            ]
    if not terms:
        raise InvalidInput(
            "query_no_terms", "検索できる文字（漢字・かな・英数字）が含まれていません。"
        )
    if len(terms) > MAX_TERMS:
        raise InvalidInput("too_many_terms", f"検索語は{MAX_TERMS}語までです。")
    if all(t.negated for t in terms):
        raise InvalidInput("query_only_exclusions", "除外（-）だけでは検索できません。")
    return ParsedQuery(terms, highlight)


# --- snippets -------------------------------------------------------------------------------


def _normalized_with_map(text: str) -> tuple[str, Sequence[int]]:
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


def snippet(text: str | None, needles: list[str], width: int = SNIPPET_CHARS) -> str:
    """An escaped window of ``text`` around the first match, every match in ``<mark>``."""
    if not text:
        return ""
    text = text[:500_000]
    norm, idx = _normalized_with_map(text)
    needles = sorted({n for n in needles if n}, key=len, reverse=True)
    first = None
    for n in needles:
        p = norm.find(n)
        if p >= 0 and (first is None or p < first):
            first = p
    if first is None:
        window = (0, min(len(text), width))
    else:
        s = idx[max(0, first - width // 4)]
        window = (s, min(len(text), s + width))
    a, b = window
    spans: list[tuple[int, int]] = []
    if needles:
        lo = max(0, norm_index(idx, a))
        region = norm[lo : lo + width * 3]
        for n in needles:
            for m in re.finditer(re.escape(n), region):
                sa, sb = idx[lo + m.start()], idx[lo + m.end() - 1] + 1
                if sa >= a and sb <= b:
                    spans.append((sa, sb))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for sa, sb in spans:
        if merged and sa <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], sb))
        else:
            merged.append((sa, sb))
    out: list[str] = ["…"] if a > 0 else []
    pos = a
    for sa, sb in merged:
        out.append(html.escape(text[pos:sa]))
        out.append("<mark>" + html.escape(text[sa:sb]) + "</mark>")
        pos = sb
    out.append(html.escape(text[pos:b]))
    if b < len(text):
        out.append("…")
    return re.sub(r"\s+", " ", "".join(out)).strip()


def norm_index(idx: Sequence[int], orig: int) -> int:
    """First position in the normalized text that comes from original position ``orig``."""
    import bisect

    return bisect.bisect_left(idx, orig)


# --- the service ------------------------------------------------------------------------------


def search_documents(
    ctx: AppContext,
    session: Session,
    actor: Actor,
    q: str,
    *,
    filters: SearchFilters | None = None,
    page: int = 1,
    per_page: int = 20,
    sort: Literal["relevance", "date"] = "relevance",
    mode: Literal["all", "any"] = "all",
    facets: bool = True,
) -> SearchResult:
    """Documents matching ``q`` that ``actor`` may read: one hit per content."""
    parsed = parse_query(q, mode)
    filters = filters or SearchFilters()
    filters.validate()
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise InvalidInput("invalid_paging", f"page は1以上、per_page は1〜{MAX_PER_PAGE}です。")
    offset = (page - 1) * per_page
    if offset > MAX_OFFSET:
        raise InvalidInput("invalid_paging", f"{MAX_OFFSET}件目より後は表示できません。")
    if sort not in ("relevance", "date"):
        raise InvalidInput("invalid_sort", "sort は relevance か date です。")
    if mode not in ("all", "any"):
        raise InvalidInput("invalid_mode", "mode は all か any です。")
    backend = make_backend(ctx)
    res = backend.search(
        session,
        SearchQuery(
            terms=parsed.terms,
            mode=mode,
            acl=actor.acl_tokens(),
            filters=filters.backend_filters(),
            date_from=filters.date_from,
            date_to=filters.date_to,
            sort=sort,
            offset=offset,
            limit=per_page,
            facets=facets,
        ),
    )
    placements = _prefetch(session, [doc_id for doc_id, _ in res.hits])
    hits = [
        h
        for h in (
            _hit(session, actor, doc_id, score, parsed, placements) for doc_id, score in res.hits
        )
        if h
    ]
    return SearchResult(
        total=res.total,
        hits=hits,
        facets=res.facets,
        page=page,
        per_page=per_page,
        pending_index=pending_index(session, actor),
    )


def _readable(
    session: Session, actor: Actor, doc: Document
) -> tuple[bool, Folder | None, Case | None]:
    folder = session.get(Folder, doc.folder_id)
    if folder is None:
        return False, None, None
    case = session.get(Case, folder.case_pk) if folder.case_pk else None
    return can_read_folder(actor, folder, case), folder, case


def _prefetch(session: Session, ids: list[int]) -> dict[str, list[Document]]:
    """Load what the hits show in a few queries, not a few per hit: the documents, every live
    placement of their contents (returned by content, in id order), their folders and cases
    and the extracted texts. The per-hit code then finds them in the session's identity map."""
    if not ids:
        return {}
    docs = session.exec(select(Document).where(col(Document.id).in_(ids))).all()
    shas = sorted({d.sha256 for d in docs})
    live = session.exec(
        select(Document)
        .where(col(Document.sha256).in_(shas), Document.state == "live")
        .order_by(col(Document.id))
    ).all()
    placements: dict[str, list[Document]] = {}
    for d in live:
        placements.setdefault(d.sha256, []).append(d)
    folder_ids = sorted({d.folder_id for d in (*docs, *live)})
    folders = session.exec(select(Folder).where(col(Folder.id).in_(folder_ids))).all()
    case_pks = sorted({f.case_pk for f in folders if f.case_pk})
    if case_pks:
        session.exec(select(Case).where(col(Case.id).in_(case_pks))).all()
    session.exec(select(BlobText).where(col(BlobText.sha256).in_(shas))).all()
    return placements


def _hit(
    session: Session,
    actor: Actor,
    doc_id: int,
    score: float,
    parsed: ParsedQuery,
    placements: dict[str, list[Document]],
) -> SearchHit | None:
    doc = session.get(Document, doc_id)
    if doc is None or doc.state != "live":
        return None  # the index lags behind a destruction; the outbox will remove it
    ok, folder, case = _readable(session, actor, doc)
    if not ok or folder is None:
        return None  # defence in depth: the query already filtered by permission
    others = [o for o in placements.get(doc.sha256, []) if o.id != doc.id]
    locations: list[dict[str, object]] = []
    for o in others:
        o_ok, o_folder, _ = _readable(session, actor, o)
        if o_ok and o_folder is not None:
            locations.append(
                {
                    "document_id": o.id,
                    "folder_id": o.folder_id,
                    "folder_path": folder_path(session, o_folder),
                    "is_original": o.original_id is None,
                }
            )
    fy = case.fiscal_year if case else (fiscal_year_of(doc.doc_date) if doc.doc_date else None)
    return SearchHit(
        document_id=doc.id or 0,
        title=doc.title,
        filename=doc.filename,
        snippet_html=snippet(text_of(session, doc.sha256), parsed.highlight),
        case_id=case.case_id if case else None,
        folder_id=folder.id or 0,
        folder_path=folder_path(session, folder),
        is_original=doc.original_id is None,
        copies_count=len(others),
        status=doc.status,
        score=score,
        sha256=doc.sha256,
        doc_date=doc.doc_date,
        mime_type=doc.mime_type,
        copy_locations=locations,
        fiscal_year=fy,
        fiscal_year_label=fiscal_year_label(fy),
    )
