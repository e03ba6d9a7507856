"""Text extraction for the import without a new Python process per PDF or Office file.

:func:`search.extract.extract` parses PDF and OOXML in a fresh ``python -m genpon.search.extract``
child per file (a second of interpreter and parser start-up each). The import extracts
thousands of files, so each import worker keeps ONE long-lived extractor child instead
(:class:`ChildExtractor`): forked once, its own process group, its address space limited,
fed one file at a time over a pipe, with a wall-clock timeout per file. A file that times out
or kills the child (memory limit, crash) is reported ``failed`` like the search extractor
reports it, and the next file gets a fresh child. Plain text, CSV and HTML are decoded in the
calling process by the search extractor itself (no child at all).

The parsing in the child uses the search extractor's public functions with its rules
(:func:`pdf_text`, :func:`check_zip` before any OOXML parser, python-docx/openpyxl/python-pptx
and the raw-XML fallback), so the results are the search extractor's. With OCR on in the
import's settings (:func:`configure`, :func:`search.ocr.ocr_options`), scanned PDF pages and
images are OCR'd in the child as the search extractor does, each file's wait growing by its OCR
budget.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import time
from dataclasses import asdict, replace
from multiprocessing import get_context
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genpon.search.extract import (
    OCR_KINDS,
    Extraction,
    detect_kind,
    extract,
    extract_kind,
    ocr_budget,
    ocr_wait,
)
from genpon.search.ocr import OcrOptions, child_env, ocr_options

if TYPE_CHECKING:
    from genpon.core.settings import Settings

CHILD_KINDS = ("pdf", "docx", "xlsx", "pptx", "ole")
DEFAULT_TIMEOUT_S = 60.0  # as search.extract.extract without settings
DEFAULT_MEMORY_MB = 1024
DEFAULT_MAX_BYTES = 200 * 1024 * 1024


def _serve(conn: Connection, other: Connection, memory_mb: int) -> None:
    """The child: own process group (a timeout kills pdftotext with it), limited address space
    growth, one request at a time until the pipe closes."""
    other.close()  # only the parent's end: EOF here when the parent goes away, even by kill -9
    with contextlib.suppress(OSError):  # parser warnings stay out of the import's output
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    with contextlib.suppress(OSError):
        os.setpgrp()
    with contextlib.suppress(ValueError, OSError):
        with open("/proc/self/statm") as f:
            current = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = current + memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    while True:
        try:
            path, kind, timeout, ocr = conn.recv()
        except (EOFError, OSError):
            return
        if ocr is not None:
            child_env()  # Tesseract on one core
            ocr = replace(ocr, deadline=time.monotonic() + ocr_budget(ocr))
        try:
            result = extract_kind(Path(path), kind, timeout, ocr)
        except MemoryError:
            result = Extraction(None, "failed", "memory limit exceeded", None)
        except RecursionError:
            result = Extraction(None, "failed", "recursion limit (hostile structure)", None)
        except Exception as exc:
            result = Extraction(None, "failed", f"{type(exc).__name__}: {str(exc)[:300]}", None)
        try:
            conn.send(asdict(result))
        except (OSError, ValueError):
            return


class ChildExtractor:
    """One persistent extractor child (started on first use, replaced after a failure)."""

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        memory_mb: int = DEFAULT_MEMORY_MB,
        max_bytes: int = DEFAULT_MAX_BYTES,
        ocr: OcrOptions | None = None,
    ) -> None:
        self.timeout = timeout
        self.ocr = ocr  # None: OCR off (images are then unsupported, as in the search extractor)
        self.memory_mb = memory_mb
        self.max_bytes = max_bytes
        self.proc: Any = None
        self.conn: Connection | None = None
        self.started = 0  # children started (tests, diagnostics)

    def extract(self, path: Path, mime: str | None) -> Extraction:
        """Text of the file at ``path``; never raises for a bad file (see the module doc)."""
        try:
            size = path.stat().st_size
            kind = detect_kind(path, mime) if 0 < size <= self.max_bytes else None
        except Exception:
            kind = None
        if kind not in CHILD_KINDS and not (kind in OCR_KINDS and self.ocr is not None):
            return extract(path, mime)  # in-process text/HTML, or the extractor's own verdict
        try:
            return self._in_child(path, kind or "")
        except Exception as exc:  # a bad file must never break the import
            self.close()
            return Extraction(None, "failed", f"{type(exc).__name__}: {str(exc)[:300]}", None)

    def _start(self) -> None:
        ctx = get_context("fork")
        mine, theirs = ctx.Pipe()
        self.proc = ctx.Process(
            target=_serve, args=(theirs, mine, self.memory_mb), daemon=True, name="extractor"
        )
        self.proc.start()
        theirs.close()
        self.conn = mine
        self.started += 1

    def _in_child(self, path: Path, kind: str) -> Extraction:
        if self.proc is None or not self.proc.is_alive():
            self.close()
            self._start()
        assert self.conn is not None
        ocr = self.ocr if kind in OCR_KINDS else None
        wait = ocr_wait(self.timeout, ocr) if ocr is not None else self.timeout
        self.conn.send((str(path), kind, self.timeout, ocr))
        if not self.conn.poll(wait):
            self.close()
            return Extraction(None, "failed", f"timeout after {wait:g} s", None)
        try:
            data = self.conn.recv()
        except (EOFError, OSError):
            code = None
            if self.proc is not None:
                self.proc.join(1)
                code = self.proc.exitcode
            self.close()
            return Extraction(None, "failed", f"{kind}: extractor exit {code}", None)
        try:
            return Extraction(**data)
        except TypeError:
            return Extraction(None, "failed", "extractor returned garbage", None)

    def close(self) -> None:
        """Stop the child (and anything it started) now."""
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.close()
            self.conn = None
        if self.proc is not None:
            if self.proc.is_alive():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
            self.proc.join(5)
            self.proc = None


_SHARED: ChildExtractor | None = None
_SHARED_PID = 0
_OCR: OcrOptions | None = None  # the import's OCR options (configure), inherited by its workers


def configure(settings: Settings | None) -> None:
    """Take the OCR options of the import's ``settings`` (:func:`search.ocr.ocr_options`) for
    the extractors of this process and of the workers it forks from now on; call it before the
    worker pool starts."""
    global _OCR
    _OCR = ocr_options(settings)
    if _SHARED is not None:
        _SHARED.ocr = _OCR  # the options travel with each file to the child


def shared() -> ChildExtractor:
    """This process's extractor (one per import worker; a forked worker gets its own)."""
    global _SHARED, _SHARED_PID
    if _SHARED is None or os.getpid() != _SHARED_PID:
        _SHARED, _SHARED_PID = ChildExtractor(ocr=_OCR), os.getpid()
    return _SHARED
