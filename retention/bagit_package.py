"""移管 (transfer) package for the archives: a BagIt bag (RFC 8493, BagIt 1.0).

Layout::

    <bag>/
      bagit.txt
      bag-info.txt                      Source-Organization, …, Bagging-Date, Payload-Oxum
      manifest-sha256.txt  manifest-sha512.txt
      tagmanifest-sha256.txt  tagmanifest-sha512.txt
      data/
        register.csv                    行政文書ファイル管理簿 rows of what is transferred
        <document_id>/<file name>       the content, streamed
        <document_id>/metadata.json     class, case, dates, approvals, hashes, copies, payload

Why not ``bagit.make_bag``: it ``os.chdir``s into the bag (unsafe in a threaded server) and
re-reads every file to hash it. Here each content is streamed once from its source, hashed
with SHA-256 and SHA-512 while it is written, checked against the expected SHA-256 / size of
the record (a fixity check at the door), and the manifests are written from those digests.
The finished bag is then validated with the ``bagit`` library (``validate=True``) before it is
moved into place: the package either exists complete and valid, or not at all.

File names come from users and other systems and are never used as paths: see
:func:`safe_filename`. Document ids must be plain tokens (:func:`safe_document_dir`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from genpon.core.clock import DEFAULT_TIMEZONE, local_date, local_iso
from genpon.retention.register_export import write_csv

BAGIT_VERSION = "1.0"
ALGORITHMS = ("sha256", "sha512")
CHUNK_SIZE = 1024 * 1024
SOFTWARE_AGENT = "Genpon (https://example.invalid/genpon)"
METADATA_NAME = "metadata.json"
REGISTER_NAME = "register.csv"

_MAX_NAME_BYTES = 200
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"}
    | {f"COM{i}" for i in range(1, 10)}
    | {f"LPT{i}" for i in range(1, 10)}
)
_UNSAFE_CHARS = re.compile(r'[<>:"|?*]')
_DOC_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class TransferIntegrityError(ValueError):
    """A content's SHA-256 or size differs from its record: nothing is packaged."""


@dataclass(frozen=True)
class TransferItem:
    """One document to transfer.

    ``open_content`` returns a fresh binary stream of the content (it is read in chunks and
    closed by the builder). ``expected_sha256`` / ``expected_size`` are the record's values; a
    mismatch aborts the package.
    """

    document_id: str | int
    filename: str
    metadata: Mapping[str, Any]
    open_content: Callable[[], IO[bytes]]
    expected_sha256: str | None = None
    expected_size: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def safe_filename(name: str, *, fallback: str = "content") -> str:
    """A file name safe to create inside a folder on any OS, keeping what can be kept.

    Only the last path component counts (``../../etc/passwd`` → ``passwd``, ``a\\b.pdf`` →
    ``b.pdf``); NFC; control and format characters (including bidi overrides that disguise
    extensions) are dropped; ``< > : " | ? *`` become ``_``; ``%`` becomes ``％`` (BagIt
    manifests would otherwise need percent-encoding that the ``bagit`` library does not
    decode); leading dots and trailing dots/spaces are stripped; Windows device names get a
    ``_`` prefix; at most 200 UTF-8 bytes, keeping the extension. Empty → ``fallback``.
    """
    text = unicodedata.normalize("NFC", str(name))
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf"))
    text = _UNSAFE_CHARS.sub("_", text).replace("%", "％")
    text = text.lstrip(". ").rstrip(". ")
    if not text:
        return fallback
    stem, dot, ext = text.rpartition(".")
    if not dot:
        stem, ext = text, ""
    if stem.split(".")[0].upper() in _WINDOWS_RESERVED:
        text = "_" + text
        stem = "_" + stem
    if len(text.encode("utf-8")) > _MAX_NAME_BYTES:
        suffix = ("." + ext) if ext and len(ext.encode("utf-8")) <= 20 else ""
        budget = _MAX_NAME_BYTES - len(suffix.encode("utf-8"))
        base = stem if suffix else text
        cut = base.encode("utf-8")[:budget].decode("utf-8", errors="ignore")
        text = cut.rstrip(". ") + suffix
    return text or fallback


