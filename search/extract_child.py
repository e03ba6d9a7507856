"""The bounded child process that parses PDF, Office files and images (part of
:mod:`search.extract`): both ends of its pipe.

The parent (:func:`run_in_child`) starts ``python -P -m genpon.search.extract <path> <kind>
<timeout> [<ocr options as JSON>]`` in its own process group (a timeout kills it with everything
it started, e.g. pdftotext) with its address space limited (``RLIMIT_AS``) and waits at most the
timeout, grown by the OCR budget when pages may be OCR'd. The child (:func:`child_main`) writes
one :class:`Extraction` as JSON to stdout. The child imports ``genpon.search.extract`` like any
installed module: no working directory or ``PYTHONPATH`` of ours (that would put ``core``,
``records``, ``search`` … on its path as bare top-level names), and ``-P`` keeps the caller's
working directory off ``sys.path`` too.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from genpon.search.extract_text import Extraction
from genpon.search.ocr import OcrOptions

CHILD_MODULE = "genpon.search.extract"  # run with python -m; its __main__ calls child_main

OCR_KINDS = ("pdf", "image")  # the kinds the child may OCR

ExtractKind = Callable[[Path, str, float, OcrOptions | None], Extraction]


def ocr_budget(ocr: OcrOptions) -> float:
    """Seconds the OCR of one file may take: every page it may OCR its own timeout (the child
    stops starting pages in time, :attr:`OcrOptions.deadline`)."""
    return ocr.page_timeout_s * ocr.max_pages


def ocr_wait(timeout: float, ocr: OcrOptions) -> float:
    """How long the parent waits for a child that may OCR: ``timeout`` plus the OCR budget
    and a margin."""
    return timeout + ocr_budget(ocr) * 1.1 + 10


def _limit_memory(mb: int) -> Callable[[], None]:
    def apply() -> None:
        import resource

        limit = mb * 1024 * 1024
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def run_in_child(
    path: Path, kind: str, timeout: float, memory_mb: int, ocr: OcrOptions | None = None
) -> Extraction:
    """``kind``'s text of the file at ``path`` from a fresh child with the limits above; a
    child that times out, runs out of memory or crashes gives a ``failed`` extraction."""
    env = dict(os.environ)
    env.setdefault("OMP_THREAD_LIMIT", "1")  # Tesseract on one core
    args = [sys.executable, "-P", "-m", CHILD_MODULE, str(path), kind, str(timeout)]
    if ocr is not None and kind in OCR_KINDS:
        budget = ocr_budget(ocr)
        args.append(json.dumps({**asdict(ocr), "deadline": None, "budget": budget}))
        timeout = ocr_wait(timeout, ocr)
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: pdftotext dies with it
        preexec_fn=_limit_memory(memory_mb),
        env=env,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return Extraction(None, "failed", f"timeout after {timeout:g} s", None)
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    if proc.returncode != 0:
        tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        why = "memory limit exceeded" if b"MemoryError" in err else f"exit {proc.returncode}"
        return Extraction(None, "failed", f"{kind}: {why} {tail[0][:200]}".strip(), None)
    try:
        data = json.loads(out)
        return Extraction(**data)
    except (ValueError, TypeError):
        return Extraction(None, "failed", "extractor returned garbage", None)


def child_main(argv: list[str], extract_kind: ExtractKind) -> int:
    """The child: ``extract_kind`` on the file named by ``argv`` (as :func:`run_in_child`
    passes it), its result as JSON on stdout."""
    path, kind, timeout = Path(argv[0]), argv[1], float(argv[2])
    ocr = None
    if len(argv) > 3:
        import time

        from genpon.search.ocr import child_env

        child_env()
        raw = json.loads(argv[3])
        budget = float(raw.pop("budget"))
        ocr = OcrOptions(**{**raw, "deadline": time.monotonic() + budget})
    try:
        result = extract_kind(path, kind, timeout, ocr)
    except MemoryError:
        result = Extraction(None, "failed", "memory limit exceeded", None)
    except RecursionError:
        result = Extraction(None, "failed", "recursion limit (hostile structure)", None)
    out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8")
    json.dump(asdict(result), out, ensure_ascii=False)
    out.flush()
    return 0
