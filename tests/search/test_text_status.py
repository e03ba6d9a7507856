"""Text status is visible (issue 16, point 6): document JSON, ``genpon show``, the document
page, the officers' list of failed texts, and ``pending_index`` in search answers."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.records.helpers import deposit, team_folder
from tests.search.helpers import search, sync


def test_deposit_then_search_says_what_waits(client: TestClient, demo, ctx) -> None:
    tanaka, ito = demo.auth("tanaka"), demo.auth("ito")
    doc = deposit(
        client, tanaka, "電線の接続".encode(), folder_id=team_folder(ctx), filename="a.txt"
    ).json()
    assert doc["text"]["status"] == "pending" and doc["text"]["indexed_at"] is None
    r = search(client, tanaka, "電線")
    assert r["total"] == 0 and r["pending_index"] == 1  # "not indexed yet", not "not there"
    assert search(client, ito, "電線")["pending_index"] == 0  # ito may not read the folder
    sync(ctx)
    r = search(client, tanaka, "電線")
    assert r["total"] == 1 and r["pending_index"] == 0
    got = client.get(f"/api/v1/documents/{doc['id']}", headers=tanaka).json()["text"]
    assert got["status"] == "ok" and got["chars"] == 5 and got["extractor"]
    assert got["indexed_at"] and got["reason"] is None
    page = client.get(f"/documents/{doc['id']}", headers=tanaka | {"Accept": "text/html"})
    assert page.status_code in (200, 303)


def test_failed_text_has_a_reason_and_an_officer_list(client: TestClient, demo, ctx) -> None:
    tanaka, suzuki = demo.auth("tanaka"), demo.auth("suzuki")
    broken = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
    doc = deposit(
        client,
        tanaka,
        broken,
        folder_id=team_folder(ctx),
        filename="broken.pdf",
        content_type="application/pdf",
    )
    assert doc.status_code in (200, 201), doc.text
    doc_id = doc.json()["id"]
    sync(ctx)
    t = client.get(f"/api/v1/documents/{doc_id}", headers=tanaka).json()["text"]
    assert t["status"] in ("failed", "empty"), t
    r = client.get("/api/v1/search/text-failures", headers=tanaka)
    assert r.status_code == 403
    r = client.get("/api/v1/search/text-failures", headers=suzuki)
    assert r.status_code == 200
    listed = {i["document_id"]: i for i in r.json()["items"]}
    if t["status"] == "failed":
        assert t["reason"] and listed[doc_id]["reason"] == t["reason"]
        assert r.json()["total"] >= 1
    else:
        assert doc_id not in listed
