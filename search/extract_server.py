"""The extraction fork server (抽出サーバ): a fresh process per file without a fresh interpreter.

Every PDF, Office file and image is parsed in a process of its own (:mod:`search.extract_child`
says why). Starting ``python`` and importing pypdf, pdfminer, python-docx, openpyxl and
python-pptx for each file took longer than parsing most files (about 0.3 s on a quiet machine,
a second or more under load). So :mod:`search.extract_child` keeps a few of these servers per
process, each started with ``python -P -m genpon.search.extract_server`` (exec'd, never forked
from a process with threads). A server imports the parsers once and then, for each request
line on its stdin, forks a *worker* that

- starts a session of its own (so a timeout kills it with everything it started, pdftotext),
- limits its address space to what the server already maps plus ``memory_mb``,
- is killed if the server dies (``PR_SET_PDEATHSIG``),
- parses the one file, writes one :class:`Extraction` as JSON to a pipe and exits.

The server kills a worker that outlives its wait and answers for it, so every request gets
exactly one answer line on stdout: the :class:`Extraction` as JSON. A worker shares nothing
with the next one (each is a new fork of the server, which never parses anything itself), so
a hostile file can affect only its own parse, as with a fresh interpreter.

Request (one JSON line): ``path``, ``kind``, ``timeout`` (the parsers' own), ``wait`` (how
long the worker may run; grown by the OCR budget), ``memory_mb``, ``ocr`` (the
:class:`OcrOptions` fields plus ``budget``, or null).
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import os
import select
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from genpon.search.extract import extract_kind
from genpon.search.extract_text import Extraction
from genpon.search.ocr import OcrOptions, child_env

SERVER_MODULE = "genpon.search.extract_server"
_PRELOAD = (
    "pypdf",
    "pypdf.generic",
    "pdfminer.high_level",
    "docx",
    "openpyxl",
    "pptx",
    "charset_normalizer",
    "PIL.Image",
    "pytesseract",
    "genpon.search.legacy_office",
    "genpon.search.analyzer",
)
_PR_SET_PDEATHSIG = 1


def _preload() -> None:
    for name in _PRELOAD:
        with contextlib.suppress(Exception):  # a parser that is missing fails in its worker
            importlib.import_module(name)


def _limit_memory(memory_mb: int) -> None:
    import resource

    with contextlib.suppress(ValueError, OSError):
        with open("/proc/self/statm") as f:
            mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = mapped + memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _worker(req: dict[str, Any], out: int) -> None:
    """The forked worker: never returns (``os._exit``)."""
    code = 0
    try:
        os.setsid()
        with contextlib.suppress(Exception):  # Linux: die with the server
            ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1):  # stdout is the server's answer pipe: parsers must not print on it
            os.dup2(null, fd)
        _limit_memory(int(req["memory_mb"]))
        ocr = None
        if req.get("ocr") is not None:
            child_env()  # Tesseract on one core
            raw = dict(req["ocr"])
            budget = float(raw.pop("budget"))
            ocr = OcrOptions(**{**raw, "deadline": time.monotonic() + budget})
        try:
            result = extract_kind(Path(req["path"]), req["kind"], float(req["timeout"]), ocr)
        except MemoryError:
            result = Extraction(None, "failed", "memory limit exceeded", None)
        except RecursionError:
            result = Extraction(None, "failed", "recursion limit (hostile structure)", None)
        except Exception as exc:
            result = Extraction(None, "failed", f"{type(exc).__name__}: {str(exc)[:300]}", None)
        data = json.dumps(asdict(result), ensure_ascii=False).encode("utf-8")
        view = memoryview(data)
        while view:
            view = view[os.write(out, view) :]
    except BaseException:
        code = 70
    finally:
        os._exit(code)


def _read_until(fd: int, deadline: float) -> tuple[bytes, bool]:
    """Everything written to ``fd`` until EOF, and whether the deadline passed first."""
    chunks: list[bytes] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return b"".join(chunks), True
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)


def handle(req: dict[str, Any]) -> Extraction:
    """Fork one worker for ``req`` and wait for its answer (or kill it at its deadline)."""
    wait, kind = float(req["wait"]), str(req["kind"])
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the worker (tested through its answers)
        os.close(r)
        _worker(req, w)
    os.close(w)
    try:
        data, late = _read_until(r, time.monotonic() + wait)
    finally:
        os.close(r)
    if late:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)  # anything it started and left running
    if late:
        return Extraction(None, "failed", f"timeout after {wait:g} s", None)
    try:
        return Extraction(**json.loads(data))
    except (ValueError, TypeError):
        code = os.waitstatus_to_exitcode(status)
        return Extraction(None, "failed", f"{kind}: exit {code}", None)


def serve() -> int:
    """The server loop: one request line in, one answer line out, until stdin closes."""
    _preload()
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while line := inp.readline():
        try:
            result = handle(json.loads(line))
        except Exception as exc:  # a malformed request: answer, stay up
            result = Extraction(None, "failed", f"extractor server: {type(exc).__name__}", None)
        out.write(json.dumps(asdict(result), ensure_ascii=False).encode("utf-8") + b"\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(serve())
