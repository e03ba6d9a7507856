"""The import report for people: near-duplicate scores that do not round up to 1.00, the exact
similarity for short texts, and near-duplicate groups sorted, banded and paged."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import genpon.api.tables  # noqa: F401  (every table registered)
from genpon.migrate import report
from genpon.migrate.models import ImportRun, NearDupCluster
from genpon.migrate.near import exact_when_cheap
from sqlmodel import Session, SQLModel, create_engine


def test_scores_are_cut_to_three_decimals() -> None:
    assert report.fmt_score(0.978) == "0.978"
    assert report.fmt_score(0.9995) == "0.999"  # never "1.00" for texts that differ
    assert report.fmt_score(0.8) == "0.800"
    assert report.fmt_score(1.0) == "1.000"


def test_short_texts_get_their_exact_score() -> None:
    pairs = [("a", "b", 0.85), ("c", "d", 0.9)]
    exact = {("a", "b"): 0.7412, ("c", "d"): 0.91}.get

    def exact_of(x: str, y: str) -> float | None:
        return exact((x, y))

    short = {"a": 300, "b": 280, "c": 400, "d": 410}
    assert list(exact_when_cheap(pairs, exact_of, short, 0.7)) == [
        ("a", "b", 0.7412),
        ("c", "d", 0.91),
    ]
    # truly below the threshold: not reported
    assert list(exact_when_cheap(pairs, exact_of, short, 0.8)) == [("c", "d", 0.91)]
    # long texts keep their estimate
    long = {k: 10_000_000 for k in short}
    assert list(exact_when_cheap(pairs, exact_of, long, 0.8)) == pairs


def test_near_duplicates_are_sorted_banded_and_paged(tmp_path: Path) -> None:
    engine = create_engine("sqlite://")
    SQLModel.metadata.create_all(engine)
    with Session(engine) as s:
        run = ImportRun(
            source_root="/share",
            source_root_raw=b"/share",
            organization_id=1,
            folder_kind="team",
            folder_name="取込",
            original_rule="oldest",
            started_by="suzuki",
            started_at=datetime(2026, 7, 15, tzinfo=UTC),
            status="completed",
            summary={},
        )
        s.add(run)
        s.flush()
        for i in range(60):  # scores 0.80 .. 0.9995, inserted least similar first
            score = 0.8 + (0.1995 * i / 59)
            s.add(
                NearDupCluster(
                    scope="import",
                    run_id=run.id,
                    threshold=0.8,
                    size=2,
                    max_score=score,
                    min_score=score,
                    members=[f"{i:02d}a", f"{i:02d}b"],
                    pairs=[[f"{i:02d}a", f"{i:02d}b", score]],
                )
            )
        s.commit()
        files = report.write_report(s, run.id or 0, tmp_path)
        first = files["html"].read_text("utf-8")
        second = (tmp_path / "near-duplicates-002.html").read_text("utf-8")
        api_page = report.render_html(s, run.id or 0, near_page=2)
    engine.dispose()
    assert first.count('data-testid="near-cluster"') == report.NEAR_PAGE_SIZE
    assert second.count('data-testid="near-cluster"') == 60 - report.NEAR_PAGE_SIZE
    assert "全 60 グループ中 1〜50 グループ目（1 / 2 ページ）" in first
    assert 'href="near-duplicates-002.html#near"' in first
    assert 'href="?near_page=1#near"' in api_page
    scores = [float(x) for x in re.findall(r'<td class="num">([01]\.\d{3})</td>', first)]
    assert scores == sorted(scores, reverse=True) and scores[0] == 0.999  # not 1.000
    assert "〜1.000" not in first and ">1.000<" not in first
    assert first.index("ほぼ同一") < first.index("よく似ている") < first.index("似ている（しきい値")
    assert "概要" not in second  # the further pages hold the near-duplicates only
