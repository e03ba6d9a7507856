"""Small helpers for retention tests: closed cases with official documents, actors."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, date, datetime

from genpon.core.signing import SystemKeyring
from genpon.records import cases, documents
from genpon.records.access import SYSTEM_ACTOR, Actor, actor_for_user
from genpon.records.documents import ApprovalIn, DepositIn
from genpon.records.models import Document, User
from genpon.storage.context import AppContext
from sqlmodel import Session, select

CLOSED_2020 = datetime(2020, 7, 15, 3, 0, tzinfo=UTC)  # 5 years -> 2021-04-01 .. 2026-03-31
AS_OF = date(2026, 4, 1)


def actor(ctx: AppContext, login: str) -> Actor:
    with Session(ctx.engine, expire_on_commit=False) as s:
        user = s.exec(select(User).where(User.login == login)).one()
        return actor_for_user(s, user)


def keyring(ctx: AppContext) -> SystemKeyring:
    ring = SystemKeyring(ctx.settings.key_dir)
    ring.ensure()
    return ring


def make_case(
    ctx: AppContext,
    *,
    cls: str = "B0102",
    org: str = "SOUMU-ZAISEI",
    closed: datetime | None = CLOSED_2020,
    docs: int = 2,
    title: str = "令和2年度 予算執行",
    contents: list[bytes] | None = None,
) -> tuple[str, list[int]]:
    """A case with ``docs`` official documents, closed at ``closed`` (None: left open)."""
    contents = contents or [f"{title} 文書{i} {uuid.uuid4().hex}".encode() for i in range(docs)]
    with Session(ctx.engine, expire_on_commit=False) as s:
        case, _f = cases.create_case(
            s,
            SYSTEM_ACTOR,
            title=title,
            organization_code=org,
            class_code=cls,
            case_id_format=ctx.settings.case_id_format,
            timezone=ctx.settings.timezone,
            opened_on=date(2020, 5, 1),
        )
        ids = []
        for i, content in enumerate(contents):
            staged = ctx.store.stage(io.BytesIO(content))
            o = documents.deposit(
                s,
                ctx.store,
                SYSTEM_ACTOR,
                staged,
                DepositIn(
                    filename=f"文書{i}.txt",
                    case_id=case.case_id,
                    approval=ApprovalIn(approved_on=date(2020, 6, 1), approvers=["課長"]),
                ),
                allowed_types=ctx.settings.allowed_types,
                timezone=ctx.settings.timezone,
            )
            ids.append(o.document.id or 0)
        if closed is not None:
            cases.close_case(
                s, SYSTEM_ACTOR, case.case_id, timezone=ctx.settings.timezone, closed_at=closed
            )
        s.commit()
        return case.case_id, ids


def doc(ctx: AppContext, doc_id: int) -> Document:
    with Session(ctx.engine, expire_on_commit=False) as s:
        d = s.get(Document, doc_id)
        assert d is not None
        return d
