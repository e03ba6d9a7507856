"""The genpon CLI end to end in real subprocesses: one line and a non-zero exit on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli(tmp_path):
    env = {**os.environ, "GENPON_DATA_DIR": str(tmp_path / "data"), "GENPON_ENVIRONMENT": "test"}
    env["GENPON_CLI_USER"] = "admin"  # commands without --as act as this person

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        p = subprocess.run(
            [sys.executable, "-m", "genpon.api.cli.main", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if ok:
            assert p.returncode == 0, p.stderr
        return p

    return run


def test_cli_end_to_end(cli, tmp_path):
    init = cli("init", "--demo")
    assert "デモ用APIキー" in init.stdout and "gp_" in init.stdout
    again = cli("init", "--demo")  # idempotent: no new keys
    assert "gp_" not in again.stdout
    case = json.loads(
        cli(
            "--json",
            "--as",
            "tanaka",
            "case",
            "create",
            "令和8年度 予算要求",
            "--org",
            "SOUMU-ZAISEI",
            "--class",
            "B0101",
        ).stdout
    )
    f = tmp_path / "予算要求書.txt"
    f.write_text("令和8年度の予算要求書です。", encoding="utf-8")
    dep = json.loads(
        cli(
            "--json",
            "--as",
            "tanaka",
            "deposit",
            str(f),
            "--case",
            case["case_id"],
            "--approved-on",
            "2026-07-15",
            "--approver",
            "財政課長",
        ).stdout
    )
    assert dep["is_original"] and dep["status"] == "official"
    orig = cli("original", str(f))
    assert "保管されています" in orig.stdout and f"原本: 文書 {dep['id']}" in orig.stdout
    other = tmp_path / "other.txt"
    other.write_text("保管されていない", encoding="utf-8")
    miss = cli("original", str(other), ok=False)
    assert miss.returncode == 3 and "保管されていません" in miss.stdout
    shown = cli("show", str(dep["id"]))
    assert "原本" in shown.stdout
    tl = cli("case", "show", case["case_id"])
    assert "document.approved" in tl.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("deposit", "/nonexistent/file.pdf", "--case", "X"), "ファイルがありません"),
        (("case", "show", "NO-SUCH"), "case_not_found"),
        (
            ("case", "create", "t", "--org", "SOUMU-ZAISEI", "--class", "NOPE"),
            "document_class_not_found",
        ),
        (("show", "999999"), "document_not_found"),
    ],
)
def test_cli_errors_are_one_line(cli, args, needle):
    cli("init", "--demo")
    p = cli(*args, ok=False)
    assert p.returncode == 1
    assert (
        needle in p.stderr
        and len(p.stderr.strip().splitlines()) == 1
        and "Traceback" not in p.stderr
    )


def test_cli_bad_csv_lists_rows(cli, tmp_path):
    cli("init", "--demo")
    bad = tmp_path / "orgs.csv"
    bad.write_text("code,name,parent_code\nX1,課,NOPE\n,名前,\n", encoding="utf-8-sig")
    p = cli("masters", "import", "organizations", str(bad), ok=False)
    assert p.returncode == 1 and "2行目" in p.stderr and "3行目" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
