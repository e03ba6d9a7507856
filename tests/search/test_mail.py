"""Saved e-mail (.eml): headers, body in its own charset and attachment names are extracted,
whether libmagic calls the file message/rfc822 or text/plain; it can be deposited and found."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

from genpon.records.sniff import sniff
from genpon.search.extract import detect_kind, extract
from genpon.search.mail import looks_like_mail

from tests.records.helpers import deposit, team_folder
from tests.search.helpers import ids, search, sync


def _mail(relay: bool) -> bytes:
    m = EmailMessage()
    m["Subject"] = "令和6年度 予算要求について"
    m["From"] = "財政課 <zaisei@city.example.jp>"
    m["To"] = "soumu@city.example.jp"
    m["Date"] = "Mon, 1 Apr 2024 09:00:00 +0900"
    m.set_content("各課長様\n予算要求の締切は四月末日です。\n", charset="iso-2022-jp")
    m.add_alternative("<p>各課長様</p><p>予算要求の締切は四月末日です。</p>", subtype="html")
    m.add_attachment(b"%PDF-1.4 test", maintype="application", subtype="pdf", filename="要求書.pdf")
    data = bytes(m)
    return b"Received: from mx.city.example.jp\n" + data if relay else data


def test_mail_text_either_way_libmagic_names_it(tmp_path: Path):
    for relay, sniffed in ((True, "message/rfc822"), (False, "text/plain")):
        path = tmp_path / f"mail-{relay}.eml"
        path.write_bytes(_mail(relay))
        mime = sniff(path, path.read_bytes()[:8192])
        assert mime == sniffed
        assert detect_kind(path, mime) == "mail"
        ex = extract(path, mime)
        assert ex.status == "ok" and ex.extractor == "mail", ex
        text = ex.text or ""
        assert "件名: 令和6年度 予算要求について" in text  # encoded word decoded
        assert "差出人: 財政課 <zaisei@city.example.jp>" in text
        assert text.count("予算要求の締切は四月末日です。") == 1  # the plain part, not the HTML too
        assert "添付ファイル: 要求書.pdf" in text
        assert "=?utf-8?" not in text and "Content-Transfer-Encoding" not in text


def test_a_memo_with_colons_is_not_mail():
    assert not looks_like_mail("件名: 会議\n日時: 4月1日\n\n本文".encode())
    assert not looks_like_mail(b"Subject: notes\nDate: today\n\nbody")  # no sender or relay
    assert not looks_like_mail(b"From: a@b\nSubject: cut")  # header block runs past the head
    assert looks_like_mail(b"From: a@b\nSubject: x\n =?utf-8?b?eA==?=\n\nbody")


def test_mail_deposited_is_found_by_search(client, demo, ctx):
    auth = demo.auth("tanaka")
    r = deposit(
        client,
        auth,
        _mail(relay=True),
        filename="予算要求.eml",
        folder_id=team_folder(ctx),
        content_type="message/rfc822",
    )
    assert r.status_code == 201, r.text
    sync(ctx)
    assert ids(search(client, auth, "四月末日")) == {r.json()["id"]}
    assert ids(search(client, auth, "要求書")) == {r.json()["id"]}  # the attachment's name
