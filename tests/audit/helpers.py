"""Helpers for the audit tests: a keyring, some history, direct database tampering."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genpon.core.db import session_scope
from genpon.core.signing import SystemKeyring
from genpon.records.access import SYSTEM_ACTOR
from genpon.records.audit.checkpoints import create_checkpoint
from genpon.records.audit.export import export_audit
from genpon.storage.context import AppContext
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from genpon_verify.verify import Report, verify_export
from tests.records.helpers import deposit, new_case, team_folder


def keyring(ctx: AppContext) -> SystemKeyring:
    ring = SystemKeyring(ctx.settings.key_dir)
    ring.ensure()
    return ring


def history(client: Any, demo: Any, ctx: AppContext, n: int = 4) -> list[dict[str, Any]]:
    """A case with ``n`` deposited documents (plus reads): a few dozen events."""
    auth = demo.auth("tanaka")
    case = new_case(client, auth)
    docs = []
    for i in range(n):
        r = deposit(client, auth, f"文書{i} の内容".encode() * (i + 1), case_id=case["case_id"])
        assert r.status_code == 201, r.text
        docs.append(r.json())
    r = deposit(client, auth, "チーム文書".encode(), folder_id=team_folder(ctx))
    assert r.status_code == 201, r.text
    docs.append(r.json())
    assert client.get(f"/api/v1/documents/{docs[0]['id']}/content", headers=auth).status_code == 200
    return docs


def checkpoint(ctx: AppContext, ring: SystemKeyring, reason: str = "manual") -> Any:
    with session_scope(ctx.engine) as s:
        return create_checkpoint(s, ring, reason=reason)


def drop_guard(engine: Engine) -> None:
    """Remove the append-only triggers, as someone with DDL rights on the database could."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS audit_event_no_update"))
            conn.execute(text("DROP TRIGGER IF EXISTS audit_event_no_delete"))


def sql(engine: Engine, statement: str, **params: Any) -> None:
    with engine.begin() as conn:
        conn.execute(text(statement), params)


def export_and_verify(ctx: AppContext, ring: SystemKeyring, out: Path, **kwargs: Any) -> Report:
    export_audit(ctx.engine, ring, SYSTEM_ACTOR, out)
    return verify_export(out, **kwargs)


def event_count(ctx: AppContext) -> int:
    with Session(ctx.engine) as s:
        return int(s.execute(text("SELECT max(seq) FROM audit_event")).scalar() or 0)
