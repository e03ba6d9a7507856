"""Pairs near the similarity threshold are decided by their exact Jaccard, in the import (texts
extracted again from the store, or from the source in a dry run) and in `genpon duplicates
near` (texts the search indexer stored: nothing extracted again)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from genpon.migrate import near_dupes
from genpon.migrate.config import DEFAULT_THRESHOLD
from genpon.migrate.models import NearDupCluster, TextSignature
from genpon.migrate.service import ImportOptions, run_import, scan_genpon
from genpon.records.access import SYSTEM_ACTOR
from genpon.records.models import BlobText
from genpon.search.indexer import drain
from sqlmodel import Session, select

from tests.conftest import BOTH_DBS
from tests.records.helpers import deposit, team_folder

WORDS = ["予算", "執行", "計画", "市長", "議会", "条例", "施行", "改正", "附則", "公布", "文書"]


def _base(rnd: random.Random) -> str:
    kanji = [chr(c) for c in range(0x4E00, 0x4E00 + 2000)]
    words = WORDS + ["".join(rnd.choices(kanji, k=rnd.randint(1, 3))) for _ in range(600)]
    return "".join("".join(rnd.choices(words, k=rnd.randint(6, 14))) + "。\n" for _ in range(120))


def _edit(text: str, frac: float, rnd: random.Random) -> str:
    lines = text.splitlines(keepends=True)
    for _ in range(round(len(lines) * frac)):
        i = rnd.randrange(len(lines))
        lines[i] = f"第{rnd.randrange(10**6)}項を改める。\n"
    return "".join(lines)


def _truth(a: str, b: str) -> float:
    return near_dupes.jaccard(near_dupes.shingles(a), near_dupes.shingles(b))


def _estimate(a: str, b: str) -> float:
    sa, sb = near_dupes.signature(a), near_dupes.signature(b)
    assert sa is not None and sb is not None
    return near_dupes.estimate(sa, sb)


def _misjudged(rnd: random.Random, above: bool) -> tuple[str, str]:
    """Two texts the estimate puts on the wrong side of the threshold: truly above it but
    estimated below (``above``), or truly below it but estimated above."""
    for _ in range(400):
        base = _base(rnd)
        other = _edit(base, rnd.uniform(0.09, 0.14), rnd)
        j, est = _truth(base, other), _estimate(base, other)
        if (j >= DEFAULT_THRESHOLD > est) if above else (est >= DEFAULT_THRESHOLD > j):
            return base, other
    raise AssertionError("no misjudged pair found")


@pytest.fixture
def pairs() -> dict[str, tuple[str, str]]:
    rnd = random.Random(5)
    return {"hidden": _misjudged(rnd, above=True), "false": _misjudged(rnd, above=False)}


def _sha(text: str) -> str:
    return __import__("hashlib").sha256(text.encode("utf-8")).hexdigest()


def _reported(clusters: list[NearDupCluster]) -> dict[tuple[str, str], float]:
    return {(a, b): score for c in clusters for a, b, score in c.pairs}


def _expect(pairs: dict[str, tuple[str, str]], found: dict[tuple[str, str], float]) -> None:
    hidden, false = pairs["hidden"], pairs["false"]
    key = tuple(sorted(map(_sha, hidden)))
    assert key in found, "a pair truly above the threshold is reported"
    assert found[key] == round(_truth(*hidden), 4), "with its exact Jaccard as the score"
    assert tuple(sorted(map(_sha, false))) not in found, "a pair truly below is not"


@BOTH_DBS
def test_import_decides_borderline_pairs_exactly(ctx, demo, tmp_path: Path, pairs):
    root = tmp_path / "share"
    root.mkdir()
    for name, (a, b) in pairs.items():
        (root / f"{name}_案.txt").write_text(a, encoding="utf-8")
        (root / f"{name}_最終.txt").write_text(b, encoding="utf-8")
    for dry in (True, False):  # the dry run reads the source, the import its stored blobs
        opts = ImportOptions(root=root, org_code="SOUMU-ZAISEI", kind="team", dry_run=dry)
        result = run_import(ctx.engine, ctx.store, ctx.settings, SYSTEM_ACTOR, opts)
        try:
            assert result.summary["near_duplicate_clusters"] >= 1
            with Session(result.state_engine) as s:
                clusters = list(
                    s.exec(
                        select(NearDupCluster).where(NearDupCluster.run_id == result.run_id)
                    ).all()
                )
            _expect(pairs, _reported(clusters))
        finally:
            result.close()


@BOTH_DBS
def test_duplicates_near_uses_stored_texts(ctx, demo, client, pairs):
    auth, folder = demo.auth("tanaka"), team_folder(ctx)
    for a, b in pairs.values():
        for text in (a, b):
            r = deposit(client, auth, text.encode("utf-8"), folder_id=folder)
            assert r.status_code == 201, r.text
    drain(ctx)  # the search indexer extracts and stores every text once
    with Session(ctx.engine) as s:
        assert len(s.exec(select(BlobText).where(BlobText.status == "ok")).all()) == 4
        assert not s.exec(select(TextSignature)).all()
    for a, b in pairs.values():  # the blobs are gone from the store: nothing can be re-extracted
        for text in (a, b):
            path = ctx.store.local_path(_sha(text))
            assert path is not None
            path.unlink()
    scan = scan_genpon(ctx.engine, ctx.store, SYSTEM_ACTOR)
    assert scan.signed == 4
    _expect(pairs, _reported(scan.clusters))
