"""End to end: deposit, drain the outbox, search through the API."""

from __future__ import annotations

from tests.records.helpers import deposit, new_case, team_folder
from tests.search.helpers import ids, search, sync


def test_deposit_then_find_by_text_title_and_case(client, demo, ctx):
    auth = demo.auth("tanaka")
    case = new_case(client, auth, title="道路補修工事の契約")
    a = deposit(
        client,
        auth,
        "令和8年度予算の要求について。東京都との協議。".encode(),
        case_id=case["case_id"],
        title="予算要求書",
    ).json()
    b = deposit(
        client, auth, "京都府の資料".encode(), folder_id=team_folder(ctx), filename="kyoto.txt"
    ).json()
    assert sync(ctx) >= 2
    assert ids(search(client, auth, "予算")) == {a["id"]}
    assert ids(search(client, auth, "京都")) == {a["id"], b["id"]}
    assert ids(search(client, auth, "東京都")) == {a["id"]}
    assert ids(search(client, auth, "要求書")) == {a["id"]}  # title
    assert ids(search(client, auth, "kyoto")) == {b["id"]}  # file name
    assert ids(search(client, auth, "補修工事")) == {a["id"]}  # case title
    assert ids(search(client, auth, case["case_id"])) == {a["id"]}  # case ID
    assert ids(search(client, auth, "京都 -府")) == {a["id"]}
    r = search(client, auth, "予算")
    hit = r["hits"][0]
    assert "<mark>予算</mark>" in hit["snippet_html"]
    assert hit["is_original"] and hit["case_id"] == case["case_id"]
    assert r["facets"]["organization"] == [{"value": "SOUMU-ZAISEI", "count": 1}]


def test_snippet_marks_a_wrapped_word_in_the_original_text() -> None:
    from genpon.search.service import parse_query, snippet

    text = "電線の接続を行うことがで\nきる速結端子。ＡＢＣ"
    assert snippet(text, parse_query("できる").highlight) == (
        "電線の接続を行うことが<mark>で きる</mark>速結端子。ＡＢＣ"
    )
    # original characters (full-width letters) are shown, matched after normalization
    assert "<mark>ＡＢＣ</mark>" in snippet(text, parse_query("abc").highlight)
    # a paragraph break is not a wrap: nothing to mark across it
    assert "<mark>" not in snippet("ことがで\n\nきる", parse_query("できる").highlight)


def test_question_mode_takes_quotes_and_dashes_as_text() -> None:
    from genpon.core.errors import InvalidInput
    from genpon.search.service import parse_query

    parsed = parse_query('J-CASTの"意味は？', "any")
    assert [t.negated for t in parsed.terms] == [False]
    assert {"j", "cast", "意味", "味は"} <= set(parsed.terms[0].tokens)
    assert not any(t.negated for t in parse_query('-予算 "契約', "any").terms)
    try:
        parse_query('J-CASTの"意味は？')
    except InvalidInput as exc:
        assert exc.code == "unbalanced_quotes"
    else:
        raise AssertionError("mode=all keeps rejecting an unbalanced quote")
