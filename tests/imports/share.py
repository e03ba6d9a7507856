"""A generated legacy share with known ground truth (exact copies, renamed copies, edited
near-copies at several similarity levels, format twins from ../shared/data/ja, troublesome
entries)."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

EDIT_LEVELS = (0.02, 0.05, 0.1, 0.25, 0.5)  # fraction of lines replaced


@dataclass
class Truth:
    root: Path
    files: dict[bytes, bytes] = field(default_factory=dict)  # rel path -> content (importable)
    skipped: dict[bytes, str] = field(default_factory=dict)  # rel path -> expected reason
    twins: list[tuple[bytes, bytes]] = field(default_factory=list)  # (txt, html) rel paths
    edits: list[tuple[bytes, bytes, float]] = field(default_factory=list)

    def groups(self) -> dict[str, set[bytes]]:
        out: dict[str, set[bytes]] = {}
        for rel, data in self.files.items():
            out.setdefault(hashlib.sha256(data).hexdigest(), set()).add(rel)
        return out


def _put(truth: Truth, rel: str | bytes, data: bytes, mtime: float | None = None) -> bytes:
    raw = rel if isinstance(rel, bytes) else rel.encode("utf-8")
    path = truth.root / os.fsdecode(raw)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    truth.files[raw] = data
    return raw


def small_twins(shared: Path, n: int) -> list[str]:
    names = [p.stem for p in (shared / "ja" / "laws_html_sjis").glob("*.html")]
    names.sort(key=lambda s: (shared / "ja" / "laws" / f"{s}.txt").stat().st_size)
    return [s for s in names if (shared / "ja" / "laws" / f"{s}.txt").stat().st_size > 2500][:n]


def build_share(root: Path, shared: Path, *, twins: int = 8, seed: int = 7) -> Truth:
    rnd = random.Random(seed)
    truth = Truth(root)
    laws = shared / "ja" / "laws"
    twin_names = small_twins(shared, twins)
    others = sorted(p for p in laws.glob("law-*.txt") if p.stem not in twin_names)
    others = [p for p in others if 3000 < p.stat().st_size < 25000][:30]
    base_t = 1_500_000_000.0
    # format twins: the same law as text and as Shift_JIS HTML
    for i, name in enumerate(twin_names):
        txt = _put(truth, f"法令/{name}.txt", (laws / f"{name}.txt").read_bytes(), base_t + i)
        html = _put(
            truth,
            f"ウェブ掲載/{name}.html",
            (shared / "ja" / "laws_html_sjis" / f"{name}.html").read_bytes(),
            base_t + 100 + i,
        )
        truth.twins.append((txt, html))
    # exact copies under other names and folders (the oldest mtime is the original)
    for i, p in enumerate(others[:10]):
        data = p.read_bytes()
        _put(truth, f"総務/{p.stem}.txt", data, base_t + 1000 + i)
        _put(truth, f"個人/田中/コピー - {p.stem}.txt", data, base_t + 2000 + i)
        if i % 3 == 0:
            _put(truth, f"個人/佐藤/古い/{p.stem}_bak.txt", data, base_t + 500 + i)
    # edited near-copies at several similarity levels
    donors = others[20:30]
    for i, p in enumerate(others[10:20]):
        level = EDIT_LEVELS[i % len(EDIT_LEVELS)]
        lines = p.read_text(encoding="utf-8").splitlines(keepends=True)
        donor = donors[i].read_text(encoding="utf-8").splitlines(keepends=True)
        edited = list(lines)
        k = max(1, int(len(lines) * level))
        for j in rnd.sample(range(len(lines)), min(k, len(lines))):
            edited[j] = donor[j % len(donor)]
        a = _put(truth, f"案/{p.stem}_v2.txt", p.read_bytes(), base_t + 3000 + i)
        b = _put(truth, f"案/{p.stem}_最終.txt", "".join(edited).encode("utf-8"), base_t + 3100 + i)
        truth.edits.append((a, b, level))
    for p in donors:  # unrelated documents
        _put(truth, f"その他/{p.stem}.txt", p.read_bytes(), base_t + 4000)
    return truth


def add_troublesome(truth: Truth) -> None:
    root = truth.root
    (root / "問題").mkdir(exist_ok=True)
    (root / "問題" / "空.txt").write_bytes(b"")
    truth.skipped["問題/空.txt".encode()] = "empty_file"
    os.mkfifo(root / "問題" / "パイプ")
    truth.skipped["問題/パイプ".encode()] = "special_file"
    os.symlink("ループ", root / "問題" / "ループ")
    truth.skipped["問題/ループ".encode()] = "symlink_loop"
    os.symlink("../問題", root / "問題" / "自分自身")  # a directory loop: never followed
    truth.skipped["問題/自分自身".encode()] = "symlink"
    os.symlink("存在しない", root / "問題" / "リンク切れ")
    truth.skipped["問題/リンク切れ".encode()] = "broken_symlink"
    # Shift_JIS file name (not valid UTF-8): raw bytes kept, decoded name shown
    sjis = "旧共有/予算書.txt".encode("cp932")
    (root / os.fsdecode("旧共有".encode("cp932"))).mkdir()
    _put(truth, sjis, "シフトJISの名前のファイル".encode())
    # NFC/NFD twins in one folder: two different files
    nfc = unicodedata.normalize("NFC", "正規化/がっこう.txt")
    nfd = "正規化/" + unicodedata.normalize("NFD", "がっこう.txt")
    _put(truth, nfc, "NFC の名前".encode())
    _put(truth, nfd, "NFD の名前".encode())
    # a path longer than PATH_MAX (4096 bytes), made with directory descriptors
    comp = ("長" * 80).encode()  # 240 bytes
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    rel = b""
    for _ in range(20):
        os.mkdir(comp, dir_fd=fd)
        nfd_ = os.open(comp, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nfd_
        rel = rel + b"/" + comp if rel else comp
    wfd = os.open(b"deep.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
    os.write(wfd, "とても深い場所のファイル".encode())
    os.close(wfd)
    os.close(fd)
    truth.files[rel + b"/deep.txt"] = "とても深い場所のファイル".encode()
    assert len(str(root).encode()) + len(rel) > 4096


def add_unreadable(truth: Truth) -> bool:
    """A file the importing user cannot read (only meaningful when not root)."""
    p = truth.root / "問題" / "読めない.txt"
    p.write_bytes("秘密".encode())
    p.chmod(0)
    truth.skipped["問題/読めない.txt".encode()] = "unreadable"
    return True


def tree_state(root: Path) -> dict[bytes, tuple[int, int, int, str]]:
    """lstat and content hash of every entry (proves the source tree was not modified)."""
    out: dict[bytes, tuple[int, int, int, str]] = {}
    from genpon.migrate import walker

    rootb = os.fsencode(str(root))
    for item in walker.walk(rootb):
        digest = ""
        if item.entry_type == "file" and item.reason is None:
            with contextlib_suppress():
                digest = walker.read_stable(rootb, item.rel).sha256
        out[item.rel] = (item.size or 0, item.mtime_ns or 0, 0, digest)
    return out


class contextlib_suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


def restore_permissions(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            if not p.is_symlink() and stat.S_ISREG(p.lstat().st_mode):
                p.chmod(0o644)


def cleanup(root: Path) -> None:
    restore_permissions(root)
    shutil.rmtree(root, ignore_errors=True)
