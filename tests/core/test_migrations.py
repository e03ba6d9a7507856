"""The Alembic history: one line; ``upgrade head`` works from an empty database, from every
revision on the line and from databases of the old branched history; and the migrated schema
is exactly the models' (columns, types, indexes, unique and CHECK constraints) on SQLite and
PostgreSQL."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from genpon.api.tables import POSTGRES_ONLY_TABLES, alembic_config, metadata
from genpon.core import db
from sqlalchemy import CheckConstraint, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from tests.conftest import BOTH_DBS

CHAIN = [
    "0001",
    "0002",
    "0003",
    "0004",
    "0005",
    "0006",
    "0007",
    "0008",
    "0009",
    "0010",
    "0011",
    "0012",
    "0013",
    "0014",
    "0015",
]
# Parents before the history became one line (revision ids are unchanged).
BRANCHED_PARENTS = {
    "0002": "0001",
    "0003": "0001",
    "0004": "0001",
    "0005": "0001",
    "0006": "0002",
    "0007": "0001",
    "0008": "0006",
}
SHA = "ab" * 32


@pytest.fixture
def empty_url(db_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty database (no tables at all)."""
    if db_kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    pg = request.getfixturevalue("pg_server")
    name = f"m_{uuid.uuid4().hex[:12]}"
    url = pg.create_database(name)
    yield url
    pg.drop_database(name)


def _connect(url: str) -> Any:
    return db.make_engine(url)


