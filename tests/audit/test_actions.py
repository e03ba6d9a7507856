"""Audit action names (``AuditAction``): one place, unchanged values, a sentence for each in the
web timeline, and no action written as a bare string anywhere in the package."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from genpon.api.web.lookups import Names
from genpon.api.web.timeline import SENTENCES, describe
from genpon.core.db import session_scope
from genpon.records import audit
from genpon.records.access import SYSTEM_ACTOR
from genpon.records.audit import AuditAction
from genpon.records.audit.export import export_audit
from genpon.records.audit.format import GENESIS_HASH, canonical_bytes, event_hash
from genpon.records.models import AuditEvent
from sqlmodel import Session, col, select

from genpon_verify.verify import ROTATION_ACTION, verify_export
from tests.audit.helpers import keyring
from tests.conftest import BOTH_DBS, REPO

# Every value ever written. A value in an existing log must keep verifying, so this list only
# grows: changing or removing a line here means old chains no longer match the code.
PINNED = (
    "case.created",
    "case.updated",
    "case.member_added",
    "case.closed",
    "case.reopened",
    "folder.created",
    "document.deposited",
    "document.imported",
    "document.approved",
    "document.copied",
    "document.copy_made",
    "document.read",
    "document.previewed",
    "document.versioned",
    "document.corrected",
    "document.original_moved",
    "document.destroyed",
    "document.transferred",
    "retention.hold_placed",
    "retention.hold_released",
    "retention.extended",
    "retention.batch_created",
    "retention.batch_approved",
    "retention.batch_rejected",
    "retention.batch_execution_started",
    "retention.batch_executed",
    "retention.item_skipped",
    "retention.disposal_requested",
    "retention.disposal_approved",
    "retention.disposal_rejected",
    "retention.transfer_exported",
    "retention.transfer_acknowledged",
    "audit.exported",
    "fixity.completed",
    "fixity.failed",
    "import.started",
    "import.completed",
    "master.imported",
    "user.password_set",
    "key.issued",
    "key.revoked",
    "system_key.rotated",
    "auth.sign_in_failed",
    "auth.sign_in_locked",
    "user.created",
    "user.updated",
    "user.disabled",
    "user.enabled",
    "master.exported",
)


def test_values_are_pinned_and_unique():
    assert [a.value for a in AuditAction] == list(PINNED)
    assert len(set(PINNED)) == len(PINNED)
    assert all(re.fullmatch(r"[a-z_]+\.[a-z_]+", v) for v in PINNED)


def test_the_offline_verifier_names_rotation_the_same():
    # genpon_verify is standard-library only, so it keeps its own copy of this one name
    assert AuditAction.SYSTEM_KEY_ROTATED == ROTATION_ACTION


# --- hashing -------------------------------------------------------------------------------


def _body(action: str) -> dict[str, object]:
    return {
        "seq": 7,
        "at": "2026-04-01T00:00:00.000000Z",
        "actor": "tanaka",
        "action": action,
        "target_type": "case",
        "target_id": "2026-SOUMU-00001",
        "case_id": "2026-SOUMU-00001",
        "details": {"title": "予算"},
        "prev_hash": GENESIS_HASH,
    }


@pytest.mark.parametrize("action", list(AuditAction))
def test_a_member_hashes_exactly_as_its_string(action: AuditAction):
    plain = str.__str__(action)  # the bare str, not the enum
    assert type(plain) is str and plain == action.value
    assert canonical_bytes(_body(action)) == canonical_bytes(_body(plain))
    assert event_hash(_body(action)) == event_hash(_body(plain))
    assert f'"action":"{plain}"'.encode() in canonical_bytes(_body(action))


@BOTH_DBS
def test_events_written_with_members_store_export_and_verify_as_strings(ctx, tmp_path: Path):
    """Through the real chain (one ``record``, one ``record_many``), the database, the export
    file and the offline verifier: the stored action is the plain string and every hash holds."""
    ring = keyring(ctx)
    with session_scope(ctx.engine) as s:
        audit.record(
            s,
            actor="tanaka",
            action=AuditAction.RETENTION_HOLD_PLACED,
            target_type="case",
            target_id="C-1",
            case_id="C-1",
        )
        audit.record_many(
            s,
            actor="tanaka",
            events=[
                {"action": AuditAction.DOCUMENT_READ, "target_type": "document", "target_id": 1},
                {"action": AuditAction.FOLDER_CREATED, "target_type": "folder", "target_id": 2},
            ],
        )
    with Session(ctx.engine) as s:
        rows = s.exec(select(AuditEvent).order_by(col(AuditEvent.seq))).all()
        stored = [(type(e.action), e.action) for e in rows[-3:]]
        for e in rows:
            body = {k: getattr(e, k) for k in _body("x")}
            assert event_hash(body) == e.hash
    assert stored == [
        (str, "retention.hold_placed"),
        (str, "document.read"),
        (str, "folder.created"),
    ]
    export_audit(ctx.engine, ring, SYSTEM_ACTOR, tmp_path / "export")
    report = verify_export(tmp_path / "export")
    assert report.ok, report.failures
    lines = (tmp_path / "export" / "events.jsonl").read_text(encoding="utf-8").splitlines()
    exported = [json.loads(line)["action"] for line in lines]
    assert exported[:3] == ["retention.hold_placed", "document.read", "folder.created"]


# --- the web timeline ----------------------------------------------------------------------

# details as the services write them, so every placeholder gets a real value
_DETAILS = {
    "title": "道路台帳の整備",
    "login": "suzuki",
    "name": "起案",
    "filename": "台帳.pdf",
    "approved_on": "2026-04-01",
    "approvers": ["課長"],
    "version": 2,
    "count": 3,
    "items": 3,
    "batch_id": 12,
    "action": "destroy",
    "reason": "held:litigation",
    "hold_type": "litigation",
    "hold_type_label": "訴訟",
    "years": 5,
    "destroyed": 3,
    "certificate_id": "DC-000012",
    "transferred": 3,
    "receipt_reference": "R-1",
    "directory": "export-1",
    "checked": 10,
    "ok": 9,
    "problem": "corrupt",
    "source": r"\\share\old",
    "files_seen": 100,
    "imported": 90,
    "prefix": "gk_abc",
    "new_key_id": "k2",
}
_HIRAGANA = re.compile(r"[\u3041-\u3096]")
_KANA = re.compile(r"[\u3041-\u30ff]")


def _event(action: AuditAction, details: dict[str, object]) -> AuditEvent:
    return AuditEvent(
        seq=1,
        at="2026-04-01T00:00:00.000000Z",
        actor="tanaka",
        action=action,
        target_type="document",
        target_id="42",
        case_id="C-1",
        details=details,
        prev_hash=GENESIS_HASH,
        hash="0" * 64,
    )


@pytest.mark.parametrize("details", [_DETAILS, {}], ids=["details", "no-details"])
@pytest.mark.parametrize("action", list(AuditAction))
def test_every_action_has_a_japanese_and_an_english_sentence(
    action: AuditAction, details: dict[str, object]
):
    assert action in SENTENCES
    names = Names(users={"tanaka": "田中 一郎", "suzuki": "鈴木 花子"})
    ja = describe(_event(action, details), names, {42: "道路台帳"}, "ja").sentence
    en = describe(_event(action, details), names, {42: "Road register"}, "en").sentence
    for sentence in (ja, en):
        assert "{" not in sentence and "}" not in sentence, sentence
        assert action.value not in sentence, sentence  # a sentence, not the bare name
    assert ja.endswith("。") and en.endswith("."), (ja, en)
    ja_text, en_text = SENTENCES[action]
    assert _HIRAGANA.search(ja_text) and not _KANA.search(en_text), (ja_text, en_text)


def test_an_unknown_action_still_shows():
    event = _event(AuditAction.CASE_CLOSED, {})
    event.action = "future.thing"
    assert describe(event, Names(), {}, "ja").sentence == "tanaka: future.thing"


# --- no bare strings -----------------------------------------------------------------------

# Converted on their own branches (issue 13); drop each entry once its file uses members. The
# test fails while an entry is no longer needed, so the list cannot outlive its reason.
PENDING: tuple[str, ...] = ()


def _package_files() -> Iterator[Path]:
    setup = ast.parse((REPO / "setup.py").read_text(encoding="utf-8"))
    layers = next(
        ast.literal_eval(n.value)
        for n in setup.body
        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "LAYERS"
    )
    for layer in layers:
        yield from sorted((REPO / layer).rglob("*.py"))


def _is_text(node: ast.AST | None) -> bool:
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


def _leading_text(node: ast.JoinedStr) -> str:
    first = node.values[0] if node.values else None
    return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else ""


def _bare_actions(tree: ast.AST) -> Iterator[tuple[int, str]]:
    values = {a.value for a in AuditAction}
    prefixes = {v[: i + 1] for v in values for i, ch in enumerate(v) if ch in "._"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name in ("record", "record_many"):
                for kw in node.keywords:
                    if kw.arg == "action" and _is_text(kw.value):
                        yield node.lineno, f"{name}(action=<text>)"
        elif isinstance(node, ast.Dict):
            keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
            if {"action", "target_type"} <= keys:
                value = node.values[[getattr(k, "value", None) for k in node.keys].index("action")]
                if _is_text(value):
                    yield node.lineno, "event dict with a text action"
        elif isinstance(node, ast.Constant) and node.value in values:
            yield node.lineno, repr(node.value)
        elif isinstance(node, ast.JoinedStr) and _leading_text(node) in prefixes:
            yield node.lineno, f"f-string starting {_leading_text(node)!r}"


def test_no_action_is_written_as_a_bare_string():
    """Every audit action in the package is an ``AuditAction`` member: no ``record(action=…)``
    or event dict with a string or f-string, and no string literal equal to an action name
    (``actions.py`` itself aside)."""
    found: dict[str, list[str]] = {}
    for path in _package_files():
        rel = path.relative_to(REPO).as_posix()
        if rel == "records/audit/actions.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        for line, what in _bare_actions(tree):
            found.setdefault(rel, []).append(f"{rel}:{line}: {what}")
    pending = {rel for rel in found if rel.startswith(PENDING)}
    unneeded = [p for p in PENDING if not any(rel.startswith(p) for rel in pending)]
    assert not unneeded, f"no bare action left in {unneeded}: remove them from PENDING"
    problems = [msg for rel, msgs in sorted(found.items()) if rel not in pending for msg in msgs]
    assert not problems, "use AuditAction members:\n" + "\n".join(problems)


def test_the_checker_sees_each_form():
    src = """
audit.record(s, action="case.closed")
audit.record(s, action=f"document.{x}")
record_many(s, events=[{"action": "x.y", "target_type": "t"}])
helper(s, "retention.extended")
f"retention.batch_{decision}"
audit.record(s, action=AuditAction.CASE_CLOSED)
"""
    lines = [line for line, _ in _bare_actions(ast.parse(src))]
    assert sorted(lines) == [2, 2, 3, 3, 4, 5, 6]
