"""The Japanese analyzer: normalization, bigrams, run edges, query streams."""

from __future__ import annotations

from genpon.search.analyzer import index_tokens, is_single_char, normalize, query_tokens, tokens


def test_normalize_nfkc_and_casefold() -> None:
    assert normalize("ＡＢＣ１２３ ｶﾀｶﾅ") == "abc123 カタカナ"
    assert normalize("㈱") == "(株)"
    assert normalize("Straße") == "strasse"


def test_tokens_bigrams_unigrams_words() -> None:
    assert tokens("東京都") == ["東京", "京都"]
    assert tokens("予算") == ["予算"]
    assert tokens("市") == ["市"]
    assert tokens("令和５年度予算") == ["令和", "5", "年度", "度予", "予算"]
    assert tokens("PDF版、第3条") == ["pdf", "版", "第", "3", "条"]
    assert tokens("　、。") == []


def test_index_stream_frames_runs_with_edges() -> None:
    assert index_tokens("予算") == ["<予", "予算", "算>"]
    assert index_tokens("市") == ["<市", "市", "市>"]


def test_index_stream_is_the_general_stream_with_closed_edges() -> None:
    """``index_tokens`` cuts runs by its own loop (speed); it must give exactly what the
    general ``_stream`` gives with closed edges, for every kind of run and boundary."""
    from genpon.search.analyzer import _stream, join_soft_breaks, numbered_tokens

    samples = [
        "",
        "市",
        "a",
        "東京",
        "ab東",
        "東ab",
        "令和５年度予算、次第3条例。東京都の京都\n\nえお\nかき r5 ÄÖ ß x",
        "ｱｲｳ 𠮷野家 한국어 々〆〇 〻" + "x" * 70 + "東" + "1" * 65,
        "件名: 報告書\n財政課の予算について、令和3年度第12回の状況を報告する。" * 20,
    ]
    for sample in samples:
        norm = join_soft_breaks(normalize(sample))
        expected = _stream(norm, open_edges=False) + numbered_tokens(norm)
        assert index_tokens(sample) == expected, sample


def test_query_streams_leave_term_edges_open() -> None:
    assert query_tokens("東京都") == ["東京", "京都"]
    assert query_tokens("5年") == ["5", "<年"]
    assert query_tokens("第3条") == ["第>", "3", "<条"]
    assert is_single_char(query_tokens("市"))
    assert not is_single_char(query_tokens("a"))


def _phrase_in(q: list[str], doc: list[str]) -> bool:
    return any(doc[i : i + len(q)] == q for i in range(len(doc) - len(q) + 1))


def test_phrase_semantics_equal_substring_semantics() -> None:
    doc = index_tokens("令和5年度予算、次第3条例。東京都の京都")
    for q, expected in [
        ("5年", True),
        ("第3条", True),
        ("京都", True),
        ("東京都", True),
        ("都の京", True),
        ("年度予算", True),
        ("東京京都", False),  # bigrams occur only apart
        ("予算次第", False),  # a separator lies between
        ("3条例", True),
        ("令和6年", False),
    ]:
        assert _phrase_in(query_tokens(q), doc) is expected, q


def test_bigram_pattern_and_character_test_agree_on_every_code_point() -> None:
    """``is_bigram`` (a regular expression) and ``_cjk`` (spelled-out ranges) must never
    disagree, or trigrams would be built where the analyzer sees no run."""
    from genpon.search.analyzer import _cjk, is_bigram

    for o in range(0x20, 0x40000):
        c = chr(o)
        if 0xD800 <= o <= 0xDFFF:
            continue
        assert is_bigram(c + c) == _cjk(c), hex(o)
    assert not is_bigram("<予") and not is_bigram("予>") and not is_bigram("ab")
    assert is_bigram("予算") and not is_bigram("予算執")


