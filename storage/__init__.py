"""Blob storage (保管領域): one write-once, content-addressed interface, local and S3 backends.

``make_store(settings)`` picks the backend; boto3 is imported only when ``s3`` is chosen.
"""

from genpon.storage.base import (
    BlobStore,
    BlobTooLarge,
    ChecksumMismatch,
    InvalidDigest,
    StagedBlob,
    Stager,
    check_sha256,
)
from genpon.storage.local import LocalBlobStore
from genpon.storage.registry import make_store

__all__ = [
    "BlobStore",
    "BlobTooLarge",
    "ChecksumMismatch",
    "InvalidDigest",
    "LocalBlobStore",
    "StagedBlob",
    "Stager",
    "check_sha256",
    "make_store",
]
