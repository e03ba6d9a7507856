"""genpon import: ground truth (exact groups, near-duplicates, format twins), troublesome
entries, provenance, dry run, original rule, report, API, duplicates near."""

from __future__ import annotations

import csv
import io
import itertools
import os
from pathlib import Path

import pytest
from genpon.migrate import near_dupes, walker
from genpon.migrate.models import ImportEntry, NearDupCluster
from genpon.migrate.report import write_report
from genpon.migrate.service import ImportOptions, run_import, scan_genpon
from genpon.records.access import SYSTEM_ACTOR
from genpon.records.models import Document, Folder
from sqlalchemy import func
from sqlmodel import Session, select

from tests.conftest import BOTH_DBS
from tests.imports.share import add_troublesome, add_unreadable, build_share, cleanup, tree_state
from tests.records.helpers import snapshot

pytestmark = pytest.mark.corpus


@pytest.fixture
def share(tmp_path: Path, shared_data: Path):
    root = tmp_path / "share"
    root.mkdir()
    truth = build_share(root, shared_data)
    add_troublesome(truth)
    if os.geteuid() != 0:
        add_unreadable(truth)
    yield truth
    cleanup(root)


def _import(ctx, truth, stop_after=None, **kw):
    opts = ImportOptions(root=truth.root, org_code="SOUMU-ZAISEI", kind="team", **kw)
    return run_import(
        ctx.engine, ctx.store, ctx.settings, SYSTEM_ACTOR, opts, stop_after=stop_after
    )


def _true_texts(truth) -> dict[str, str]:
    from genpon.search.extract import extract

    out = {}
    for rel, data in truth.files.items():
        sha = __import__("hashlib").sha256(data).hexdigest()
        if rel.endswith(b".html"):
            out[sha] = extract(truth.root / os.fsdecode(rel), "text/html").text or ""
        else:
            out[sha] = data.decode("utf-8", "replace")
    return out


