"""Authorization matrix: every API route × role × own/other organization.

The routes come from the app's OpenAPI route table; :data:`RULES` says, for each, how to build
a request against a resource of the caller's organization ("own": 財政課, SOUMU-ZAISEI) and of
another one ("other": 道路課, KENSETSU-DOURO), and what each role gets. A route without a rule
fails :func:`test_every_route_has_a_rule`.

Roles (in the order of the expectation strings): staff ``tanaka`` (財政課), records officer
``suzuki``, auditor ``yamada``, admin, and the service account ``denshi-kessai`` granted only
財政課 here. Outcomes: ``o`` 2xx; ``d`` refused (403, or 404 for what the caller may not see, or
422 ``*_not_allowed``); ``p`` authorized but answered by the business rules (any status but
401/403/404 and 5xx: e.g. executing a batch nobody approved is a 409).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from genpon.records import master
from genpon.records.access import SYSTEM_ACTOR
from sqlmodel import Session

from tests.records.helpers import deposit, new_case, team_folder

ROLES = ("tanaka", "suzuki", "yamada", "admin", "denshi-kessai")
ORG = {"own": "SOUMU-ZAISEI", "other": "KENSETSU-DOURO"}
CLS = {"own": "B0101", "other": "D0102"}
CASE_OWNER = {"own": "tanaka", "other": "ito"}
APPROVAL = {"approved_on": "2026-07-10", "approvers": ["課長"]}


@dataclass
class Req:
    method: str
    url: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class World:
    client: TestClient
    demo: Any
    ctx: Any
    case: dict[str, str]
    doc: dict[str, dict[str, Any]]
    team: dict[str, int]
    n: int = 0

    def auth(self, login: str) -> dict[str, str]:
        return self.demo.auth(login)  # type: ignore[no-any-return]

    def fresh_case(self, org: str) -> str:
        return new_case(self.client, self.auth(CASE_OWNER[org]), ORG[org], CLS[org])["case_id"]

    def fresh_doc(self, org: str) -> int:
        self.n += 1
        r = deposit(
            self.client,
            self.auth(CASE_OWNER[org]),
            f"matrix {org} {self.n}".encode(),
            case_id=self.case[org],
        )
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    def name(self) -> str:
        self.n += 1
        return f"子フォルダ{self.n}"

    def spare_key(self) -> str:
        """The prefix of a new key of takahashi's (one to revoke)."""
        r = self.client.post(
            "/api/v1/users/takahashi/keys", json={"label": "spare"}, headers=self.auth("admin")
        )
        assert r.status_code == 201, r.text
        return str(r.json()["prefix"])

    def batch(self, org: str) -> int:
        """A batch ID nobody may see (none exists): a batch needs documents past their retention,
        which tests/retention sets up; here it shows only who is refused before the lookup."""
        return 999_999

    def hold(self, org: str) -> int:
        r = self.client.post(
            "/api/v1/retention/holds",
            json={
                "scope": "document",
                "ref": str(self.fresh_doc(org)),
                "hold_type": "litigation",
                "reason": "訴訟",
            },
            headers=self.auth("sato"),
        )
        assert r.status_code == 201, r.text
        return int(r.json()["id"])


Build = Callable[[World, str], Req]


def get(url: str) -> Build:
    return lambda w, org: Req("GET", url.format(**_ids(w, org)))


def _ids(w: World, org: str) -> dict[str, Any]:
    return {
        "case": w.case[org],
        "doc": w.doc[org]["id"],
        "sha": w.doc[org]["sha256"],
        "team": w.team[org],
        "org": ORG[org],
        "cls": CLS[org],
    }


def _upload(url: str, **fields: str) -> Build:
    def build(w: World, org: str) -> Req:
        w.n += 1
        data = {k: v.format(**_ids(w, org)) for k, v in fields.items()}
        files = {"file": ("m.txt", f"upload {org} {w.n}".encode(), "text/plain")}
        return Req("POST", url.format(**_ids(w, org)), {"files": files, "data": data})

    return build


def _json(method: str, url: str, body: Callable[[World, str], Any]) -> Build:
    return lambda w, org: Req(method, url.format(**_ids(w, org)), {"json": body(w, org)})


