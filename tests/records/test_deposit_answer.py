"""The deposit's answer is the document's view, built from what the deposit holds in memory
when it brought new content (records.documents.deposited_view): it must equal what GET
/api/v1/documents/{id} answers right after, in every case."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from genpon.records import documents
from genpon.records.access import actor_for_user
from genpon.records.models import User
from sqlalchemy import event
from sqlmodel import Session, select

from tests.conftest import BOTH_DBS
from tests.records.helpers import deposit, new_case, team_folder

APPROVAL = {"approved_on": "2026-07-10", "approvers": ["課長", "部長"]}


def _same_as_get(client: TestClient, auth: dict[str, str], r: Any) -> dict[str, Any]:
    assert r.status_code in (200, 201), r.text
    answer = r.json()
    outcome = answer.pop("deposit")
    got = client.get(f"/api/v1/documents/{answer['id']}", headers=auth)
    assert got.status_code == 200, got.text
    assert answer == got.json()
    return outcome  # type: ignore[no-any-return]


@BOTH_DBS
def test_deposit_answer_equals_the_document_view(client, demo, ctx):
    auth = demo.auth("tanaka")
    team = team_folder(ctx)
    # new content: a team folder, a case folder with an approval, a case's subfolder
    first = deposit(client, auth, b"new content one", folder_id=team, title="件名")
    assert _same_as_get(client, auth, first) == {
        "created": True,
        "is_copy": False,
        "blob_stored": True,
    }
    case = new_case(client, auth)
    _same_as_get(client, auth, deposit(client, auth, b"approved", case_id=case["case_id"]))
    _same_as_get(
        client,
        auth,
        deposit(client, auth, b"approved 2", case_id=case["case_id"], approval=APPROVAL),
    )
    case_root = client.get(f"/api/v1/cases/{case['case_id']}", headers=auth).json()["folder_id"]
    sub = client.post(
        "/api/v1/folders", json={"parent_id": case_root, "name": "添付"}, headers=auth
    )
    assert sub.status_code == 201, sub.text
    _same_as_get(
        client,
        auth,
        deposit(
            client, auth, b"in a subfolder", case_id=case["case_id"], folder_id=sub.json()["id"]
        ),
    )
    # known content: a copy (the original gains a copy), an official copy taking over
    # originality, and idempotent replays
    copy = deposit(client, auth, b"new content one", folder_id=sub.json()["id"])
    assert _same_as_get(client, auth, copy)["is_copy"]
    _same_as_get(
        client,
        auth,
        deposit(
            client,
            auth,
            b"new content one",
            case_id=case["case_id"],
            approval={"approved_on": "2026-07-11", "approvers": ["課長"]},
        ),
    )
    # an external system's approved deposit (service account), then its replay
    kessai = demo.auth("denshi-kessai")
    ext = {**APPROVAL, "external_system": "denshi-kessai", "external_id": "K-1"}
    for status in (201, 200):
        r = deposit(client, kessai, b"from kessai", case_id=case["case_id"], approval=ext)
        assert r.status_code == status, r.text
        _same_as_get(client, kessai, r)
    again = {"Idempotency-Key": "answer-1"}
    r1 = deposit(client, auth, b"replayed", folder_id=team, headers=again)
    _same_as_get(client, auth, r1)
    r2 = deposit(client, auth, b"replayed", folder_id=team, headers=again)
    assert r2.status_code == 200 and not _same_as_get(client, auth, r2)["created"]


@BOTH_DBS
def test_view_of_new_content_costs_no_query(ctx, demo):
    """The folder, case and approval are already in the session: the answer reads nothing."""
    team = team_folder(ctx)
    with Session(ctx.engine, expire_on_commit=False) as s:
        user = s.exec(select(User).where(User.login == "tanaka")).one()
        actor = actor_for_user(s, user)
        staged = ctx.store.stage([b"counted content"])
        outcome = documents.deposit(
            s,
            ctx.store,
            actor,
            staged,
            documents.DepositIn(filename="a.txt", folder_id=team),
            allowed_types=ctx.settings.allowed_types,
            timezone=ctx.settings.timezone,
        )
        assert outcome.new_content
        statements: list[str] = []
        conn = s.connection()
        event.listen(conn, "before_cursor_execute", lambda *a: statements.append(a[2]))
        v = documents.deposited_view(s, actor, outcome)
        assert statements == [], statements
        assert v.folder_path == "/財政課チーム" and v.index_pending
        s.commit()
