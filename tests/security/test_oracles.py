"""Issue 15, item 10: existence oracles. What a caller may learn about what it cannot read:

- depositing bytes that already have an original it cannot read: that its file became a copy
  of an existing original, not the original's ID, title or folder;
- an external ID already used by a document it cannot read: that the ID is taken
  (``external_id_conflict``, ``document_id`` null; tests/security/test_abuse.py);
- registering a case ID taken by a case it cannot see: that the ID is taken, nothing more.
"""

from __future__ import annotations

import hashlib
from typing import Any

from tests.records.helpers import deposit, new_case, team_folder

CONTENT = "財政課の起案文書（本文）".encode()


def _hidden_original(client: Any, demo: Any, ctx: Any) -> dict[str, Any]:
    r = deposit(client, demo.auth("tanaka"), CONTENT, folder_id=team_folder(ctx), title="予算内示")
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_copy_deposit_names_no_hidden_original(client, demo, ctx):
    original = _hidden_original(client, demo, ctx)
    douro = new_case(client, demo.auth("ito"), org="KENSETSU-DOURO", cls="D0102")
    r = deposit(client, demo.auth("ito"), CONTENT, case_id=douro["case_id"])
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["deposit"]["is_copy"] and not body["is_original"]
    assert body["original"] == {"id": None, "visible": False, "folder_path": None, "title": None}
    assert body["original_id"] is None
    assert "予算内示" not in r.text and "財政課" not in r.text
    # reading the copy later says the same
    again = client.get(f"/api/v1/documents/{body['id']}", headers=demo.auth("ito")).json()
    assert again["original"]["id"] is None and again["original_id"] is None
    # who holds this content: the copy, and that an original exists, not which one
    sha = hashlib.sha256(CONTENT).hexdigest()
    held = client.get(f"/api/v1/originals/{sha}", headers=demo.auth("ito")).json()
    assert held["original"] == {"id": None, "visible": False, "title": None}
    assert [(d["id"], d["original_id"]) for d in held["documents"]] == [(body["id"], None)]
    # whoever may read the original sees it
    seen = client.get(f"/api/v1/documents/{body['id']}", headers=demo.auth("admin")).json()
    assert seen["original"]["id"] == original["id"] and seen["original_id"] == original["id"]
    mine = client.get(f"/api/v1/originals/{sha}", headers=demo.auth("tanaka")).json()
    assert mine["original"]["id"] == original["id"]


def test_case_registration_over_a_hidden_case_says_only_taken(client, demo, ctx):
    douro = new_case(client, demo.auth("ito"), org="KENSETSU-DOURO", cls="D0102")
    hidden = "EXT-DOURO-7"
    svc = demo.auth("denshi-kessai")
    body = {"title": "道路占用", "organization_code": "KENSETSU-DOURO", "class_code": "D0102"}
    assert client.put(f"/api/v1/cases/{hidden}", json=body, headers=svc).status_code == 201
    # staff of another organization may not register at all (item 1): no oracle there
    r = client.put(
        f"/api/v1/cases/{hidden}",
        json={**body, "organization_code": "SOUMU-ZAISEI", "class_code": "B0101"},
        headers=demo.auth("tanaka"),
    )
    assert r.status_code == 403
    assert hidden not in r.text and douro["case_id"] not in r.text
