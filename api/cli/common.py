"""Shared CLI plumbing: context, acting user, one-line errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from genpon.api.context import build_context
from genpon.core.context import AppContext
from genpon.core.db import session_scope
from genpon.core.settings import get_settings
from genpon.records.access import SYSTEM_ACTOR, Actor, actor_for_user
from genpon.search.backends import forget_backend
from sqlmodel import Session

_state: dict[str, Any] = {"as": None, "json": False}
_ctx: AppContext | None = None


def ctx() -> AppContext:
    global _ctx
    if _ctx is None:
        _ctx = build_context(get_settings())
    return _ctx


def reset() -> None:
    """Forget what one run of the command line left behind in this process: acting user, output
    format, settings, context (its engine and search backend closed). The command line runs once
    per process; tests run it many times in one process and call this after each run."""
    global _ctx
    if _ctx is not None:
        forget_backend(_ctx)
        _ctx.engine.dispose()
        _ctx = None
    get_settings.cache_clear()
    _state.update({"as": None, "json": False})


@contextmanager
def unit() -> Iterator[tuple[Session, Actor]]:
    """A transaction plus the acting user (``--as LOGIN``; default the local system operator)."""
    with session_scope(ctx().engine) as session:
        login = _state["as"]
        if login:
            from genpon.records.master import get_user

            actor = actor_for_user(session, get_user(session, login))
        else:
            actor = SYSTEM_ACTOR
        yield session, actor


def out(data: Any, human: str | None = None) -> None:
    if _state["json"] or human is None:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        typer.echo(human)


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"genpon: {message}", err=True)
    sys.exit(code)
