"""One suite, every backend: matching, phrases, permissions, grouping, removal, filters."""

from __future__ import annotations

from datetime import date

from genpon.records.models import Document, IndexOutbox
from genpon.search.indexer import drain, rebuild
from genpon.search.service import SearchFilters, search_documents
from sqlmodel import Session

from tests.records.helpers import copy_to, deposit, new_case, team_folder
from tests.search.conftest import ALL_BACKENDS
from tests.search.helpers import ids, search, sync

pytestmark = ALL_BACKENDS

APPROVAL = {"approved_on": "2026-07-15", "approvers": ["財政課長"]}


def _shared_city(ctx) -> int:
    return team_folder(ctx, "全庁共用")


def test_phrase_precision_and_substrings(client, demo, ctx, search_backend):
    auth = demo.auth("tanaka")
    f = team_folder(ctx)
    a = deposit(client, auth, "東京都庁の予算".encode(), folder_id=f, filename="a.txt").json()
    b = deposit(client, auth, "京都の東、予算外".encode(), folder_id=f, filename="b.txt").json()
    c = deposit(
        client, auth, "令和5年度の契約。第3条例".encode(), folder_id=f, filename="c.txt"
    ).json()
    sync(ctx)
    assert ids(search(client, auth, "東京都")) == {a["id"]}
    assert ids(search(client, auth, "京都")) == {a["id"], b["id"]}
    assert ids(search(client, auth, "東京")) == {a["id"]}  # 東 and 京 only apart in b
    assert ids(search(client, auth, "予算")) == {a["id"], b["id"]}
    assert ids(search(client, auth, "5年")) == {c["id"]}
    assert ids(search(client, auth, "第3条")) == {c["id"]}
    assert ids(search(client, auth, "契約")) == {c["id"]}
    assert ids(search(client, auth, "庁")) == {a["id"]}  # one character
    assert ids(search(client, auth, '"予算外"')) == {b["id"]}
    assert ids(search(client, auth, "予算 -京都")) == set()
    assert ids(search(client, auth, "予算 -外")) == {a["id"]}
    assert search(client, auth, "存在しない語句")["total"] == 0


def test_no_leak_of_hits_counts_facets_or_snippets(client, demo, ctx, search_backend):
    tanaka, ito = demo.auth("tanaka"), demo.auth("ito")
    secret = deposit(
        client, tanaka, "極秘の人事異動案".encode(), folder_id=team_folder(ctx), filename="人事.txt"
    ).json()
    case = new_case(client, tanaka, title="人事異動")
    deposit(client, tanaka, "人事異動の内示（案件）".encode(), case_id=case["case_id"])
    sync(ctx)
    r = search(client, ito, "人事異動")
    assert r["total"] == 0 and r["hits"] == []
    assert all(v == [] for v in r["facets"].values())
    assert search(client, ito, "極秘")["total"] == 0
    assert search(client, tanaka, "人事異動")["total"] == 2
    assert search(client, demo.auth("yamada"), "極秘")["hits"][0]["document_id"] == secret["id"]
    # the service account sees case folders of granted organizations only
    assert search(client, demo.auth("denshi-kessai"), "人事異動")["total"] == 1
    # paging never reveals more than the count
    assert search(client, ito, "人事異動", page=2)["hits"] == []


def test_one_hit_per_content_original_or_first_readable_copy(client, demo, ctx, search_backend):
    tanaka, ito = demo.auth("tanaka"), demo.auth("ito")
    orig = deposit(client, tanaka, "舗装計画の原本".encode(), folder_id=team_folder(ctx)).json()
    copy_id = copy_to(client, tanaka, orig["id"], _shared_city(ctx))
    again = deposit(
        client, tanaka, "舗装計画の原本".encode(), folder_id=_shared_city(ctx), filename="x.txt"
    )
    assert again.json()["deposit"]["is_copy"]
    sync(ctx)
    mine = search(client, tanaka, "舗装計画")
    assert mine["total"] == 1
    hit = mine["hits"][0]
    assert hit["document_id"] == orig["id"] and hit["is_original"] and hit["copies_count"] == 2
    theirs = search(client, ito, "舗装計画")
    assert theirs["total"] == 1
    assert theirs["hits"][0]["document_id"] == copy_id and not theirs["hits"][0]["is_original"]
    assert search(client, demo.auth("yamada"), "舗装計画")["total"] == 1


