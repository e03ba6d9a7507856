"""Builds the application context (the composition root: engine and blob store from settings).

Whoever builds a context (the server, the command line, a worker) gets the layers wired: records
announces case events (closing, reopening, approving into a closed case) to the retention
schedule, which registers itself when ``genpon.retention`` is imported (records.lifecycle). The
command line imports its services only when a command runs, so nothing else would import it.
"""

from __future__ import annotations

import genpon.retention  # noqa: F401  (registers the retention schedule with records)
from genpon.core.db import make_engine
from genpon.core.settings import Settings
from genpon.storage.context import AppContext
from genpon.storage.registry import make_store


def build_context(settings: Settings) -> AppContext:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return AppContext(
        settings=settings, engine=make_engine(settings.db_url), store=make_store(settings)
    )
