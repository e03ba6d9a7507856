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

import re
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Literal

from genpon.core.clock import fiscal_year_of
from genpon.core.errors import InvalidInput
from genpon.records.access import Actor, can_read_folder
from genpon.records.folders import folder_path
from genpon.records.models import FOLDER_KINDS, Case, Document, Folder
from genpon.search.analyzer import (
    CJK,
    is_single_char,
    join_soft_breaks,
    normalize,
    numbered_tokens,
    query_tokens,
    reference_token,
    runs,
)
from genpon.search.backends import make_backend
from genpon.search.backends.base import SearchQuery, Term
from genpon.search.snippets import snippet as snippet  # (re-exported)
from genpon.search.snippets import stored_snippets
from genpon.search.text_status import pending_index
from genpon.search.wareki import fiscal_year_label
from sqlmodel import Session, col, select

if TYPE_CHECKING:
    from genpon.storage.context import AppContext

MAX_QUERY_CHARS = 500
MAX_TERMS = 24
MAX_PER_PAGE = 100
MAX_OFFSET = 10_000

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
    copies, _held = _prefetch(session, [doc_id for doc_id, _ in res.hits])
    shas = list(dict.fromkeys(sha for sha in copies))
    snippets = hit_snippets(session, shas, parsed.highlight)
    hits = [
        h
        for h in (
            _hit(session, actor, doc_id, score, copies, snippets) for doc_id, score in res.hits
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


def hit_snippets(session: Session, shas: list[str], needles: list[str]) -> dict[str, str]:
    """The snippets of a page of hits: the stored chunks around the first match, read
    together (the benchmark swaps in the former whole-text cut to compare)."""
    return stored_snippets(session, shas, needles)


def _prefetch(
    session: Session, doc_ids: list[int]
) -> tuple[dict[str, list[Document]], list[object]]:
    """Load a page's documents, their live placements, folders and cases in four queries (the
    hits then find them in the session); returns the live placements by content hash, and
    everything loaded (held while the hits are built: the session keeps only weak ones)."""
    docs = session.exec(select(Document).where(col(Document.id).in_(doc_ids))).all()
    shas = {d.sha256 for d in docs if d.state == "live"}
    placed = session.exec(
        select(Document)
        .where(col(Document.sha256).in_(shas), Document.state == "live")
        .order_by(col(Document.id))
    ).all()
    out: dict[str, list[Document]] = {}
    for d in placed:
        out.setdefault(d.sha256, []).append(d)
    folder_ids = {d.folder_id for d in placed}
    folders = session.exec(select(Folder).where(col(Folder.id).in_(folder_ids))).all()
    case_pks = {f.case_pk for f in folders if f.case_pk}
    cases = session.exec(select(Case).where(col(Case.id).in_(case_pks))).all() if case_pks else []
    return out, [*docs, *placed, *folders, *cases]


def _readable(
    session: Session, actor: Actor, doc: Document
) -> tuple[bool, Folder | None, Case | None]:
    folder = session.get(Folder, doc.folder_id)
    if folder is None:
        return False, None, None
    case = session.get(Case, folder.case_pk) if folder.case_pk else None
    return can_read_folder(actor, folder, case), folder, case


def _hit(
    session: Session,
    actor: Actor,
    doc_id: int,
    score: float,
    copies: dict[str, list[Document]],
    snippets: dict[str, str],
) -> SearchHit | None:
    doc = session.get(Document, doc_id)
    if doc is None or doc.state != "live":
        return None  # the index lags behind a destruction; the outbox will remove it
    ok, folder, case = _readable(session, actor, doc)
    if not ok or folder is None:
        return None  # defence in depth: the query already filtered by permission
    others = [o for o in copies.get(doc.sha256, []) if o.id != doc.id]
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
        snippet_html=snippets.get(doc.sha256, ""),
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
