"""The page modules included by :func:`api.web.routes.install`."""

from __future__ import annotations

import importlib
from types import ModuleType

from api.web import records_views, search_views

MODULES: tuple[ModuleType, ...] = (search_views, records_views)
# Screens of domains that may not be installed: skipped when their service module is absent.
for _name, _needs in (
    ("api.web.officer_views", "retention"),
    ("api.web.audit_views", "records.audit_query"),
):
    try:
        MODULES = (*MODULES, importlib.import_module(_name))
    except ModuleNotFoundError as _exc:
        if not (_exc.name or "").startswith((_needs, _name)):
            raise