@dataclass
class Rule:
    build: Build
    own: str
    other: str | None = None  # None: the route is not about an organization (same as own)


# staff, officer, auditor, admin, service
RULES: dict[str, Rule] = {
    "GET /healthz": Rule(get("/healthz"), "ooooo"),
    # master
    "GET /api/v1/organizations": Rule(get("/api/v1/organizations"), "ooooo"),
    "GET /api/v1/organizations/{code}": Rule(get("/api/v1/organizations/{org}"), "ooooo", "ooooo"),
    "GET /api/v1/document-classes": Rule(get("/api/v1/document-classes"), "ooooo"),
    "GET /api/v1/document-classes/{code}": Rule(
        get("/api/v1/document-classes/{cls}"), "ooooo", "ooooo"
    ),
    "GET /api/v1/users": Rule(get("/api/v1/users"), "doood"),
    "GET /api/v1/me": Rule(get("/api/v1/me"), "ooooo"),
    "POST /api/v1/masters/{kind}/import": Rule(
        lambda w, org: Req(
            "POST",
            "/api/v1/masters/organizations/import",
            {"content": b"code,name\n", "headers": {"content-type": "text/csv"}},
        ),
        "dddod",
    ),
    # cases
    # a records officer's organization is 総務課, not 財政課
    "POST /api/v1/cases": Rule(
        _json(
            "POST",
            "/api/v1/cases",
            lambda w, org: {"title": "件", "organization_code": ORG[org], "class_code": CLS[org]},
        ),
        "oddoo",
        "dddod",
    ),
    "GET /api/v1/cases": Rule(get("/api/v1/cases?organization={org}"), "ooooo", "ooooo"),
    "PUT /api/v1/cases/{case_id}": Rule(
        lambda w, org: Req(
            "PUT",
            f"/api/v1/cases/EXT-{org}-{w.n + 1}",
            {"json": {"title": "外部", "organization_code": ORG[org], "class_code": CLS[org]}},
        ),
        "dddoo",
        "dddod",
    ),
    "GET /api/v1/cases/{case_id}": Rule(get("/api/v1/cases/{case}"), "ooooo", "doood"),
    "POST /api/v1/cases/{case_id}/members": Rule(
        _json("POST", "/api/v1/cases/{case}/members", lambda w, org: {"logins": ["takahashi"]}),
        "oddod",
        "dddod",
    ),
    # closing and reopening: the owning section's staff, and records officers city-wide
    "POST /api/v1/cases/{case_id}/close": Rule(
        lambda w, org: Req("POST", f"/api/v1/cases/{w.fresh_case(org)}/close"),
        "oodod",
        "dodod",
    ),
    # 409: the case is open
    "POST /api/v1/cases/{case_id}/reopen": Rule(
        lambda w, org: Req("POST", f"/api/v1/cases/{w.fresh_case(org)}/reopen"),
        "ppdpd",
        "dpdpd",
    ),
    "GET /api/v1/cases/{case_id}/timeline": Rule(
        get("/api/v1/cases/{case}/timeline"), "ooooo", "doood"
    ),
    # folders and documents
    "POST /api/v1/folders": Rule(
        _json(
            "POST", "/api/v1/folders", lambda w, org: {"name": w.name(), "parent_id": w.team[org]}
        ),
        "oddod",
        "dddod",
    ),
    "GET /api/v1/folders": Rule(get("/api/v1/folders"), "ooooo"),
    # a team folder: a service account reads case folders only
    "GET /api/v1/folders/{folder_id}": Rule(get("/api/v1/folders/{team}"), "ooood", "doood"),
    "GET /api/v1/folders/{folder_id}/documents": Rule(
        get("/api/v1/folders/{team}/documents"), "ooood", "doood"
    ),
    "POST /api/v1/documents": Rule(
        _upload("/api/v1/documents", case_id="{case}"), "oddoo", "dddod"
    ),
    "GET /api/v1/documents/{document_id}": Rule(get("/api/v1/documents/{doc}"), "ooooo", "doood"),
    "GET /api/v1/documents/{document_id}/content": Rule(
        get("/api/v1/documents/{doc}/content"), "ooooo", "doood"
    ),
    "POST /api/v1/documents/{document_id}/copies": Rule(
        _json(
            "POST", "/api/v1/documents/{doc}/copies", lambda w, org: {"folder_id": w.team["own"]}
        ),
        "oddod",
        "dddod",
    ),
    "POST /api/v1/documents/{document_id}/approve": Rule(
        lambda w, org: Req(
            "POST", f"/api/v1/documents/{w.fresh_doc(org)}/approve", {"json": APPROVAL}
        ),
        "oddoo",
        "dddod",
    ),
    "POST /api/v1/documents/{document_id}/versions": Rule(
        _upload("/api/v1/documents/{doc}/versions"), "oddoo", "dddod"
    ),
    "GET /api/v1/documents/{document_id}/versions": Rule(
        get("/api/v1/documents/{doc}/versions"), "ooooo", "doood"
    ),
    # 409 correction_of_working: only an official document is corrected
    "POST /api/v1/documents/{document_id}/corrections": Rule(
        _upload("/api/v1/documents/{doc}/corrections"), "pddpp", "dddpd"
    ),
    "GET /api/v1/originals/{sha256}": Rule(get("/api/v1/originals/{sha}"), "ooooo", "doood"),
    "GET /api/v1/documents/{document_id}/preview": Rule(
        get("/api/v1/documents/{doc}/preview"), "ooooo", "doood"
    ),
    "GET /api/v1/documents/{document_id}/pages/{page}.png": Rule(
        get("/api/v1/documents/{doc}/pages/1.png"), "ppppp", "dpppd"
    ),
    "GET /api/v1/documents/{document_id}/pages/{page}/highlights": Rule(
        get("/api/v1/documents/{doc}/pages/1/highlights?q=x"), "ooooo", "doood"
    ),
    "GET /api/v1/documents/{document_id}/thumbnail.png": Rule(
        get("/api/v1/documents/{doc}/thumbnail.png"), "ppppp", "dpppd"
    ),
    # users and keys
    "POST /api/v1/users/{login}/keys": Rule(
        _json("POST", "/api/v1/users/takahashi/keys", lambda w, org: {"label": "x"}), "dddod"
    ),
    "GET /api/v1/users/{login}/keys": Rule(get("/api/v1/users/takahashi/keys"), "dddod"),
    "DELETE /api/v1/keys/{prefix}": Rule(
        lambda w, org: Req("DELETE", f"/api/v1/keys/{w.spare_key()}"), "dddod"
    ),
    # retention
    "GET /api/v1/retention/due": Rule(get("/api/v1/retention/due"), "doood"),
    "GET /api/v1/retention/holds": Rule(get("/api/v1/retention/holds"), "doood"),
    "POST /api/v1/retention/holds": Rule(
        _json(
            "POST",
            "/api/v1/retention/holds",
            lambda w, org: {
                "scope": "document",
                "ref": str(w.fresh_doc(org)),
                "hold_type": "litigation",
                "reason": "訴訟",
            },
        ),
        "doddd",
        "doddd",
    ),
    "POST /api/v1/retention/holds/{hold_id}/release": Rule(
        lambda w, org: Req(
            "POST", f"/api/v1/retention/holds/{w.hold(org)}/release", {"json": {"reason": "終結"}}
        ),
        "doddd",
        "doddd",
    ),
    "POST /api/v1/retention/extensions": Rule(
        _json(
            "POST",
            "/api/v1/retention/extensions",
            lambda w, org: {"scope": "case", "ref": w.case[org], "years": 1, "reason": "延長"},
        ),
        "doddd",
        "doddd",
    ),
    "GET /api/v1/retention/extensions": Rule(get("/api/v1/retention/extensions"), "doood"),
    # 409: nothing is due yet
    "POST /api/v1/retention/batches": Rule(
        _json(
            "POST",
            "/api/v1/retention/batches",
            lambda w, org: {"action": "destroy", "document_ids": [w.fresh_doc(org)]},
        ),
        "dpddd",
        "dpddd",
    ),
    "GET /api/v1/retention/batches": Rule(get("/api/v1/retention/batches"), "doood"),
    "GET /api/v1/retention/batches/{batch_id}": Rule(
        lambda w, org: Req("GET", f"/api/v1/retention/batches/{w.batch(org)}"), "ddddd", "ddddd"
    ),
    "GET /api/v1/retention/batches/{batch_id}/items": Rule(
        lambda w, org: Req("GET", f"/api/v1/retention/batches/{w.batch(org)}/items"),
        "ddddd",
        "ddddd",
    ),
    "POST /api/v1/retention/batches/{batch_id}/approve": Rule(
        lambda w, org: Req(
            "POST", f"/api/v1/retention/batches/{w.batch(org)}/approve", {"json": {}}
        ),
        "ddddd",
        "ddddd",
    ),
    "POST /api/v1/retention/batches/{batch_id}/reject": Rule(
        lambda w, org: Req(
            "POST", f"/api/v1/retention/batches/{w.batch(org)}/reject", {"json": {"reason": "否"}}
        ),
        "ddddd",
        "ddddd",
    ),
    "POST /api/v1/retention/batches/{batch_id}/execute": Rule(
        lambda w, org: Req(
            "POST", f"/api/v1/retention/batches/{w.batch(org)}/execute", {"json": {}}
        ),
        "ddddd",
        "ddddd",
    ),
    "POST /api/v1/retention/batches/{batch_id}/acknowledge": Rule(
        lambda w, org: Req(
            "POST", f"/api/v1/retention/batches/{w.batch(org)}/acknowledge", {"json": {}}
        ),
        "ddddd",
        "ddddd",
    ),
    "GET /api/v1/retention/batches/{batch_id}/certificate": Rule(
        lambda w, org: Req("GET", f"/api/v1/retention/batches/{w.batch(org)}/certificate"),
        "ddddd",
        "ddddd",
    ),
    "GET /api/v1/retention/public-keys": Rule(get("/api/v1/retention/public-keys"), "doood"),
    "GET /api/v1/retention/register": Rule(get("/api/v1/retention/register"), "doood"),
    # legacy-share imports (no run exists: the run routes only show who is refused first)
    "GET /api/v1/imports": Rule(get("/api/v1/imports"), "dodod"),
    "GET /api/v1/imports/where": Rule(get("/api/v1/imports/where?path=x"), "dodod"),
    "GET /api/v1/imports/{run_id}": Rule(get("/api/v1/imports/1"), "ddddd"),
    "GET /api/v1/imports/{run_id}/entries": Rule(get("/api/v1/imports/1/entries"), "ddddd"),
    "GET /api/v1/imports/{run_id}/report": Rule(get("/api/v1/imports/1/report"), "ddddd"),
    "GET /api/v1/imports/{run_id}/report.csv": Rule(get("/api/v1/imports/1/report.csv"), "ddddd"),
    "GET /api/v1/imports/{run_id}/near-duplicates": Rule(
        get("/api/v1/imports/1/near-duplicates"), "ddddd"
    ),
    "GET /api/v1/duplicates/near": Rule(get("/api/v1/duplicates/near"), "dodod"),
    # search: everyone, filtered by what each may read (tests/search)
    "GET /api/v1/search": Rule(get("/api/v1/search?q=matrix"), "ooooo"),
    # documents whose text failed: records officers and admins
    "GET /api/v1/search/text-failures": Rule(get("/api/v1/search/text-failures"), "dodod"),
    # audit
    "GET /api/v1/audit/events": Rule(get("/api/v1/audit/events"), "ddood"),
    "GET /api/v1/audit/events/{seq}": Rule(get("/api/v1/audit/events/1"), "ddood"),
    "GET /api/v1/audit/checkpoints": Rule(get("/api/v1/audit/checkpoints"), "ddood"),
    "POST /api/v1/audit/checkpoints": Rule(
        lambda w, org: Req("POST", "/api/v1/audit/checkpoints"), "ddppd"
    ),
    "GET /api/v1/audit/checkpoints/latest": Rule(get("/api/v1/audit/checkpoints/latest"), "ddppd"),
    "GET /api/v1/audit/checkpoints/{checkpoint_id}": Rule(
        get("/api/v1/audit/checkpoints/1"), "ddddd"
    ),
    "GET /api/v1/audit/proofs/inclusion": Rule(
        get("/api/v1/audit/proofs/inclusion?seq=1&size=1"), "ddppd"
    ),
    "GET /api/v1/audit/proofs/document/{document_id}": Rule(
        get("/api/v1/audit/proofs/document/{doc}"), "ddppd", "ddppd"
    ),
    "GET /api/v1/audit/proofs/consistency": Rule(
        get("/api/v1/audit/proofs/consistency?first=1&second=1"), "ddood"
    ),
    "POST /api/v1/audit/fixity": Rule(
        _json("POST", "/api/v1/audit/fixity", lambda w, org: {"mode": "sample", "sample": 1}),
        "ddood",
    ),
    "GET /api/v1/audit/fixity/runs": Rule(get("/api/v1/audit/fixity/runs"), "ddood"),
    "GET /api/v1/audit/fixity/runs/{run_id}": Rule(get("/api/v1/audit/fixity/runs/1"), "ddddd"),
    # public to anyone signed in; the test app has no signing key (409)
    "GET /api/v1/audit/keys": Rule(get("/api/v1/audit/keys"), "ppppp"),
    # 409 system_key_missing, after the role check
    "GET /api/v1/audit/verify": Rule(get("/api/v1/audit/verify"), "ddppd"),
}


