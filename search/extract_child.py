"""The bounded process that parses PDF, Office files and images (part of :mod:`search.extract`):
the caller's end.

A parser bug, a PDF that loops or a zip bomb must never hang or kill the caller, and one
hostile file must not affect the next. So each file is parsed in a process of its own, with
a wall-clock timeout (grown by the OCR budget when pages may be OCR'd) and an address-space
limit, in its own session, killed with everything it started (pdftotext) when it overruns.
Those processes are forked by an extraction server (:mod:`search.extract_server`) that has
the parsers imported already; :func:`run_in_child` takes an idle server from this process's
small pool (starting one when none is idle, so threads extract in parallel), sends it one
request and reads one answer.

The server enforces the file's timeout itself; this side waits a margin longer and, if the
server does not answer (it hung, or it was killed), kills it and reports the file ``failed``.
A server found dead before it took the request (killed while idle) is replaced and the
request sent again once. Servers are started with ``python -P -m
genpon.search.extract_server``: like any installed module, with no working directory or
``PYTHONPATH`` of ours on its path, and exec'd, not forked from this (threaded) process.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from typing import IO, Any

from genpon.search.extract_text import Extraction
from genpon.search.ocr import OcrOptions

SERVER_MODULE = "genpon.search.extract_server"
OCR_KINDS = ("pdf", "image")  # the kinds the child may OCR
SERVER_MARGIN_S = 15.0  # how much longer than the file's own wait we wait for the server
MAX_IDLE = 4  # servers kept per process


def ocr_budget(ocr: OcrOptions) -> float:
    """Seconds the OCR of one file may take: every page it may OCR its own timeout (the child
    stops starting pages in time, :attr:`OcrOptions.deadline`)."""
    return ocr.page_timeout_s * ocr.max_pages


def ocr_wait(timeout: float, ocr: OcrOptions) -> float:
    """How long the parent waits for a child that may OCR: ``timeout`` plus the OCR budget
    and a margin."""
    return timeout + ocr_budget(ocr) * 1.1 + 10


class _Gone(Exception):
    """The server was dead before it answered anything."""


class _Server:
    """One running extraction server and its two pipes."""

    def __init__(self) -> None:
        env = dict(os.environ)
        env.setdefault("OMP_THREAD_LIMIT", "1")  # Tesseract on one core
        self.proc = subprocess.Popen(
            [sys.executable, "-P", "-m", SERVER_MODULE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # parser warnings
            bufsize=0,
            start_new_session=True,  # a Ctrl-C to our terminal is ours to handle
            env=env,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def ask(self, request: dict[str, Any], deadline: float) -> Extraction | None:
        """The server's answer to ``request``; None when it did not answer by ``deadline``."""
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(json.dumps(request).encode("utf-8") + b"\n")
        except (BrokenPipeError, OSError) as exc:
            raise _Gone from exc
        line = _read_line(stdout, deadline)
        if line is None:
            return None
        if not line:
            raise _Gone
        return Extraction(**json.loads(line))

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(Exception):
            self.proc.wait(5)
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()


def _read_line(pipe: IO[bytes], deadline: float) -> bytes | None:
    """One line from ``pipe`` (b"" at EOF), or None when ``deadline`` passes first."""
    fd, buf = pipe.fileno(), bytearray()
    while not buf.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return None
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b""
        buf += chunk
    return bytes(buf)


_lock = threading.Lock()
_idle: list[_Server] = []


def _forget_after_fork() -> None:
    """A forked process (the import's workers) starts its own servers: the inherited ones'
    pipes are the parent's."""
    global _lock
    _lock = threading.Lock()
    _idle.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


@atexit.register
def stop_servers() -> None:
    """Stop this process's idle servers (they also exit when our end of their stdin closes)."""
    with _lock:
        servers = list(_idle)
        _idle.clear()
    for server in servers:
        server.stop()


def _take() -> _Server:
    with _lock:
        while _idle:
            server = _idle.pop()
            if server.alive():
                return server
            server.stop()
    return _Server()


def _give_back(server: _Server) -> None:
    with _lock:
        if len(_idle) < MAX_IDLE:
            _idle.append(server)
            return
    server.stop()


def run_in_child(
    path: os.PathLike[str] | str,
    kind: str,
    timeout: float,
    memory_mb: int,
    ocr: OcrOptions | None = None,
) -> Extraction:
    """``kind``'s text of the file at ``path`` from a process of its own with the limits above;
    one that times out, runs out of memory or crashes gives a ``failed`` extraction."""
    request: dict[str, Any] = {
        "path": str(path),
        "kind": kind,
        "timeout": timeout,
        "wait": timeout,
        "memory_mb": memory_mb,
        "ocr": None,
    }
    if ocr is not None and kind in OCR_KINDS:
        request["ocr"] = {**asdict(ocr), "deadline": None, "budget": ocr_budget(ocr)}
        request["wait"] = ocr_wait(timeout, ocr)
    # a server found gone before it answered (killed while idle) gets the request once more
    answer = _ask(request) or _ask(request)
    return answer or Extraction(None, "failed", f"{kind}: extractor server exited", None)


def _ask(request: dict[str, Any]) -> Extraction | None:
    """One server's answer to ``request``; None when that server was gone before answering."""
    server = _take()
    try:
        answer = server.ask(request, time.monotonic() + request["wait"] + SERVER_MARGIN_S)
    except _Gone:
        server.stop()
        return None
    except (ValueError, TypeError):
        server.stop()
        return Extraction(None, "failed", "extractor returned garbage", None)
    if answer is None:
        server.stop()
        return Extraction(None, "failed", f"timeout after {request['wait']:g} s", None)
    _give_back(server)
    return answer
