"""Builds the application context (the composition root: engine and blob store from settings)."""

from __future__ import annotations

from genpon.core.db import make_engine
from genpon.core.settings import Settings
from genpon.storage.context import AppContext
from genpon.storage.registry import make_store


def build_context(settings: Settings) -> AppContext:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return AppContext(
        settings=settings, engine=make_engine(settings.db_url), store=make_store(settings)
    )
