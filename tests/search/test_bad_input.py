"""Bad queries are clear 4xx errors with a code, never a 500."""

from __future__ import annotations

BAD = [
    ({"q": ""}, "empty_query"),
    ({"q": "   "}, "empty_query"),
    ({"q": "、。！？"}, "query_no_terms"),
    ({"q": "予" * 501}, "query_too_long"),
    ({"q": '"予算'}, "unbalanced_quotes"),
    ({"q": "-予算"}, "query_only_exclusions"),
    ({"q": "予算", "colour": "red"}, "unknown_filter"),
    ({"q": "予算", "folder_kind": "secret"}, "invalid_filter"),
    ({"q": "予算", "status": "draft"}, "invalid_filter"),
    ({"q": "予算", "fiscal_year": "R"}, "invalid_field"),  # R8 is 令和8年度 (valid)
    ({"q": "予算", "date_from": "2026-13-01"}, "invalid_field"),
    ({"q": "予算", "page": "0"}, "invalid_paging"),
    ({"q": "予算", "per_page": "1000"}, "invalid_paging"),
    ({"q": "予算", "sort": "random"}, "invalid_sort"),
]


def test_bad_input_is_a_4xx(client, demo):
    auth = demo.auth("tanaka")
    for params, code in BAD:
        r = client.get("/api/v1/search", params=params, headers=auth)
        assert 400 <= r.status_code < 500, (params, r.text)
        assert r.json()["error"]["code"] == code, params


def test_search_needs_authentication(client):
    r = client.get("/api/v1/search", params={"q": "予算"})
    assert r.status_code == 401
