"""The whole deposit flow on the S3 store (a real SeaweedFS), through the HTTP API."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from genpon.core.settings import Settings
from genpon.storage.context import AppContext
from genpon.storage.s3 import S3BlobStore
from pydantic import SecretStr

from tests.records.helpers import deposit, new_case, snapshot, team_folder
from tests.servers import SeaweedServer, delete_bucket

pytestmark = pytest.mark.s3


@pytest.fixture
def settings(tmp_path: Path, db_url: str, s3_server: SeaweedServer) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path / "data",
        database_url=db_url,
        storage_backend="s3",
        s3_endpoint_url=s3_server.endpoint_url,
        s3_bucket=f"dep-{uuid.uuid4().hex[:16]}",
        s3_region=s3_server.region,
        s3_access_key=s3_server.access_key,
        s3_secret_key=SecretStr(s3_server.secret_key),
    )


@pytest.fixture(autouse=True)
def _drop_bucket(ctx: AppContext) -> Iterator[None]:
    yield
    assert isinstance(ctx.store, S3BlobStore)
    delete_bucket(ctx.store)


def test_deposit_copy_download_on_s3(client, demo, ctx):
    assert ctx.store.name == "s3"
    auth = demo.auth("tanaka")
    case = new_case(client, auth)
    body = ("令和8年度 道路補修工事 契約書\n" * 5000).encode()  # ~200 KB
    r = deposit(client, auth, body, filename="契約書.txt", case_id=case["case_id"])
    assert r.status_code == 201, r.text
    doc = r.json()
    sha = hashlib.sha256(body).hexdigest()
    assert doc["sha256"] == sha and doc["is_original"]
    # the object is in the bucket under its hash, with the same bytes
    assert ctx.store.exists(sha)
    with ctx.store.open(sha) as fh:
        assert fh.read() == body
    # the same bytes elsewhere become a copy; nothing new is stored
    r2 = deposit(client, auth, body, filename="写し.txt", folder_id=team_folder(ctx))
    assert r2.status_code == 201 and not r2.json()["is_original"]
    assert [h for h, _ in ctx.store.iter_blobs()] == [sha]
    got = client.get(f"/api/v1/documents/{r2.json()['id']}/content", headers=auth)
    assert got.status_code == 200 and got.content == body


def test_rejected_upload_leaves_bucket_and_database_unchanged(client, demo, ctx):
    auth = demo.auth("tanaka")
    before = snapshot(ctx)
    r = deposit(client, auth, b"x" * 10, filename="a.txt", case_id="NO-SUCH-CASE")
    assert r.status_code == 404 and r.json()["error"]["code"] == "case_not_found"
    r = deposit(client, auth, b"", filename="empty.txt", folder_id=team_folder(ctx))
    assert r.status_code == 422 and r.json()["error"]["code"] == "empty_file"
    assert snapshot(ctx) == before
    assert before["blobs"] == [] and before["rows"]["Blob"] == 0
