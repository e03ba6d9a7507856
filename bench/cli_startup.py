"""Start-up time of the ``genpon`` command line (wall time of whole processes): prints its
figures; not a test.

Each command runs ``--runs`` times as a new process (``python -m genpon.api.cli.main``, what the
console script runs) against a data directory made once with ``genpon init --demo``. With
``--before DIR`` (a checkout of an older tree, e.g. ``git archive main | tar -x -C DIR``) the old
code runs too, alternating with this tree's run by run, so drift in the machine's load hits
both; the old tree is put first on the import path as the ``genpon`` namespace.

Usage: ``.venv/bin/python bench/cli_startup.py [--runs 7] [--before DIR]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAYERS = ("core", "storage", "records", "search", "retention", "migrate", "api")
COMMANDS: list[list[str]] = [
    ["--help"],
    ["retention", "batch", "--help"],
    ["keys", "public"],
    ["users", "list"],
    ["audit", "events", "--case", "none"],
    ["search", "予算"],
]


def namespace_of(tree: Path, into: Path) -> Path:
    """A folder holding ``genpon/<layer>`` links to ``tree``'s layers (as setup.py maps them)."""
    (into / "genpon").mkdir(parents=True)
    for layer in LAYERS:
        (into / "genpon" / layer).symlink_to(tree / layer)
    (into / "genpon_verify").symlink_to(tree / "genpon_verify")
    return into


def run(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-m", "genpon.api.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
    )
    took = time.perf_counter() - start
    if p.returncode != 0:
        raise SystemExit(f"{args}: exit {p.returncode}\n{p.stderr}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--before", type=Path, help="tree of the older code to compare with")
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GENPON_")}
        env.update(GENPON_DATA_DIR=f"{tmp}/data", GENPON_CLI_USER="admin")
        env.pop("PYTHONPATH", None)
        subprocess.run(
            [sys.executable, "-m", "genpon.api.cli.main", "init", "--demo"],
            env=env,
            check=True,
            capture_output=True,
        )
        trees = {"now": env}
        if opts.before:
            ns = namespace_of(opts.before.resolve(), Path(tmp) / "before")
            trees = {"before": {**env, "PYTHONPATH": str(ns)}, "now": env}
        print(f"{'command':40s} " + " ".join(f"{t + ' median':>13s} {'min':>6s}" for t in trees))
        for args in COMMANDS:
            times: dict[str, list[float]] = {t: [] for t in trees}
            for _ in range(opts.runs):
                for name, tree_env in trees.items():
                    times[name].append(run(args, tree_env))
            cells = " ".join(
                f"{statistics.median(ts):12.3f}s {min(ts):5.3f}s" for ts in times.values()
            )
            print(f"{'genpon ' + ' '.join(args):40s} {cells}", flush=True)


if __name__ == "__main__":
    main()
