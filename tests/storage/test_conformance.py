"""One conformance suite for every blob store backend (like fsspec's ``tests/abstract``).

Each test runs against the local filesystem store and against the S3 store on a real SeaweedFS
server (``s3`` marker). Backend-specific checks are at the end.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import random
import stat
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from genpon.storage import (
    BlobStore,
    BlobTooLarge,
    ChecksumMismatch,
    InvalidDigest,
    LocalBlobStore,
    StagedBlob,
)

MiB = 1 << 20

StoreFactory = Callable[..., BlobStore]


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """``make(**options)`` -> a fresh, empty store of the parametrized backend."""
    if backend == "local":
        counter = iter(range(1000))

        def make_local(**kwargs: Any) -> BlobStore:
            return LocalBlobStore(tmp_path / f"blobs-{next(counter)}", **kwargs)

        return make_local
    factory: StoreFactory = request.getfixturevalue("s3_store_factory")
    return factory


@pytest.fixture
def store(make_store: StoreFactory) -> BlobStore:
    return make_store()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_all(store: BlobStore, digest: str) -> bytes:
    with store.open(digest) as fh:
        return fh.read()


def flip_byte(path: Path, offset: int = 0) -> None:
    """Really change one byte of a file on disk (making it writable first if needed)."""
    path.chmod(0o644)
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))


def tamper(store: BlobStore, digest: str, data: bytes) -> None:
    """Replace the stored content behind the store's back (a real tamper, not a mock)."""
    local = store.local_path(digest)
    if local is not None:
        flip_byte(local, len(data) // 2)
        return
    corrupted = bytearray(data)
    corrupted[len(data) // 2] ^= 0xFF
    store.client.put_object(  # type: ignore[attr-defined]
        Bucket=store.bucket,  # type: ignore[attr-defined]
        Key=store.key(digest),  # type: ignore[attr-defined]
        Body=bytes(corrupted),
    )


def chunks(total: int, size: int = MiB, seed: int = 0) -> Iterator[bytes]:
    """Deterministic, non-repeating content generated a chunk at a time."""
    base = random.Random(seed).randbytes(size)
    for i in range(0, total, size):
        yield (i.to_bytes(8, "big") + base[8:])[: min(size, total - i)]


def staging_paths(store: BlobStore) -> set[Path]:
    return {p for p, _ in store.iter_staging()}


# -- staging and storing -----------------------------------------------------------------------


def test_stage_and_put_stores_content_once(store: BlobStore) -> None:
    data = os.urandom(100_000)
    staged = store.stage(io.BytesIO(data))
    assert staged.sha256 == sha(data)
    assert staged.size == len(data)
    assert staged.head == data[:8192]
    assert staged.path.is_file()
    assert staged.path in staging_paths(store)
    assert not store.exists(staged.sha256)

    assert store.put_staged(staged) is True
    assert not staged.path.exists()
    assert store.exists(staged.sha256)
    assert store.size(staged.sha256) == len(data)
    assert read_all(store, staged.sha256) == data

    # same content again, fed as an iterable of chunks: recognised, not stored twice
    again = store.stage([data[:10], data[10:5000], data[5000:]])
    assert again.sha256 == staged.sha256
    assert store.put_staged(again) is False
    assert not again.path.exists()
    assert [d for d, _ in store.iter_blobs()] == [staged.sha256]
    assert staging_paths(store) == set()


def test_push_stager_matches_hashlib(store: BlobStore) -> None:
    data = os.urandom(3 * MiB + 17)
    pieces = [data[:1], data[1:4000], data[4000 : 2 * MiB], data[2 * MiB :]]
    with store.stager() as st:
        for piece in pieces:
            st.write(memoryview(piece))
        staged = st.finish()
    assert (staged.sha256, staged.size, staged.head) == (sha(data), len(data), data[:8192])
    assert staged.path.read_bytes() == data
    assert store.put_staged(staged) is True
    assert store.hash_blob(staged.sha256) == sha(data)


def test_empty_blob(store: BlobStore) -> None:
    staged = store.stage(io.BytesIO(b""))
    assert (staged.sha256, staged.size, staged.head) == (sha(b""), 0, b"")
    assert store.put_staged(staged) is True
    assert read_all(store, sha(b"")) == b""
    assert store.size(sha(b"")) == 0


def test_distinct_contents_are_distinct_blobs(store: BlobStore) -> None:
    contents = [b"alpha", b"beta", os.urandom(70_000)]
    for c in contents:
        assert store.put_staged(store.stage(io.BytesIO(c))) is True
    for c in contents:
        assert read_all(store, sha(c)) == c
    listed = dict(store.iter_blobs())
    assert set(listed) == {sha(c) for c in contents}
    now = datetime.now(UTC)
    for stored_at in listed.values():
        assert stored_at.tzinfo is not None
        assert stored_at.utcoffset() == timedelta(0)
        assert now - timedelta(minutes=5) < stored_at < now + timedelta(minutes=5)


# -- write-once --------------------------------------------------------------------------------


def test_corrupted_second_put_of_same_hash_does_not_replace(store: BlobStore) -> None:
    data = os.urandom(50_000)
    assert store.put_staged(store.stage(io.BytesIO(data))) is True
    second = store.stage(io.BytesIO(data))
    flip_byte(second.path, 1000)  # same name, different bytes
    assert store.put_staged(second) is False
    assert not second.path.exists()
    assert read_all(store, sha(data)) == data


def test_conditional_write_when_presence_check_misses(
    store: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A concurrent writer stored the blob after our presence check: the write itself refuses."""
    data = os.urandom(40_000)
    assert store.put_staged(store.stage(io.BytesIO(data))) is True
    before = store.size(sha(data))
    monkeypatch.setattr(store, "exists", lambda digest: False)  # lose the race on purpose
    again = store.stage(io.BytesIO(data))
    assert store.put_staged(again) is False
    assert not again.path.exists()
    monkeypatch.undo()
    assert store.size(sha(data)) == before
    assert read_all(store, sha(data)) == data


def test_content_not_matching_its_name_is_refused(make_store: StoreFactory, backend: str) -> None:
    """A staged file altered after hashing must not be stored under the old name.

    S3 always verifies (the server checks the SHA-256); local only with ``verify_on_put``.
    """
    store = make_store(verify_on_put=True) if backend == "local" else make_store()
    data = os.urandom(30_000)
    staged = store.stage(io.BytesIO(data))
    flip_byte(staged.path, 5)
    with pytest.raises(ChecksumMismatch):
        store.put_staged(staged)
    assert not store.exists(staged.sha256)
    assert list(store.iter_blobs()) == []
    store.discard(staged)
    assert not staged.path.exists()


def test_staged_file_of_wrong_size_is_refused(store: BlobStore) -> None:
    staged = store.stage(io.BytesIO(b"0123456789"))
    with open(staged.path, "ab") as f:
        f.write(b"extra")
    with pytest.raises(ChecksumMismatch):
        store.put_staged(staged)
    assert not store.exists(staged.sha256)


def test_put_staged_refuses_files_outside_staging(store: BlobStore, tmp_path: Path) -> None:
    victim = tmp_path / "stage-victim.part"
    victim.write_bytes(b"not yours")
    fake = StagedBlob(sha256=sha(b"not yours"), size=9, path=victim, head=b"not yours")
    with pytest.raises(ValueError):
        store.put_staged(fake)
    with pytest.raises(ValueError):
        store.discard(fake)
    assert victim.read_bytes() == b"not yours"
    # a path that names the staging directory but leaves it again is refused too
    sneaky = Path(f"{store.staging_dir}/../{victim.name}")
    (store.staging_dir.parent / victim.name).write_bytes(b"not yours")
    fake = StagedBlob(sha256=sha(b"not yours"), size=9, path=sneaky, head=b"not yours")
    with pytest.raises(ValueError):
        store.put_staged(fake)
    with pytest.raises(ValueError):
        store.discard(fake)
    assert (store.staging_dir.parent / victim.name).read_bytes() == b"not yours"


# -- limits and aborts -------------------------------------------------------------------------


def test_blob_too_large(store: BlobStore) -> None:
    exact = store.stage(io.BytesIO(b"x" * 1000), max_bytes=1000)
    assert exact.size == 1000
    store.discard(exact)

    with pytest.raises(BlobTooLarge) as info:
        store.stage(io.BytesIO(b"x" * 1001), max_bytes=1000)
    assert info.value.limit == 1000
    assert isinstance(info.value, ValueError)
    assert staging_paths(store) == set()

    st = store.stager(max_bytes=10)
    st.write(b"12345")
    with pytest.raises(BlobTooLarge):
        st.write(b"678901")
    assert not st.path.exists()
    with pytest.raises(ValueError):
        st.write(b"more")
    assert staging_paths(store) == set()


def test_abort_removes_temp_file(store: BlobStore) -> None:
    st = store.stager()
    st.write(b"partial upload")
    assert st.path.exists()
    st.abort()
    assert not st.path.exists()
    st.abort()  # idempotent

    with pytest.raises(RuntimeError), store.stager() as st2:
        st2.write(b"client went away")
        raise RuntimeError("boom")
    assert not st2.path.exists()

    with store.stager() as st3:  # left without finish(): nothing may linger
        st3.write(b"forgotten")
    assert not st3.path.exists()
    assert staging_paths(store) == set()


def test_iter_staging_sees_leftovers(store: BlobStore) -> None:
    unfinished = store.stager()
    unfinished.write(b"half")
    finished = store.stage(io.BytesIO(b"staged but never stored"))
    leftovers = dict(store.iter_staging())
    assert set(leftovers) == {unfinished.path, finished.path}
    now = datetime.now(UTC)
    assert all(abs(now - t) < timedelta(minutes=5) for t in leftovers.values())
    unfinished.abort()
    store.discard(finished)
    store.discard(finished)  # idempotent
    assert staging_paths(store) == set()


def test_large_stream_keeps_memory_flat(store: BlobStore) -> None:
    total = 64 * MiB
    expected = hashlib.sha256()
    for c in chunks(total):
        expected.update(c)
    tracemalloc.start()
    try:
        staged = store.stage(chunks(total))
        assert store.put_staged(staged) is True
        digest = store.hash_blob(staged.sha256)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert staged.sha256 == expected.hexdigest() == digest
    assert staged.size == store.size(staged.sha256) == total
    assert peak < 16 * MiB, f"peak traced memory {peak / MiB:.1f} MiB for a 64 MiB blob"


# -- reading, listing, deleting ----------------------------------------------------------------


def test_delete_and_missing_blobs(store: BlobStore) -> None:
    data = b"to be disposed of"
    digest = sha(data)
    store.put_staged(store.stage(io.BytesIO(data)))
    store.delete(digest)
    assert not store.exists(digest)
    assert list(store.iter_blobs()) == []
    for call in (store.delete, store.open, store.size, store.hash_blob):
        with pytest.raises(FileNotFoundError):
            call(digest)
    # after disposal the same content may be deposited again
    assert store.put_staged(store.stage(io.BytesIO(data))) is True
    assert read_all(store, digest) == data


BAD_DIGESTS = [
    "",
    "abc",
    "A" * 64,
    "g" * 64,
    "0" * 63,
    "0" * 65,
    "../" + "0" * 61,
    "0" * 62 + "/x",
    " " + "0" * 63,
    "0" * 64 + "\n",
    None,
    123,
]


@pytest.mark.parametrize("bad", BAD_DIGESTS, ids=repr)
def test_invalid_digests_are_rejected(store: BlobStore, bad: Any) -> None:
    for call in (
        store.exists,
        store.open,
        store.size,
        store.delete,
        store.hash_blob,
        store.local_path,
    ):
        with pytest.raises(InvalidDigest):
            call(bad)
    fake = dataclasses.replace(store.stage(io.BytesIO(b"")), sha256=bad)
    with pytest.raises(InvalidDigest):
        store.put_staged(fake)
    store.discard(fake)
    assert staging_paths(store) == set()


def test_hash_blob_detects_a_flipped_byte(store: BlobStore) -> None:
    data = os.urandom(20_000)
    digest = sha(data)
    store.put_staged(store.stage(io.BytesIO(data)))
    assert store.hash_blob(digest) == digest
    tamper(store, digest, data)
    assert store.hash_blob(digest) != digest
    assert store.hash_blob(digest, chunk_size=4096) == store.hash_blob(digest)


def test_open_streams(store: BlobStore) -> None:
    data = os.urandom(3 * MiB)
    digest = sha(data)
    store.put_staged(store.stage(io.BytesIO(data)))
    with store.open(digest) as fh:
        first = fh.read(1000)
        buf = bytearray(MiB)
        n = fh.readinto(buf)
        rest = fh.read()
    assert first + bytes(buf[:n]) + rest == data


# -- backend specifics -------------------------------------------------------------------------


def test_local_layout_and_permissions(tmp_path: Path) -> None:
    (tmp_path / "blobs").mkdir(mode=0o755)
    (tmp_path / "blobs").chmod(0o755)  # whatever the process umask: blobs follow the root
    store = LocalBlobStore(tmp_path / "blobs")
    data = b"official original"
    digest = sha(data)
    store.put_staged(store.stage(io.BytesIO(data)))
    path = store.local_path(digest)
    assert path == tmp_path / "blobs" / digest[:2] / digest[2:4] / digest
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    kept = LocalBlobStore(private)
    kept.put_staged(kept.stage(io.BytesIO(data)))
    assert stat.S_IMODE(kept.local_path(digest).stat().st_mode) == 0o400  # owner only
    assert store.staging_dir == tmp_path / "blobs" / ".staging"
    assert store.local_path("0" * 64) is None


def test_local_redeposit_refreshes_stored_at(tmp_path: Path) -> None:
    """Re-depositing known content renews its gc grace period (stored_at)."""
    store = LocalBlobStore(tmp_path / "blobs")
    digest = sha(b"again")
    store.put_staged(store.stage(io.BytesIO(b"again")))
    path = store.local_path(digest)
    assert path is not None
    old = datetime(2020, 1, 1, tzinfo=UTC).timestamp()
    os.utime(path, (old, old))
    assert dict(store.iter_blobs())[digest].year == 2020
    assert store.put_staged(store.stage(io.BytesIO(b"again"))) is False
    assert dict(store.iter_blobs())[digest] > datetime.now(UTC) - timedelta(minutes=5)


def test_local_iter_blobs_ignores_foreign_files(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    digest = sha(b"real")
    store.put_staged(store.stage(io.BytesIO(b"real")))
    (tmp_path / "blobs" / "README").write_text("not a blob")
    (tmp_path / "blobs" / digest[:2] / digest[2:4] / "notes.txt").write_text("x")
    (tmp_path / "blobs" / "zz").mkdir()
    assert [d for d, _ in store.iter_blobs()] == [digest]


@pytest.mark.s3
def test_s3_multipart_upload(
    s3_store_factory: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = s3_store_factory(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    data = b"".join(chunks(12 * MiB + 123))
    digest = sha(data)
    staged = store.stage(io.BytesIO(data))
    assert store.put_staged(staged) is True
    assert read_all(store, digest) == data
    head = store.client.head_object(Bucket=store.bucket, Key=store.key(digest))  # type: ignore[attr-defined]
    assert head["Metadata"]["sha256"] == digest
    # losing the race ends in 412 on CompleteMultipartUpload: nothing replaced
    monkeypatch.setattr(store, "exists", lambda d: False)
    assert store.put_staged(store.stage(io.BytesIO(data))) is False
    monkeypatch.undo()
    assert store.hash_blob(digest) == digest
    uploads = store.client.list_multipart_uploads(Bucket=store.bucket)  # type: ignore[attr-defined]
    assert uploads.get("Uploads", []) == []


@pytest.mark.s3
def test_s3_multipart_refuses_spool_file_altered_after_hashing(
    s3_store_factory: StoreFactory,
) -> None:
    store = s3_store_factory(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    staged = store.stage(chunks(11 * MiB))
    flip_byte(staged.path, 7 * MiB)
    with pytest.raises(ChecksumMismatch):
        store.put_staged(staged)
    assert not store.exists(staged.sha256)
    assert staged.path.exists()  # left for the caller to discard
    store.discard(staged)


@pytest.mark.s3
def test_s3_key_layout_and_prefix(s3_store_factory: StoreFactory) -> None:
    store = s3_store_factory(prefix="/city/genpon/")
    digest = sha(b"keyed")
    assert store.key(digest) == f"city/genpon/blobs/{digest[:2]}/{digest}"  # type: ignore[attr-defined]
    store.put_staged(store.stage(io.BytesIO(b"keyed")))
    keys = [
        o["Key"]
        for o in store.client.list_objects_v2(Bucket=store.bucket)["Contents"]  # type: ignore[attr-defined]
    ]
    assert keys == [store.key(digest)]  # type: ignore[attr-defined]
    assert store.local_path(digest) is None


@pytest.mark.s3
def test_s3_requests_per_put(s3_store_factory: StoreFactory) -> None:
    """A new small blob is one conditional PUT (no HEAD first); a small duplicate is answered
    by that PUT's 412; a duplicate of 1 MiB or more is found by a HEAD and not uploaded again."""
    store = s3_store_factory()
    sent: list[str] = []
    store.client.meta.events.register(  # type: ignore[attr-defined]
        "before-call.s3", lambda model, **_: sent.append(model.name)
    )
    small, large = b"small blob", os.urandom(1 << 20)
    for data, first, again in (
        (small, ["PutObject"], ["PutObject"]),
        (large, ["HeadObject", "PutObject"], ["HeadObject"]),
    ):
        sent.clear()
        assert store.put_staged(store.stage(io.BytesIO(data))) is True
        assert [n for n in sent if n in ("HeadObject", "PutObject")] == first
        sent.clear()
        assert store.put_staged(store.stage(io.BytesIO(data))) is False
        assert [n for n in sent if n in ("HeadObject", "PutObject")] == again
        assert list(store.iter_staging()) == []


@pytest.mark.s3
def test_s3_object_lock_bucket(s3_store_factory: StoreFactory) -> None:
    store = s3_store_factory(object_lock=True)
    data = b"locked bucket"
    digest = sha(data)
    assert store.put_staged(store.stage(io.BytesIO(data))) is True
    client = store.client  # type: ignore[attr-defined]
    conf = client.get_object_lock_configuration(Bucket=store.bucket)
    assert conf["ObjectLockConfiguration"]["ObjectLockEnabled"] == "Enabled"
    assert store.put_staged(store.stage(io.BytesIO(data))) is False
    store.delete(digest)  # disposal removes every version, not just adds a delete marker
    versions = client.list_object_versions(Bucket=store.bucket, Prefix=store.key(digest))  # type: ignore[attr-defined]
    assert versions.get("Versions", []) == [] and versions.get("DeleteMarkers", []) == []
    assert not store.exists(digest)


@pytest.mark.s3
def test_s3_object_lock_requires_a_lock_enabled_bucket(s3_store_factory: StoreFactory) -> None:
    plain = s3_store_factory()
    plain.put_staged(plain.stage(io.BytesIO(b"x")))
    locked_view = s3_store_factory(bucket=plain.bucket, object_lock=True)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="Object Lock"):
        locked_view.exists(sha(b"x"))


@pytest.mark.s3
def test_s3_missing_bucket_without_create(s3_store_factory: StoreFactory) -> None:
    store = s3_store_factory(create_bucket=False)
    with pytest.raises(FileNotFoundError):
        store.exists(sha(b"x"))


def test_as_file_gives_a_real_file_of_the_blob(store: BlobStore, tmp_path: Path) -> None:
    data = os.urandom(3_000_000)
    staged = store.stage(io.BytesIO(data))
    store.put_staged(staged)
    spool = tmp_path / "spool"
    with store.as_file(staged.sha256, spool) as path:
        assert path.read_bytes() == data
    if store.local_path(staged.sha256) is None:  # a remote store: the copy is gone after use
        assert not path.exists() and list(spool.iterdir()) == []
    else:
        assert path == store.local_path(staged.sha256)
    with pytest.raises(FileNotFoundError), store.as_file("0" * 64, spool):
        pass