def test_destroyed_document_disappears(client, demo, ctx, search_backend):
    auth = demo.auth("tanaka")
    doc = deposit(client, auth, "廃棄予定の文書".encode(), folder_id=team_folder(ctx)).json()
    sync(ctx)
    assert search(client, auth, "廃棄予定")["total"] == 1
    with Session(ctx.engine) as s:  # what the retention service does
        d = s.get(Document, doc["id"])
        d.state = "destroyed"
        s.add(d)
        s.add(IndexOutbox(sha256=d.sha256, reason="destroy"))
        s.commit()
    assert search(client, auth, "廃棄予定")["total"] in (0, 1)  # until drained, never a hit
    assert search(client, auth, "廃棄予定")["hits"] == []
    sync(ctx)
    assert search(client, auth, "廃棄予定")["total"] == 0


def test_new_version_replaces_old_text(client, demo, ctx, search_backend):
    auth = demo.auth("tanaka")
    doc = deposit(client, auth, "旧版の本文".encode(), folder_id=team_folder(ctx)).json()
    sync(ctx)
    r = client.post(
        f"/api/v1/documents/{doc['id']}/versions",
        files={"file": ("v2.txt", "新版の本文".encode())},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    sync(ctx)
    assert search(client, auth, "旧版")["total"] == 0
    assert ids(search(client, auth, "新版")) == {doc["id"]}


def test_filters_sort_and_facets(client, demo, ctx, search_backend):
    auth = demo.auth("tanaka")
    case = new_case(client, auth, title="橋梁点検")
    a = deposit(
        client,
        auth,
        "点検結果報告".encode(),
        case_id=case["case_id"],
        approval=APPROVAL,
        doc_date="2026-07-01",
    ).json()
    b = deposit(
        client, auth, "点検結果の下書き".encode(), folder_id=team_folder(ctx), doc_date="2025-05-01"
    ).json()
    sync(ctx)
    assert ids(search(client, auth, "点検結果", status="official")) == {a["id"]}
    assert ids(search(client, auth, "点検結果", folder_kind="team")) == {b["id"]}
    assert ids(search(client, auth, "点検結果", case_id=case["case_id"])) == {a["id"]}
    assert ids(search(client, auth, "点検結果", organization="SOUMU-ZAISEI")) == {a["id"], b["id"]}
    assert ids(search(client, auth, "点検結果", organization="KENSETSU-DOURO")) == set()
    assert ids(search(client, auth, "点検結果", fiscal_year=2025)) == {b["id"]}
    assert ids(search(client, auth, "点検結果", date_from="2026-01-01")) == {a["id"]}
    assert ids(search(client, auth, "点検結果", date_to="2025-12-31")) == {b["id"]}
    r = search(client, auth, "点検結果", sort="date")
    assert [h["document_id"] for h in r["hits"]] == [a["id"], b["id"]]
    kinds = dict((f["value"], f["count"]) for f in r["facets"]["folder_kind"])
    assert kinds == {"case": 1, "team": 1}
    years = dict((f["value"], f["count"]) for f in r["facets"]["fiscal_year"])
    assert years == {str(case["fiscal_year"]): 1, "2025": 1}
    assert search(client, auth, "点検結果", per_page=1, page=2)["hits"][0]["document_id"] in (
        a["id"],
        b["id"],
    )


def test_filters_find_the_first_placement_that_matches_them(client, demo, ctx, search_backend):
    """A copy filed in a case is found by that case's filter even when the caller may read the
    original elsewhere: the hit is the first readable placement matching the filters, still one
    hit per content with an exact total; without a filter the original is shown."""
    tanaka = demo.auth("tanaka")
    case = new_case(client, tanaka, title="道路補修")
    orig = deposit(client, tanaka, "補修工事の仕様書".encode(), folder_id=team_folder(ctx)).json()
    in_case = copy_to(client, tanaka, orig["id"], case["folder_id"])
    sync(ctx)
    for who in (tanaka, demo.auth("yamada")):  # a member, and a city-wide reader
        r = search(client, who, "補修工事")
        assert ids(r) == {orig["id"]} and r["total"] == 1
        r = search(client, who, "補修工事", case_id=case["case_id"])
        assert ids(r) == {in_case} and r["total"] == 1
        assert not r["hits"][0]["is_original"] and r["hits"][0]["copies_count"] == 1
        assert ids(search(client, who, "補修工事", folder_kind="case")) == {in_case}
        assert ids(search(client, who, "補修工事", folder_kind="team")) == {orig["id"]}
        r = search(client, who, "補修工事", organization="SOUMU-ZAISEI")  # both match: one hit
        assert ids(r) == {orig["id"]} and r["total"] == 1
        r = search(client, who, "補修工事", organization="SOUMU-ZAISEI", folder_kind="case")
        assert ids(r) == {in_case} and r["total"] == 1
        kinds = {f["value"]: f["count"] for f in r["facets"]["folder_kind"]}
        assert kinds == {"case": 1}
        assert search(client, who, "補修工事", case_id="2000-NONE-00001")["total"] == 0
    # a caller who may read neither placement finds nothing under any filter
    ito = demo.auth("ito")
    assert search(client, ito, "補修工事", case_id=case["case_id"])["total"] == 0
    assert search(client, ito, "補修工事", folder_kind="team")["total"] == 0


def test_rebuild_from_database_gives_the_same_answers(client, demo, ctx, search_backend):
    auth = demo.auth("tanaka")
    for i in range(5):
        deposit(
            client,
            auth,
            f"再構築テスト{i}号".encode(),
            folder_id=team_folder(ctx),
            filename=f"{i}.txt",
        )
    sync(ctx)
    before = search(client, auth, "再構築")
    assert before["total"] == 5
    assert rebuild(ctx, fresh=True) == 5
    assert search(client, auth, "再構築")["total"] == 5
    assert drain(ctx) == 0


def test_first_drain_builds_the_index_once(client, demo, ctx, search_backend):
    """The index is built from the database when the first worker starts; the outbox rows
    already queued then are covered by that build, not applied a second time."""
    from genpon.search.indexer import make_backend

    auth = demo.auth("tanaka")
    for i in range(5):
        deposit(client, auth, f"初回構築{i}号".encode(), folder_id=team_folder(ctx))
    backend = make_backend(ctx)
    applied: list[str] = []
    apply = backend.apply

    def counting(session, batch):
        applied.extend(batch)
        return apply(session, batch)

    backend.apply = counting  # type: ignore[method-assign]
    with Session(ctx.engine) as s:
        assert backend.needs_rebuild(s) and s.query(IndexOutbox).count() == 5
    drain(ctx, backend=backend)
    assert sorted(applied) == sorted(set(applied)) and len(applied) == 5
    with Session(ctx.engine) as s:
        assert s.query(IndexOutbox).count() == 0
    assert search(client, auth, "初回構築")["total"] == 5


def test_service_call_with_filters_object(ctx, demo, client, search_backend):
    from genpon.records.access import SYSTEM_ACTOR

    auth = demo.auth("tanaka")
    deposit(client, auth, "サービス層の呼び出し".encode(), folder_id=team_folder(ctx))
    sync(ctx)
    with Session(ctx.engine) as s:
        r = search_documents(
            ctx, s, SYSTEM_ACTOR, "呼び出し", filters=SearchFilters(folder_kind="team")
        )
        assert r.total == 1 and r.hits[0].folder_path == "/財政課チーム"
        r = search_documents(
            ctx, s, SYSTEM_ACTOR, "呼び出し", filters=SearchFilters(date_to=date(2000, 1, 1))
        )
        assert r.total == 0


def test_long_bodies_match_everywhere(client, demo, ctx, search_backend):
    """A body far past one PostgreSQL vector (16,383 positions, 256 per lexeme): words at the
    start, middle and end, AND across parts, and exclusions are all exact."""
    auth = demo.auth("tanaka")
    f = team_folder(ctx)
    parts = []
    for n in range(240):
        parts.append("予算案の作成と執行。" * 15)  # 予算 ~3,600 times in all
        parts.append(f"標識{n}号の記録。")
    body = "冒頭語句。" + "".join(parts) + "末尾語句。"
    assert len(body) > 35_000
    long = deposit(client, auth, body.encode(), folder_id=f, filename="long.txt").json()
    short = deposit(client, auth, "冒頭語句だけの短い文書".encode(), folder_id=f).json()
    sync(ctx)
    assert ids(search(client, auth, "冒頭語句")) == {long["id"], short["id"]}
    assert ids(search(client, auth, "末尾語句")) == {long["id"]}
    for n in (0, 1, 57, 120, 121, 199, 238, 239):
        assert ids(search(client, auth, f'"標識{n}号"')) == {long["id"]}, n
    assert search(client, auth, '"標識240号"')["total"] == 0
    assert ids(search(client, auth, "冒頭語句 末尾語句")) == {long["id"]}
    assert ids(search(client, auth, "冒頭語句 -末尾語句")) == {short["id"]}
    assert ids(search(client, auth, "冒頭語句 -標識239号")) == {short["id"]}
    assert ids(search(client, auth, "執行 標識200号")) == {long["id"]}


def test_words_wrapped_across_a_line_break_are_found(client, demo, ctx, search_backend):
    """The issue's repro first: できる broken by a line break is one hit, with the wrapped
    word marked in the original text. Then the rule: spaces around the break and CRLF are part
    of the wrap, a blank line (paragraph) still ends the run, phrases and exclusions agree."""
    auth = demo.auth("tanaka")
    f = team_folder(ctx)
    a = deposit(
        client,
        auth,
        "電線の接続を行うことがで\nきる速結端子".encode(),
        folder_id=f,
        filename="a.txt",
    ).json()
    sync(ctx)
    r = search(client, auth, "できる")
    assert ids(r) == {a["id"]} and r["total"] == 1
    assert "<mark>で きる</mark>" in r["hits"][0]["snippet_html"]
    b = deposit(
        client, auth, "道路占用の許\u3000\r\n\u3000可申請書".encode(), folder_id=f, filename="b.txt"
    ).json()
    c = deposit(
        client, auth, "占用の許\n\n可証の交付".encode(), folder_id=f, filename="c.txt"
    ).json()
    sync(ctx)
    assert ids(search(client, auth, "許可")) == {b["id"]}  # c: a paragraph lies between
    assert ids(search(client, auth, "占用の許可申請")) == {b["id"]}
    assert ids(search(client, auth, '"の許可申"')) == {b["id"]}
    assert ids(search(client, auth, "占用 -許可")) == {c["id"]}
    assert ids(search(client, auth, "可証")) == {c["id"]}
    assert ids(search(client, auth, "できる 速結端子")) == {a["id"]}
    assert ids(search(client, auth, "できる", mode="any")) >= {a["id"]}


def test_question_mode_takes_quotes_and_dashes_as_text(client, demo, ctx, search_backend):
    """The issue's repro (``J-CASTの"意味は？`` with mode=any is no 422), then: in a question a
    leading ``-`` is a word, not an exclusion; mode=all still rejects an odd quote."""
    auth = demo.auth("tanaka")
    f = team_folder(ctx)
    a = deposit(client, auth, "J-CASTの意味を説明する".encode(), folder_id=f).json()
    b = deposit(client, auth, "予算の意味".encode(), folder_id=f, filename="b.txt").json()
    sync(ctx)
    r = search(client, auth, 'J-CASTの"意味は？', mode="any")
    assert ids(r) == {a["id"], b["id"]} and r["hits"][0]["document_id"] == a["id"]
    assert ids(search(client, auth, "-予算", mode="any")) == {b["id"]}
    assert ids(search(client, auth, '"予算', mode="any")) == {b["id"]}
    bad = client.get("/api/v1/search", params={"q": 'J-CASTの"意味は？'}, headers=auth).json()
    assert bad["error"]["code"] == "unbalanced_quotes"
