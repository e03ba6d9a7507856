"""The deposit body as raw bytes: what multipart/form-data clients send, well-formed or not.

Each refused body gets a 4xx with its code and leaves nothing behind (no row, no blob, nothing
staged); each accepted one keeps the file's bytes and its name as sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from genpon.api.context import AppContext
from genpon.api.upload import FIELD_LIMIT, _Form

from tests.records.helpers import snapshot, team_folder

BOUNDARY = "----genpon-test-7MA4YWxkTrZu0gW"


def part(name: str, value: bytes, *, filename: str | None = None, extra: str = "") -> bytes:
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n{extra}\r\n"
    return head.encode() + value + b"\r\n"


def body(*parts: bytes, close: bool = True) -> bytes:
    return b"".join(parts) + (f"--{BOUNDARY}--\r\n".encode() if close else b"")


def post(client: TestClient, auth: dict[str, str], content: bytes | Iterator[bytes]) -> Any:
    return client.post(
        "/api/v1/documents",
        content=content,
        headers={**auth, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )


def refused(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code, error
    return error  # type: ignore[no-any-return]


@pytest.fixture
def folder(ctx: AppContext) -> bytes:
    return str(team_folder(ctx)).encode()


def test_japanese_file_name_and_bytes_are_kept(client, demo, ctx, folder):
    content = "令和8年度 予算執行計画\r\n--境界もどき\r\n".encode() * 50
    r = post(
        client,
        demo.auth("tanaka"),
        body(
            part("folder_id", folder),
            part("file", content, filename="予算 計画書.txt", extra="Content-Type: text/plain\r\n"),
        ),
    )
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["filename"] == "予算 計画書.txt"
    assert doc["sha256"] == hashlib.sha256(content).hexdigest()


def test_rfc5987_file_name_is_read(client, demo, folder):
    disposition = "filename*=UTF-8''%E5%A5%91%E7%B4%84%E6%9B%B8.txt"
    r = post(
        client,
        demo.auth("tanaka"),
        body(
            part("folder_id", folder),
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; {disposition}\r\n\r\n'.encode()
            + b"text\r\n",
        ),
    )
    assert r.status_code == 201, r.text
    assert r.json()["filename"] == "契約書.txt"


def test_unknown_parts_are_ignored(client, demo, folder):
    r = post(
        client,
        demo.auth("tanaka"),
        body(
            part("comment", b"x" * (FIELD_LIMIT * 2)),
            part("folder_id", folder),
            part("file", b"content", filename="a.txt"),
        ),
    )
    assert r.status_code == 201, r.text


def test_body_arriving_in_small_pieces(client, demo, folder):
    data = body(part("folder_id", folder), part("file", b"piece by piece", filename="a.txt"))
    r = post(client, demo.auth("tanaka"), (data[i : i + 7] for i in range(0, len(data), 7)))
    assert r.status_code == 201, r.text
    assert r.json()["sha256"] == hashlib.sha256(b"piece by piece").hexdigest()


def _malformed_bodies(folder: bytes) -> dict[str, tuple[bytes, int, str]]:
    ok_file = part("file", b"content", filename="a.txt")
    return {
        "truncated": (
            body(part("folder_id", folder), ok_file, close=False),
            422,
            "malformed_multipart",
        ),
        "cut_in_file": (
            body(part("folder_id", folder), close=False)
            + f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"\r\n\r\nhalf'.encode(),
            422,
            "malformed_multipart",
        ),
        "no_name": (
            body(part("folder_id", folder), b"--" + BOUNDARY.encode() + b"\r\n\r\nx\r\n"),
            422,
            "malformed_multipart",
        ),
        "not_form_data": (
            body(
                f'--{BOUNDARY}\r\nContent-Disposition: attachment; name="file"\r\n\r\nx\r\n'.encode()
            ),
            422,
            "malformed_multipart",
        ),
        "garbage": (b"\x00\x01 not a form at all", 422, "malformed_multipart"),
        "huge_header": (
            body(part("folder_id", folder, extra=f"X-Pad: {'a' * 20000}\r\n"), ok_file),
            422,
            "malformed_multipart",
        ),
        "no_file": (body(part("folder_id", folder)), 422, "file_required"),
        "long_field": (
            body(part("title", b"a" * (FIELD_LIMIT + 1)), part("folder_id", folder), ok_file),
            422,
            "field_too_large",
        ),
        "not_utf8": (
            body(part("title", "題名".encode("shift_jis")), part("folder_id", folder), ok_file),
            422,
            "invalid_encoding",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "truncated",
        "cut_in_file",
        "no_name",
        "not_form_data",
        "garbage",
        "huge_header",
        "no_file",
        "long_field",
        "not_utf8",
    ],
)
def test_malformed_body_is_refused_and_leaves_nothing(client, demo, ctx, folder, case):
    data, status, code = _malformed_bodies(folder)[case]
    before = snapshot(ctx)
    refused(post(client, demo.auth("tanaka"), data), status, code)
    assert snapshot(ctx) == before


def test_missing_boundary_is_refused(client, demo, ctx):
    before = snapshot(ctx)
    r = client.post(
        "/api/v1/documents",
        content=b"x",
        headers={**demo.auth("tanaka"), "Content-Type": "multipart/form-data"},
    )
    assert "boundary" in refused(r, 422, "malformed_multipart")["message"]
    assert snapshot(ctx) == before


def test_body_beyond_the_limit_without_a_length_is_refused(ctx, tmp_path):
    """A chunked body (no Content-Length) is counted as it arrives: past the file's limit plus
    its framing the upload stops with 413 and the staged part is removed."""
    store = ctx.store
    form = _Form(BOUNDARY.encode(), store, 1000, "file", ())
    form.feed(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="x"\r\n\r\n'.encode())
    with pytest.raises(Exception, match="limit of 1000 bytes"):
        for _ in range(2000):
            form.feed(b"y" * 1024)
    form.abort()
    assert list(store.iter_staging()) == []


def test_file_over_the_limit_is_refused_over_http(app, demo, ctx, folder):
    ctx.settings.max_upload_bytes = 1000
    with TestClient(app) as small:
        before = snapshot(ctx)
        data = body(part("folder_id", folder), part("file", b"z" * 5000, filename="big.bin"))
        refused(post(small, demo.auth("tanaka"), iter([data])), 413, "file_too_large")
        assert snapshot(ctx) == before
