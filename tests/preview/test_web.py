"""The viewer on the web pages: page images with navigation, text with the search terms marked
(escaped, never raw HTML), thumbnails in search results and folder lists."""

from __future__ import annotations

import re
from typing import Any

from genpon.search.indexer import drain

from tests.preview import files
from tests.preview.test_api import put, team  # noqa: F401  (fixtures)
from tests.web.helpers import HTML, sign_in


def test_pdf_document_page_shows_page_images(client: Any, demo: Any, put: Any) -> None:  # noqa: F811
    doc = put(files.pdf(3), "三ページの資料.pdf", "application/pdf")
    sign_in(client, "tanaka")
    html = client.get(f"/documents/{doc}", headers=HTML).text
    assert 'data-testid="viewer" data-kind="pdf"' in html
    src = re.search(r'<img src="([^"]+)" alt="1 ページ目（全 3 ページ）"', html)
    assert src and src.group(1) == f"/api/v1/documents/{doc}/pages/1.png?width=800"
    # the signed-in person's cookie opens the page image (same rule as the API key)
    r = client.get(src.group(1))
    assert r.status_code == 200 and r.content.startswith(b"\x89PNG")
    html = client.get(f"/documents/{doc}?page=3", headers=HTML).text
    assert f"/api/v1/documents/{doc}/pages/3.png" in html
    assert 'data-testid="page-next" aria-disabled="true"' in html
    html = client.get(f"/documents/{doc}?page=99", headers=HTML).text  # clamped to the last
    assert f"/api/v1/documents/{doc}/pages/3.png" in html


def test_text_is_escaped_and_search_terms_marked(
    client: Any,
    demo: Any,
    put: Any,  # noqa: F811
    ctx: Any,
) -> None:
    body = "令和8年度 市道の道路補修工事。\n<img src=x onerror=alert('x')> &amp; ドウロ 道路 ＲＯＡＤ\n"
    doc = put(body.encode(), "補修.txt", "text/plain")
    sign_in(client, "tanaka")
    html = client.get(f"/documents/{doc}", headers=HTML).text
    assert 'data-testid="viewer-status"' in html and "本文をまだ取り出していません" in html
    drain(ctx)
    html = client.get(f"/documents/{doc}?q=道路+ドウロ", headers=HTML).text
    text = re.search(r'<pre class="doctext"[^>]*>(.*?)</pre>', html, re.S)
    assert text, html
    shown = text.group(1)
    assert (
        "<img" not in shown and "&lt;img src=x onerror=alert(&#x27;x&#x27;)&gt; &amp;amp;" in shown
    )
    assert shown.count("<mark>道路</mark>") == 2
    assert "<mark>ドウロ</mark>" in shown
    html = client.get(f"/documents/{doc}?q=road", headers=HTML).text
    assert "<mark>ＲＯＡＤ</mark>" in html  # full-width letters match as search does
    # a query that is not a query marks nothing and breaks nothing
    html = client.get(f"/documents/{doc}?q=%22", headers=HTML)
    assert html.status_code == 200 and "<mark>" not in html.text


def test_bad_content_shows_a_status_not_an_error(client: Any, demo: Any, put: Any) -> None:  # noqa: F811
    doc = put(files.encrypted_pdf(), "秘密.pdf", "application/pdf")
    sign_in(client, "tanaka")
    r = client.get(f"/documents/{doc}", headers=HTML)
    assert r.status_code == 200
    assert 'data-code="pdf_encrypted"' in r.text and "パスワードで保護された" in r.text
    assert "/pages/1.png" not in r.text
    assert 'data-testid="download"' in r.text


def test_thumbnails_in_search_results_and_folder_lists(
    client: Any,
    demo: Any,
    put: Any,  # noqa: F811
    team: int,  # noqa: F811
    ctx: Any,
) -> None:
    pdf_doc = put(files.pdf(1), "道路台帳の写真.pdf", "application/pdf")
    text_doc = put("道路台帳の説明".encode(), "道路台帳.txt", "text/plain")
    drain(ctx)
    sign_in(client, "tanaka")
    thumb = '<img class="thumb" src="/api/v1/documents/{}/thumbnail.png" loading="lazy"'
    html = client.get(f"/folders/{team}", headers=HTML).text
    assert thumb.format(pdf_doc) in html
    assert f"/api/v1/documents/{text_doc}/thumbnail.png" not in html
    html = client.get("/?q=道路台帳", headers=HTML).text
    assert thumb.format(pdf_doc) in html
    assert f'href="/documents/{text_doc}"' in html  # app.js adds ?q= (terms marked there)
    r = client.get(f"/api/v1/documents/{pdf_doc}/thumbnail.png")
    assert r.status_code == 200 and r.content.startswith(b"\x89PNG")


def test_another_organization_sees_nothing(client: Any, demo: Any, put: Any) -> None:  # noqa: F811
    doc = put(files.pdf(1), "財政課の資料.pdf", "application/pdf")
    sign_in(client, "ito")
    assert client.get(f"/documents/{doc}", headers=HTML).status_code == 404
    for url in ("pages/1.png", "thumbnail.png", "preview"):
        assert client.get(f"/api/v1/documents/{doc}/{url}").status_code == 404
