"""Browser fixtures: Debian's Chromium driven by Playwright, one browser per module, and a live
server (uvicorn in a thread) over a demo database per module."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from genpon.api.app import create_app
from genpon.api.context import build_context
from genpon.core.settings import Settings
from genpon.records.bootstrap import initialize
from genpon.storage.context import AppContext

from tests.live import serve

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@dataclass
class Live:
    url: str
    ctx: AppContext
    keys: dict[str, str]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    settings = Settings(
        environment="test",
        data_dir=tmp_path_factory.mktemp("web") / "data",
        index_autostart=False,  # the tests drain the index outbox themselves
    )
    ctx = build_context(settings)
    result = initialize(settings, ctx.engine, demo=True)
    app = create_app(settings, ctx)
    with serve(app) as url:
        yield Live(url=url, ctx=ctx, keys=result.demo_keys)
    ctx.engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (os.path.exists(CHROMIUM) and shutil.which(CHROMIUM)):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing in CI (run ./scripts/setup)")
        pytest.skip(f"{CHROMIUM} not installed (run ./scripts/setup)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def shot(page: Any, name: str) -> None:
    """Save a full-page screenshot as a test artifact (gitignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
