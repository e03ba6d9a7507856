"""Search backends behind one interface (:class:`search.backends.base.SearchBackend`).

Only these modules import tantivy or whoosh; the registry imports them lazily.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from genpon.search.backends.base import SearchBackend
    from genpon.storage.context import AppContext

_cache: dict[tuple[str, str, str], SearchBackend] = {}
_lock = threading.Lock()


def make_backend(ctx: AppContext) -> SearchBackend:
    """The backend chosen by ``settings.search_backend``, one instance per index location."""
    s = ctx.settings
    key = (s.search_backend, str(s.index_dir.resolve()), s.db_url)
    with _lock:
        backend = _cache.get(key)
        if backend is not None:
            return backend
        if s.search_backend == "tantivy":
            from genpon.search.backends.tantivy_backend import TantivyBackend

            backend = TantivyBackend(s.index_dir / "tantivy")
        elif s.search_backend == "whoosh":
            from genpon.search.backends.whoosh_backend import WhooshBackend

            backend = WhooshBackend(s.index_dir / "whoosh")
        elif s.search_backend == "postgres":
            from genpon.search.backends.postgres_backend import PostgresBackend

            backend = PostgresBackend(ctx.engine)
        else:  # pragma: no cover - settings validate the choice
            raise ValueError(s.search_backend)
        _cache[key] = backend
        return backend


def forget_backend(ctx: AppContext) -> None:
    """Close and drop the cached backend of ``ctx`` (the CLI's reset between in-process runs)."""
    s = ctx.settings
    key = (s.search_backend, str(s.index_dir.resolve()), s.db_url)
    with _lock:
        backend = _cache.pop(key, None)
    if backend is not None:
        backend.close()