@BOTH_DBS
def test_ground_truth_exact_and_near(ctx, demo, share, tmp_path):
    before = tree_state(share.root)
    result = _import(ctx, share, workers=2)
    assert tree_state(share.root) == before  # the source tree is only read
    sm = result.summary
    with Session(ctx.engine) as s:
        entries = {
            e.rel_path_raw: e
            for e in s.exec(select(ImportEntry).where(ImportEntry.run_id == result.run_id))
        }
        # every importable file became exactly one document; troublesome entries were reported
        for rel in share.files:
            assert entries[rel].state == "done", (rel, entries[rel].reason, entries[rel].detail)
        for rel, reason in share.skipped.items():
            assert entries[rel].state == "skipped" and entries[rel].reason == reason, rel
        docs = s.exec(select(Document).where(Document.provenance.is_not(None))).all()  # type: ignore[union-attr]
        assert len(docs) == len(share.files) == sm["imported"]
        # exact grouping: 100% equal to the ground truth, one original per group
        truth_groups = {frozenset(v) for v in share.groups().values()}
        got: dict[str, set[bytes]] = {}
        for rel in share.files:
            got.setdefault(entries[rel].sha256 or "", set()).add(rel)
        assert {frozenset(v) for v in got.values()} == truth_groups
        by_id = {d.id: d for d in docs}
        for sha, rels in got.items():
            ds = [by_id[entries[r].document_id] for r in rels]
            originals = [d for d in ds if d.original_id is None]
            assert len(originals) == 1 and all(d.sha256 == sha for d in ds)
            assert all(d.original_id in (None, originals[0].id) for d in ds)
            # default rule: oldest mtime wins (all working, none in a case)
            oldest = min(rels, key=lambda r: entries[r].mtime_ns or 0)
            assert entries[oldest].document_id == originals[0].id
        saved = sum(
            len(v[0]) * (len(v[1]) - 1)
            for v in ((share.files[next(iter(g))], g) for g in truth_groups)
        )
        assert sm["bytes_saved"] == saved
        # provenance: raw bytes for the Shift_JIS name, display name decoded; mtime and owner
        sj = entries["旧共有/予算書.txt".encode("cp932")]
        assert sj.name_encoding == "cp932" and sj.rel_path == "旧共有/予算書.txt"
        prov = by_id[sj.document_id].provenance
        assert bytes.fromhex(prov["source_path_raw_hex"]) == "旧共有/予算書.txt".encode("cp932")
        assert prov["owner"] and prov["mtime"]
        deep = next(r for r in share.files if r.endswith(b"deep.txt"))
        assert by_id[entries[deep].document_id].filename == "deep.txt"
        # NFC/NFD twins: both kept, same folder, raw names differ
        twins = [e for e in entries.values() if e.rel_path.startswith("正規化/")]
        assert len(twins) == 2 and len({e.document_id for e in twins}) == 2
        assert len({by_id[e.document_id].folder_id for e in twins}) == 1
        # near-duplicates against the character-shingle Jaccard ground truth
        texts = _true_texts(share)
        truth_pairs = set()
        shingles = {sha: near_dupes.shingles(t) for sha, t in texts.items()}
        for a, b in itertools.combinations(sorted(shingles), 2):
            if near_dupes.jaccard(shingles[a], shingles[b]) >= 0.8:
                truth_pairs.add((a, b))
        found = set()
        for c in s.exec(select(NearDupCluster).where(NearDupCluster.run_id == result.run_id)):
            found |= {(a, b) for a, b, _score in c.pairs}
        tp = len(found & truth_pairs)
        precision = tp / len(found) if found else 0.0
        recall = tp / len(truth_pairs)
        print(
            f"near-duplicates: pairs={len(truth_pairs)} found={len(found)} "
            f"precision={precision:.3f} recall={recall:.3f}"
        )
        assert precision >= 0.95 and recall >= 0.9
        # every format twin (text and Shift_JIS HTML of the same law) is found
        for txt, html in share.twins:
            pair = tuple(sorted((entries[txt].sha256, entries[html].sha256)))
            assert pair in found
        # report: HTML (Japanese) and CSV
        files = write_report(s, result.run_id, tmp_path / "report")
    html = files["html"].read_text(encoding="utf-8")
    assert "取込レポート" in html and "類似ファイル" in html and "シンボリックリンクの循環" in html
    assert "旧共有/予算書.txt" in html
    rows = list(csv.DictReader(io.StringIO(files["entries_csv"].read_text(encoding="utf-8-sig"))))
    assert len(rows) == len(entries)
    assert any(r["reason"] == "special_file" for r in rows)


def test_dry_run_changes_nothing(ctx, demo, share, tmp_path):
    before = snapshot(ctx)
    tree = tree_state(share.root)
    result = _import(ctx, share, dry_run=True)
    try:
        assert result.summary["imported"] == len(share.files)
        assert result.summary["exact_duplicate_groups"] > 0
        assert result.summary["near_duplicate_clusters"] > 0
        with Session(result.state_engine) as s:
            files = write_report(s, result.run_id, tmp_path / "dry")
        assert "試行" in files["html"].read_text(encoding="utf-8")
    finally:
        result.close()
    assert snapshot(ctx) == before and tree_state(share.root) == tree


