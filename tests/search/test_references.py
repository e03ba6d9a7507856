"""Article numbers and 和暦 years on every backend: 第160条 finds 第百六十条, 令和5年度 finds
2023年度 (and back), filters take 和暦, hits show the 年度 both ways."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.records.helpers import deposit, team_folder
from tests.search.conftest import ALL_BACKENDS
from tests.search.helpers import ids, search, sync

pytestmark = ALL_BACKENDS


def test_article_numbers_in_kanji_and_digits_are_one(client, demo, ctx, search_backend):
    auth = demo.auth("tanaka")
    f = team_folder(ctx)
    kanji = deposit(client, auth, "地方自治法第百六十条の規定".encode(), folder_id=f).json()
    digits = deposit(client, auth, "同法第１６０条に基づき".encode(), folder_id=f).json()
    other = deposit(client, auth, "第百六十一条および同一条件".encode(), folder_id=f).json()
    sync(ctx)
    both = {kanji["id"], digits["id"]}
    assert ids(search(client, auth, "第160条")) == both  # the repro
    assert ids(search(client, auth, "第百六十条")) == both
    assert ids(search(client, auth, "第161条")) == {other["id"]}
    assert ids(search(client, auth, "百六十条")) == {kanji["id"]}  # text: 百六十一条 is not it
    assert ids(search(client, auth, "1条")) == set()  # 同一条件 holds no article 1
    assert ids(search(client, auth, "同一条件")) == {other["id"]}  # the text still is text
    assert ids(search(client, auth, "-第160条 規定")) == set()
    r = search(client, auth, "地方自治法の第160条は何を定めていますか", mode="any")
    assert r["hits"][0]["document_id"] in both


def test_era_years_match_their_western_year(client, demo, ctx, search_backend):
    auth = demo.auth("tanaka")
    f = team_folder(ctx)
    reiwa = deposit(client, auth, "令和五年度予算の執行".encode(), folder_id=f).json()
    western = deposit(client, auth, "2023年度 決算".encode(), folder_id=f).json()
    h31 = deposit(client, auth, "平成31年4月1日施行".encode(), folder_id=f).json()
    r1 = deposit(client, auth, "令和元年10月の改定".encode(), folder_id=f).json()
    sync(ctx)
    fy2023 = {reiwa["id"], western["id"]}
    assert ids(search(client, auth, "令和5年度")) == fy2023
    assert ids(search(client, auth, "R5年度")) == fy2023
    assert ids(search(client, auth, "2023年度")) == fy2023
    assert ids(search(client, auth, "R5")) == fy2023
    assert ids(search(client, auth, "平成31年")) == {h31["id"], r1["id"]}  # both are 2019
    assert ids(search(client, auth, "令和元年")) == {h31["id"], r1["id"]}
    assert ids(search(client, auth, "2019年")) == {h31["id"], r1["id"]}
    assert ids(search(client, auth, "令和6年度")) == set()


def test_filters_take_wareki_and_hits_show_both(
    client: TestClient, demo, ctx, search_backend
) -> None:
    auth = demo.auth("tanaka")
    f = team_folder(ctx)
    march = deposit(client, auth, "点検".encode(), folder_id=f, doc_date="2024-03-31").json()
    april = deposit(client, auth, "点検".encode() + b" 2", folder_id=f, doc_date="2024-04-01")
    april = april.json()
    old = deposit(client, auth, "点検".encode() + b" 3", folder_id=f, doc_date="2019-02-01")
    old = old.json()
    sync(ctx)
    for fy in ("令和5年度", "R5", "令和五年度", "2023", "Ｒ５年度"):
        assert ids(search(client, auth, "点検", fiscal_year=fy)) == {march["id"]}, fy
    assert ids(search(client, auth, "点検", fiscal_year="令和6年度")) == {april["id"]}
    assert ids(search(client, auth, "点検", fiscal_year="平成30年度")) == {old["id"]}
    r = search(client, auth, "点検", date_from="令和5年度", date_to="令和5年度")
    assert ids(r) == {march["id"]}
    assert ids(search(client, auth, "点検", date_from="R6.4.1")) == {april["id"]}
    assert ids(search(client, auth, "点検", date_to="平成31年")) == {old["id"]}
    assert ids(search(client, auth, "点検", date_from="令和2年", date_to="令和6年")) == {
        march["id"],
        april["id"],
    }
    labels = {
        h["document_id"]: h["fiscal_year_label"] for h in search(client, auth, "点検")["hits"]
    }
    assert labels == {
        march["id"]: "令和5年度 (2023)",
        april["id"]: "令和6年度 (2024)",
        old["id"]: "平成30年度 (2018)",
    }
    for bad in ({"fiscal_year": "令和"}, {"date_from": "令和5年13月"}, {"fiscal_year": "23"}):
        r2 = client.get("/api/v1/search", params={"q": "点検", **bad}, headers=auth)
        assert r2.status_code == 422 and r2.json()["error"]["code"] == "invalid_field", bad
