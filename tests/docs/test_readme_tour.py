"""The README's tour is executable documentation: every ```sh block of its tour sections runs,
in order, against a fresh instance, exactly as a reader would run it.

What the test does is what a reader does after ``./scripts/serve``: ``genpon init --demo`` and
``genpon serve`` (a real server process, with its indexing worker) on the embedded defaults, in
a working directory standing for the clone (data in ``var/``, ``records/`` linked to the
repository's), with the venv's ``bin`` first on ``PATH`` (``. .venv/bin/activate``) and the
demo keys that init printed exported as ``K_TANAKA``, ``K_DENSHI`` (``denshi-kessai``) …. The
reader's own files (any PDF renamed 予算要求書.pdf, 決裁文書.pdf, 決裁文書_訂正.pdf) are small
PDFs made here. Two substitutions only: the server's free port for ``127.0.0.1:8000``, and
``curl -s`` made to fail on an HTTP error status (``--fail-with-body``). A block fails the test
on a non-zero exit, an error JSON in its output, or a Python traceback.
Blocks that cannot run here are fenced ``console``/``text`` in the README (the two setup
commands, which this test stands in for).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.live import free_port

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TOUR_SECTIONS = ("Two commands", "Demo data", "A tour for each kind of user")
ERROR_JSON = re.compile(r'"error"\s*:\s*\{')

pytestmark = pytest.mark.slow


def tour_blocks(readme: str) -> list[str]:
    """The ```sh blocks of the tour sections, in order."""
    sections = re.split(r"^## ", readme, flags=re.M)
    blocks: list[str] = []
    for section in sections:
        title = section.split("\n", 1)[0].strip()
        if title in TOUR_SECTIONS:
            blocks += re.findall(r"^```sh\n(.*?)^```", section, flags=re.M | re.S)
    return blocks


def pdf(text: str) -> bytes:
    """A small valid one-page PDF showing ``text`` (ASCII)."""
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENPON_", "K_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(BIN.parent)
    env["HOME"] = str(work)  # nothing of the developer's leaks in (curl, .env)
    return env


def _wait_healthy(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"genpon serve exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("genpon serve did not become healthy")


def test_readme_tour_runs_as_written(tmp_path: Path) -> None:
    blocks = tour_blocks((REPO / "README.md").read_text(encoding="utf-8"))
    assert len(blocks) >= 6, "the tour lost its command blocks"
    work = tmp_path / "clone"
    work.mkdir()
    (work / "records").symlink_to(REPO / "records")
    env = _env(work)

    init = subprocess.run(
        ["genpon", "init", "--demo"], cwd=work, env=env, capture_output=True, text=True
    )
    assert init.returncode == 0, init.stderr
    keys = dict(re.findall(r"^\s+([a-z-]+)\s+(gp_\S+)$", init.stdout, flags=re.M))
    assert {"tanaka", "denshi-kessai", "suzuki", "yamada"} <= set(keys), init.stdout
    for login, key in keys.items():
        env["K_" + ("DENSHI" if login == "denshi-kessai" else login.upper())] = key

    (work / "予算要求書.pdf").write_bytes(pdf("Reiwa 8 budget request"))
    (work / "決裁文書.pdf").write_bytes(pdf("Approved: budget request K-000123"))
    (work / "決裁文書_訂正.pdf").write_bytes(pdf("Approved: budget request K-000123, corrected"))

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        ["genpon", "serve", "--port", str(port)],
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    outputs: list[str] = []
    try:
        _wait_healthy(base, server)
        for n, block in enumerate(blocks, 1):
            script = block.replace("http://127.0.0.1:8000", base).replace(
                "curl -s ", "curl -s --fail-with-body "
            )
            p = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", script],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            where = f"README tour block {n}:\n{block}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
            assert p.returncode == 0, where
            assert not ERROR_JSON.search(p.stdout), where
            assert "Traceback" not in p.stdout + p.stderr, where
            outputs.append(p.stdout)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()

    text = "\n".join(outputs)
    # the tour means something: the demo's past cases came due and went their ways
    assert "保留: 開示請求" in text
    assert re.search(r"伺い 1: 廃棄 2 件", text), text
    assert re.search(r"伺い 2: 移管済み 2 件", text), text
    assert "検証成功" in text and "OK:" in text
    assert (work / "管理簿.xlsx").stat().st_size > 0
    assert (work / "out").is_dir() and any((work / "out").iterdir())