def test_existing_official_original_stays_and_reimport_adds_nothing(ctx, demo, client, tmp_path):
    from tests.records.helpers import deposit, new_case

    auth = demo.auth("tanaka")
    case = new_case(client, auth)
    body = "決裁済みの文書".encode()
    r = deposit(client, auth, body, case_id=case["case_id"], approval={"approved_on": "2026-04-01"})
    assert r.status_code == 201
    official_id = r.json()["id"]
    root = tmp_path / "s"
    (root / "古い").mkdir(parents=True)
    (root / "古い" / "決裁.txt").write_bytes(body)
    os.utime(root / "古い" / "決裁.txt", (1e9, 1e9))
    (root / "new.txt").write_bytes("新しい".encode())
    (root / "newer.txt").write_bytes("新しい".encode())
    os.utime(root / "new.txt", (1.1e9, 1.1e9))
    opts = ImportOptions(root=root, org_code="SOUMU-ZAISEI", kind="team", with_text=False)
    res = run_import(ctx.engine, ctx.store, ctx.settings, SYSTEM_ACTOR, opts)
    with Session(ctx.engine) as s:
        e = s.exec(select(ImportEntry).where(ImportEntry.rel_path == "古い/決裁.txt")).one()
        d = s.get(Document, e.document_id)
        assert d.original_id == official_id  # official in Genpon beats an older legacy file
        n_e = s.exec(select(ImportEntry).where(ImportEntry.rel_path == "new.txt")).one()
        assert n_e.role == "original"  # older of the two identical files
        folder = s.get(Folder, d.folder_id)
        assert folder.name == "古い"
        ndocs = s.exec(select(func.count()).select_from(Document)).one()
    again = run_import(ctx.engine, ctx.store, ctx.settings, SYSTEM_ACTOR, opts)
    assert again.run_id != res.run_id and again.summary["imported"] == 0
    assert again.summary["skipped_by_reason"] == {"already_imported": 3}
    with Session(ctx.engine) as s:
        assert s.exec(select(func.count()).select_from(Document)).one() == ndocs


def test_an_older_legacy_file_takes_over_from_a_working_original(ctx, demo, client, tmp_path):
    """A working document already in Genpon ranks by its deposit time: an identical legacy
    file modified long before becomes the original, and the former original and its copies
    point to it (audited as ``document.original_moved``)."""
    from genpon.records.models import AuditEvent

    from tests.records.helpers import copy_to, deposit, new_case, team_folder

    auth = demo.auth("tanaka")
    body = "作業中の起案文書".encode()
    r = deposit(client, auth, body, folder_id=team_folder(ctx))
    assert r.status_code == 201, r.text
    working_id = r.json()["id"]
    copy_id = copy_to(client, auth, working_id, new_case(client, auth)["folder_id"])
    root = tmp_path / "s"
    root.mkdir()
    (root / "古い版.txt").write_bytes(body)
    os.utime(root / "古い版.txt", (1e9, 1e9))
    opts = ImportOptions(root=root, org_code="SOUMU-ZAISEI", kind="team", with_text=False)
    run_import(ctx.engine, ctx.store, ctx.settings, SYSTEM_ACTOR, opts)
    with Session(ctx.engine) as s:
        e = s.exec(select(ImportEntry).where(ImportEntry.rel_path == "古い版.txt")).one()
        assert (e.state, e.role, e.original_document_id) == ("done", "original", None)
        new = s.get(Document, e.document_id)
        assert new is not None and new.original_id is None
        old = s.get(Document, working_id)
        assert old is not None and old.original_id == new.id
        copy = s.get(Document, copy_id)
        assert copy is not None and copy.original_id == new.id
        live_originals = s.exec(
            select(Document.id).where(
                Document.sha256 == new.sha256,
                Document.state == "live",
                Document.original_id.is_(None),  # type: ignore[union-attr]
            )
        ).all()
        assert live_originals == [new.id]
        moved = s.exec(
            select(AuditEvent).where(AuditEvent.action == "document.original_moved")
        ).all()
        assert [(m.details["from"], m.details["to"]) for m in moved] == [(working_id, new.id)]


def test_stop_midway_and_resume(ctx, demo, share):
    first = _import(ctx, share, stop_after="hash")
    with Session(ctx.engine) as s:
        assert s.exec(select(func.count()).select_from(Document)).one() == 0
    second = _import(ctx, share)
    assert second.resumed and second.run_id == first.run_id
    assert second.summary["imported"] == len(share.files)


def test_file_changing_while_read(tmp_path):
    p = tmp_path / "growing.txt"
    p.write_bytes(b"x" * (3 << 20))

    def grow(_n: int) -> None:
        if _n == 1 << 20:  # after the first chunk of every attempt
            with p.open("ab") as f:
                f.write(b"y")

    with pytest.raises(walker.SkipEntry) as exc:
        walker.read_stable(os.fsencode(str(tmp_path)), b"growing.txt", on_chunk=grow)
    assert exc.value.reason == "changed_while_reading"
    calls = []

    def grow_once(_n: int) -> None:
        if not calls and _n == 1 << 20:
            calls.append(1)
            grow(_n)

    h = walker.read_stable(os.fsencode(str(tmp_path)), b"growing.txt", on_chunk=grow_once)
    assert h.size == (3 << 20) + 4  # the retry read a stable file


