"""The genpon CLI end to end: one line and a non-zero exit on bad input.

The commands run in this process through :func:`genpon.api.cli.main.main` (the console script's
entry point, so its one-line error handling is what is tested), with stdout, stderr and the exit
code captured as a subprocess would see them. One real subprocess per file keeps the console
script itself honest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
from genpon.api.cli import common
from genpon.api.cli.main import main
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Ran:
    """What a finished command left: exit code and its two streams (like CompletedProcess)."""

    returncode: int
    stdout: str
    stderr: str


def invoke(entry: Callable[[list[str]], Any], args: Sequence[str]) -> Ran:
    """Run a console script's ``main(argv)`` in this process, as its own process would run."""
    code = 0
    umask = os.umask(0o022)  # the CLI narrows the process umask (077): give it back afterwards
    os.umask(umask)
    common.reset()  # settings and context come from this run's environment, as in a new process
    with CliRunner().isolation() as (out, err, _):
        try:
            returned = entry(list(args))
            code = returned if isinstance(returned, int) else 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.stdout.flush()  # print() and sys.stdout.write() buffer, as at a process's exit
            sys.stderr.flush()
            common.reset()  # nothing of this run (open engine, index writer) outlives it
            os.umask(umask)
        return Ran(code, out.getvalue().decode("utf-8"), err.getvalue().decode("utf-8"))


class Cli(Protocol):
    def __call__(self, *args: str, ok: bool = True) -> Ran: ...


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("GENPON_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GENPON_ENVIRONMENT", "test")
    monkeypatch.setenv("GENPON_CLI_USER", "admin")  # commands without --as act as this person
    monkeypatch.delenv("GENPON_DATABASE_URL", raising=False)

    def run(*args: str, ok: bool = True) -> Ran:
        p = invoke(main, args)
        if ok:
            assert p.returncode == 0, p.stderr
        return p

    return run


def test_cli_end_to_end(cli: Cli, tmp_path: Path) -> None:
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


def test_cli_case_register(cli: Cli) -> None:
    """``case register``: a service account registers an ID issued elsewhere (idempotent); the
    issued shape stays Genpon's (the settings' case_id_format); a clerk may not register."""
    cli("init", "--demo", "--no-history")
    args = ("case", "register", "EXT-2026-0042", "工事請負契約")
    where = ("--org", "KENSETSU-DOURO", "--class", "B0201", "--issuer", "denshi-kessai")
    first = cli("--as", "denshi-kessai", *args, *where)
    assert first.stdout.startswith("EXT-2026-0042\t登録\t"), first.stdout
    again = json.loads(cli("--json", "--as", "denshi-kessai", *args, *where).stdout)
    assert again["case_id"] == "EXT-2026-0042" and again["issuer"] == "denshi-kessai"
    assert again["folder_id"] == int(first.stdout.rsplit(" ", 1)[1])
    ours = cli(
        "--as",
        "denshi-kessai",
        "case",
        "register",
        "2026-KENSETSU-DOURO-00001",
        "t",
        *where,
        ok=False,
    )
    assert ours.returncode == 1 and "case_id_reserved" in ours.stderr
    clerk = cli("--as", "tanaka", "case", "register", "EXT-2026-0043", "t", *where, ok=False)
    assert clerk.returncode == 1 and "case_registration_forbidden" in clerk.stderr


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
def test_cli_errors_are_one_line(cli: Cli, args: tuple[str, ...], needle: str) -> None:
    cli("init", "--demo", "--no-history")
    p = cli(*args, ok=False)
    assert p.returncode == 1
    assert (
        needle in p.stderr
        and len(p.stderr.strip().splitlines()) == 1
        and "Traceback" not in p.stderr
    )


def test_cli_bad_csv_lists_rows(cli: Cli, tmp_path: Path) -> None:
    cli("init", "--demo", "--no-history")
    bad = tmp_path / "orgs.csv"
    bad.write_text("code,name,parent_code\nX1,課,NOPE\n,名前,\n", encoding="utf-8-sig")
    p = cli("masters", "import", "organizations", str(bad), ok=False)
    assert p.returncode == 1 and "2行目" in p.stderr and "3行目" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_console_script_in_a_real_process(tmp_path: Path) -> None:
    """The installed ``genpon`` script: help, and an error as one line and exit 1."""
    env = {
        **os.environ,
        "GENPON_DATA_DIR": str(tmp_path / "data"),
        "GENPON_ENVIRONMENT": "test",
        "GENPON_CLI_USER": "admin",
    }
    env.pop("GENPON_DATABASE_URL", None)
    script = Path(sys.executable).with_name("genpon")
    shown = subprocess.run(
        [str(script), "--help"], env=env, capture_output=True, text=True, timeout=120
    )
    assert shown.returncode == 0 and "deposit" in shown.stdout, shown.stderr
    bad = subprocess.run(
        [str(script), "deposit", "/nonexistent/file.pdf", "--case", "X"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.startswith("genpon: ") and bad.stderr.count("\n") == 1
    assert "ファイルがありません" in bad.stderr and "Traceback" not in bad.stderr


def test_help_imports_no_database_or_service_code() -> None:
    """``genpon --help`` lists every command without importing what the commands use: the
    command modules import their services, SQLAlchemy and the shapes inside the command
    functions, so help and the commands that need no database start quickly."""
    probe = (
        "import contextlib, io, sys\n"
        "from genpon.api.cli.main import app\n"
        "with contextlib.redirect_stdout(io.StringIO()) as shown, contextlib.suppress(SystemExit):\n"
        "    app(['--help'])\n"
        "assert 'retention' in shown.getvalue(), shown.getvalue()\n"
        "heavy = ('sqlalchemy', 'sqlmodel', 'genpon.core.settings', 'genpon.records',\n"
        "         'genpon.search', 'genpon.retention', 'genpon.migrate.service', 'genpon.api.schemas')\n"
        "print(sorted({m for m in sys.modules if m.startswith(heavy)}))\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert p.stdout.strip() == "[]", p.stdout


def test_a_context_wires_the_retention_schedule() -> None:
    """A command that closes a case imports records only; the context it builds registers the
    retention schedule (as the server's imports do), in a process that imported nothing else."""
    probe = (
        "import genpon.api.context\n"
        "from genpon.records.lifecycle import case_scheduler\n"
        "print(type(case_scheduler()).__module__)\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert p.stdout.strip() == "genpon.retention.schedule", p.stdout