def _drift(conn: Connection) -> list[Any]:
    """Every difference between the schema of ``conn`` and the models."""

    def ours(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        table = obj if type_ == "table" else getattr(obj, "table", None)
        return not (type_ == "table" and name in POSTGRES_ONLY_TABLES) and not (
            table is not None and table.name in POSTGRES_ONLY_TABLES
        )

    mc = MigrationContext.configure(
        conn, opts={"compare_type": True, "include_object": ours, "render_as_batch": True}
    )
    diffs: list[Any] = list(compare_metadata(mc, metadata()))
    # Autogenerate does not compare CHECK constraints: compare their names and allowed values.
    insp = inspect(conn)
    in_db = {
        (t, ck["name"]): sorted(re.findall(r"'([^']*)'", ck["sqltext"]))
        for t in insp.get_table_names()
        if t not in POSTGRES_ONLY_TABLES
        for ck in insp.get_check_constraints(t)
    }
    in_models = {
        (t.name, c.name): sorted(re.findall(r"'([^']*)'", str(c.sqltext)))
        for t in metadata().tables.values()
        for c in t.constraints
        if isinstance(c, CheckConstraint)
    }
    for key in sorted(in_db.keys() | in_models.keys(), key=str):
        if in_db.get(key) != in_models.get(key):
            diffs.append(("check", key, in_db.get(key), in_models.get(key)))
    return diffs


def _assert_no_drift(url: str) -> None:
    engine = _connect(url)
    try:
        with engine.connect() as conn:
            assert _drift(conn) == []
            heads = conn.execute(text("SELECT version_num FROM alembic_version")).all()
            assert [h for (h,) in heads] == [CHAIN[-1]]
    finally:
        engine.dispose()


def test_history_is_one_line_in_number_order() -> None:
    script = ScriptDirectory.from_config(db.alembic_config("sqlite://"))
    assert script.get_heads() == [CHAIN[-1]]
    line = [r.revision for r in reversed(list(script.walk_revisions()))]
    assert line == CHAIN
    for rev in script.walk_revisions():
        assert rev.down_revision is None or isinstance(rev.down_revision, str)


def test_every_status_and_kind_column_has_a_named_check() -> None:
    checks = {
        (t.name, c.name)
        for t in metadata().tables.values()
        for c in t.constraints
        if isinstance(c, CheckConstraint)
    }
    assert len(checks) >= 28
    assert all(name == f"ck_{t}_{name.removeprefix(f'ck_{t}_')}" for t, name in checks)
    for t, name in checks:
        assert name.removeprefix(f"ck_{t}_") in metadata().tables[t].c


def test_document_class_codes_are_the_retention_rules() -> None:
    from genpon.records.models import DispositionCode, RetentionCode, StartRuleCode
    from genpon.retention.rules import Disposition, RetentionPeriod, StartRule

    assert [m.value for m in RetentionCode] == [m.value for m in RetentionPeriod]
    assert [m.value for m in DispositionCode] == [m.value for m in Disposition]
    assert [m.value for m in StartRuleCode] == [m.value for m in StartRule]


@BOTH_DBS
def test_empty_database_migrated_to_head_is_the_models(empty_url: str) -> None:
    db.migrate(empty_url)
    _assert_no_drift(empty_url)


@pytest.mark.parametrize("start", CHAIN[:-1])
def test_upgrade_from_each_revision(start: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'step.db'}"
    command.upgrade(db.alembic_config(url), start)
    db.migrate(url)
    _assert_no_drift(url)


def _branched_copy(dest: Path) -> Path:
    """The migrations as they were before the history became one line: 0001…0008 with their
    old parents, and a plain env.py (no joining)."""
    versions = dest / "versions"
    versions.mkdir(parents=True)
    source = db._MIGRATIONS / "versions"
    for path in sorted(source.glob("000*.py")):
        rev = path.name[:4]
        if rev not in CHAIN[:8]:
            continue
        body = path.read_text(encoding="utf-8")
        if rev in BRANCHED_PARENTS:
            body, n = re.subn(
                r'^(down_revision: .*) = "\d+"$',
                rf'\1 = "{BRANCHED_PARENTS[rev]}"',
                body,
                flags=re.MULTILINE,
            )
            assert n == 1
        (versions / path.name).write_text(body, encoding="utf-8")
    (dest / "env.py").write_text(
        "from alembic import context\n"
        "from sqlalchemy import engine_from_config, pool\n"
        "cfg = context.config\n"
        "engine = engine_from_config(\n"
        "    cfg.get_section(cfg.config_ini_section, {}), prefix='sqlalchemy.',"
        " poolclass=pool.NullPool\n"
        ")\n"
        "with engine.connect() as connection:\n"
        "    context.configure(connection=connection, render_as_batch=True)\n"
        "    with context.begin_transaction():\n"
        "        context.run_migrations()\n",
        encoding="utf-8",
    )
    return dest


_ROWS = (
    "INSERT INTO organization (id, code, name, active, created_at, updated_at)"
    " VALUES (1, 'ORG', '総務課', :t, :now, :now)",
    "INSERT INTO document_class (id, code, name, level, retention, disposition, start_rule,"
    " active, created_at, updated_at)"
    " VALUES (1, 'C1', '庶務', 1, '5', 'destroy', 'next_fiscal_year', :t, :now, :now)",
    "INSERT INTO folder (id, kind, name, organization_id, created_at)"
    " VALUES (1, 'team', 'チーム', 1, :now)",
    "INSERT INTO blob (sha256, size, mime_type, state, stored_at)"
    " VALUES (:sha, 3, 'text/plain', 'stored', :now)",
    "INSERT INTO document (id, folder_id, organization_id, title, filename, sha256, size,"
    " mime_type, status, state, version, doc_date, created_at, updated_at)"
    " VALUES (1, 1, 1, '起案', 'a.txt', :sha, 3, 'text/plain', 'official', 'live', 1, :today,"
    " :now, :now)",
    "INSERT INTO index_outbox (sha256, reason, created_at) VALUES (:sha, 'deposit', :now)",
)
_PARAMS = {"t": True, "now": datetime(2026, 12, 1, tzinfo=UTC), "today": date(2026, 12, 1)}


def _document_row(conn: Connection, doc_id: int, original_id: int | None) -> None:
    conn.execute(
        text(
            "INSERT INTO document (id, folder_id, organization_id, title, filename, sha256,"
            " size, mime_type, status, state, original_id, version, doc_date, created_at,"
            " updated_at) VALUES (:id, 1, 1, '写し', 'a.txt', :sha, 3, 'text/plain', 'working',"
            " 'live', :orig, 1, :today, :now, :now)"
        ),
        {**_PARAMS, "id": doc_id, "sha": SHA, "orig": original_id},
    )


@BOTH_DBS
@pytest.mark.parametrize(
    "old_heads",
    [
        pytest.param("heads", id="all-five-heads"),
        # the first build with a second revision had 0001 and 0003 only: one row, "0003"
        pytest.param("0003", id="tip-0003-alone"),
        pytest.param("0005", id="tip-0005-alone"),
    ],
)
def test_database_of_the_branched_history_joins_the_line(
    empty_url: str, old_heads: str, tmp_path: Path
) -> None:
    old = db.alembic_config(empty_url)
    old.set_main_option("script_location", str(_branched_copy(tmp_path / "branched")))
    command.upgrade(old, old_heads)
    engine = _connect(empty_url)
    try:
        with engine.begin() as conn:
            stored = {r for (r,) in conn.execute(text("SELECT version_num FROM alembic_version"))}
            assert len(stored) == (5 if old_heads == "heads" else 1)
            for stmt in _ROWS:
                conn.execute(text(stmt), {**_PARAMS, "sha": SHA})
    finally:
        engine.dispose()

    db.migrate(empty_url)

    _assert_no_drift(empty_url)
    engine = _connect(empty_url)
    try:
        with engine.connect() as conn:
            status = conn.execute(text("SELECT status FROM document WHERE id = 1")).scalar_one()
            assert status == "official"
            for table in ("organization", "document_class", "folder", "blob", "index_outbox"):
                assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 1
        # The rebuilt tables kept their partial unique index: one live original per content.
        with pytest.raises(IntegrityError), engine.begin() as conn:
            _document_row(conn, 2, None)
        with engine.begin() as conn:
            _document_row(conn, 3, 1)
    finally:
        engine.dispose()


@BOTH_DBS
@pytest.mark.parametrize(
    ("table", "column", "key"),
    [
        ("document", "status", "id = 1"),
        ("document", "state", "id = 1"),
        ("folder", "kind", "id = 1"),
        ("blob", "state", "sha256 = :sha"),
        ("index_outbox", "reason", "1 = 1"),
        ("document_class", "retention", "id = 1"),
    ],
)
def test_database_refuses_a_value_outside_the_enum(
    empty_url: str, table: str, column: str, key: str
) -> None:
    db.migrate(empty_url)
    engine = _connect(empty_url)
    try:
        with engine.begin() as conn:
            for stmt in _ROWS:
                conn.execute(text(stmt), {**_PARAMS, "sha": SHA})
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text(f"UPDATE {table} SET {column} = 'bogus' WHERE {key}"), {"sha": SHA})
    finally:
        engine.dispose()


def test_autogenerate_config_carries_every_table() -> None:
    cfg = alembic_config("sqlite://")
    tables = set(cfg.attributes["target_metadata"].tables)
    assert {
        "document",
        "retention_hold",
        "import_run",
        "audit_checkpoint",
        "search_state",
    } <= tables
    assert "target_metadata" not in db.alembic_config("sqlite://").attributes
