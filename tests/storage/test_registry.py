"""make_store() picks the backend from settings and imports boto3 only for S3."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from genpon.storage import LocalBlobStore, make_store
from pydantic import SecretStr

from tests.servers import SeaweedServer, delete_bucket

REPO = Path(__file__).resolve().parents[2]


def test_local_backend(tmp_path: Path) -> None:
    store = make_store(SimpleNamespace(storage_backend="local", blob_dir=tmp_path / "b"))
    assert isinstance(store, LocalBlobStore)
    assert store.name == "local"
    assert store.root == tmp_path / "b"


def test_default_backend_is_local(tmp_path: Path) -> None:
    assert make_store(SimpleNamespace(blob_dir=tmp_path)).name == "local"


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="unknown storage backend"):
        make_store(SimpleNamespace(storage_backend="ftp", blob_dir=Path("/nonexistent")))


def test_local_backend_does_not_import_boto3(tmp_path: Path) -> None:
    code = (
        "import sys; from types import SimpleNamespace; from pathlib import Path; "
        "import genpon.storage; "
        f"genpon.storage.make_store(SimpleNamespace(storage_backend='local', blob_dir=Path({str(tmp_path)!r}))); "
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules, 'boto3 imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


@pytest.mark.s3
def test_s3_backend_from_settings(s3_server: SeaweedServer, tmp_path: Path) -> None:
    settings = SimpleNamespace(
        storage_backend="s3",
        s3_endpoint_url=s3_server.endpoint_url,
        s3_bucket=f"reg-{uuid.uuid4().hex[:16]}",
        s3_prefix="p",
        s3_region=s3_server.region,
        s3_access_key=s3_server.access_key,
        s3_secret_key=SecretStr(s3_server.secret_key),
        s3_object_lock=False,
        spool_dir=tmp_path / "spool",
    )
    store = make_store(settings)
    assert store.name == "s3"
    assert store.staging_dir == tmp_path / "spool"
    staged = store.stage([b"from settings"])
    try:
        assert store.put_staged(staged) is True
        assert store.exists(staged.sha256)
        assert store.key(staged.sha256).startswith("p/blobs/")  # type: ignore[attr-defined]
    finally:
        delete_bucket(store)  # type: ignore[arg-type]


def test_real_settings_object(tmp_path: Path) -> None:
    from genpon.core.settings import Settings

    settings = Settings(data_dir=tmp_path, storage_backend="local")
    store = make_store(settings)
    assert isinstance(store, LocalBlobStore)
    assert store.root == (tmp_path / "blobs").absolute()
