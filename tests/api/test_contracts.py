"""The API's published contract: every JSON route declares its response model and its error
responses (one error schema), real answers match the models byte for byte, and no integer a
client sends can reach the database out of the 64-bit range (422, never 500)."""

from __future__ import annotations

import hashlib
import types
import typing
from typing import Any

import pytest
from fastapi import routing
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from genpon.api import schemas
from genpon.api.contracts.common import ErrorResponse
from genpon.core.db import session_scope
from genpon.records import cases, documents
from genpon.records.audit import query as audit_query
from pydantic import TypeAdapter
from sqlmodel import Session

from tests.records.helpers import deposit, new_case

ERROR_REF = "#/components/schemas/ErrorResponse"
HUGE = 2**70


def api_routes(app: Any) -> list[Any]:
    """The JSON API's routes (web UI and docs excluded), as the app serves them: FastAPI
    >= 0.130 keeps included routers nested, ``iter_route_contexts`` flattens them."""
    contexts: Any = getattr(routing, "iter_route_contexts", None)
    routes = list(contexts(app.routes)) if contexts else list(app.routes)
    out = []
    for r in routes:
        original = getattr(r, "original_route", r)
        if isinstance(original, APIRoute) and r.path.startswith("/api/") and r.include_in_schema:
            out.append(r)
    return out


def route_for(app: Any, method: str, path: str) -> Any:
    for r in api_routes(app):
        if r.path == path and method in r.methods:
            return r
    raise AssertionError(f"no route {method} {path}")


# --- (a) the route table declares models and errors -----------------------------------------


def test_every_json_route_declares_a_response_model(app: Any) -> None:
    routes = api_routes(app)
    assert len(routes) >= 70
    spec = app.openapi()["paths"]
    missing = []
    for r in routes:
        if r.response_model is not None:
            continue
        # no model: a file route, whose 200 lists only its (non-JSON) media types
        for method in r.methods:
            ok = spec[r.path][method.lower()]["responses"].get("200", {}).get("content", {})
            if not ok or "application/json" in ok:
                missing.append(f"{method} {r.path}")
    assert missing == []


