"""Application context: settings, engine and blob store, built once per process.

It lives in the storage layer, the lowest one that knows what a blob store is, so every layer
above (records, search, retention, the import, api) can take a context as an argument and no
layer imports upward. It is *built* only by the composition root
(:func:`genpon.api.context.build_context`).
"""

from __future__ import annotations

from dataclasses import dataclass

from genpon.core.settings import Settings
from genpon.storage.base import BlobStore
from sqlalchemy.engine import Engine


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    store: BlobStore
