"""``genpon search`` and ``genpon reindex`` in real subprocesses."""

from __future__ import annotations

from tests.records.test_cli import cli  # noqa: F401  (fixture)


def test_search_cli(cli, tmp_path):  # noqa: F811
    cli("init", "--demo", "--no-history")  # exact counts: no demo past cases
    case_id = cli(
        "case", "create", "道路予算", "--org", "SOUMU-ZAISEI", "--class", "B0101"
    ).stdout.split()[0]
    f = tmp_path / "予算書.txt"
    f.write_text("令和8年度の道路予算について", encoding="utf-8")
    cli("deposit", str(f), "--case", case_id)
    r = cli("search", "道路予算")
    assert r.stdout.startswith("1 件"), r.stdout
    assert case_id in r.stdout and "原本" in r.stdout
    assert cli("--as", "ito", "search", "道路予算").stdout.startswith("0 件")
    assert "1 件" in cli("search", "reindex").stdout
    assert "1 件" in cli("reindex", "--fresh").stdout
    bad = cli("search", '"予算', ok=False)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1].startswith("genpon: ")
    assert "unbalanced_quotes" in bad.stderr
