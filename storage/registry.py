"""Choose a blob store from settings; backends are imported lazily (boto3 only for ``s3``)."""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path
from typing import Any

from genpon.storage.base import BlobStore

__all__ = ["BACKENDS", "make_store"]

#: backend name -> "module:Class", imported only when chosen (like fsspec's registry)
BACKENDS: dict[str, str] = {
    "local": "genpon.storage.local:LocalBlobStore",
    "s3": "genpon.storage.s3:S3BlobStore",
}


def _backend_class(name: str) -> type[BlobStore]:
    try:
        target = BACKENDS[name]
    except KeyError:
        known = ", ".join(sorted(BACKENDS))
        raise ValueError(f"unknown storage backend {name!r} (known: {known})") from None
    module_name, _, class_name = target.partition(":")
    cls: type[BlobStore] = getattr(importlib.import_module(module_name), class_name)
    return cls


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    getter = getattr(value, "get_secret_value", None)
    return str(getter() if getter is not None else value)


def make_store(settings: Any) -> BlobStore:
    """Build the blob store described by ``settings`` (a Settings or any object with the fields).

    Reads ``storage_backend`` ("local" | "s3"), ``blob_dir`` for local, and ``s3_*`` plus
    ``spool_dir`` for S3. Missing attributes fall back to defaults, so a SimpleNamespace works.
    """
    backend = str(getattr(settings, "storage_backend", "local") or "local")
    cls = _backend_class(backend)
    if backend == "local":
        blob_dir = getattr(settings, "blob_dir", None)
        if blob_dir is None:
            raise ValueError("storage_backend 'local' needs settings.blob_dir")
        return cls(Path(blob_dir))  # type: ignore[call-arg]
    spool_dir = getattr(settings, "spool_dir", None)
    return cls(  # type: ignore[call-arg]
        bucket=getattr(settings, "s3_bucket", None) or "genpon",
        prefix=getattr(settings, "s3_prefix", None) or "",
        endpoint_url=getattr(settings, "s3_endpoint_url", None) or None,
        region=getattr(settings, "s3_region", None) or "us-east-1",
        access_key=getattr(settings, "s3_access_key", None) or None,
        secret_key=_secret(getattr(settings, "s3_secret_key", None)),
        spool_dir=Path(spool_dir) if spool_dir else Path(tempfile.gettempdir()) / "genpon-spool",
        object_lock=bool(getattr(settings, "s3_object_lock", False)),
        create_bucket=bool(getattr(settings, "s3_create_bucket", True)),
    )
