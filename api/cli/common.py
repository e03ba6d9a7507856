"""Shared CLI plumbing: context, acting user, one-line errors.

Imported by every command module before any command runs, so it imports nothing heavy at its
top: the database, settings and service modules are imported by the functions that use them
(``genpon --help`` and the commands that need no database start without SQLAlchemy).
"""

from __future__ import annotations

import json
import os
import pwd
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from genpon.core.settings import Settings
    from genpon.records.access import Actor
    from genpon.storage.context import AppContext
    from sqlmodel import Session

_state: dict[str, Any] = {"as": None, "json": False}
_ctx: AppContext | None = None


def ctx() -> AppContext:
    global _ctx
    if _ctx is None:
        from genpon.api.context import build_context
        from genpon.core.settings import get_settings

        settings = get_settings()
        if not _state.get("initializing"):
            require_initialized(settings)
        _ctx = build_context(settings)
    return _ctx


def reset() -> None:
    """Forget what one run of the command line left behind in this process: acting user, output
    format, settings, context (its engine and search backend closed). The command line runs once
    per process; tests run it many times in one process and call this after each run."""
    from genpon.core.settings import get_settings

    global _ctx
    if _ctx is not None:
        from genpon.search.backends import forget_backend

        forget_backend(_ctx)
        _ctx.engine.dispose()
        _ctx = None
    get_settings.cache_clear()
    _state.clear()
    _state.update({"as": None, "json": False})


def require_initialized(settings: Settings) -> None:
    """Refuse, creating nothing, when ``genpon init`` has not run on this data directory."""
    if not database_initialized(settings.db_url):
        fail(
            f"データディレクトリ {settings.data_dir.resolve()} は初期化されていません。"
            "genpon init を実行するか、GENPON_DATA_DIR で初期化済みの場所を指定してください "
            "[not_initialized]"
        )


@contextmanager
def unit() -> Iterator[tuple[Session, Actor]]:
    """A transaction plus the acting person (see :func:`cli_actor`)."""
    from genpon.core.db import session_scope

    with session_scope(ctx().engine) as session:
        yield session, cli_actor(session)


def cli_actor(session: Session) -> Actor:
    """Every CLI action is a person's: ``--as LOGIN``, else ``GENPON_CLI_USER``, else the OS
    login when a person of the same login exists in Genpon. Nobody else: refused."""
    from genpon.records.access import actor_for_user
    from genpon.records.master import get_user
    from genpon.records.models import User
    from sqlmodel import select

    login = _state["as"] or ctx().settings.cli_user
    if login:
        return actor_for_user(session, get_user(session, login))
    os_login = pwd.getpwuid(os.geteuid()).pw_name
    user = session.exec(select(User).where(User.login == os_login)).first()
    if user is not None and user.kind == "person":
        return actor_for_user(session, user)
    fail(
        f"誰の操作か分かりません: OSの利用者 {os_login} は原本の利用者ではありません。"
        "--as 利用者ID を付けるか、GENPON_CLI_USER に利用者IDを設定してください [actor_required]"
    )
    raise AssertionError  # fail() exits


def database_initialized(url: str) -> bool:
    """Whether migrations ran on ``url`` (its ``alembic_version`` table exists), without
    creating a SQLite file or its directory when there is none."""
    from genpon.core.db import make_engine
    from sqlalchemy import inspect
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            return True
        path = Path(parsed.database)
        if not path.is_file():
            return False
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = con.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
            ).fetchone()
        finally:
            con.close()
        return row is not None
    engine = make_engine(url, pool_size=1, max_overflow=0)
    try:
        return inspect(engine).has_table("alembic_version")
    finally:
        engine.dispose()


def out(data: Any, human: str | None = None) -> None:
    if _state["json"] or human is None:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        typer.echo(human)


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"genpon: {message}", err=True)
    sys.exit(code)
