"""Application context: settings, engine and blob store, built once per process."""

from __future__ import annotations

from dataclasses import dataclass

from genpon.core.db import make_engine
from genpon.core.settings import Settings
from genpon.storage.base import BlobStore
from genpon.storage.registry import make_store
from sqlalchemy.engine import Engine


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    store: BlobStore

    @classmethod
    def build(cls, settings: Settings) -> AppContext:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return cls(
            settings=settings, engine=make_engine(settings.db_url), store=make_store(settings)
        )
