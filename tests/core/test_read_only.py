"""A read-only transaction on SQLite never queues behind a writer (not even its own request's)."""

from __future__ import annotations

import time
from pathlib import Path

from genpon.core.db import make_engine, read_only
from genpon.core.signing import recorded_keys
from sqlmodel import Session, text


def test_reader_does_not_wait_for_an_open_writer(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        c.exec_driver_sql("INSERT INTO t VALUES (1)")
    writer = Session(engine)
    writer.exec(text("INSERT INTO t VALUES (2)"))  # BEGIN IMMEDIATE: holds the write lock
    try:
        started = time.monotonic()
        with Session(read_only(engine)) as reader:
            seen = reader.exec(text("SELECT count(*) FROM t")).one()[0]
        assert seen == 1  # the last committed state, without the writer's row
        assert time.monotonic() - started < 1.0  # not busy_timeout (60 s)
        # the key history is read this way: the web verify page reads it mid-request
        started = time.monotonic()
        assert recorded_keys(engine) == {}  # table absent: nothing recorded, and no wait
        assert time.monotonic() - started < 1.0
    finally:
        writer.rollback()
        writer.close()
        engine.dispose()
