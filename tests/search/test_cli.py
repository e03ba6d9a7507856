"""``genpon search`` and ``genpon reindex``, run in-process (see tests/records/test_cli.py)."""

from __future__ import annotations

from pathlib import Path

from tests.records.test_cli import Cli, cli  # noqa: F401  (fixture)


def test_search_cli(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    cli("init", "--demo", "--no-history")  # exact counts: no demo past cases
    case_id = cli(
        "case", "create", "道路予算", "--org", "SOUMU-ZAISEI", "--class", "B0101"
    ).stdout.split()[0]
    f = tmp_path / "予算書.txt"
    f.write_text("令和8年度の道路予算について", encoding="utf-8")
    doc_id = cli("deposit", str(f), "--case", case_id).stdout.split()[1]
    assert "本文 pending" in cli("show", doc_id).stdout
    r = cli("search", "道路予算")
    assert r.stdout.startswith("1 件"), r.stdout
    assert case_id in r.stdout and "原本" in r.stdout
    assert cli("--as", "ito", "search", "道路予算").stdout.startswith("0 件")
    assert "1 件" in cli("search", "reindex").stdout
    shown = cli("show", doc_id).stdout
    assert "本文 ok" in shown and "14字" in shown and "索引 未" not in shown, shown
    assert "1 件" in cli("reindex", "--fresh").stdout
    bad = cli("search", '"予算', ok=False)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1].startswith("genpon: ")
    assert "unbalanced_quotes" in bad.stderr
