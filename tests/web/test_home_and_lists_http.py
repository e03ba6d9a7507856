"""Start page (ホーム), sortable/paged/filtered case and folder lists, and bulk actions on a
folder's documents (copy, hold, proposal, ZIP with a manifest of hashes) over HTTP."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from datetime import UTC, date, datetime

from fastapi.testclient import TestClient
from genpon.core.clock import fiscal_year, utcnow
from genpon.records import cases, documents
from genpon.records.access import SYSTEM_ACTOR
from genpon.records.documents import ApprovalIn, DepositIn
from genpon.records.models import AuditEvent, Blob, BlobText, Document, TextStatus
from genpon.storage.context import AppContext
from sqlmodel import Session, col, select

from tests.web.helpers import HTML, folder_id, sign_in


def make_case(
    ctx: AppContext, title: str, class_code: str, opened_on: date, org: str = "SOUMU-ZAISEI"
) -> str:
    with Session(ctx.engine) as s:
        case, _ = cases.create_case(
            s,
            SYSTEM_ACTOR,
            title=title,
            organization_code=org,
            class_code=class_code,
            case_id_format=ctx.settings.case_id_format,
            timezone=ctx.settings.timezone,
            opened_on=opened_on,
        )
        s.commit()
        return case.case_id


def deposit(
    ctx: AppContext,
    text: str,
    filename: str,
    *,
    folder: int | None = None,
    case_id: str | None = None,
    approved_on: date | None = None,
) -> int:
    with Session(ctx.engine) as s:
        stager = ctx.store.stager(max_bytes=1 << 20)
        stager.write(text.encode())
        outcome = documents.deposit(
            s,
            ctx.store,
            SYSTEM_ACTOR,
            stager.finish(),
            DepositIn(
                filename=filename,
                folder_id=folder,
                case_id=case_id,
                approval=ApprovalIn(approved_on=approved_on, approvers=["課長"])
                if approved_on
                else None,
            ),
            allowed_types=ctx.settings.allowed_types,
            timezone=ctx.settings.timezone,
        )
        s.commit()
        return outcome.document.id or 0


def close(ctx: AppContext, case_id: str, when: datetime) -> None:
    with Session(ctx.engine) as s:
        cases.close_case(s, SYSTEM_ACTOR, case_id, timezone=ctx.settings.timezone, closed_at=when)
        s.commit()


def rows(html: str, testid: str) -> list[str]:
    return re.findall(rf'data-testid="{testid}">(.*?)</(?:li|tr)>', html, re.S)


# --- start page ----------------------------------------------------------------------------


def test_start_page_recent_documents_my_cases_and_saved_searches(
    client: TestClient, ctx: AppContext, demo: object
) -> None:
    old = make_case(ctx, "平成30年度 予算査定", "B0101", date(2018, 5, 1))
    close(ctx, old, datetime(2019, 3, 1, tzinfo=UTC))
    new = make_case(ctx, "令和8年度 予算要求", "B0101", date(2026, 4, 10))
    make_case(ctx, "道路の占用", "D0102", date(2026, 4, 10), org="KENSETSU-DOURO")
    token = sign_in(client, "tanaka")
    fid = folder_id(client.get("/folders", headers=HTML).text, "財政課チーム")
    first = client.post(
        f"/folders/{fid}/upload",
        data={"csrf": token, "title": "予算要求書"},
        files={"file": ("a.txt", "予算要求書 本文".encode(), "text/plain")},
        headers={"accept": "application/json"},
    ).json()["document_id"]
    other = deposit(ctx, "査定結果の通知", "査定結果.txt", case_id=new)
    assert client.get(f"/documents/{other}/download").status_code == 200  # a read

    page = client.get("/home", headers=HTML)
    assert page.status_code == 200
    nav = re.search(r"<nav aria-label=[^>]*>(.*?)</nav>", page.text, re.S)
    assert nav and re.findall(r'href="([^"]+)"', nav.group(1))[:2] == ["/home", "/"]
    recent = rows(page.text, "recent-doc")
    assert [f"/documents/{other}" in r for r in recent[:2]] == [True, False]
    assert f"/documents/{first}" in recent[1] and "登録" in recent[1] and "閲覧" in recent[0]
    mine = rows(page.text, "my-case")
    assert [("令和8年度" in r, "平成30年度" in r) for r in mine] == [(True, False), (False, True)]
    assert "道路の占用" not in page.text  # another organization's case is not "mine"
    assert 'data-testid="home-waits"' not in page.text  # staff: nothing waits for them

    # save a search from the search page's form, open it, delete it
    search = client.get("/?q=予算&status=official", headers=HTML)
    assert 'action="/home/searches"' in search.text
    forged = client.post("/home/searches", data={"csrf": "x", "name": "n", "q": "予算"})
    assert forged.status_code == 403
    r = client.post(
        "/home/searches",
        data={"csrf": token, "name": "決裁済の予算", "q": "予算", "status": "official", "x": "1"},
        headers=HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/home?msg=saved"
    page = client.get("/home?msg=saved", headers=HTML)
    assert "検索を保存しました。" in page.text
    saved = rows(page.text, "saved-search")
    assert len(saved) == 1 and 'href="/?q=%E4%BA%88%E7%AE%97&amp;status=official"' in saved[0]
    empty = client.post("/home/searches", data={"csrf": token, "name": "空", "q": " "})
    assert empty.status_code == 422
    saved_id = int(re.search(r"/home/searches/(\d+)/delete", page.text).group(1))  # type: ignore[union-attr]

    # another person neither sees nor deletes it
    client.cookies.clear()
    other_token = sign_in(client, "takahashi")
    assert "決裁済の予算" not in client.get("/home", headers=HTML).text
    r = client.post(f"/home/searches/{saved_id}/delete", data={"csrf": other_token})
    assert r.status_code == 404
    client.cookies.clear()
    token = sign_in(client, "tanaka")
    r = client.post(
        f"/home/searches/{saved_id}/delete", data={"csrf": token}, follow_redirects=False
    )
    assert r.status_code == 303
    assert 'data-testid="saved-search"' not in client.get("/home", headers=HTML).text


def test_start_page_shows_a_records_officer_what_waits(
    client: TestClient, ctx: AppContext, demo: object
) -> None:
    due = make_case(ctx, "平成31年度 出張命令", "A0202", date(2019, 5, 10), org="SOUMU-SOUMU")
    doc_id = deposit(
        ctx, "出張命令書 東京", "出張命令書.txt", case_id=due, approved_on=date(2019, 5, 12)
    )
    close(ctx, due, datetime(2019, 12, 20, 3, 0, tzinfo=UTC))
    broken = deposit(ctx, "壊れた内容", "broken.txt", folder=None, case_id=due)
    with Session(ctx.engine) as s:
        sha = s.get(Document, broken).sha256  # type: ignore[union-attr]
        blob = s.get(Blob, sha)
        assert blob is not None
        blob.fixity_ok = False
        text = s.get(BlobText, sha) or BlobText(sha256=sha)
        text.status = TextStatus.FAILED
        s.add(blob)
        s.add(text)
        s.commit()

    token = sign_in(client, "suzuki")
    page = client.get("/home", headers=HTML).text
    waits = re.search(r'data-testid="home-waits".*?</section>', page, re.S)
    assert waits
    assert re.search(r'data-testid="wait-due">.*?<strong>[1-9]\d*</strong>', waits.group(0), re.S)
    assert re.search(r'data-testid="wait-fixity">.*?<strong>1</strong>', waits.group(0), re.S)
    assert re.search(r'data-testid="wait-text">.*?<strong>1</strong>', waits.group(0), re.S)
    assert f'href="/documents/{broken}"' in waits.group(0)
    assert re.search(r'data-testid="wait-batches">.*?<strong>0</strong>', waits.group(0), re.S)
    # a batch suzuki proposed waits for sato (four eyes), not for suzuki
    fid = _case_folder(client, due)
    r = client.post(
        f"/folders/{fid}/bulk",
        data={
            "csrf": token,
            "do": "propose",
            "action": "destroy",
            "title": "出張命令の廃棄",
            "document_id": [str(doc_id)],
        },
        headers=HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/records/batches/")
    page = client.get("/home", headers=HTML).text
    assert re.search(r'data-testid="wait-batches">.*?<strong>0</strong>', page, re.S)
    client.cookies.clear()
    sign_in(client, "sato")
    page = client.get("/home", headers=HTML).text
    assert re.search(r'data-testid="wait-batches">.*?<strong>1</strong>', page, re.S)
    assert "出張命令の廃棄" in page


def _case_folder(client: TestClient, case_id: str) -> int:
    page = client.get(f"/cases/{case_id}", headers=HTML).text
    m = re.search(r'href="/folders/(\d+)"', page)
    assert m, "case page links its folder"
    return int(m.group(1))


# --- lists ---------------------------------------------------------------------------------


def test_case_list_sorts_pages_and_filters(
    client: TestClient, ctx: AppContext, demo: object
) -> None:
    for i in range(23):
        make_case(ctx, f"予算 {i:02d}", "B0101", date(2025, 6, 1))
    make_case(ctx, "契約 あ", "B0201", date(2026, 5, 1))
    closed = make_case(ctx, "契約 い", "B0202", date(2026, 5, 2))
    close(ctx, closed, datetime(2026, 6, 1, tzinfo=UTC))
    sign_in(client, "tanaka")

    def titles(url: str) -> list[str]:
        r = client.get(url, headers=HTML)
        assert r.status_code == 200, r.text
        return re.findall(r'data-testid="case-row"><td>.*?</td><td>(.*?)</td>', r.text)

    assert titles("/cases?sort=title&per=20") == [
        "予算 00",
        "予算 01",
        *[f"予算 {i:02d}" for i in range(2, 20)],
    ]
    page2 = client.get("/cases?sort=title&per=20&page=2", headers=HTML).text
    rest = re.findall(r'data-testid="case-row"><td>.*?</td><td>(.*?)</td>', page2)
    everything = titles("/cases?sort=title&per=100")
    assert len(everything) == 25 and everything == sorted(everything)
    assert rest == everything[20:]
    assert 'href="?per=20&amp;sort=title&amp;page=1"' in page2  # the pager keeps sort and size
    desc = titles("/cases?sort=-title&per=20")
    assert desc[:3] == sorted(desc, reverse=True)[:3] and len(desc) == 20
    assert 'aria-sort="descending"' in client.get("/cases?sort=-title", headers=HTML).text
    assert titles("/cases?class=B02") == ["契約 い", "契約 あ"]  # a 中分類 finds its 小分類
    assert titles("/cases?class=B02&status=closed") == ["契約 い"]
    assert len(titles("/cases?fiscal_year=2025&per=100")) == 23
    assert titles("/cases?fiscal_year=2026") == ["契約 い", "契約 あ"]
    assert client.get("/cases?sort=password", headers=HTML).status_code == 422
    assert client.get("/cases?fiscal_year=abc", headers=HTML).status_code == 422
    assert client.get("/cases?class=ZZZ", headers=HTML).status_code == 404


def test_folder_list_sorts_pages_and_filters(
    client: TestClient, ctx: AppContext, demo: object
) -> None:
    case_id = make_case(ctx, "令和7年度 物品購入", "B0202", date(2025, 4, 1))
    token = sign_in(client, "tanaka")
    fid = _case_folder(client, case_id)
    for i, name in enumerate(["c.txt", "a.txt", "b.txt"]):
        client.post(
            f"/folders/{fid}/upload",
            data={"csrf": token, "title": f"文書{name[0]}"},
            files={"file": (name, f"購入 {i} {'x' * i}".encode(), "text/plain")},
            headers={"accept": "application/json"},
        )
    deposit(ctx, "決裁済の購入伺い", "z.txt", case_id=case_id, approved_on=date(2025, 5, 1))

    def names(query: str) -> list[str]:
        r = client.get(f"/folders/{fid}?{query}", headers=HTML)
        assert r.status_code == 200, r.text
        return re.findall(r'data-testid="doc-filename">(.*?)</td>', r.text)

    assert names("sort=filename") == ["a.txt", "b.txt", "c.txt", "z.txt"]
    assert names("sort=-filename") == ["z.txt", "c.txt", "b.txt", "a.txt"]
    assert names("sort=filename&per=20&page=2") == []
    assert names("status=official") == ["z.txt"]
    assert names("status=working&sort=-size") == ["b.txt", "a.txt", "c.txt"]
    assert names("status=working&sort=size") == ["c.txt", "a.txt", "b.txt"]
    fy = fiscal_year(utcnow(), ctx.settings.timezone)
    assert names(f"fiscal_year={fy}&sort=filename") == ["a.txt", "b.txt", "c.txt", "z.txt"]
    assert names("fiscal_year=1999") == []
    assert names("class=B02&sort=filename") == ["a.txt", "b.txt", "c.txt", "z.txt"]
    assert names("class=A0101") == []
    assert client.get(f"/folders/{fid}?sort=sha256", headers=HTML).status_code == 422
    # paging: 2 per page would need per=2, which is not offered: 20 is the smallest
    assert 'rel="next"' not in client.get(f"/folders/{fid}?per=20", headers=HTML).text


# --- bulk actions --------------------------------------------------------------------------


def test_bulk_zip_has_every_document_and_a_manifest_of_their_hashes(
    client: TestClient, ctx: AppContext, demo: object
) -> None:
    token = sign_in(client, "tanaka")
    fid = folder_id(client.get("/folders", headers=HTML).text, "財政課チーム")
    contents = {"予算書.txt": "予算書 本文".encode(), "査定.txt": b"assessment" * 5000}
    ids = []
    for name, body in contents.items():
        r = client.post(
            f"/folders/{fid}/upload",
            data={"csrf": token},
            files={"file": (name, body, "text/plain")},
            headers={"accept": "application/json"},
        )
        ids.append(r.json()["document_id"])
    with Session(ctx.engine) as s:
        reads_before = len(
            s.exec(select(AuditEvent).where(AuditEvent.action == "document.read")).all()
        )
    r = client.post(
        f"/folders/{fid}/bulk",
        data={"csrf": token, "do": "zip", "document_id": [str(i) for i in ids]},
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    assert archive.testzip() is None
    manifest = archive.read("manifest-sha256.txt").decode()
    listed = dict(line.split("  ", 1)[::-1] for line in manifest.splitlines())
    meta = json.loads(archive.read("manifest.json"))
    assert [d["document_id"] for d in meta["documents"]] == ids
    for (name, body), doc_id in zip(contents.items(), ids, strict=True):
        entry = f"{doc_id}_{name}"
        assert archive.read(entry) == body
        assert listed[entry] == hashlib.sha256(body).hexdigest()
    with Session(ctx.engine) as s:
        reads = s.exec(
            select(AuditEvent)
            .where(AuditEvent.action == "document.read")
            .order_by(col(AuditEvent.seq))
        ).all()
    assert len(reads) == reads_before + 2
    assert {(e.actor, e.target_id) for e in reads[-2:]} == {("tanaka", str(i)) for i in ids}

    # nothing selected, a forged token, another organization's document: refused, no archive
    assert client.post(f"/folders/{fid}/bulk", data={"csrf": token, "do": "zip"}).status_code == 422
    forged = client.post(
        f"/folders/{fid}/bulk", data={"csrf": "x", "do": "zip", "document_id": [str(ids[0])]}
    )
    assert forged.status_code == 403
    douro_doc = deposit(
        ctx,
        "道路課の文書",
        "road.txt",
        case_id=make_case(ctx, "道路", "D0102", date(2026, 4, 2), org="KENSETSU-DOURO"),
    )
    r = client.post(
        f"/folders/{fid}/bulk",
        data={"csrf": token, "do": "zip", "document_id": [str(ids[0]), str(douro_doc)]},
    )
    assert r.status_code == 404 and r.headers["content-type"] != "application/zip"


def test_bulk_copy_hold_and_proposal(client: TestClient, ctx: AppContext, demo: object) -> None:
    token = sign_in(client, "tanaka")
    listing = client.get("/folders", headers=HTML).text
    fid = folder_id(listing, "財政課チーム")
    ids = []
    for i in range(2):
        r = client.post(
            f"/folders/{fid}/upload",
            data={"csrf": token},
            files={"file": (f"d{i}.txt", f"文書 {i}".encode(), "text/plain")},
            headers={"accept": "application/json"},
        )
        ids.append(r.json()["document_id"])
    case_id = make_case(ctx, "写し先の案件", "B0101", date(2026, 4, 3))
    target = _case_folder(client, case_id)
    page = client.get(f"/folders/{fid}", headers=HTML).text
    assert f'<option value="{target}">' in page and 'data-testid="bulk-hold"' not in page
    r = client.post(
        f"/folders/{fid}/bulk",
        data={
            "csrf": token,
            "do": "copy",
            "target_folder_id": str(target),
            "document_id": [str(i) for i in ids],
        },
        headers=HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == f"/folders/{target}?msg=copied&n=2"
    copied = client.get(r.headers["location"], headers=HTML).text
    assert "2件の写しを作りました。" in copied and copied.count('data-testid="badge-copy"') == 2
    # staff may not place holds nor propose disposals
    for do in ("hold", "propose"):
        r = client.post(
            f"/folders/{fid}/bulk",
            data={
                "csrf": token,
                "do": do,
                "hold_type": "litigation",
                "reason": "訴訟",
                "action": "destroy",
                "document_id": [str(ids[0])],
            },
            headers=HTML,
        )
        assert r.status_code == 403, do

    client.cookies.clear()
    token = sign_in(client, "suzuki")
    assert 'data-testid="bulk-hold"' in client.get(f"/folders/{fid}", headers=HTML).text
    r = client.post(
        f"/folders/{fid}/bulk",
        data={
            "csrf": token,
            "do": "hold",
            "hold_type": "litigation",
            "reason": "訴訟のため",
            "document_id": [str(i) for i in ids],
        },
        headers=HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert "2件に保留を設定しました。" in client.get(r.headers["location"], headers=HTML).text
    holds = client.get("/records/holds", headers=HTML).text
    assert holds.count("訴訟のため") == 2
    # working documents are not due: a proposal with them is refused, nothing created
    batches_before = client.get("/records/batches", headers=HTML).text.count("/records/batches/")
    r = client.post(
        f"/folders/{fid}/bulk",
        data={"csrf": token, "do": "propose", "action": "destroy", "document_id": [str(ids[0])]},
        headers=HTML,
    )
    assert r.status_code in (409, 422)
    assert (
        client.get("/records/batches", headers=HTML).text.count("/records/batches/")
        == batches_before
    )
    assert (
        client.post(
            f"/folders/{fid}/bulk", data={"csrf": token, "do": "burn", "document_id": ["1"]}
        ).status_code
        == 422
    )
