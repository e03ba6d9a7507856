"""Benchmark of ``genpon import`` against ``find … -type f -exec sha256sum`` on the same tree.

    .venv/bin/python bench/imports.py [--files 20000] [--mb 2048] [--workers N] [--dir DIR]

Generates a tree (text files with duplicates and near-copies, some larger binary files), runs
the sha256sum yardstick, then imports it twice into fresh data directories: with text
extraction and with ``--no-text``. Prints files/s, MB/s, the ratio to the yardstick and the
peak RSS of the import (children included).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_tree(root: Path, files: int, total_mb: int, seed: int = 1) -> tuple[int, int]:
    rnd = random.Random(seed)
    words = [chr(c) for c in range(0x4E00, 0x4E00 + 2000)]
    big_every = 50
    n_big = max(1, files // big_every)
    small_budget = min(total_mb * (1 << 20) // 4, files * 40_000)
    big_size = max(1 << 20, (total_mb * (1 << 20) - small_budget) // n_big)
    small_size = max(200, small_budget // max(1, files - n_big))
    nbytes = 0
    for i in range(files):
        d = root / f"課{i % 37:02d}" / f"年度{i % 5}"
        d.mkdir(parents=True, exist_ok=True)
        if i % big_every == 0:
            data = rnd.randbytes(big_size)
            p = d / f"資料{i:06d}.bin"
        elif i % 10 == 1:  # exact duplicate of an earlier small file
            src = root / f"課{(i - 10) % 37:02d}" / f"年度{(i - 10) % 5}" / f"文書{i - 10:06d}.txt"
            data = src.read_bytes() if src.exists() else b"dup"
            p = d / f"文書{i:06d}.txt"
        else:
            text = "".join(rnd.choice(words) for _ in range(small_size // 3))
            data = text.encode("utf-8")
            p = d / f"文書{i:06d}.txt"
        p.write_bytes(data)
        nbytes += len(data)
    return files, nbytes


def run(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=REPO, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--mb", type=int, default=2048)
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
        yard = run(["sh", "-c", f"find '{tree}' -type f -exec sha256sum {{}} + > /dev/null"])
        print(
            f"yardstick sha256sum: {yard:.1f}s  {nfiles / yard:.0f} files/s  {nbytes / yard / 1e6:.0f} MB/s"
        )
        for label, extra in (("with text extraction", []), ("extraction off", ["--no-text"])):
            data = base / f"data-{len(extra)}"
            env = {**os.environ, "GENPON_DATA_DIR": str(data), "GENPON_ENVIRONMENT": "test"}
            run([sys.executable, "-m", "api.cli.main", "init", "--demo"], env)
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            dt = run(
                [
                    sys.executable,
                    "-m",
                    "api.cli.main",
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
                env,
            )
            rss = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
            print(
                f"import ({label}, {args.workers} workers): {dt:.1f}s  {nfiles / dt:.0f} files/s  "
                f"{nbytes / dt / 1e6:.1f} MB/s  ratio {yard / dt:.2f}  peak RSS {rss / 1024:.0f} MB"
            )
            shutil.rmtree(data, ignore_errors=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
