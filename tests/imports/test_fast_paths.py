"""The import's fast paths: the one-permutation signature, the hash phase's staged copy (one
read per file), bulk subfolder creation (records.folders.create_folder_paths)."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pytest
from genpon.core.errors import Forbidden, InvalidInput, NotFound
from genpon.migrate import near_dupes
from genpon.migrate.hashing import _hash_task, staged_name
from genpon.migrate.staging import _prep_task
from genpon.records.access import SYSTEM_ACTOR, actor_for_user
from genpon.records.folders import create_folder, create_folder_paths
from genpon.records.models import AuditEvent, Folder, User
from genpon.storage.base import STAGING_PREFIX
from genpon.storage.local import LocalBlobStore
from sqlalchemy import func
from sqlmodel import Session, select

from tests.records.helpers import team_folder

# --- signature -------------------------------------------------------------------------------


def _edited(text: str, frac: float, rnd: random.Random) -> str:
    lines = text.splitlines(keepends=True)
    for _ in range(int(len(lines) * frac) + 1):
        i = rnd.randrange(len(lines))
        lines[i] = f"改正{rnd.random()}\n"
    return "".join(lines)


@pytest.mark.corpus
def test_signature_estimates_shingle_jaccard(shared_data: Path):
    rnd = random.Random(3)
    laws = sorted((shared_data / "ja" / "laws").glob("*.txt"))[:40]
    errors = []
    for p in laws:
        a = p.read_text(encoding="utf-8")
        if len(a) < 2000:
            continue
        for frac in (0.02, 0.1, 0.3):
            b = _edited(a, frac, rnd)
            true = near_dupes.jaccard(near_dupes.shingles(a), near_dupes.shingles(b))
            sa, sb = near_dupes.signature(a), near_dupes.signature(b)
            assert sa is not None and sb is not None and len(sa) == near_dupes.NUM_PERM
            errors.append(near_dupes.estimate(sa, sb) - true)
    assert len(errors) >= 30
    assert abs(sum(errors) / len(errors)) < 0.02  # unbiased
    assert max(abs(e) for e in errors) < 0.12  # ~4.5 standard deviations at 256 bins


def test_signature_properties():
    text = "第一条　この条例は、市の文書の管理に関し必要な事項を定めるものとする。" * 5
    sig = near_dupes.signature(text)
    assert sig is not None
    # layout does not matter (NFKC, whitespace removed); identical texts agree everywhere
    spaced = near_dupes.signature(" \n".join(text[i : i + 7] for i in range(0, len(text), 7)))
    assert spaced is not None and near_dupes.estimate(sig, spaced) == 1.0
    # short texts fill every bin (densification); too short has no signature
    short = near_dupes.signature("市の文書管理規則")
    assert short is not None and len(set(short.tolist())) > 1
    assert near_dupes.signature("短い") is None
    # stored form is tagged; a signature of an earlier scheme is never compared
    raw = near_dupes.to_bytes(sig)
    assert near_dupes.current(raw) and (near_dupes.from_bytes(raw) == sig).all()
    old = sig.astype("<u4").tobytes()
    assert not near_dupes.current(old) and len(near_dupes.from_bytes(old)) == 0
    assert list(near_dupes.near_pairs([("a" * 64, old), ("b" * 64, old)], 0.8)) == []
    pairs = list(near_dupes.near_pairs([("a" * 64, raw), ("b" * 64, raw)], 0.8))
    assert pairs == [("a" * 64, "b" * 64, 1.0)]


# --- hash phase: one read, copied into staging -------------------------------------------------


def test_hash_task_stages_copy_once(tmp_path: Path):
    src = tmp_path / "src"
    src.mkdir()
    big = os.urandom(3 << 20)  # spilled to a temp file while read
    (src / "a.txt").write_bytes("本文".encode() * 1000)
    (src / "a_copy.txt").write_bytes("本文".encode() * 1000)
    (src / "big.dat").write_bytes(big)
    (src / "empty.txt").write_bytes(b"")
    store = LocalBlobStore(tmp_path / "blobs")
    staging = str(store.staging_dir)
    root = os.fsencode(str(src))

    def run(name: str, allowed: tuple[str, ...] = ("*",)) -> dict:
        return _hash_task((root, name.encode(), allowed, staging, "t1", None))

    a = run("a.txt")
    assert a["sha256"] == hashlib.sha256("本文".encode() * 1000).hexdigest()
    staged = Path(staging) / staged_name("t1", a["sha256"])
    assert staged.read_bytes() == "本文".encode() * 1000
    before = staged.stat().st_ino
    assert run("a_copy.txt")["sha256"] == a["sha256"]
    assert staged.stat().st_ino == before  # the same content is not staged twice
    b = run("big.dat")
    staged_b = Path(staging) / staged_name("t1", b["sha256"])
    assert staged_b.read_bytes() == big
    assert "mime" not in b  # a real import sniffs once per content, later
    assert run("empty.txt")["reason"] == "empty_file"
    too_large = _hash_task((root, b"big.dat", ("*",), staging, "t3", 1 << 20))
    assert too_large["size"] == len(big) and "reason" not in too_large
    names = sorted(os.listdir(staging))
    assert names == sorted([staged.name, staged_b.name])
    assert all(n.startswith(STAGING_PREFIX) for n in names)  # leftovers are gc's to remove
    # without staging (dry run) the type is sniffed and checked right away
    assert _hash_task((root, b"a.txt", ("application/pdf",)))["reason"] == "type_not_allowed"
    # per content: sniffed once, linked into the store when allowed (write-once), staged
    # name kept for the deposit; a content that was not staged is read from its source
    gone = "c" * 64
    res = _prep_task(
        (
            str(store.root),
            root,
            ("text/*",),
            [
                (a["sha256"], str(staged), b"a.txt", None, True),
                (b["sha256"], str(staged_b), b"big.dat", None, True),
                (gone, str(Path(staging) / "gone"), b"missing.txt", None, True),
                ("d" * 64, str(Path(staging) / "gone"), b"a_copy.txt", None, False),
            ],
            True,
        )
    )
    assert res["mime"] == {
        a["sha256"]: "text/plain",
        b["sha256"]: "application/octet-stream",
        gone: None,
        "d" * 64: "text/plain",
    }
    assert res["linked"] == [a["sha256"]]
    # text signatures of the allowed contents that want one (from the staged copy)
    assert [(x.sha256, x.status) for x in res["sigs"]] == [(a["sha256"], "ok")]
    assert store.exists(a["sha256"]) and staged.exists() and not store.exists(b["sha256"])


# --- bulk subfolders -------------------------------------------------------------------------


def test_create_folder_paths(ctx, demo):
    root_id = team_folder(ctx)
    with Session(ctx.engine) as s:
        existing = create_folder(s, SYSTEM_ACTOR, name="既存", parent_id=root_id)
        s.commit()
        events = s.exec(select(func.count()).select_from(AuditEvent)).one()
        last_seq = s.exec(select(func.max(AuditEvent.seq))).one() or 0
        ids = create_folder_paths(
            s,
            SYSTEM_ACTOR,
            parent_id=root_id,
            paths=[("既存", "令和7年度"), ("既存", "令和7年度", "案件"), ("新規/旧",), ()],
        )
        s.commit()
        assert ids[("既存",)] == existing.id and ids[()] == root_id
        assert set(ids) == {
            (),
            ("既存",),
            ("既存", "令和7年度"),
            ("既存", "令和7年度", "案件"),
            ("新規／旧",),
        }
        made = [s.get(Folder, ids[k]) for k in ids if k not in ((), ("既存",))]
        assert all(f is not None and f.kind == "team" for f in made)
        assert (
            s.get(Folder, ids[("既存", "令和7年度", "案件")]).parent_id
            == ids[("既存", "令和7年度")]
        )
        new_events = s.exec(
            select(AuditEvent).where(col_seq(AuditEvent) > last_seq).order_by(col_seq(AuditEvent))
        ).all()
        assert [e.action for e in new_events] == ["folder.created"] * 3
        # again: everything exists, nothing created
        again = create_folder_paths(s, SYSTEM_ACTOR, parent_id=root_id, paths=list(ids))
        assert again == ids
        assert s.exec(select(func.count()).select_from(AuditEvent)).one() == events + 3
        with pytest.raises(InvalidInput):
            create_folder_paths(s, SYSTEM_ACTOR, parent_id=root_id, paths=[("..",)])
        # same access rule as create_folder: another unit's staff cannot write here
        ito = actor_for_user(s, s.exec(select(User).where(User.login == "ito")).one())
        with pytest.raises((Forbidden, NotFound)):
            create_folder_paths(s, ito, parent_id=root_id, paths=[("x",)])


def col_seq(model):  # type: ignore[no-untyped-def]
    from sqlmodel import col

    return col(model.seq)


# --- persistent extractor child (PDF/Office) ---------------------------------------------------


@pytest.mark.corpus
def test_child_extractor_matches_search_extractor(shared_data: Path, tmp_path: Path):
    from genpon.migrate.extract_pool import ChildExtractor
    from genpon.records.sniff import sniff
    from genpon.search.extract import extract

    files = []
    for sub, n in (("office", 10), ("pdfs", 10)):
        files += sorted(p for p in (shared_data / sub).iterdir() if p.suffix != ".csv")[:n]
    text = tmp_path / "a.txt"
    text.write_text("本文です。" * 20, encoding="utf-8")
    cx = ChildExtractor()
    try:
        for p in [*files, text]:
            mime = sniff(p, p.read_bytes()[:8192])
            want, got = extract(p, mime), cx.extract(p, mime)
            assert (got.status, got.text, got.extractor) == (want.status, want.text, want.extractor)
        # a file that takes too long is reported, and the next one is read as usual
        pdf = next(p for p in files if p.suffix == ".pdf")
        slow = ChildExtractor(timeout=0.000001)
        res = slow.extract(pdf, "application/pdf")
        assert res.status == "failed" and "timeout" in (res.reason or "")
        slow.timeout = 60
        assert slow.extract(pdf, "application/pdf").status == extract(pdf, "application/pdf").status
    finally:
        cx.close()
