"""CLI of the search domain: ``genpon search QUERY…``, ``genpon search reindex``,
``genpon reindex`` and ``genpon search drain``."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated

import typer
from genpon.api.cli.common import ctx, fail, out, unit

if TYPE_CHECKING:
    from genpon.search.service import SearchResult


def _date(raw: str | None, name: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        fail(f"{name} は YYYY-MM-DD で指定してください。 [invalid_field]")
    return None


def _reindex(fresh: bool) -> None:
    from genpon.search.indexer import count_live_hashes, drain, rebuild
    from tqdm import tqdm

    c = ctx()
    total = count_live_hashes(c)
    with tqdm(total=total, unit="件", desc="索引再構築", disable=None) as bar:

        def advance(done: int) -> None:
            bar.update(done)

        n = rebuild(c, fresh=fresh, progress=advance)
    drained = drain(c)
    out(
        {"indexed": n, "outbox_applied": drained, "backend": c.settings.search_backend},
        f"索引を再構築しました: {n} 件 ({c.settings.search_backend})",
    )


def search_cmd(
    query: Annotated[list[str], typer.Argument(help="検索語（reindex / drain は操作）")],
    case_id: Annotated[str | None, typer.Option("--case")] = None,
    org: Annotated[str | None, typer.Option("--org")] = None,
    cls: Annotated[str | None, typer.Option("--class")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="case | team | shared")] = None,
    status: Annotated[str | None, typer.Option("--status", help="official | working")] = None,
    fiscal_year: Annotated[int | None, typer.Option("--fy", help="年度")] = None,
    date_from: Annotated[str | None, typer.Option("--from")] = None,
    date_to: Annotated[str | None, typer.Option("--to")] = None,
    sort: Annotated[str, typer.Option(help="relevance | date")] = "relevance",
    mode: Annotated[str, typer.Option(help="all | any")] = "all",
    page: int = 1,
    per_page: Annotated[int, typer.Option("--per-page")] = 20,
    fresh: Annotated[bool, typer.Option(help="reindex: 最初から作り直す")] = False,
) -> None:
    """全文検索する。`genpon search reindex` で索引を再構築、`genpon search drain` で未反映分を反映。"""
    if query == ["reindex"]:
        _reindex(fresh)
        return
    if query == ["drain"]:
        from genpon.search.indexer import drain

        n = drain(ctx())
        out({"applied": n}, f"索引に反映しました: {n} 件")
        return
    from genpon.search.indexer import drain
    from genpon.search.service import SearchFilters, search_documents

    try:  # no server may be running: apply pending index work first
        drain(ctx())
    except Exception as exc:  # another process holds the index writer: search what is there
        typer.echo(f"genpon: 索引の反映を後回しにしました ({type(exc).__name__})", err=True)

    filters = SearchFilters(
        case_id=case_id,
        organization=org,
        doc_class=cls,
        folder_kind=kind,
        status=status,
        fiscal_year=fiscal_year,
        date_from=_date(date_from, "--from"),
        date_to=_date(date_to, "--to"),
    )
    with unit() as (s, actor):
        r = search_documents(
            ctx(),
            s,
            actor,
            " ".join(query),
            filters=filters,
            page=page,
            per_page=per_page,
            sort=sort,  # type: ignore[arg-type]
            mode=mode,  # type: ignore[arg-type]
        )
    _show(r)


def _show(r: SearchResult) -> None:
    """One line per hit (tab-separated), or the whole result as JSON."""
    import re
    from dataclasses import asdict

    data = {
        "total": r.total,
        "hits": [{**asdict(h), "doc_date": str(h.doc_date)} for h in r.hits],
        "facets": r.facets,
    }
    lines = [f"{r.total} 件"]
    for h in r.hits:
        snippet = re.sub(r"</?mark>", "", h.snippet_html)[:80]
        if h.is_original:
            kind_ = "原本" + (f" 写し{h.copies_count}" if h.copies_count else "")
        else:  # the others include the original
            kind_ = "写し" + (f" 他{h.copies_count}件" if h.copies_count else "")
        lines.append(
            f"{h.document_id}\t{h.title}\t{kind_}\t{h.case_id or '-'}\t{h.folder_path}\t{snippet}"
        )
    out(data, "\n".join(lines))


def reindex_cmd(
    fresh: Annotated[bool, typer.Option(help="中断した再構築を続けず最初から作り直す")] = False,
) -> None:
    """検索索引をデータベースから再構築する（中断しても続きから再開できる）。"""
    _reindex(fresh)


def register(app: typer.Typer) -> None:
    app.command("search")(search_cmd)
    app.command("reindex")(reindex_cmd)
