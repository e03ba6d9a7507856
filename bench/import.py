"""Benchmark of ``genpon import`` against ``find … -type f -exec sha256sum`` on the same tree.

    .venv/bin/python bench/import.py [--files 20000] [--mb 2300] [--workers N] [--dir DIR]

Generates a tree (text files with duplicates and near-copies, some larger binary files), runs
the sha256sum yardstick, then imports it twice into fresh data directories (next to the tree,
under ``--dir``): with text extraction and with ``--no-text``. Prints files/s, MB/s, the ratio
to the yardstick, the peak RSS of the import (children included), its CPU time, the time per
phase and the load average (other work on the machine skews every figure).

In the same run it measures the *floor*: what any import must do with each file under the
design's flow (DESIGN.md, "Flow of a document": hashed, type sniffed with libmagic, blob written
durably), with the same number of processes and nothing else: no database, no folders, no
duplicate logic. Each file is read once, hashed (hashlib), sniffed by the deposit's own
``records.sniff.sniff`` over the same head, copied into a scratch directory, and the copies are
synced (in the background every half second, as the import does, then once at the end). Its
parts are timed alone too, so the run shows which work bounds the ratio on this machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing import get_context
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from genpon.records.sniff import sniff  # noqa: E402  (the repository on the path first)
from genpon.storage.base import CHUNK_SIZE, HEAD_SIZE  # noqa: E402


def _vocab(rnd: random.Random) -> list[str]:
    kanji = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
    kana = [chr(c) for c in range(0x3041, 0x3094)]
    words = ["".join(rnd.choices(kanji, k=rnd.randint(1, 3))) for _ in range(4000)]
    words += ["".join(rnd.choices(kana, k=rnd.randint(1, 3))) for _ in range(800)]
    return words


def _text_pool(rnd: random.Random, chars: int) -> str:
    """Pseudo-Japanese prose (words, 、。 and line breaks), sliced by every text file."""
    words = _vocab(rnd)
    out: list[str] = []
    n = 0
    while n < chars:
        sent = "".join(rnd.choices(words, k=rnd.randint(8, 30))) + rnd.choice("。。、")
        if rnd.random() < 0.2:
            sent += "\n"
        out.append(sent)
        n += len(sent)
    return "".join(out)


def make_tree(root: Path, files: int, total_mb: int, seed: int = 1) -> tuple[int, int]:
    """A share of ``files`` files totalling about ``total_mb`` MB, written with one large write
    per file from shared pools (a unique header per file keeps contents distinct):

    * 70% Japanese text (UTF-8 .txt, some Shift_JIS .txt and .html), 2-40 KB;
    * 10% exact copies of earlier files under other names and folders;
    * 5% near copies (an earlier text with a few edits);
    * 15% binary files (.bin/.dat, octet-stream) carrying the rest of the bytes.
    """
    rnd = random.Random(seed)
    pool = _text_pool(rnd, 1_500_000)
    noise = rnd.randbytes(16 << 20)
    kinds = []
    for i in range(files):
        r = rnd.random()
        kinds.append(
            "text" if r < 0.70 or i < 10 else "dup" if r < 0.80 else "near" if r < 0.85 else "bin"
        )
    n_bin = max(1, kinds.count("bin"))
    text_sizes = [rnd.randint(2_000, 40_000) for _ in range(files)]
    est_small = sum(text_sizes[i] for i, k in enumerate(kinds) if k != "bin") * 1.4
    bin_mean = max(64 << 10, int((total_mb * (1 << 20) - est_small) / n_bin))
    made_dirs: set[Path] = set()
    texts: list[int] = []  # indices of text files
    contents: dict[int, bytes] = {}  # the first 4000 small files, sources of copies
    keys: list[int] = []
    nbytes = 0
    for i, kind in enumerate(kinds):
        d = root / f"課{i % 37:02d}" / f"{2015 + (i // 37) % 9}年度"
        if i % 5 == 0:
            d = d / f"案件{(i // 5) % 3}"
        if d not in made_dirs:
            d.mkdir(parents=True, exist_ok=True)
            made_dirs.add(d)
        if kind == "bin":
            size = max(4096, int(rnd.expovariate(1 / bin_mean)))
            size = min(size, 8 * bin_mean, len(noise) - 1)
            off = rnd.randrange(0, len(noise) - size)
            data = b"GENPON-BENCH %08d\n" % i + noise[off : off + size]
            p = d / f"資料{i:06d}.{rnd.choice(('bin', 'dat'))}"
        elif kind == "dup" and contents:
            src = keys[rnd.randrange(len(keys))]
            data = contents[src]
            p = d / f"コピー{i:06d}_{src:06d}.txt"
        elif kind == "near" and texts and keys:
            src = texts[rnd.randrange(len(texts))]
            if src not in contents:
                src = keys[rnd.randrange(len(keys))]
            base = _decode(contents.get(src)) or ""
            cut = rnd.randrange(0, max(1, len(base) - 40))
            text = base[:cut] + "（修正）" + base[cut + 20 :]
            data = text.encode("utf-8")
            p = d / f"{src:06d}_最終版{i:06d}.txt"
        else:
            size = text_sizes[i] // 3
            off = rnd.randrange(0, len(pool) - size)
            text = f"文書番号 第{i}号\n件名 業務連絡{i}\n" + pool[off : off + size]
            if i % 13 == 0:
                data = (
                    "<html><body><p>" + text.replace("\n", "</p><p>") + "</p></body></html>"
                ).encode("utf-8")
                p = d / f"通知{i:06d}.html"
            elif i % 7 == 0:
                data = text.encode("shift_jis", errors="replace")
                p = d / f"旧文書{i:06d}.txt"
            else:
                data = text.encode("utf-8")
                p = d / f"文書{i:06d}.txt"
            texts.append(i)
        if kind != "bin" and len(contents) < 4000:
            contents[i] = data
            keys.append(i)
        with open(p, "wb", buffering=0) as f:
            f.write(data)
        nbytes += len(data)
    return files, nbytes


def _decode(data: bytes | None) -> str | None:
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("shift_jis", errors="replace")


def _floor_task(args: tuple[str, str | None, bool]) -> str:
    """One file treated the way every import must treat it, nothing more (see the module
    docstring): ``(path, copy to this path or None, sniff)``."""
    path, copy_to, do_sniff = args
    h = hashlib.sha256()
    head = b""
    out = os.open(copy_to, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600) if copy_to else -1
    try:
        with open(path, "rb", buffering=0) as f:
            while chunk := f.read(CHUNK_SIZE):
                if not head:
                    head = chunk[:HEAD_SIZE]
                h.update(chunk)
                if out >= 0:
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(out, view) :]
    finally:
        if out >= 0:
            os.close(out)
    if do_sniff and head:
        sniff(Path(path), head)
    return h.hexdigest()


def floor(tree: Path, scratch: Path, workers: int, *, do_sniff: bool, copy: bool) -> float:
    """Seconds the floor work (or a part of it) takes over ``tree`` with ``workers`` processes."""
    files = sorted(str(p) for p in tree.rglob("*") if p.is_file())
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    settle()
    stop = threading.Event()

    def sync_loop() -> None:
        while not stop.wait(0.5):
            os.sync()

    syncer = threading.Thread(target=sync_loop, daemon=True)
    t = time.perf_counter()
    if copy:
        syncer.start()
    tasks = [(p, str(scratch / str(i)) if copy else None, do_sniff) for i, p in enumerate(files)]
    with get_context("fork").Pool(workers) as pool:
        for _ in pool.imap_unordered(_floor_task, tasks, chunksize=64):
            pass
    if copy:
        stop.set()
        syncer.join()
        os.sync()
    dt = time.perf_counter() - t
    shutil.rmtree(scratch, ignore_errors=True)
    return dt


def settle() -> None:
    """Flush pending writeback (the generated tree, a deleted data directory) so that it is not
    charged to the next measurement."""
    os.sync()
    time.sleep(1)


def run(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=REPO, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def load() -> str:
    """The machine's load average (1, 5, 15 min): other work on it skews every figure."""
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--mb", type=int, default=2300)  # >= 2 GiB
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="genpon-bench-import-", dir=args.dir))
    try:
        tree = base / "share"
        t0 = time.perf_counter()
        nfiles, nbytes = make_tree(tree, args.files, args.mb)
        print(
            f"tree: {nfiles} files, {nbytes / 1e6:.0f} MB (generated in {time.perf_counter() - t0:.1f}s)"
        )
        run(["sh", "-c", f"find '{tree}' -type f -exec cat {{}} + > /dev/null"])  # warm cache
        settle()
        load_before = load()
        yard = run(["sh", "-c", f"find '{tree}' -type f -exec sha256sum {{}} + > /dev/null"])
        print(
            f"yardstick sha256sum: {yard:.1f}s  {nfiles / yard:.0f} files/s  "
            f"{nbytes / yard / 1e6:.0f} MB/s  (load avg {load_before} -> {load()})"
        )
        parts = (
            ("read + hash", False, False),
            ("read + hash + libmagic", True, False),
            ("read + hash + copy + sync", False, True),
            ("floor: read + hash + libmagic + copy + sync", True, True),
        )
        floor_s = 0.0
        for label, do_sniff, copy in parts:
            dt = floor(tree, base / "floor", args.workers, do_sniff=do_sniff, copy=copy)
            floor_s = dt
            print(
                f"{label} ({args.workers} processes, no database): {dt:.1f}s  ratio {yard / dt:.2f}"
            )
        for label, extra in (("with text extraction", []), ("extraction off", ["--no-text"])):
            data = base / f"data-{len(extra)}"
            env = {**os.environ, "GENPON_DATA_DIR": str(data), "GENPON_ENVIRONMENT": "test"}
            env["GENPON_CLI_USER"] = "admin"  # the import is a person's action
            run([sys.executable, "-m", "genpon.api.cli.main", "init", "--demo"], env)
            settle()
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            load_before = load()
            t = time.perf_counter()
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "genpon.api.cli.main",
                    "--json",
                    "import",
                    str(tree),
                    "--org",
                    "SOUMU-ZAISEI",
                    "--kind",
                    "shared",
                    "--workers",
                    str(args.workers),
                    *extra,
                ],
                check=True,
                env=env,
                cwd=REPO,
                capture_output=True,
                text=True,
            )
            dt = time.perf_counter() - t
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            rss = max(before.ru_maxrss, after.ru_maxrss)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            summary = json.loads(done.stdout)["summary"]
            assert summary["imported"] + summary["skipped"] == nfiles, summary
            print(
                f"import ({label}, {args.workers} workers): {dt:.1f}s  {nfiles / dt:.0f} files/s  "
                f"{nbytes / dt / 1e6:.1f} MB/s  ratio {yard / dt:.2f} (floor {yard / floor_s:.2f}, "
                f"{floor_s / dt:.0%} of floor speed)  peak RSS {rss / 1024:.0f} MB"
            )
            phases = "  ".join(f"{k} {v:.1f}s" for k, v in summary.get("phase_s", {}).items())
            print(
                f"    CPU {cpu:.1f}s (user+sys, workers included); phases: {phases}; "
                f"load avg {load_before} -> {load()}"
            )
            shutil.rmtree(data, ignore_errors=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
