"""Alembic environment.

Plain upgrades need no models: ``target_metadata`` is taken from ``config.attributes`` and is
set only by whoever asks Alembic to compare the schema with the models (autogenerate; the
composition root :mod:`genpon.api.tables` builds such a config), so this ground-floor module
imports no domain.

The history is one line, 0001 → 0002 → … in number order. Until 0009 it had five branches off
0001 (0002 → 0006 → 0008, 0003, 0004, 0005, 0007), and a database upgraded then lists its
branch tips in ``alembic_version``; :func:`_join_branched_history` puts such a database onto the
line before upgrading it. Revision ids did not change.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from alembic.operations import Operations
from sqlalchemy import engine_from_config, inspect, pool, text
from sqlalchemy.engine import Connection

config = context.config
target_metadata = config.attributes.get("target_metadata")

# Parents in the branched history, and the chain it became.
_BRANCHED_PARENTS = {
    "0002": "0001",
    "0003": "0001",
    "0004": "0001",
    "0005": "0001",
    "0006": "0002",
    "0007": "0001",
    "0008": "0006",
}
_CHAIN = ("0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008")
# A table each revision creates on every dialect (0006 and 0008 change PostgreSQL's search
# tables only): tells a single branch tip of the old history from the same id on the line.
_CREATES = {
    "0001": "audit_event",
    "0002": "search_state",
    "0003": "disposition_batch",
    "0004": "audit_checkpoint",
    "0005": "import_run",
    "0007": "web_sign_in",
}


def _branched_applied(heads: list[str]) -> set[str]:
    """Revisions applied to a database whose ``alembic_version`` lists ``heads`` of the old,
    branched history."""
    applied: set[str] = set()
    for rev in heads:
        while rev is not None and rev not in applied:
            applied.add(rev)
            rev = _BRANCHED_PARENTS.get(rev)  # type: ignore[assignment]
    return applied


def _join_branched_history(connection: Connection) -> None:
    """Bring a database at heads of the old branched history onto the line.

    The revisions below its newest one that it lacks are applied now, out of order (each
    branch created only its own tables, so their order does not matter), and
    ``alembic_version`` is left with the one newest id. A single row is ambiguous (``0003`` is
    a tip of the old history and a point on the line): the tables of the revisions the line
    puts before it decide.
    """
    if "alembic_version" not in inspect(connection).get_table_names():
        return
    heads = [r for (r,) in connection.execute(text("SELECT version_num FROM alembic_version"))]
    if not heads or not set(heads) <= set(_BRANCHED_PARENTS):
        return
    applied = _branched_applied(heads)
    newest = max(applied)
    missing = [r for r in _CHAIN if r < newest and r not in applied]
    if not missing:
        if len(heads) == 1:
            return  # already a point on the line
    elif len(heads) == 1:
        marker = next(_CREATES[r] for r in missing if r in _CREATES)
        if marker in inspect(connection).get_table_names():
            return  # a point on the line, not a tip of the branched history
    migration = context.get_context()
    with Operations.context(migration):
        for rev in missing:
            context.script.get_revision(rev).module.upgrade()  # type: ignore[union-attr]
    connection.execute(text("DELETE FROM alembic_version"))
    connection.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": newest})
    if not migration.impl.transactional_ddl:  # SQLite: no outer transaction commits this
        connection.commit()


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        connectable = engine_from_config(
            config.get_section(config.config_ini_section, {}),
            prefix="sqlalchemy.",
            poolclass=pool.NullPool,
        )
        with connectable.connect() as connection:
            _run(connection)
    else:
        _run(connectable)


def _run(connection: Any) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        _join_branched_history(connection)
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