def test_unreadable_file_is_reported(tmp_path):
    """chmod 000 is unreadable for a normal user; as root, read from an unprivileged child."""
    import json

    from genpon.migrate.hashing import _hash_task

    d = tmp_path / "u"
    d.mkdir()
    (d / "x.txt").write_bytes(b"secret")
    (d / "x.txt").chmod(0)
    for parent in (d, *d.parents):
        if parent == Path("/"):
            break
        parent.chmod(parent.stat().st_mode | 0o011)  # traversable by the unprivileged child
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop privileges, hash, report
        try:
            os.close(r)
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            res = _hash_task((os.fsencode(str(d)), b"x.txt", ("*",)))
            os.write(w, json.dumps(res).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        res = json.loads(f.read() or b"{}")
    os.waitpid(pid, 0)
    (d / "x.txt").chmod(0o644)
    assert res.get("reason") == "unreadable", res


def test_api_read_only_for_officers(ctx, demo, client, share):
    result = _import(ctx, share)
    officer, staff = demo.auth("suzuki"), demo.auth("tanaka")
    assert client.get("/api/v1/imports", headers=staff).status_code == 403
    runs = client.get("/api/v1/imports", headers=officer).json()
    assert runs["count"] == 1 and runs["data"][0]["status"] == "completed"
    rid = result.run_id
    r = client.get(f"/api/v1/imports/{rid}/entries?state=skipped", headers=officer).json()
    assert {e["reason"] for e in r["data"]} >= {"empty_file", "special_file", "symlink_loop"}
    html = client.get(f"/api/v1/imports/{rid}/report", headers=officer)
    assert html.status_code == 200 and "取込レポート" in html.text
    assert client.get(f"/api/v1/imports/{rid}/report.csv", headers=officer).text.startswith(
        "\ufeff"
    )
    near = client.get(f"/api/v1/imports/{rid}/near-duplicates", headers=officer).json()
    assert near["count"] >= 1 and all(c["paths"] for c in near["data"])
    where = client.get(
        "/api/v1/imports/where", params={"path": "予算書.txt"}, headers=officer
    ).json()
    assert where["count"] == 1 and where["data"][0]["path_raw_hex"]
    assert (
        client.get("/api/v1/imports/999", headers=officer).json()["error"]["code"]
        == "import_run_not_found"
    )
    bad = client.get("/api/v1/imports/where", headers=officer)
    assert bad.status_code in (400, 422) and bad.json()["error"]["code"] == "path_required"
    # near-duplicates among documents already in Genpon
    scan = scan_genpon(ctx.engine, ctx.store, SYSTEM_ACTOR)
    assert scan.clusters and scan.signed > 0
    g = client.get("/api/v1/duplicates/near", headers=officer).json()
    assert g["count"] == len(scan.clusters) and all(c["documents"] for c in g["data"])


def test_bad_input(ctx, demo, tmp_path):
    from genpon.core.errors import GenponError

    cases = [
        (dict(root=tmp_path / "missing", org_code="SOUMU-ZAISEI", kind="team"), "source_not_found"),
        (dict(root=tmp_path, org_code="NOPE", kind="team"), "organization_not_found"),
        (dict(root=tmp_path, org_code="SOUMU-ZAISEI", kind="case"), "invalid_folder_kind"),
        (
            dict(root=tmp_path, org_code="SOUMU-ZAISEI", kind="team", original_rule="biggest"),
            "invalid_original_rule",
        ),
        (
            dict(root=tmp_path, org_code="SOUMU-ZAISEI", kind="team", threshold=0.1),
            "invalid_threshold",
        ),
    ]
    for kw, code in cases:
        with pytest.raises(GenponError) as exc:
            run_import(ctx.engine, ctx.store, ctx.settings, SYSTEM_ACTOR, ImportOptions(**kw))
        assert exc.value.code == code
