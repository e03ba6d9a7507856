"""Imports every domain's table models so SQLModel.metadata is complete (Alembic, tests)."""

from __future__ import annotations

import importlib

import genpon.records.models  # noqa: F401

# Domains added later register here; a missing optional module is not an error.
for _name in (
    "genpon.search.models",
    "genpon.retention.models",
    "genpon.records.audit.models",
    "genpon.migrate.models",
    "genpon.records.nodes",
    "genpon.core.signing",
):
    try:
        importlib.import_module(_name)
    except ModuleNotFoundError as exc:  # pragma: no cover - only while a domain has no tables
        if not exc.name or not _name.startswith(exc.name):
            raise
