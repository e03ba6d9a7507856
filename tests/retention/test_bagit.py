"""Transfer (移管) package: a valid BagIt bag, streamed, with safe names."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import IO

import bagit
import pytest
from genpon.retention.bagit_package import (
    TransferIntegrityError,
    TransferItem,
    build_transfer_bag,
    safe_filename,
)

BAG_INFO = {
    "Source-Organization": "架空市 総務部総務課",
    "Contact-Name": "文書 管理子",
    "External-Identifier": "TR-2032-0001",
}
REGISTER_ROWS: list[dict[str, object]] = [
    {
        "fiscal_year": 2026,
        "class_large": "総務",
        "class_medium": "議会",
        "class_small": "議案",
        "title": "議案第1号",
        "organization": "総務部総務課",
        "retention_start": date(2027, 4, 1),
        "retention": "5",
        "retention_end": date(2032, 3, 31),
        "disposition": "transfer",
    }
]


class CountingStream(io.RawIOBase):
    """Generates ``size`` bytes on demand and records the largest read: proves streaming."""

    def __init__(self, size: int, seed: bytes) -> None:
        self.remaining = size
        self.block = (seed * (4096 // len(seed) + 1))[:4096]
        self.offset = 0
        self.max_read = 0
        self.closed_by_builder = False

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            raise AssertionError("builder must read in chunks, not the whole stream")
        self.max_read = max(self.max_read, n)
        n = min(n, self.remaining)
        out = bytearray()
        while len(out) < n:
            take = min(n - len(out), len(self.block) - self.offset)
            out += self.block[self.offset : self.offset + take]
            self.offset = (self.offset + take) % len(self.block)
        self.remaining -= n
        return bytes(out)

    def close(self) -> None:
        self.closed_by_builder = True
        super().close()


def _bytes_item(doc_id: int, name: str, content: bytes, **kw: object) -> TransferItem:
    meta = {
        "title": f"文書{doc_id}",
        "class": {"code": "01-02-03", "name": "議案", "retention": "5", "disposition": "transfer"},
        "case": {"case_id": "2026-SOUMU-00001", "title": "議案の提出", "closed_on": "2026-07-15"},
        "dates": {"retention_start": date(2027, 4, 1), "retention_end": date(2032, 3, 31)},
        "approvals": [{"approved_on": date(2026, 7, 1), "approvers": ["市長", "副市長"]}],
        "hashes": {"sha256": hashlib.sha256(content).hexdigest()},
        "copies": [{"document_id": doc_id + 1000, "folder": "総務課/共有"}],
    }
    opener: Callable[[], IO[bytes]] = lambda: io.BytesIO(content)  # noqa: E731
    return TransferItem(doc_id, name, meta, opener, **kw)  # type: ignore[arg-type]


def test_bag_validates_with_both_manifests(tmp_path: Path) -> None:
    contents = {1: "議案第1号の本文".encode(), 2: b"%PDF-1.7 fake", 3: b""}
    items = [
        _bytes_item(1, "議案第1号.txt", contents[1], expected_sha256=None),
        _bytes_item(
            2,
            "../../etc/passwd",
            contents[2],
            expected_sha256=hashlib.sha256(contents[2]).hexdigest(),
            expected_size=len(contents[2]),
        ),
        _bytes_item(3, "metadata.json", contents[3]),
    ]
    dest = build_transfer_bag(tmp_path / "bag", items, REGISTER_ROWS, BAG_INFO)
    bag = bagit.Bag(str(dest))
    bag.validate()  # raises BagValidationError if anything is off
    assert bag.version_info == (1, 0)
    assert set(bag.algorithms) == {"sha256", "sha512"}
    for alg in ("sha256", "sha512"):
        assert (dest / f"manifest-{alg}.txt").is_file()
        assert (dest / f"tagmanifest-{alg}.txt").is_file()
    # layout
    assert (dest / "data/1/議案第1号.txt").read_bytes() == contents[1]
    assert (dest / "data/2/passwd").read_bytes() == contents[2]  # path stripped: stays inside
    assert not (tmp_path / "etc").exists()
    assert (dest / "data/3/content_metadata.json").read_bytes() == b""
    payload = sorted(bag.payload_files())
    assert payload == sorted(
        [
            "data/1/議案第1号.txt", "data/1/metadata.json", "data/2/passwd",
            "data/2/metadata.json", "data/3/content_metadata.json", "data/3/metadata.json",
            "data/register.csv",
        ]
    )  # fmt: skip
    # bag-info
    assert bag.info["Source-Organization"] == "架空市 総務部総務課"
    total = sum((dest / p).stat().st_size for p in payload)
    assert bag.info["Payload-Oxum"] == f"{total}.{len(payload)}"
    assert "Bagging-Date" in bag.info
    # manifest entries match the content
    assert bag.entries["data/1/議案第1号.txt"]["sha512"] == hashlib.sha512(contents[1]).hexdigest()
    # metadata per document
    meta = json.loads((dest / "data/2/metadata.json").read_text("utf-8"))
    assert meta["document_id"] == 2
    assert meta["class"]["code"] == "01-02-03"
    assert meta["case"]["case_id"] == "2026-SOUMU-00001"
    assert meta["dates"] == {"retention_start": "2027-04-01", "retention_end": "2032-03-31"}
    assert meta["approvals"][0]["approvers"] == ["市長", "副市長"]
    assert meta["copies"][0]["document_id"] == 1002
    assert meta["payload"]["original_filename"] == "../../etc/passwd"
    assert meta["payload"]["path"] == "2/passwd"
    assert meta["payload"]["sha256"] == hashlib.sha256(contents[2]).hexdigest()
    assert meta["payload"]["size"] == len(contents[2])
    # register rows
    raw = (dest / "data/register.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert table[1][4] == "議案第1号" and table[1][12] == "移管"
    # no staging folder left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bag"]


def test_tampering_is_detected_by_bagit(tmp_path: Path) -> None:
    dest = build_transfer_bag(tmp_path / "bag", [_bytes_item(7, "a.txt", b"abc")], [], {})
    (dest / "data/7/a.txt").write_bytes(b"abd")
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(dest)).validate()


def test_content_is_streamed_in_chunks(tmp_path: Path) -> None:
    size = 5 * 1024 * 1024 + 123
    streams: list[CountingStream] = []

    def opener() -> IO[bytes]:
        s = CountingStream(size, b"genpon-")
        streams.append(s)
        return s  # type: ignore[return-value]

    item = TransferItem("big-1", "big.bin", {"title": "big"}, opener)
    dest = build_transfer_bag(tmp_path / "bag", [item], [], {}, chunk_size=64 * 1024)
    assert (dest / "data/big-1/big.bin").stat().st_size == size
    assert len(streams) == 1
    assert streams[0].max_read == 64 * 1024
    assert streams[0].closed_by_builder
    bagit.Bag(str(dest)).validate()


def test_hash_mismatch_aborts_and_leaves_nothing(tmp_path: Path) -> None:
    good = _bytes_item(1, "a.txt", b"a")
    bad = _bytes_item(2, "b.txt", b"tampered", expected_sha256="0" * 64)
    with pytest.raises(TransferIntegrityError):
        build_transfer_bag(tmp_path / "bag", [good, bad], [], {})
    assert list(tmp_path.iterdir()) == []
    wrong_size = _bytes_item(3, "c.txt", b"abc", expected_size=4)
    with pytest.raises(TransferIntegrityError):
        build_transfer_bag(tmp_path / "bag", [wrong_size], [], {})
    assert list(tmp_path.iterdir()) == []


def test_refuses_existing_destination_duplicates_and_bad_ids(tmp_path: Path) -> None:
    (tmp_path / "bag").mkdir()
    with pytest.raises(FileExistsError):
        build_transfer_bag(tmp_path / "bag", [], [], {})
    for items in (
        [_bytes_item(1, "a", b"1"), _bytes_item(1, "b", b"2")],
        [TransferItem("../x", "a", {}, lambda: io.BytesIO(b""))],
    ):
        with pytest.raises(ValueError):
            build_transfer_bag(tmp_path / "other", items, [], {})
        assert not (tmp_path / "other").exists()
    with pytest.raises(ValueError):
        build_transfer_bag(tmp_path / "other", [], [], {"Bad-Label": "two\nlines"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bag"]


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("議案第1号.pdf", "議案第1号.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\予算書.xlsx", "予算書.xlsx"),
        ("..", "content"),
        ("", "content"),
        (".htaccess", "htaccess"),
        ("a\r\nb\x00.txt", "ab.txt"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),  # bidi override removed
        ('what?<>:"|*.txt', "what_______.txt"),
        ("100%.pdf", "100％.pdf"),
        ("CON.txt", "_CON.txt"),
        ("name. ", "name"),
        ("カ\u3099.txt", "ガ.txt"),  # decomposed (NFD) → NFC
    ],
)
def test_safe_filename(raw: str, safe: str) -> None:
    assert safe_filename(raw) == safe


def test_safe_filename_truncates_keeping_extension() -> None:
    name = safe_filename("長" * 300 + ".pdf")
    assert name.endswith(".pdf")
    assert len(name.encode("utf-8")) <= 200
    assert name.startswith("長")


def test_odd_names_still_validate(tmp_path: Path) -> None:
    items = [
        _bytes_item(1, "100%.pdf", b"x"),
        _bytes_item(2, "a\nb.txt", b"y"),
        _bytes_item(3, "カ\u3099キ\u3099.txt", b"z"),  # decomposed: normalized to NFC
    ]
    dest = build_transfer_bag(tmp_path / "bag", items, REGISTER_ROWS, {})
    bagit.Bag(str(dest)).validate()
    assert (dest / "data/1/100％.pdf").exists()
    assert (dest / "data/3/ガギ.txt").read_bytes() == b"z"
