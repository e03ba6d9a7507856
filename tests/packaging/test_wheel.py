"""The distribution as a user gets it: a wheel built from the repository, installed into a fresh
venv, exposes ``genpon`` and ``genpon_verify`` and nothing else at top level, and its commands run
from the installed copy, not from the repository.

Offline and quick: the wheel is built without build isolation (setuptools comes with the dev
extras) and installed without dependencies; the fresh venv reaches the dependencies through a
``.pth`` line naming the project venv's site-packages. A ``.pth`` line only adds a path, so the
editable install's import hook in that folder stays inactive and ``genpon`` resolves to the wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "var", "build", "*.egg-info", "__pycache__", ".*_cache", "test-artifacts"
)

pytestmark = pytest.mark.slow


def _run(
    cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, (cmd, p.stdout[-2000:], p.stderr[-2000:])
    return p


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    # a copy, so build/ and *.egg-info never land in the working tree (and workers don't collide)
    shutil.copytree(REPO, src, ignore=COPY_IGNORE)
    dist = tmp / "dist"
    _run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-index"),
            *("--no-build-isolation", "-q", "-w", str(dist), str(src)),
        ],
        cwd=tmp,
    )
    (wheel,) = dist.glob("genpon-*.whl")
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
        ).stdout.strip()
    )
    (site / "project-deps.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    _run(
        [
            *(sys.executable, "-m", "pip", "--python", str(python), "install"),
            *("--no-deps", "--no-index", "-q", str(wheel)),
        ],
        cwd=tmp,
    )
    return {"wheel": wheel, "venv": env_dir, "python": python, "site": site, "tmp": tmp}


def test_wheel_has_only_the_two_top_level_packages(installed: dict[str, Path]) -> None:
    with zipfile.ZipFile(installed["wheel"]) as z:
        names = z.namelist()
        (record,) = [n for n in names if n.endswith(".dist-info/RECORD")]
        recorded = [line.split(",")[0] for line in z.read(record).decode().splitlines()]
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"genpon", "genpon_verify"}
    assert {n.split("/")[0] for n in recorded if ".dist-info/" not in n} == top
    # the data the service reads at run time ships inside the namespace
    for needed in (
        "genpon/core/migrations/env.py",
        "genpon/search/extract.py",
        "genpon/api/cli/main.py",
    ):
        assert needed in names, needed
    assert any(n.startswith("genpon/core/migrations/versions/") for n in names)
    assert any(n.startswith("genpon/api/web/templates/") and n.endswith(".html") for n in names)
    assert not any(n.startswith(("tests/", "genpon/tests/")) for n in names)


def test_installed_copy_is_the_one_imported(installed: dict[str, Path]) -> None:
    code = (
        "import json, genpon, genpon.api.cli.main, genpon_verify\n"
        "print(json.dumps([list(genpon.__path__), genpon.api.cli.main.__file__, "
        "genpon_verify.__file__]))"
    )
    # cwd is a scratch folder: nothing of the repository is on sys.path
    paths = json.loads(_run([str(installed["python"]), "-c", code], cwd=installed["tmp"]).stdout)
    ns_paths, cli_file, verify_file = paths
    site = installed["site"].resolve()
    assert [Path(p).resolve() for p in ns_paths] == [site / "genpon"]
    assert Path(cli_file).resolve().is_relative_to(site)
    assert Path(verify_file).resolve().is_relative_to(site)
    assert not Path(cli_file).resolve().is_relative_to(REPO)


def test_console_scripts_run_from_the_install(installed: dict[str, Path]) -> None:
    bin_dir = installed["venv"] / "bin"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    genpon = _run([str(bin_dir / "genpon"), "--help"], cwd=installed["tmp"], env=env)
    assert "Genpon" in genpon.stdout and "deposit" in genpon.stdout
    verify = _run([str(bin_dir / "genpon-verify"), "--help"], cwd=installed["tmp"], env=env)
    assert "usage" in verify.stdout.lower()
    # the scripts are the venv's own: their interpreter is the fresh venv's python
    first = (bin_dir / "genpon").read_text(encoding="utf-8").splitlines()[0]
    assert first == f"#!{installed['python']}"


def test_extractor_child_runs_from_the_install(installed: dict[str, Path]) -> None:
    """The extraction server (``python -P -m genpon.search.extract_server``, which forks the
    process every PDF/Office file is parsed in) works in the installed copy."""
    import docx

    doc = docx.Document()
    doc.add_paragraph("令和8年度の予算要求書")
    path = installed["tmp"] / "request.docx"
    doc.save(str(path))
    request = {"path": str(path), "kind": "docx", "timeout": 30, "wait": 30, "memory_mb": 512}
    p = subprocess.run(
        [str(installed["python"]), "-P", "-m", "genpon.search.extract_server"],
        input=json.dumps({**request, "ocr": None}) + "\n",
        capture_output=True,
        text=True,
        cwd=installed["tmp"],
        timeout=120,
        check=True,
    )
    result = json.loads(p.stdout)
    assert result["status"] == "ok" and "予算要求書" in result["text"]
    # and as the service starts it: extract() runs that child with its limits
    code = (
        "import json, sys; from pathlib import Path; from dataclasses import asdict\n"
        "from genpon.search.extract import extract\n"
        "print(json.dumps(asdict(extract(Path(sys.argv[1]), None))))"
    )
    p = _run([str(installed["python"]), "-c", code, str(path)], cwd=installed["tmp"])
    result = json.loads(p.stdout)
    assert result["status"] == "ok" and "予算要求書" in result["text"]