def test_a_word_wrapped_across_a_line_break_is_one_run() -> None:
    """The issue's repro: できる broken as で / きる by a line break is found."""
    doc = index_tokens("電線の接続を行うことがで\nきる速結端子")
    assert _phrase_in(query_tokens("できる"), doc)
    assert _phrase_in(query_tokens("ことができる速結"), doc)
    assert tokens("で\nきる") == ["でき", "きる"]


def test_soft_break_rule_spaces_carriage_returns_and_paragraphs() -> None:
    from genpon.search.analyzer import join_soft_breaks, soft_breaks

    # the spaces around the break (a full-width space is a space after NFKC) go with it
    for text in ("で\nきる", "で \n きる", "で\u3000\n\u3000きる", "で\r\nきる", "で\t\rきる"):
        assert tokens(text) == ["でき", "きる"], repr(text)
        assert _phrase_in(query_tokens("できる"), index_tokens(text)), repr(text)
    # a blank line (paragraph), a space alone, punctuation or Latin on either side: two runs
    for text in ("で\n\nきる", "で\n \nきる", "で きる", "で。\nきる", "pdf\nきる", "で\n2"):
        assert not _phrase_in(query_tokens("できる"), index_tokens(text)), repr(text)
    assert tokens("abc\ndef") == ["abc", "def"]
    # run edges frame the joined run, so cut-off words keep matching exactly
    assert index_tokens("予\n算") == ["<予", "予算", "算>"]
    assert list(soft_breaks(normalize("東京 \n 都\n\n京都"))) == [(2, 5)]
    assert join_soft_breaks(normalize("東京 \n 都\n\n京都")) == "東京都\n\n京都"
    # in a query term too (a quoted phrase may hold a line break)
    assert query_tokens("で\nきる") == query_tokens("できる")


def test_reference_tokens_read_kanji_numerals_only_in_context() -> None:
    from genpon.search.analyzer import kanji_number, numbered_tokens, reference_token

    def refs(t: str) -> list[str]:
        return numbered_tokens(normalize(t))

    # the repro: 第160条 and the laws' 第百六十条 give the same tokens
    assert refs("第百六十条") == refs("第160条") == refs("第１６０条") == ["第160条", "160条"]
    assert reference_token("第160条") == reference_token("第百六十条") == "第160条"
    assert refs("第二条第六項") == ["第2条", "2条", "第6項", "6項"]
    assert refs("政令第二四八号") == ["第248号", "248号"]  # positional kanji
    assert kanji_number("二千二十三") == 2023 and kanji_number("二〇二三") == 2023
    assert kanji_number("一万二千") == 12000 and kanji_number("二三百") is None
    # 一 in ordinary words never becomes 1; a lone kanji digit needs 第 or an era
    for word in ("同一条件", "一般", "統一", "唯一", "一日中", "五日", "同一年度"):
        assert refs(word) == [], word
    assert refs("三十日以内") == ["30日"] and refs("二十条") == ["20条"]
    assert reference_token("二十条") is None  # kanji without 第 stays text (in 第百二十条 too)
    # era years: 西暦 tokens, 年度 as well
    assert refs("令和5年度") == refs("令和五年度") == refs("R5年度")
    assert refs("令和5年度") == ["2023年", "2023年度", "5年", "5年度"]
    assert refs("2023年度") == ["2023年", "2023年度"]
    assert refs("平成31年") == ["2019年", "31年"] and refs("令和元年") == ["2019年", "1年"]
    assert reference_token("令和5年度") == "2023年度" and reference_token("R5") == "2023年"
    assert reference_token("平成31年") == "2019年"
    assert refs("s3 bucket") == [] and refs("h99") == []  # S alone is not 昭和; 平成 ended at 31
    assert refs("S50.4.1") == ["1975年"]


def test_reference_tokens_follow_the_text_and_break_no_phrase() -> None:
    toks = index_tokens("第百六十条の規定")
    assert toks[-2:] == ["第160条", "160条"]
    assert _phrase_in(query_tokens("百六十条の規"), toks)
    assert not _phrase_in(query_tokens("規定第"), toks)  # nothing runs into the references
