"""Application context: settings, engine and blob store, built once per process.

The dataclass lives on the ground floor so every layer can take a context as an argument; it
is *built* only by the composition root (:func:`genpon.api.context.build_context`), which
knows the engine and blob-store factories. The store is typed with a type-checking-only import:
at run time core imports nothing of the layers above it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from genpon.core.settings import Settings
from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    from genpon.storage.base import BlobStore


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    store: BlobStore
