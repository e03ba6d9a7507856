"""Status and kind columns: the allowed values are a ``StrEnum`` in the domain's models module.

The column stays a VARCHAR holding the value (``sa_type=String(n)``, not a native ENUM type),
so a value can be added later by changing one CHECK constraint; :func:`one_of` builds that
constraint, named ``ck_<table>_<column>``. A NULL passes (nullable columns stay nullable).
Code may keep comparing these columns with plain strings: a ``StrEnum`` member is one.

A value read from the database is a plain string, not a member; a table model with such a
column sets ``model_config = ENUM_VALUES`` so pydantic serialises either without warnings.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import CheckConstraint
from sqlmodel.main import SQLModelConfig

ENUM_VALUES = SQLModelConfig(use_enum_values=True)


def one_of(table: str, column: str, values: Iterable[str]) -> CheckConstraint:
    """``CHECK (<column> IN (<values>))`` named ``ck_<table>_<column>``."""
    allowed = ", ".join("'" + str(v).replace("'", "''") + "'" for v in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=f"ck_{table}_{column}")
