"""Every table of Genpon, gathered at the composition root.

Each domain declares its tables in its own ``models`` module; the lower layers never need the
whole list (``core`` must not import the domains above it). Tools that compare the schema with
the models do: Alembic's autogenerate (:func:`alembic_config` hands the metadata to
``core/migrations/env.py``) and the schema drift test.
"""

from __future__ import annotations

from typing import Any

import genpon.core.signing
import genpon.migrate.models
import genpon.records.audit.models
import genpon.records.models
import genpon.records.nodes
import genpon.retention.models
import genpon.search.models
from genpon.core import db
from sqlalchemy import MetaData
from sqlmodel import SQLModel

TABLE_MODULES = (
    genpon.core.signing,
    genpon.records.models,
    genpon.records.nodes,
    genpon.records.audit.models,
    genpon.search.models,
    genpon.retention.models,
    genpon.migrate.models,
)

# Tables only PostgreSQL has, created by migrations with SQL of their own (the search backend's
# ``tsvector`` tables): not SQLModel tables, so a schema comparison leaves them out.
POSTGRES_ONLY_TABLES = frozenset({"search_entry", "search_chunk"})


def metadata() -> MetaData:
    """The metadata holding every table of :data:`TABLE_MODULES`."""
    return SQLModel.metadata


def alembic_config(url: str) -> Any:
    """An Alembic config for ``url`` that compares with every table (``alembic revision
    --autogenerate``, ``alembic check``)."""
    cfg = db.alembic_config(url)
    cfg.attributes["target_metadata"] = metadata()
    return cfg
