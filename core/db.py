"""Database engine and sessions (SQLite by default, PostgreSQL supported).

SQLite runs in WAL mode and every transaction starts with ``BEGIN IMMEDIATE``: writers queue on
the database lock (``busy_timeout``) instead of failing when a read transaction tries to upgrade.
The schema is owned by Alembic (``core/migrations``); ``migrate()`` brings a database to head.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, create_engine

_MIGRATIONS = Path(__file__).with_name("migrations")


READ_ONLY = "genpon_read_only"


def read_only(engine: Engine) -> Engine:
    """The same engine (same pool) for transactions that only read: on SQLite they begin
    with a plain ``BEGIN`` instead of ``BEGIN IMMEDIATE``, so they never wait for a writer
    (in WAL mode a reader sees the last committed state). Elsewhere the same engine.
    Made once per engine (every API key check asks for it; building one costs ~60 µs)."""
    made: Engine | None = engine.__dict__.get(READ_ONLY)
    if made is None:  # kept on the engine: it lives (and is collected) with it
        made = engine.__dict__[READ_ONLY] = engine.execution_options(**{READ_ONLY: True})
    return made


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 60}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # a read-only transaction (see read_only) must not queue for the write lock: a
            # request that already writes would otherwise wait on itself for busy_timeout
            read_only = conn.get_execution_options().get(READ_ONLY, False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, pool_pre_ping=True, **kwargs)


_read_engines: dict[str, Engine] = {}
_read_engines_lock = threading.Lock()
_WAL_PAGE = 8192  # XLOG_BLCKSZ of Debian's builds


def read_engine(url: str) -> Engine:
    """The engine of a PostgreSQL streaming replica (``GENPON_DATABASE_READ_URL``), one per URL
    and process, with a short connect timeout so a dead replica costs little."""
    with _read_engines_lock:
        engine = _read_engines.get(url)
        if engine is None:
            engine = make_engine(url, connect_args={"connect_timeout": 2})
            _read_engines[url] = engine
        return engine


def _lsn(value: str) -> int:
    high, _, low = value.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def _lsn_text(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def replica_caught_up(primary: Engine, replica: Engine, timeout_s: float) -> bool:
    """Read-your-writes barrier: wait until ``replica`` has replayed all WAL the primary had
    inserted when this is called, so every transaction committed before (the caller's own
    included) is visible there. False after ``timeout_s`` or when the replica fails: then read
    from the primary. Costs one ``pg_current_wal_insert_lsn()`` on the primary (no table, no
    lock) and, with a streaming replica on the same network, a few milliseconds of waiting."""
    with primary.connect() as conn:
        target = _lsn(conn.execute(text("SELECT pg_current_wal_insert_lsn()::text")).scalar_one())
    # When the next record starts a new WAL page the insert position lies past that page's
    # header, which a replica's replay position (the end of the last record) never reaches.
    offset = target % _WAL_PAGE
    if offset in (24, 40):  # short / long (segment start) page header
        target -= offset
    deadline = time.monotonic() + timeout_s
    query = text(
        "SELECT coalesce(pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn), NOT pg_is_in_recovery())"
    )
    try:
        with replica.connect() as conn:
            while True:
                if conn.execute(query, {"lsn": _lsn_text(target)}).scalar():
                    return True
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.002)
    except DBAPIError:
        return False


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session whose transaction commits on clean exit and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (the one head of the history)."""
    from alembic import command

    command.upgrade(alembic_config(url), "head")
