"""Bounded rendering for the document viewer: poppler for PDFs, Pillow for images.

Every render runs in a child process (``pdftoppm``/``pdfinfo``, or
``python -m genpon.search.render`` for images) in its own process group with a wall-clock
timeout and an address-space limit, as text extraction does (:mod:`genpon.search.extract`), and
at most ``preview_concurrency`` at once per process (:func:`render_slot`). Images are decoded by
Pillow with ``Image.MAX_IMAGE_PIXELS`` enforced and converted to PNG (the browser never gets the
original bytes, so a TIFF shows and a hostile file is never handed to it).

Bad input is a clear status, never a 500 and never a hang: :class:`PreviewUnavailable` (HTTP 422)
carries a machine-readable code (``pdf_encrypted``, ``pdf_broken``, ``image_too_large``,
``image_broken``, ``render_timeout``, ``render_memory``, …) and a message from
:data:`MESSAGES`. This module knows nothing of the cache, the database or who asks: that is
:mod:`genpon.search.preview`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genpon.core.errors import InvalidInput, Unavailable

if TYPE_CHECKING:
    from genpon.core.settings import Settings

MAX_PAGE_HEIGHT_RATIO = 4  # a page image is at most 4x as tall as the widest allowed width
OUTLINE_VERSION = 1  # bump when the outline format or its rules change

MESSAGES = {
    "pdf_encrypted": "パスワードで保護された PDF のため表示できません。ダウンロードして開いてください。",
    "pdf_broken": "PDF が壊れているため表示できません。",
    "image_too_large": "画像の画素数が大きすぎるため表示できません（上限 {limit} 画素）。",
    "image_broken": "画像ファイルが壊れているか、読めない形式のため表示できません。",
    "render_timeout": "表示用の画像を時間内に作れませんでした。",
    "render_memory": "表示用の画像を作るのに必要なメモリが上限を超えました。",
    "content_too_large": "ファイルが大きすぎるため表示できません。ダウンロードしてください。",
    "no_page_images": "この形式の文書にはページ画像がありません。",
    "unsupported": "この形式の文書は画面に表示できません。ダウンロードして開いてください。",
    "text_pending": "本文をまだ取り出していません。しばらくしてから開き直してください。",
    "text_failed": "本文を取り出せなかったため表示できません。",
    "render_failed": "表示用の画像を作れませんでした。",
}


class PreviewUnavailable(InvalidInput):
    """A content that cannot be shown (encrypted, broken, too large, …): HTTP 422 with the
    reason as ``code``; the download still works."""


def message_for(code: str, settings: Settings | None = None) -> str:
    limit = f"{settings.preview_max_pixels:,}" if settings else ""
    return MESSAGES.get(code, MESSAGES["render_failed"]).format(limit=limit)


@dataclass
class Outline:
    """What a content looks like to the viewer; cached per blob for pdf and image kinds."""

    kind: str  # pdf | image | text | none
    status: str  # ok | failed | pending | unsupported
    pages: int | None = None
    code: str | None = None  # why not ok (machine-readable)
    reason: str | None = None  # tool output, for the cache file only (may name server paths)
    version: int = OUTLINE_VERSION


# --- bounded children ---------------------------------------------------------------------------


class _Timeout(Exception):
    pass


def _limit_memory(mb: int) -> Callable[[], None]:
    def apply() -> None:
        import resource

        limit = mb * 1024 * 1024
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def _run(argv: Sequence[str], *, timeout: float, memory_mb: int) -> tuple[int, bytes, bytes]:
    """Run ``argv`` in its own process group with an address-space limit; kill the whole group
    on timeout (:class:`_Timeout`) and in any case when it is done."""
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_limit_memory(memory_mb),
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise _Timeout() from None
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, out, err


_slots_guard = threading.Lock()
_slots: dict[int, threading.BoundedSemaphore] = {}


def _slot(settings: Settings) -> threading.BoundedSemaphore:
    n = max(1, settings.preview_concurrency)
    with _slots_guard:
        return _slots.setdefault(n, threading.BoundedSemaphore(n))


@contextlib.contextmanager
def render_slot(settings: Settings) -> Any:
    sem = _slot(settings)
    if not sem.acquire(timeout=max(10.0, settings.preview_timeout_s * 4.0)):
        raise Unavailable("preview_busy", "表示用の画像の作成が混み合っています。")
    try:
        yield
    finally:
        sem.release()


# --- PDF ----------------------------------------------------------------------------------------

_PAGES = re.compile(rb"^Pages:\s+(\d+)", re.M)
_SIZE = re.compile(rb"^Page\s+\d+\s+size:\s+([\d.]+)\s+x\s+([\d.]+)", re.M)
_ROT = re.compile(rb"^Page\s+\d+\s+rot:\s+(\d+)", re.M)


def _poppler_failure(err: bytes, returncode: int) -> Outline:
    text = err.decode("utf-8", "replace").strip()
    tail = text.splitlines()[-1][:300] if text else f"exit {returncode}"
    if b"Incorrect password" in err or returncode == 3:
        return Outline("pdf", "failed", code="pdf_encrypted", reason=tail)
    return Outline("pdf", "failed", code="pdf_broken", reason=tail)


def _pdfinfo(path: Path, settings: Settings, page: int | None = None) -> tuple[Outline, bytes]:
    exe = shutil.which("pdfinfo")
    if exe is None:
        raise Unavailable("poppler_missing", "PDF の表示に必要な poppler-utils がありません。")
    argv = [exe]
    if page is not None:
        argv += ["-f", str(page), "-l", str(page)]
    argv.append(str(path))
    try:
        rc, out, err = _run(
            argv, timeout=settings.preview_timeout_s, memory_mb=settings.preview_memory_mb
        )
    except _Timeout:
        return Outline("pdf", "failed", code="render_timeout", reason="pdfinfo: timeout"), b""
    if rc != 0:
        return _poppler_failure(err, rc), out
    m = _PAGES.search(out)
    if m is None or int(m.group(1)) < 1:
        return Outline("pdf", "failed", code="pdf_broken", reason="no pages"), out
    return Outline("pdf", "ok", pages=int(m.group(1))), out


def _pdf_width(info: bytes, width: int, settings: Settings) -> int:
    """``width``, or less for a page so tall that its image would be huge."""
    size, rot = _SIZE.search(info), _ROT.search(info)
    if size is None:
        return width
    w, h = float(size.group(1)), float(size.group(2))
    if rot is not None and int(rot.group(1)) % 180 == 90:
        w, h = h, w
    if w <= 0 or h <= 0:
        return width
    max_height = max(settings.preview_widths or (1600,)) * MAX_PAGE_HEIGHT_RATIO
    if width * h / w > max_height:
        return max(16, int(max_height * w / h))
    return width


def _render_pdf(path: Path, page: int, width: int, out: Path, settings: Settings) -> int:
    exe = shutil.which("pdftoppm")
    if exe is None:
        raise Unavailable("poppler_missing", "PDF の表示に必要な poppler-utils がありません。")
    info_outline, info = _pdfinfo(path, settings, page)
    if info_outline.status != "ok":
        raise PreviewUnavailable(
            info_outline.code or "render_failed", message_for(info_outline.code or "", settings)
        )
    width = _pdf_width(info, width, settings)
    rot = _ROT.search(info)
    # pdftoppm scales before it rotates: a page turned by 90° gets its width as -scale-to-y
    sideways = rot is not None and int(rot.group(1)) % 180 == 90
    scale = (
        ["-scale-to-x", "-1", "-scale-to-y", str(width)]
        if sideways
        else ["-scale-to-x", str(width), "-scale-to-y", "-1"]
    )
    prefix = out.with_suffix("")
    argv = [exe, "-png", "-cropbox", "-f", str(page), "-l", str(page), "-singlefile"]
    argv += [*scale, str(path), str(prefix)]
    try:
        rc, _out, err = _run(
            argv, timeout=settings.preview_timeout_s, memory_mb=settings.preview_memory_mb
        )
    except _Timeout:
        raise PreviewUnavailable("render_timeout", message_for("render_timeout")) from None
    produced = prefix.with_suffix(".png")
    if rc != 0 or not produced.exists():
        failed = _poppler_failure(err, rc)
        if rc < 0 or b"std::bad_alloc" in err or b"out of memory" in err.lower():
            failed.code = "render_memory"
        raise PreviewUnavailable(
            failed.code or "render_failed", message_for(failed.code or "", settings)
        )
    if produced != out:
        os.replace(produced, out)
    return width


# --- images (in a child: ``python -m genpon.search.render``) ----------------------------------


def _image_child(args: list[str], settings: Settings) -> dict[str, Any]:
    argv = [sys.executable, "-m", "genpon.search.render", *args]
    argv.append(str(settings.preview_max_pixels))
    try:
        rc, out, err = _run(
            argv, timeout=settings.preview_timeout_s, memory_mb=settings.preview_memory_mb
        )
    except _Timeout:
        return {"status": "failed", "code": "render_timeout", "reason": "timeout"}
    if rc != 0:
        why = "render_memory" if b"MemoryError" in err else "image_broken"
        tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit {rc}"]
        return {"status": "failed", "code": why, "reason": tail[0][:300]}
    try:
        result: dict[str, Any] = json.loads(out)
    except ValueError:
        return {"status": "failed", "code": "image_broken", "reason": "garbage from the child"}
    return result


ORIENTATION = 0x0112  # the EXIF tag


def _open_image(path: Path, max_pixels: int) -> Any:
    import warnings

    from PIL import Image

    Image.MAX_IMAGE_PIXELS = max_pixels
    warnings.simplefilter("error", Image.DecompressionBombWarning)  # above the limit: refuse
    im = Image.open(path)
    w, h = im.size
    if w * h > max_pixels:
        raise Image.DecompressionBombError(f"{w}x{h} pixels")
    return im


def _child_main(argv: list[str]) -> dict[str, Any]:
    """``info PATH MAX`` -> {pages}; ``render PATH PAGE WIDTH OUT MAX`` -> {pages, width}. An
    image is rendered the way up its EXIF orientation tag says."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    op, path = argv[0], Path(argv[1])
    max_pixels = int(argv[-1])
    try:
        im = _open_image(path, max_pixels)
        pages = max(1, int(getattr(im, "n_frames", 1) or 1))
        if op == "info":
            im.draft("RGB", (256, 256)) if im.format == "JPEG" else None
            im.load()  # decode the first frame: a broken file fails here, not on the page
            return {"status": "ok", "pages": pages}
        page, width, out = int(argv[2]), int(argv[3]), Path(argv[4])
        if page > pages:
            return {"status": "ok", "pages": pages, "missing": True}
        im.seek(page - 1)
        w, h = im.size
        if w * h > max_pixels:
            raise Image.DecompressionBombError(f"{w}x{h} pixels")
        turned = im.getexif().get(ORIENTATION, 1) in (5, 6, 7, 8)  # a phone photo on its side
        if turned:
            w, h = h, w
        target = min(width, w)
        height = max(1, round(h * target / w))
        if im.format == "JPEG":  # decode at a reduced scale: much faster
            im.draft("RGB", (height, target) if turned else (target, height))
        im.load()
        im = ImageOps.exif_transpose(im)  # shown upright, as OCR read it (search.ocr)
        if im.mode not in ("RGB", "RGBA", "L", "LA"):
            im = im.convert("RGBA" if "A" in im.getbands() or "transparency" in im.info else "RGB")
        if im.size != (target, height):
            im = im.resize((target, height), Image.Resampling.LANCZOS)
        im.save(out, "PNG", optimize=False)
        return {"status": "ok", "pages": pages, "width": target}
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return {"status": "failed", "code": "image_too_large", "reason": str(exc)[:300]}
    except MemoryError:
        return {"status": "failed", "code": "render_memory", "reason": "MemoryError"}
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        reason = f"{type(exc).__name__}: {str(exc)[:300]}"
        return {"status": "failed", "code": "image_broken", "reason": reason}


# --- the two entry points ----------------------------------------------------------------------


def file_outline(kind: str, path: Path, settings: Settings) -> Outline:
    """The outline of a ``pdf`` or ``image`` file on disk: its page count, or why not."""
    if kind == "pdf":
        return _pdfinfo(path, settings)[0]
    r = _image_child(["info", str(path)], settings)
    return Outline("image", r["status"], r.get("pages"), r.get("code"), r.get("reason"))


def render_file(
    kind: str, path: Path, page: int, width: int, out: Path, settings: Settings
) -> None:
    """Page ``page`` of a ``pdf`` or ``image`` file as PNG at ``width`` into ``out``; raises
    :class:`PreviewUnavailable` when it cannot."""
    if kind == "pdf":
        _render_pdf(path, page, width, out, settings)
        return
    r = _image_child(["render", str(path), str(page), str(width), str(out)], settings)
    if r["status"] != "ok":
        code = r.get("code") or "render_failed"
        raise PreviewUnavailable(code, message_for(code, settings))


if __name__ == "__main__":
    result = _child_main(sys.argv[1:])
    sys.stdout.write(json.dumps(result))
    sys.stdout.flush()