def _route_table(app: Any) -> set[str]:
    return {
        f"{method.upper()} {path}"
        for path, ops in app.openapi()["paths"].items()
        for method in ops
        if method in ("get", "post", "put", "patch", "delete")
    }


def test_every_route_has_a_rule(app: Any) -> None:
    routes = _route_table(app)
    missing = sorted(routes - RULES.keys())
    assert not missing, f"routes without an authorization rule in RULES: {missing}"
    stale = sorted(RULES.keys() - routes)
    assert not stale, f"rules for routes that no longer exist: {stale}"


def _outcome(r: Any) -> str:
    if r.status_code in (401,) or r.status_code >= 500:
        return f"!{r.status_code}"
    if 200 <= r.status_code < 300:
        return "o"
    code = ""
    if r.headers.get("content-type", "").startswith("application/json"):
        code = str(r.json().get("error", {}).get("code", ""))
    if r.status_code in (403, 404) or code.endswith("_not_allowed"):
        return "d"
    return "p"


@pytest.fixture
def world(client: TestClient, demo: Any, ctx: Any) -> World:
    with Session(ctx.engine) as s:  # the service account is granted 財政課 only
        master.import_csv(
            s,
            SYSTEM_ACTOR,
            "users",
            b"login,name,organization_code,roles,kind,grants\n"
            b"denshi-kessai,x,SOUMU-SOUMU,,service,SOUMU-ZAISEI\n",
        )
        s.commit()
    case = {
        org: new_case(client, demo.auth(CASE_OWNER[org]), ORG[org], CLS[org])["case_id"]
        for org in ORG
    }
    w = World(
        client,
        demo,
        ctx,
        case=case,
        doc={},
        team={"own": team_folder(ctx), "other": team_folder(ctx, "道路課チーム")},
    )
    for org in ORG:
        w.n += 1
        r = deposit(
            client, demo.auth(CASE_OWNER[org]), f"matrix base {org}".encode(), case_id=case[org]
        )
        assert r.status_code == 201, r.text
        w.doc[org] = r.json()
    return w


def test_authorization_matrix(world: World, app: Any) -> None:
    wrong: list[str] = []
    for route, rule in sorted(RULES.items()):
        for org in ("own", "other") if rule.other is not None else ("own",):
            expected = rule.own if org == "own" else rule.other
            assert expected is not None and len(expected) == len(ROLES), route
            for login, want in zip(ROLES, expected, strict=True):
                req = rule.build(world, org)
                kwargs = dict(req.kwargs)
                kwargs["headers"] = {**kwargs.get("headers", {}), **world.auth(login)}
                r = world.client.request(req.method, req.url, **kwargs)
                got = _outcome(r)
                if want != got:
                    wrong.append(
                        f"{route} [{org}] {login}: want {want}, got {got} "
                        f"({r.status_code} {r.text[:120]})"
                    )
    assert not wrong, "\n".join(wrong)
