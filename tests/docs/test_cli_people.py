"""What the README promises people about the command line and about closing cases:

- against an uninitialized data directory every command but ``init`` refuses in one line that
  names the directory and ``genpon init``, and creates nothing there;
- no exception text or SQL reaches a person (details on stderr only with ``--debug``);
- every CLI action is a person's (``--as``, ``GENPON_CLI_USER``, or the same OS login), and the
  audit log says whose; anybody else is refused;
- closing and reopening a case is for the owning section's staff and records officers.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def genpon(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GENPON_")}
    return subprocess.run(
        [sys.executable, "-m", "genpon.api.cli.main", *args],
        cwd=cwd,
        env={**base, "GENPON_ENVIRONMENT": "test", **env},
        capture_output=True,
        text=True,
        timeout=180,
    )


def one_line(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode != 0 and p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genpon: "), p.stderr
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ("case", "show", "2026-SOUMU-ZAISEI-00001"),
        ("--as", "suzuki", "retention", "due"),
        ("keys", "public"),
        ("search", "予算"),
    ],
)
def test_uninitialized_data_dir_is_refused_and_left_alone(tmp_path, args):
    # run outside a clone, default data dir: ./var must not appear
    p = genpon(tmp_path, *args)
    line = one_line(p)
    assert str((tmp_path / "var").resolve()) in line and "genpon init" in line
    assert "[not_initialized]" in line
    assert list(tmp_path.iterdir()) == []
    # an explicit GENPON_DATA_DIR is named too, and not created
    other = tmp_path / "elsewhere"
    line = one_line(genpon(tmp_path, *args, GENPON_DATA_DIR=str(other)))
    assert str(other.resolve()) in line and not other.exists()


def test_internal_errors_name_no_internals(tmp_path):
    # a database that claims to be migrated but has no tables: the "no such table"
    data = tmp_path / "var"
    data.mkdir()
    con = sqlite3.connect(data / "genpon.db")
    con.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
    con.commit()
    con.close()
    p = genpon(tmp_path, "--as", "tanaka", "case", "show", "X")
    line = one_line(p)
    assert p.returncode == 70 and "内部エラー" in line and "--debug" in line
    for leak in ("OperationalError", "no such table", "SELECT", "sqlite", "users"):
        assert leak not in line
    for debug in (
        genpon(tmp_path, "--debug", "--as", "tanaka", "case", "show", "X"),
        genpon(tmp_path, "--as", "tanaka", "case", "show", "X", GENPON_DEBUG="1"),
    ):
        assert debug.returncode == 70 and "Traceback" in debug.stderr
        assert "no such table" in debug.stderr and debug.stdout == ""


def test_every_cli_action_is_a_persons(tmp_path):
    env = {"GENPON_DATA_DIR": str(tmp_path / "data")}
    assert genpon(tmp_path, "init", "--demo", "--no-history", **env).returncode == 0
    classes = tmp_path / "文書分類.csv"
    classes.write_bytes((REPO / "records" / "demo" / "document_classes.csv").read_bytes())
    # nobody: refused, nothing imported
    line = one_line(genpon(tmp_path, "masters", "import", "document_classes", str(classes), **env))
    assert "[actor_required]" in line and "--as" in line and "GENPON_CLI_USER" in line
    # unknown login: refused
    line = one_line(genpon(tmp_path, "--as", "nobody", "users", "list", **env))
    assert "[user_not_found]" in line
    # GENPON_CLI_USER, then --as: the log names the person, never the system (each import
    # changes a class name, so each is logged)
    original = classes.read_text(encoding="utf-8")
    classes.write_text(original.replace("予算要求・査定", "予算要求・査定（改）"), encoding="utf-8")
    ok = genpon(
        tmp_path,
        "masters",
        "import",
        "document_classes",
        str(classes),
        GENPON_CLI_USER="suzuki",
        **env,
    )
    assert ok.returncode == 0, ok.stderr
    classes.write_text(original, encoding="utf-8")
    ok = genpon(
        tmp_path, "--as", "sato", "masters", "import", "document_classes", str(classes), **env
    )
    assert ok.returncode == 0, ok.stderr
    events = json.loads(
        genpon(
            tmp_path,
            "--json",
            "--as",
            "yamada",
            "audit",
            "events",
            "--action",
            "master.imported",
            **env,
        ).stdout
    )
    rows = events["items"]
    actors = [e["actor"] for e in rows]
    assert "suzuki" in actors and "sato" in actors, actors
    # the demo's own master import is init's, the one action the system may take
    assert set(actors) <= {"system", "suzuki", "sato"}
    assert actors.count("system") == 3


def test_who_may_close_and_reopen_a_case(client, demo):
    from tests.records.helpers import new_case

    r = client.post(
        "/api/v1/cases",
        json={
            "title": "予算要求（道路課と共同）",
            "organization_code": "SOUMU-ZAISEI",
            "class_code": "B0101",
            "members": ["ito"],
        },
        headers=demo.auth("tanaka"),
    )
    assert r.status_code == 201, r.text
    case_id = r.json()["case_id"]

    def act(login: str, verb: str) -> tuple[int, str | None]:
        r = client.post(f"/api/v1/cases/{case_id}/{verb}", headers=demo.auth(login))
        return r.status_code, r.json().get("error", {}).get("code")

    # a member from another section deposits, but does not close: the refusal says why
    r = client.post(f"/api/v1/cases/{case_id}/close", headers=demo.auth("ito"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "case_close_forbidden"
    assert "完結" in r.json()["error"]["message"]
    assert act("yamada", "close") == (403, "case_close_forbidden")  # auditors only read
    assert act("kobayashi", "close") == (404, "case_not_found")  # cannot even see it
    assert act("takahashi", "close") == (200, None)  # the owning section's staff
    assert act("ito", "reopen") == (403, "case_close_forbidden")
    assert act("suzuki", "reopen") == (200, None)  # a records officer, any organization
    assert act("suzuki", "close") == (200, None)
    other = new_case(client, demo.auth("ito"), org="KENSETSU-DOURO", cls="D0102")
    r = client.post(f"/api/v1/cases/{other['case_id']}/close", headers=demo.auth("sato"))
    assert r.status_code == 200
