"""genpon audit … and genpon keys … run in-process (see tests/records/test_cli.py), then
genpon-verify on the export: once in a real process, the rest through its ``main(argv)``."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from genpon.api.cli.main import main

from genpon_verify.__main__ import main as verify_main
from tests.records.test_cli import Ran, invoke

REPO = Path(__file__).resolve().parents[2]


def test_cli_audit_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENPON_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GENPON_ENVIRONMENT", "test")
    monkeypatch.setenv("GENPON_CLI_USER", "admin")  # commands without --as act as this person
    monkeypatch.setenv("GENPON_CHECKPOINT_EVERY", "5")

    def run(*args: str, code: int = 0, entry: Callable[[list[str]], Any] = main) -> Ran:
        p = invoke(entry, args)
        assert p.returncode == code, (p.stdout, p.stderr)
        return p

    run("init", "--demo", "--no-history")  # exact counts: no demo past cases
    f = tmp_path / "a.txt"
    f.write_text("監査の対象になる文書", encoding="utf-8")
    run("--as", "tanaka", "deposit", str(f), "--folder", "1")
    cp = json.loads(run("--json", "audit", "checkpoint").stdout)
    assert cp["tree_size"] > 5 and cp["format"] == "genpon-checkpoint/1"
    fx = json.loads(run("--json", "--as", "yamada", "audit", "fixity", "--no-progress").stdout)
    assert fx["ok"] == 1 and fx["findings"] == []
    # bad input: one line, exit 1
    p = run("audit", "fixity", "--sample", "0", code=1)
    assert p.stderr.startswith("genpon: ") and p.stderr.count("\n") == 1
    p = run("--as", "tanaka", "audit", "fixity", code=1)
    assert "role_required" in p.stderr
    run("keys", "rotate")
    pub = run("keys", "public").stdout
    assert pub.count("BEGIN PUBLIC KEY") == 2
    out = tmp_path / "export"
    run("audit", "export", str(out))
    assert run("audit", "export", str(out), code=1).stderr.startswith("genpon: ")
    # the standalone verifier as an auditor runs it: its own process, the export and the blobs
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "genpon_verify",
            str(out),
            "--blobs",
            str(tmp_path / "data" / "blobs"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0 and ok.stdout.startswith("OK:"), (ok.stdout, ok.stderr)
    assert run("audit", "verify", str(out)).stdout.startswith("OK")
    assert run("audit", "verify").stdout.startswith("OK")
    # a tampered export file: the verifier names the event and exits 1
    lines = (out / "events.jsonl").read_text(encoding="utf-8").splitlines()
    ev = json.loads(lines[2])
    ev["actor"] = "someone"
    lines[2] = json.dumps(ev, ensure_ascii=False)
    (out / "events.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    bad = run(str(out), entry=verify_main, code=1)
    assert "最初に失敗したイベント: 3" in bad.stdout
    assert run(str(tmp_path / "nope"), entry=verify_main, code=2)
    proof = tmp_path / "proof.json"
    proof.write_text(run("audit", "proof", "2").stdout, encoding="utf-8")
    assert run(str(proof), "--keys", str(out / "keys"), entry=verify_main).stdout.startswith("OK")


def test_verifier_imports_no_project_code(tmp_path: Path) -> None:
    """genpon-verify runs with the standard library and cryptography only."""
    code = (
        "import sys, genpon_verify.__main__ as m\n"
        "m.main([sys.argv[1]])\n"
        "bad = sorted({n.split('.')[0] for n in sys.modules} & "
        "{'genpon', 'sqlalchemy', 'sqlmodel'})\n"
        "assert not bad, bad\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
