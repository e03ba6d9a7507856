"""The page modules included by :func:`genpon.api.web.routes.install`."""

from __future__ import annotations

from types import ModuleType

from genpon.api.web import (
    admin_views,
    audit_views,
    home_views,
    officer_views,
    records_views,
    search_views,
    text_views,
)

MODULES: tuple[ModuleType, ...] = (
    search_views,
    records_views,
    officer_views,
    audit_views,
    text_views,
    admin_views,
    home_views,
)
