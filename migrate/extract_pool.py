"""Text extraction for the import, with the import's OCR options.

PDF and Office files are parsed as :func:`search.extract.extract` parses them: each in a process
of its own, forked by one of this process's extraction servers (:mod:`search.extract_child`,
:mod:`search.extract_server`), so thousands of files cost no interpreter start-up each, and a
file that times out, runs out of memory or crashes is reported ``failed`` and touches no
other file. Plain text, CSV and HTML are decoded in the calling process by the search extractor
itself. With OCR on in the import's settings (:func:`configure`, :func:`search.ocr.ocr_options`),
scanned PDF pages and images are OCR'd as the search extractor does, each file's wait growing by
its OCR budget.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from genpon.search.extract import OCR_KINDS, Extraction, detect_kind, extract
from genpon.search.extract_child import run_in_child, stop_servers
from genpon.search.ocr import OcrOptions, ocr_options

if TYPE_CHECKING:
    from genpon.core.settings import Settings

CHILD_KINDS = ("pdf", "docx", "xlsx", "pptx", "ole")
DEFAULT_TIMEOUT_S = 60.0  # as search.extract.extract without settings
DEFAULT_MEMORY_MB = 1024
DEFAULT_MAX_BYTES = 200 * 1024 * 1024


class ChildExtractor:
    """The import's extractor: the search extractor's rules with the import's limits and OCR
    options."""

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

    def extract(self, path: Path, mime: str | None) -> Extraction:
        """Text of the file at ``path``; never raises for a bad file (see the module doc)."""
        try:
            size = path.stat().st_size
            kind = detect_kind(path, mime) if 0 < size <= self.max_bytes else None
        except Exception:
            kind = None
        if kind not in CHILD_KINDS and not (kind in OCR_KINDS and self.ocr is not None):
            return extract(path, mime)  # in-process text/HTML, or the extractor's own verdict
        ocr = self.ocr if kind in OCR_KINDS else None
        try:
            return run_in_child(path, kind or "", self.timeout, self.memory_mb, ocr)
        except Exception as exc:  # a bad file must never break the import
            return Extraction(None, "failed", f"{type(exc).__name__}: {str(exc)[:300]}", None)

    def close(self) -> None:
        """Stop this process's idle extraction servers now (they also stop with it)."""
        stop_servers()


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
