"""Bulk appends for imports: ``audit.record_many`` and ``documents.deposit_batch``."""

from __future__ import annotations

import hashlib

from genpon.core.db import session_scope
from genpon.records import audit, documents
from genpon.records.access import actor_for_user
from genpon.records.audit import format as audit_format
from genpon.records.documents import BatchItem
from genpon.records.models import (
    AuditEvent,
    AuditHead,
    Blob,
    Document,
    DocumentVersion,
    IndexOutbox,
    User,
)
from sqlmodel import Session, col, select

from tests.conftest import BOTH_DBS
from tests.records.helpers import team_folder


def _chain_ok(s: Session) -> list[AuditEvent]:
    events = list(s.exec(select(AuditEvent).order_by(col(AuditEvent.seq))).all())
    prev = audit_format.GENESIS_HASH
    for i, ev in enumerate(events, start=1):
        body = ev.model_dump()
        assert ev.seq == i
        assert ev.prev_hash == prev
        assert audit_format.event_hash(body) == ev.hash
        prev = ev.hash
    head = s.get(AuditHead, 1)
    assert head is not None and head.seq == len(events) and head.hash == prev
    return events


def _actor(s: Session, login: str = "tanaka"):
    user = s.exec(select(User).where(User.login == login)).one()
    return actor_for_user(s, user)


@BOTH_DBS
def test_record_many_continues_the_chain(demo, ctx):
    with session_scope(ctx.engine) as s:
        audit.record(s, actor="a", action="x.one", target_type="t", target_id=1)
        hashes = audit.record_many(
            s,
            actor="b",
            events=[
                {"action": "x.many", "target_type": "t", "target_id": i, "details": {"名": i}}
                for i in range(5)
            ]
            + [{"action": "x.other", "target_type": "t", "target_id": "z", "actor": "c"}],
        )
        audit.record(s, actor="a", action="x.after", target_type="t", target_id=2)
        assert audit.record_many(s, actor="b", events=[]) == []
    with Session(ctx.engine) as s:
        events = _chain_ok(s)
        many = [e for e in events if e.hash in hashes]
        assert [e.action for e in many] == ["x.many"] * 5 + ["x.other"]
        assert [e.actor for e in many] == ["b"] * 5 + ["c"]
        assert many[2].details == {"名": 2} and many[2].target_id == "2"
        assert events[-1].action == "x.after" and events[-1].prev_hash == many[-1].hash


def _staged(ctx, content: bytes):
    return ctx.store.stage([content])


@BOTH_DBS
def test_deposit_batch_one_original_per_content(demo, ctx):
    folder = team_folder(ctx)
    old = b"already held content " * 20
    with session_scope(ctx.engine) as s:
        actor = _actor(s)
        first = documents.deposit_batch(
            s,
            ctx.store,
            actor,
            [
                BatchItem(
                    hashlib.sha256(old).hexdigest(),
                    len(old),
                    "text/plain",
                    folder,
                    "old.txt",
                    staged=_staged(ctx, old),
                )
            ],
            allowed_types=ctx.settings.allowed_types,
            timezone=ctx.settings.timezone,
        )
        assert first[0].error is None and not first[0].is_copy
        held_id = first[0].document.id

    new = "新しい内容".encode() * 30
    sha_new, sha_old = hashlib.sha256(new).hexdigest(), hashlib.sha256(old).hexdigest()
    items = [
        BatchItem(sha_new, len(new), "text/plain", folder, "a/新1.txt", staged=_staged(ctx, new)),
        BatchItem(sha_new, len(new), "text/plain", folder, "新2.txt"),  # copy, same batch
        BatchItem(sha_new, len(new), "text/plain", folder, "新3.txt", staged=_staged(ctx, new)),
        BatchItem(sha_old, len(old), "text/plain", folder, "old2.txt"),  # copy of an existing one
        BatchItem(sha_old, len(old), "text/plain", folder, "old3.txt", staged=_staged(ctx, old)),
        BatchItem("f" * 64, 3, "text/plain", folder, "nothing.txt"),  # nobody holds it
        BatchItem(sha_new, len(new), "application/x-msdownload", folder, "bad.exe"),
        BatchItem(sha_new, 0, "text/plain", folder, "empty.txt"),
    ]
    with session_scope(ctx.engine) as s:
        out = documents.deposit_batch(
            s,
            ctx.store,
            _actor(s),
            items,
            allowed_types=ctx.settings.allowed_types,
            timezone=ctx.settings.timezone,
        )
    assert [o.error.code if o.error else None for o in out] == [
        None,
        None,
        None,
        None,
        None,
        "content_not_held",
        "type_not_allowed",
        "empty_file",
    ]
    assert out[0].document.filename == "新1.txt" and not out[0].is_copy
    orig = out[0].document.id
    assert [o.document.original_id for o in out[1:3]] == [orig, orig]
    assert [o.document.original_id for o in out[3:5]] == [held_id, held_id]
    with Session(ctx.engine) as s:
        for sha, want in ((sha_new, orig), (sha_old, held_id)):
            docs = s.exec(select(Document).where(Document.sha256 == sha)).all()
            assert [d.id for d in docs if d.original_id is None] == [want]
            assert all(d.original_id == want for d in docs if d.id != want)
        assert len(s.exec(select(Blob)).all()) == 2
        ids = [o.document.id for o in out if o.document]
        assert (
            len(
                s.exec(
                    select(DocumentVersion).where(col(DocumentVersion.document_id).in_(ids))
                ).all()
            )
            == 5
        )
        outbox = s.exec(select(IndexOutbox.sha256)).all()
        assert outbox.count(sha_new) == 1
        events = _chain_ok(s)
        by_target = {e.target_id: e.action for e in events if e.target_type == "document"}
        assert by_target[str(ids[0])] == "document.deposited"
        assert by_target[str(ids[1])] == "document.copied"
        assert by_target[str(ids[4])] == "document.deposited"
    assert sorted(b for b, _t in ctx.store.iter_blobs()) == sorted([sha_new, sha_old])
    assert list(ctx.store.iter_staging()) == []


@BOTH_DBS
def test_deposit_batch_refused_folder_stores_nothing(demo, ctx):
    other = team_folder(ctx, "道路課チーム")
    content = b"not allowed here"
    with session_scope(ctx.engine) as s:
        out = documents.deposit_batch(
            s,
            ctx.store,
            _actor(s),
            [
                BatchItem(
                    hashlib.sha256(content).hexdigest(),
                    len(content),
                    "text/plain",
                    other,
                    "x.txt",
                    staged=_staged(ctx, content),
                )
            ],
            allowed_types=ctx.settings.allowed_types,
            timezone=ctx.settings.timezone,
        )
    assert out[0].document is None and out[0].error is not None
    assert list(ctx.store.iter_blobs()) == [] and list(ctx.store.iter_staging()) == []
