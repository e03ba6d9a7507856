"""Helpers for web tests: sign in through the form, read the CSRF token of a page."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

HTML = {"accept": "text/html"}
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    m = CSRF_RE.search(html)
    assert m, "page has no CSRF field"
    return m.group(1)


def sign_in(client: TestClient, login: str, password: str = "genpon-demo") -> str:
    """Sign in with the password form; returns the session's CSRF token."""
    page = client.get("/login", headers=HTML)
    r = client.post(
        "/login",
        data={"csrf": csrf_of(page.text), "login": login, "password": password, "next": "/"},
        headers=HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return csrf_of(client.get("/cases", headers=HTML).text)


def folder_id(html: str, name: str) -> int:
    m = re.search(r'href="/folders/(\d+)">' + re.escape(name), html)
    assert m, f"folder {name} not listed"
    return int(m.group(1))
