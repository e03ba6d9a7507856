"""The extraction server (search.extract_server) and its pool (search.extract_child): each file in
a process of its own, with its limits, and a broken server never loses a file."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import docx
import pytest
from genpon.search import extract_child
from genpon.search.extract import extract, extract_kind
from genpon.search.extract_child import run_in_child

from tests.search.pdfs import cjk_pdf

LINES = ["令和八年度予算要求書", "道路補修工事の契約について"]


@pytest.fixture
def pdf(tmp_path: Path) -> Path:
    path = tmp_path / "request.pdf"
    path.write_bytes(cjk_pdf(LINES))
    return path


@pytest.fixture
def word(tmp_path: Path) -> Path:
    path = tmp_path / "request.docx"
    document = docx.Document()
    for line in LINES:
        document.add_paragraph(line)
    document.save(str(path))
    return path


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _idle_server() -> extract_child._Server:
    assert extract_child._idle, "a server is kept for the next file"
    return extract_child._idle[-1]


def test_answers_equal_parsing_in_process(pdf: Path, word: Path) -> None:
    for path, kind in ((pdf, "pdf"), (word, "docx")):
        got = run_in_child(path, kind, 30.0, 512)
        assert got == extract_kind(path, kind, 30.0), kind
        assert got.status == "ok" and "予算要求書" in (got.text or "")


def test_a_file_over_its_time_is_killed_and_reported(pdf: Path) -> None:
    slow = run_in_child(pdf, "pdf", 0.000001, 512)
    assert slow.status == "failed" and slow.reason == "timeout after 1e-06 s", slow
    server = _idle_server()  # the server itself stays, and left no worker behind
    assert _children(server.proc.pid) == []
    assert run_in_child(pdf, "pdf", 30.0, 512).status == "ok"


def test_a_file_over_its_memory_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "long.docx"  # 44 KB of zip, 900,000 characters of text
    document = docx.Document()
    for _ in range(300):
        document.add_paragraph("令和八年度予算要求書" * 300)
    document.save(str(path))
    starved = run_in_child(path, "docx", 30.0, 1)  # 1 MB more than the server maps
    assert starved.status == "failed" and "memory" in (starved.reason or "").lower(), starved
    fed = run_in_child(path, "docx", 30.0, 512)  # the same file with room: the limit did it
    assert fed.status == "ok" and len(fed.text or "") > 800_000


def test_a_server_killed_while_idle_is_replaced(word: Path) -> None:
    assert run_in_child(word, "docx", 30.0, 512).status == "ok"
    dead = _idle_server()
    os.kill(dead.proc.pid, signal.SIGKILL)
    dead.proc.wait(5)
    again = run_in_child(word, "docx", 30.0, 512)
    assert again.status == "ok" and "予算要求書" in (again.text or "")
    assert dead not in extract_child._idle


def test_a_hung_server_is_killed_and_the_file_reported(
    word: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run_in_child(word, "docx", 30.0, 512).status == "ok"
    hung = _idle_server()
    os.kill(hung.proc.pid, signal.SIGSTOP)
    monkeypatch.setattr(extract_child, "SERVER_MARGIN_S", 0.5)
    started = time.monotonic()
    res = run_in_child(word, "docx", 1.0, 512)
    assert res.status == "failed" and res.reason == "timeout after 1 s", res
    assert time.monotonic() - started < 10
    assert hung.proc.poll() is not None  # killed, not left stopped
    assert run_in_child(word, "docx", 30.0, 512).status == "ok"


def test_threads_extract_at_once(pdf: Path, word: Path) -> None:
    results: list[object] = []

    def one(path: Path) -> None:
        results.append(extract(path, None))

    threads = [threading.Thread(target=one, args=(p,)) for p in (pdf, word) * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 8
    assert all(getattr(r, "status", None) == "ok" for r in results), results
    assert len(extract_child._idle) <= extract_child.MAX_IDLE
