"""S3 API blob store (AWS S3, SeaweedFS, MinIO, Ceph RGW). The only module that imports boto3.

Object key of a blob: ``{prefix}blobs/{sha[:2]}/{sha}``. Uploads are spooled to a local temp file
first (``spool_dir``) while hashed, so the object can be sent with its SHA-256 and nothing is
written to the bucket before the whole upload arrived.

Write-once without overwriting:

* a HEAD first: already present => the spool file is dropped and ``put_staged`` returns False;
* the write itself is conditional (``If-None-Match: *`` on PutObject and on
  CompleteMultipartUpload); a 412 means someone stored the same content meanwhile => False.

Integrity on the way in:

* small blobs (single PUT) carry ``x-amz-checksum-sha256`` = the staged digest itself, so the
  server refuses bytes that do not hash to the object's name;
* big blobs are uploaded in parts (``multipart_threshold``) with a per-part SHA-256. The spool
  file is read once before uploading to compute the part checksums *and* the whole-file digest;
  a mismatch with the staged digest aborts. The server then verifies every part against those
  checksums, so what is stored is exactly what hashed to the name. boto3's managed transfer
  (``upload_file``) cannot do this: it accepts no ``IfNoneMatch`` and computes part checksums
  from whatever it reads, so the upload loop below is our own (parallel parts, flat memory).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import math
import os
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from genpon.storage.base import CHUNK_SIZE, BlobStore, ChecksumMismatch, StagedBlob, check_sha256

if TYPE_CHECKING:  # boto3-stubs (dev extras)
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, HeadObjectOutputTypeDef

__all__ = ["S3BlobStore"]

MiB = 1 << 20
#: Below this a blob goes up as one conditional PUT (``If-None-Match: *`` answers "already
#: stored" itself): sending it costs about what asking first would, and a HEAD before every new
#: small blob was a second request (~1.5 ms of the server's CPU each). From here up the store
#: is asked first (HEAD), so a duplicate is not uploaded again.
ASK_FIRST_FROM = 1 * MiB
_NOT_FOUND = {"404", "NoSuchKey", "NotFound", "NoSuchVersion"}
_PRECONDITION = {"412", "PreconditionFailed"}
_BAD_DIGEST = {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "InvalidChecksum"}
_MAX_PARTS = 10_000


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class _Part:
    number: int
    offset: int
    length: int
    checksum: str  # base64 SHA-256 of the part


class _FileWindow(io.RawIOBase):
    """Read-only, seekable view of ``length`` bytes of a file starting at ``offset``."""

    def __init__(self, path: Path, offset: int, length: int) -> None:
        super().__init__()
        self._f = open(path, "rb", buffering=0)  # noqa: SIM115
        self._start = offset
        self._length = length
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            new = pos
        elif whence == os.SEEK_CUR:
            new = self._pos + pos
        elif whence == os.SEEK_END:
            new = self._length + pos
        else:
            raise ValueError(f"bad whence {whence}")
        self._pos = max(0, min(new, self._length))
        return self._pos

    def readinto(self, b: Any) -> int:
        want = min(len(b), self._length - self._pos)
        if want <= 0:
            return 0
        n = os.preadv(self._f.fileno(), [memoryview(b)[:want]], self._start + self._pos)
        self._pos += n
        return n

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self._length - self._pos
        buf = bytearray(min(size, self._length - self._pos))
        n = self.readinto(buf)
        return bytes(buf[:n])

    def __len__(self) -> int:
        return self._length

    def close(self) -> None:
        self._f.close()
        super().close()


class _BodyReader(io.RawIOBase):
    """Raw stream over a botocore StreamingBody (so callers get a normal BufferedReader)."""

    def __init__(self, body: Any) -> None:
        super().__init__()
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self._body.read(len(b))
        n = len(data)
        memoryview(b)[:n] = data
        return n

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


class S3BlobStore(BlobStore):
    """Content-addressed, write-once blobs in an S3 bucket."""

    name = "s3"

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        spool_dir: Path | str | None = None,
        object_lock: bool = False,
        create_bucket: bool = True,
        *,
        multipart_threshold: int = 64 * MiB,
        multipart_chunksize: int = 16 * MiB,
        max_concurrency: int = 4,
    ) -> None:
        if multipart_chunksize < 5 * MiB:
            raise ValueError("multipart_chunksize must be at least 5 MiB (S3 minimum part size)")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint_url = endpoint_url
        self.region = region
        self.object_lock = object_lock
        self.create_bucket = create_bucket
        self.multipart_threshold = max(multipart_threshold, multipart_chunksize)
        self.multipart_chunksize = multipart_chunksize
        self.max_concurrency = max(1, max_concurrency)
        self._spool = Path(spool_dir or Path(tempfile.gettempdir()) / "genpon-spool").absolute()
        self._spool.mkdir(parents=True, exist_ok=True)
        session = boto3.session.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=region
        )
        self.client = session.client(
            "s3",
            endpoint_url=endpoint_url,
            config=Config(
                s3={"addressing_style": "path"},
                signature_version="s3v4",
                retries={"mode": "standard", "max_attempts": 5},
                max_pool_connections=max(10, 2 * self.max_concurrency),
                connect_timeout=10,
                read_timeout=120,
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        self._ready = False
        self._versioned = object_lock
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3BlobStore(bucket={self.bucket!r}, prefix={self.prefix!r}, endpoint={self.endpoint_url!r})"

    @property
    def staging_dir(self) -> Path:
        return self._spool

    # -- helpers -----------------------------------------------------------------------------

    def key(self, sha256: str) -> str:
        """Object key of a blob: ``{prefix}blobs/{sha[:2]}/{sha}``."""
        check_sha256(sha256)
        return f"{self.prefix}blobs/{sha256[:2]}/{sha256}"

    def _ensure_ready(self) -> None:
        """Create the bucket on first use (when allowed) and learn whether it keeps versions."""
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if not (_code(exc) in _NOT_FOUND or _code(exc) == "NoSuchBucket"):
                    raise
                if not self.create_bucket:
                    raise FileNotFoundError(f"S3 bucket {self.bucket!r} does not exist") from exc
                self._create_bucket()
            if self.object_lock:
                try:
                    conf = self.client.get_object_lock_configuration(Bucket=self.bucket)
                    enabled = conf.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled")
                except ClientError:
                    enabled = None
                if enabled != "Enabled":
                    raise ValueError(
                        f"s3_object_lock is on but bucket {self.bucket!r} has no Object Lock"
                    )
            else:
                status = self.client.get_bucket_versioning(Bucket=self.bucket).get("Status")
                self._versioned = status in ("Enabled", "Suspended")
            self._ready = True

    def _create_bucket(self) -> None:
        args: dict[str, Any] = {"Bucket": self.bucket}
        if self.object_lock:
            args["ObjectLockEnabledForBucket"] = True
        if self.region and self.region != "us-east-1":
            args["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self.client.create_bucket(**args)
        except ClientError as exc:
            if _code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def _head(self, sha256: str) -> HeadObjectOutputTypeDef | None:
        self._ensure_ready()
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self.key(sha256))
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND or _status(exc) == 404:
                return None
            raise

    # -- write -------------------------------------------------------------------------------

    def put_staged(self, staged: StagedBlob) -> bool:
        sha = check_sha256(staged.sha256)
        path = self._own_staged_path(staged)
        actual_size = path.stat().st_size
        if actual_size != staged.size:
            raise ChecksumMismatch(sha, f"{actual_size} bytes, expected {staged.size}")
        self._ensure_ready()
        key = self.key(sha)
        try:
            if staged.size >= ASK_FIRST_FROM and self.exists(sha):
                stored = False  # spare uploading what the store already holds
            elif staged.size < self.multipart_threshold:
                stored = self._put_single(key, staged, path)
            else:
                stored = self._put_multipart(key, staged, path)
        except ClientError as exc:
            if _code(exc) in _BAD_DIGEST:
                raise ChecksumMismatch(sha) from exc
            if _status(exc) == 409 and self._head(sha) is not None:
                stored = False  # ConditionalRequestConflict: a concurrent writer won
            else:
                raise
        path.unlink()
        return stored

    def _put_single(self, key: str, staged: StagedBlob, path: Path) -> bool:
        with open(path, "rb") as body:
            try:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body,
                    ContentLength=staged.size,
                    ChecksumSHA256=_b64(bytes.fromhex(staged.sha256)),
                    IfNoneMatch="*",
                )
            except ClientError as exc:
                if _code(exc) in _PRECONDITION or _status(exc) == 412:
                    return False
                raise
        return True

    def _part_size(self, size: int) -> int:
        part = self.multipart_chunksize
        if math.ceil(size / part) > _MAX_PARTS:
            part = math.ceil(size / _MAX_PARTS / MiB) * MiB
        return part

    def _plan_parts(self, staged: StagedBlob, path: Path) -> list[_Part]:
        """Read the spool file once: per-part SHA-256s, and the whole digest must match."""
        part_size = self._part_size(staged.size)
        parts: list[_Part] = []
        whole = hashlib.sha256()
        buf = bytearray(CHUNK_SIZE)
        view = memoryview(buf)
        with open(path, "rb", buffering=0) as f:
            offset = 0
            while offset < staged.size:
                length = min(part_size, staged.size - offset)
                h = hashlib.sha256()
                remaining = length
                while remaining:
                    n = f.readinto(view[: min(CHUNK_SIZE, remaining)])
                    if not n:
                        raise ChecksumMismatch(staged.sha256, "spool file is shorter than staged")
                    h.update(view[:n])
                    whole.update(view[:n])
                    remaining -= n
                parts.append(_Part(len(parts) + 1, offset, length, _b64(h.digest())))
                offset += length
        if whole.hexdigest() != staged.sha256:
            raise ChecksumMismatch(staged.sha256, whole.hexdigest())
        return parts

    def _put_multipart(self, key: str, staged: StagedBlob, path: Path) -> bool:
        parts = self._plan_parts(staged, path)
        upload_id = self.client.create_multipart_upload(
            Bucket=self.bucket,
            Key=key,
            ChecksumAlgorithm="SHA256",
            Metadata={"sha256": staged.sha256},
        )["UploadId"]

        def send(part: _Part) -> CompletedPartTypeDef:
            with _FileWindow(path, part.offset, part.length) as window:
                resp = self.client.upload_part(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=part.number,
                    Body=cast(BinaryIO, window),  # a seekable raw binary stream
                    ContentLength=part.length,
                    ChecksumSHA256=part.checksum,
                )
            return {
                "PartNumber": part.number,
                "ETag": resp["ETag"],
                "ChecksumSHA256": part.checksum,
            }

        try:
            with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(parts))) as pool:
                done = list(pool.map(send, parts))
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": done},
                IfNoneMatch="*",
            )
        except ClientError as exc:
            self._abort_upload(key, upload_id)
            if _code(exc) in _PRECONDITION or _status(exc) == 412:
                return False
            raise
        except BaseException:
            self._abort_upload(key, upload_id)
            raise
        return True

    def _abort_upload(self, key: str, upload_id: str) -> None:
        with contextlib.suppress(ClientError):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    # -- read / list / delete ----------------------------------------------------------------

    def exists(self, sha256: str) -> bool:
        return self._head(sha256) is not None

    def size(self, sha256: str) -> int:
        head = self._head(sha256)
        if head is None:
            raise FileNotFoundError(f"blob not found: {sha256}")
        return int(head["ContentLength"])

    def open(self, sha256: str) -> BinaryIO:
        key = self.key(sha256)
        self._ensure_ready()
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND or _status(exc) == 404:
                raise FileNotFoundError(f"blob not found: {sha256}") from exc
            raise
        return io.BufferedReader(_BodyReader(resp["Body"]), buffer_size=CHUNK_SIZE)

    def delete(self, sha256: str) -> None:
        """Remove the object; in a versioned (Object Lock) bucket every version of it."""
        key = self.key(sha256)
        if self._head(sha256) is None:
            raise FileNotFoundError(f"blob not found: {sha256}")
        try:
            if not self._versioned:
                self.client.delete_object(Bucket=self.bucket, Key=key)
                return
            paginator = self.client.get_paginator("list_object_versions")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=key):
                for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                    if item["Key"] == key:
                        self.client.delete_object(
                            Bucket=self.bucket, Key=key, VersionId=item["VersionId"]
                        )
        except ClientError as exc:
            if _code(exc) == "AccessDenied" or _status(exc) == 403:
                raise PermissionError(f"blob {sha256} is protected: {exc}") from exc
            raise

    def iter_blobs(self) -> Iterator[tuple[str, datetime]]:
        self._ensure_ready()
        base = f"{self.prefix}blobs/"
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=base):
            for obj in page.get("Contents", []):
                rest = obj["Key"][len(base) :]
                top, _, sha = rest.partition("/")
                try:
                    check_sha256(sha)
                except ValueError:
                    continue
                if top != sha[:2]:
                    continue
                yield sha, obj["LastModified"].astimezone(UTC)