def safe_document_dir(document_id: str | int) -> str:
    """The folder name of a document: its id, which must be a plain token."""
    text = str(document_id)
    if isinstance(document_id, bool) or not _DOC_ID.match(text):
        raise ValueError(f"document id is not a plain token: {document_id!r}")
    return text


def _json_default(value: Any, timezone: str = DEFAULT_TIMEZONE) -> Any:
    """JSON for metadata.json: a timestamp in the city's time zone with its offset (a naive one,
    as SQLite gives them back, is UTC), a date as YYYY-MM-DD."""
    if isinstance(value, datetime):
        return local_iso(value, timezone)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


class _HashingWriter:
    """A binary file that hashes (SHA-256, SHA-512) and counts what is written to it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fp = open(path, "xb")  # noqa: SIM115 - closed in close()
        self._hashers = {alg: hashlib.new(alg) for alg in ALGORITHMS}
        self.size = 0

    def write(self, data: bytes) -> int:
        for h in self._hashers.values():
            h.update(data)
        self.size += len(data)
        return self._fp.write(data)

    def close(self) -> dict[str, str]:
        self._fp.flush()
        os.fsync(self._fp.fileno())
        self._fp.close()
        return {alg: h.hexdigest() for alg, h in self._hashers.items()}

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._fp.close()


@dataclass
class _Entry:
    relpath: str  # "data/…" with forward slashes
    size: int
    digests: dict[str, str]


def _write_bytes(path: Path, relpath: str, payload: bytes) -> _Entry:
    writer = _HashingWriter(path)
    try:
        writer.write(payload)
    except BaseException:
        writer.abort()
        raise
    return _Entry(relpath, writer.size, writer.close())


def _stream_content(item: TransferItem, path: Path, relpath: str, chunk_size: int) -> _Entry:
    writer = _HashingWriter(path)
    try:
        with contextlib.closing(item.open_content()) as src:
            while True:
                chunk = src.read(chunk_size)
                if not chunk:
                    break
                writer.write(chunk)
    except BaseException:
        writer.abort()
        raise
    entry = _Entry(relpath, writer.size, writer.close())
    if item.expected_size is not None and entry.size != item.expected_size:
        raise TransferIntegrityError(
            f"document {item.document_id}: size {entry.size} != recorded {item.expected_size}"
        )
    if item.expected_sha256 is not None and entry.digests["sha256"] != item.expected_sha256:
        raise TransferIntegrityError(
            f"document {item.document_id}: SHA-256 {entry.digests['sha256']} "
            f"!= recorded {item.expected_sha256}"
        )
    return entry


def _tag_value(key: str, value: Any) -> list[str]:
    if not key or ":" in key or key != key.strip() or any(c in key for c in "\r\n"):
        raise ValueError(f"invalid bag-info label: {key!r}")
    values = value if isinstance(value, (list, tuple)) else [value]
    lines = []
    for v in values:
        text = str(v)
        if "\r" in text or "\n" in text:
            raise ValueError(f"bag-info {key}: values must be one line")
        lines.append(f"{key}: {text}")
    return lines


def _manifest_text(entries: Iterable[_Entry], alg: str) -> bytes:
    lines = [f"{e.digests[alg]}  {e.relpath}\n" for e in sorted(entries, key=lambda e: e.relpath)]
    return "".join(lines).encode("utf-8")


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def build_transfer_bag(
    dest_dir: str | os.PathLike[str],
    items: Iterable[TransferItem],
    register_rows: list[dict[str, Any]],
    bag_info: Mapping[str, Any],
    *,
    validate: bool = True,
    chunk_size: int = CHUNK_SIZE,
    now: datetime | None = None,
    timezone: str = DEFAULT_TIMEZONE,
) -> Path:
    """Build a BagIt package at ``dest_dir`` (which must not exist yet) and return its path.

    The bag is assembled in a hidden sibling folder and renamed into place only once complete
    (and valid, when ``validate``); any failure removes the partial folder and re-raises.
    ``bag_info`` holds the bag-info.txt fields (Source-Organization, Contact-Name,
    External-Identifier …; a list value repeats the label); Bagging-Date, Payload-Oxum and
    Bag-Software-Agent are added. Bagging-Date is the city's date (``timezone``) and every
    timestamp in a metadata.json carries the city's offset (e.g. ``+09:00``).
    """
    dest = Path(dest_dir)
    if dest.exists():
        raise FileExistsError(f"transfer package already exists: {dest}")
    if not dest.parent.is_dir():
        raise FileNotFoundError(f"parent folder does not exist: {dest.parent}")
    staging = dest.parent / f".{dest.name}.partial-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        _assemble(
            staging,
            items,
            register_rows,
            bag_info,
            chunk_size,
            now or datetime.now(UTC),
            timezone,
        )
        if validate:
            import bagit

            bagit.Bag(str(staging)).validate()
        os.rename(staging, dest)
        _fsync_dir(dest.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dest


def _assemble(
    root: Path,
    items: Iterable[TransferItem],
    register_rows: list[dict[str, Any]],
    bag_info: Mapping[str, Any],
    chunk_size: int,
    now: datetime,
    timezone: str = DEFAULT_TIMEZONE,
) -> None:
    data = root / "data"
    data.mkdir()
    entries: list[_Entry] = []
    seen: set[str] = set()
    for item in items:
        doc_dir = safe_document_dir(item.document_id)
        if doc_dir in seen:
            raise ValueError(f"document {doc_dir} listed twice")
        seen.add(doc_dir)
        (data / doc_dir).mkdir()
        name = safe_filename(item.filename)
        if name.lower() == METADATA_NAME:
            name = "content_" + name
        rel = f"data/{doc_dir}/{name}"
        content = _stream_content(item, data / doc_dir / name, rel, chunk_size)
        entries.append(content)
        meta = {
            "document_id": item.document_id,
            **dict(item.metadata),
            **dict(item.extra),
            "payload": {
                "path": f"{doc_dir}/{name}",
                "original_filename": item.filename,
                "size": content.size,
                "sha256": content.digests["sha256"],
                "sha512": content.digests["sha512"],
            },
        }
        payload = json.dumps(
            meta,
            ensure_ascii=False,
            sort_keys=True,
            indent=2,
            default=lambda v: _json_default(v, timezone),
        ).encode("utf-8")
        entries.append(
            _write_bytes(data / doc_dir / METADATA_NAME, f"data/{doc_dir}/{METADATA_NAME}", payload)
        )

    buf = io.BytesIO()
    write_csv(register_rows, buf)
    entries.append(_write_bytes(data / REGISTER_NAME, f"data/{REGISTER_NAME}", buf.getvalue()))

    tag_entries: list[_Entry] = []
    bagit_txt = f"BagIt-Version: {BAGIT_VERSION}\nTag-File-Character-Encoding: UTF-8\n"
    tag_entries.append(_write_bytes(root / "bagit.txt", "bagit.txt", bagit_txt.encode("utf-8")))

    octets = sum(e.size for e in entries)
    info_lines: list[str] = []
    reserved = {"Bagging-Date", "Payload-Oxum", "Bag-Software-Agent"}
    for key, value in bag_info.items():
        if key in reserved:
            continue
        info_lines.extend(_tag_value(key, value))
    info_lines.append(f"Bag-Software-Agent: {SOFTWARE_AGENT}")
    info_lines.append(f"Bagging-Date: {local_date(now, timezone).isoformat()}")
    info_lines.append(f"Payload-Oxum: {octets}.{len(entries)}")
    info_txt = "".join(line + "\n" for line in info_lines).encode("utf-8")
    tag_entries.append(_write_bytes(root / "bag-info.txt", "bag-info.txt", info_txt))

    for alg in ALGORITHMS:
        name = f"manifest-{alg}.txt"
        tag_entries.append(_write_bytes(root / name, name, _manifest_text(entries, alg)))
    for alg in ALGORITHMS:
        name = f"tagmanifest-{alg}.txt"
        _write_bytes(root / name, name, _manifest_text(tag_entries, alg))
    _fsync_dir(data)
    _fsync_dir(root)