def test_every_operation_declares_its_errors_with_the_one_error_schema(app: Any) -> None:
    spec = app.openapi()
    components = spec["components"]["schemas"]
    assert components["ErrorResponse"]["properties"] == {
        "error": {"$ref": "#/components/schemas/ErrorDetail"}
    }
    assert components["ErrorDetail"]["required"] == ["code", "message", "details"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    checked = 0
    for path, ops in spec["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            responses = op["responses"]
            assert "401" in responses, where
            if op.get("parameters") or op.get("requestBody"):
                assert "422" in responses, where
            success = [s for s in responses if s.startswith("2")]
            assert success, where
            for status in success:
                content = responses[status].get("content", {})
                assert content, where
                for media, body in content.items():
                    assert body.get("schema"), f"{where} {status} {media}"
            for status, resp in responses.items():
                if status.startswith("4") or status.startswith("5"):
                    schema = resp["content"]["application/json"]["schema"]
                    assert schema == {"$ref": ERROR_REF}, f"{where} {status}"
            checked += 1
    assert checked >= 70


def test_file_routes_declare_their_media_types(app: Any) -> None:
    spec = app.openapi()["paths"]

    def media(path: str) -> set[str]:
        return set(spec[path]["get"]["responses"]["200"]["content"])

    assert "application/json" not in media("/api/v1/documents/{document_id}/content")
    assert media("/api/v1/imports/{run_id}/report") == {"text/html"}
    assert media("/api/v1/imports/{run_id}/report.csv") == {"text/csv"}
    assert {"application/json", "text/csv"} <= media("/api/v1/retention/due")
    assert {"application/json", "text/csv"} < media("/api/v1/retention/register")


def test_search_declares_the_parameters_it_parses(app: Any) -> None:
    from genpon.api.routes import search

    op = app.openapi()["paths"]["/api/v1/search"]["get"]
    assert {p["name"] for p in op["parameters"]} == search.PARAMS


# --- (b) real answers match the declared models, byte for byte ------------------------------


def body_as_before(expected: Any) -> bytes:
    """What the route sent when it returned this dict without a response model."""
    return JSONResponse(jsonable_encoder(expected)).body


def check(app: Any, method: str, template: str, r: Any, expected: Any = None) -> Any:
    """``r`` validates against the route's model; with ``expected`` (the dict the route
    builds), its bytes are exactly those of the dict (no field dropped, added or reordered)."""
    assert r.status_code < 300, r.text
    model = route_for(app, method, template).response_model
    TypeAdapter(model).validate_json(r.content)
    if expected is not None:
        assert r.content == body_as_before(expected)
    return r.json()


def test_answers_match_models_and_the_dicts_byte_for_byte(
    app: Any, client: TestClient, demo: Any, ctx: Any, system: Any
) -> None:
    admin, staff, auditor = demo.auth("admin"), demo.auth("tanaka"), demo.auth("yamada")
    check(app, "GET", "/api/v1/me", client.get("/api/v1/me", headers=staff))
    check(app, "GET", "/api/v1/organizations", client.get("/api/v1/organizations", headers=staff))
    check(app, "GET", "/api/v1/users", client.get("/api/v1/users", headers=admin))

    case = new_case(client, staff)
    case_id = case["case_id"]
    with Session(ctx.engine) as s:
        c = cases.get_case(s, system, case_id)
        from genpon.records.folders import case_root_folder

        one = schemas.case(c, s, case_root_folder(s, c))
        listed = schemas.page([schemas.case(c)], 1, 0, 50)
    assert "members" in one and "members" not in listed["data"][0]
    r = client.get(f"/api/v1/cases/{case_id}", headers=staff)
    check(app, "GET", "/api/v1/cases/{case_id}", r, one)
    r = client.get("/api/v1/cases", headers=staff)
    check(app, "GET", "/api/v1/cases", r, listed)

    content = "予算要求書 contracts".encode()
    r = deposit(client, staff, content, case_id=case_id)
    body = check(app, "POST", "/api/v1/documents", r)
    assert list(body["deposit"]) == ["created", "is_copy", "blob_stored"]
    doc_id = body["id"]
    copy = deposit(
        client,
        demo.auth("ito"),
        content,
        case_id=new_case(client, demo.auth("ito"), org="KENSETSU-DOURO")["case_id"],
    )
    copy_body = check(app, "POST", "/api/v1/documents", copy)
    assert copy_body["deposit"]["is_copy"] is True and copy_body["deposit"]["message"]

    with Session(ctx.engine) as s:
        view = schemas.document_view(documents.view(s, system, doc_id))
        holding = schemas.holding(documents.by_hash(s, system, hashlib.sha256(content).hexdigest()))
    r = client.get(f"/api/v1/documents/{doc_id}", headers=staff)
    check(app, "GET", "/api/v1/documents/{document_id}", r, view)
    sha = hashlib.sha256(content).hexdigest()
    r = client.get(f"/api/v1/originals/{sha}", headers=admin)
    check(app, "GET", "/api/v1/originals/{sha256}", r, holding)
    r = client.get(f"/api/v1/documents/{doc_id}/versions", headers=staff)
    check(app, "GET", "/api/v1/documents/{document_id}/versions", r)
    r = client.get(f"/api/v1/folders/{case['folder_id']}/documents", headers=staff)
    assert check(app, "GET", "/api/v1/folders/{folder_id}/documents", r)["count"] == 1

    with session_scope(ctx.engine) as s:
        page = audit_query.list_events(s, system, limit=100).as_dict()
    r = client.get("/api/v1/audit/events", headers=auditor)
    check(app, "GET", "/api/v1/audit/events", r, page)
    r = client.get(f"/api/v1/cases/{case_id}/timeline", headers=staff)
    check(app, "GET", "/api/v1/cases/{case_id}/timeline", r)

    r = client.post(
        "/api/v1/retention/holds",
        json={"scope": "case", "ref": case_id, "hold_type": "litigation", "reason": "訴訟"},
        headers=demo.auth("suzuki"),
    )
    hold = check(app, "POST", "/api/v1/retention/holds", r)
    assert hold["active"] is True and hold["hold_type_label"]
    r = client.get("/api/v1/retention/holds", headers=demo.auth("suzuki"))
    assert check(app, "GET", "/api/v1/retention/holds", r)["count"] == 1
    r = client.get("/api/v1/retention/register?format=json", headers=demo.auth("suzuki"))
    check(app, "GET", "/api/v1/retention/register", r)
    r = client.get("/api/v1/imports", headers=admin)
    check(app, "GET", "/api/v1/imports", r, {"data": [], "count": 0})
    r = client.get("/api/v1/search?q=予算要求書", headers=staff)
    check(app, "GET", "/api/v1/search", r)
    r = client.get("/healthz")
    assert r.status_code == 200 and list(r.json())[:4] == [
        "status",
        "database",
        "storage",
        "search",
    ]


def test_errors_answer_the_declared_schema(client: TestClient, demo: Any) -> None:
    for r in (
        client.get("/api/v1/me"),
        client.get("/api/v1/documents/999999", headers=demo.auth("tanaka")),
        client.get("/api/v1/audit/events", headers=demo.auth("tanaka")),
        client.get("/api/v1/cases?offset=-1", headers=demo.auth("tanaka")),
    ):
        assert r.status_code in (401, 403, 404, 422), r.text
        ErrorResponse.model_validate_json(r.content)


# --- (c) integers beyond int64 are refused, for every integer parameter ---------------------


def _mentions_int(tp: Any) -> bool:
    if tp is int:
        return True
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _mentions_int(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return any(_mentions_int(a) for a in typing.get_args(tp))
    return False


def params_of(route: Any) -> tuple[list[Any], list[Any]]:
    """Path and query parameters of a route, its dependencies' included."""
    path: list[Any] = []
    query: list[Any] = []
    todo = [route.dependant]
    while todo:
        d = todo.pop()
        path += d.path_params
        query += d.query_params
        todo += d.dependencies
    return path, query


def integer_params(app: Any) -> list[tuple[str, Any, str, str]]:
    """(method, route, where, name) for every integer path/query parameter of the API."""
    out = []
    for r in api_routes(app):
        path, query = params_of(r)
        for where, fields in (("path", path), ("query", query)):
            for f in fields:
                if _mentions_int(f.field_info.annotation):
                    out.extend((m, r, where, f.alias) for m in sorted(r.methods))
    return out


def _request(route: Any, where: str, name: str) -> tuple[str, dict[str, Any]]:
    path_params, query_params = params_of(route)
    path = route.path
    for f in path_params:
        value = (
            HUGE
            if (where, name) == ("path", f.alias)
            else (1 if _mentions_int(f.field_info.annotation) else "x")
        )
        path = path.replace("{" + f.alias + "}", str(value))
    query: dict[str, Any] = {}
    for f in query_params:
        if (where, name) == ("query", f.alias):
            query[f.alias] = HUGE
        elif f.field_info.is_required():
            query[f.alias] = 1 if _mentions_int(f.field_info.annotation) else "x"
    return path, query


def test_the_route_table_has_the_integers_of_the_issue(app: Any) -> None:
    found = {(r.path, where, name) for _m, r, where, name in integer_params(app)}
    for expected in [
        ("/api/v1/cases", "query", "offset"),
        ("/api/v1/audit/checkpoints/{checkpoint_id}", "path", "checkpoint_id"),
        ("/api/v1/audit/fixity/runs", "query", "offset"),
        ("/api/v1/audit/events", "query", "after_seq"),
        ("/api/v1/imports/{run_id}/report", "path", "run_id"),
        ("/api/v1/imports/{run_id}/near-duplicates", "path", "run_id"),
        ("/api/v1/documents/{document_id}", "path", "document_id"),
        ("/api/v1/documents/{document_id}/content", "query", "version"),
    ]:
        assert expected in found
    assert len(found) >= 40


@pytest.mark.parametrize("login", ["admin", "tanaka"])
def test_every_integer_parameter_refuses_2_to_the_70(
    app: Any, client: TestClient, demo: Any, login: str
) -> None:
    failures = []
    for method, route, where, name in integer_params(app):
        path, query = _request(route, where, name)
        kwargs: dict[str, Any] = {"params": query, "headers": demo.auth(login)}
        if method in ("POST", "PUT"):
            kwargs["json"] = {}
        r = client.request(method, path, **kwargs)
        locs = (
            [e["loc"] for e in r.json()["error"]["details"].get("errors", [])]
            if r.headers.get("content-type", "").startswith("application/json")
            else []
        )
        if r.status_code != 422 or [where, name] not in locs:
            failures.append(f"{method} {path} {query}: {r.status_code} {r.text[:200]}")
    assert failures == []


def test_other_integers_out_of_range(client: TestClient, demo: Any) -> None:
    staff = demo.auth("tanaka")
    r = client.get("/api/v1/search", params={"q": "予算", "page": str(HUGE)}, headers=staff)
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "page"
    r = client.post("/api/v1/documents/1/copies", json={"folder_id": HUGE}, headers=staff)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    r = client.post("/api/v1/folders", json={"name": "x", "parent_id": HUGE}, headers=staff)
    assert r.status_code == 422
    r = client.post(
        "/api/v1/documents",
        files={"file": ("a.txt", b"a", "text/plain")},
        data={"folder_id": str(HUGE)},
        headers=staff,
    )
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "folder_id"
