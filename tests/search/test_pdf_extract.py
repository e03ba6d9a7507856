"""PDF text: the better of pypdf, pdftotext and pdfminer by more than mojibake, form field
values, files whose encryption covers only embedded files."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from genpon.search.extract import Extraction, pdf_text, score_text

from tests.records.helpers import deposit, team_folder
from tests.search.helpers import ids, search, sync
from tests.search.pdfs import cjk_pdf, embedded_files_only_encrypted_pdf, form_pdf

needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="no pdftotext")

LEGEND = ["凡例　土砂災害警戒区域", "避難所および緊急避難場所", "浸水想定区域（想定最大規模）"]


def _pdf(tmp_path: Path, data: bytes, name: str = "x.pdf") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@needs_poppler
def test_one_character_per_line_loses_to_pdftotext_lines(tmp_path):
    """The issue's repro: a legend drawn glyph by glyph, column by column. pypdf returns every
    character right but one per line; pdftotext returns the lines, and wins, saying why."""
    import pypdf

    path = _pdf(tmp_path, cjk_pdf(LEGEND, by_column=True))
    raw = pypdf.PdfReader(str(path)).pages[0].extract_text()
    assert raw.startswith("凡\n避\n浸\n例\n")  # what pypdf makes of it
    ex = pdf_text(path)
    assert ex.status == "ok" and ex.extractor == "pdftotext", ex
    assert "土砂災害警戒区域" in (ex.text or "") and "緊急避難場所" in (ex.text or "")
    assert ex.reason is not None and ex.reason.startswith("pdftotext chosen")
    assert "pypdf: 1.1 chars/line, CJK runs 1.0" in ex.reason


def test_the_same_legend_in_lines_stays_with_pypdf(tmp_path):
    ex = pdf_text(_pdf(tmp_path, cjk_pdf(LEGEND)))
    assert ex.status == "ok" and ex.extractor == "pypdf" and ex.reason is None, ex
    assert "避難所および緊急避難場所" in (ex.text or "")


def test_score_judges_lines_runs_replacements_and_mojibake():
    fine = score_text("電線の接続を行うことができる速結端子\n第二条　この法律は")
    assert fine.fine and fine.cjk_heavy and fine.cjk_run > 5 and fine.value == fine.good
    per_char = score_text("\n".join("電線の接続を行うことができる速結端子"))
    assert per_char.fragmented and not per_char.fine and per_char.per_line == 1.0
    assert per_char.value < fine.value / 1.5
    spaced = score_text(" ".join("電線の接続を行うことができる速結端子"))  # one line, runs of 1
    assert spaced.fragmented and spaced.cjk_run == 1.0
    unmapped = score_text("電線の\ufffd\ufffd\ufffdを行う")
    assert unmapped.replacement == 3 and not unmapped.fine and unmapped.value < fine.value
    mojibake = score_text("ɹɹং\nΘͨ͘͠ͱ͍;ݱ\u09c5")
    assert not mojibake.usable and mojibake.share < 0.5
    latin = score_text("a\nb\nc")  # short Latin lines are not judged by layout
    assert latin.fine and not latin.fragmented
    assert score_text("").describe() == "no text"


@needs_poppler
def test_filled_form_field_values_are_text(tmp_path):
    """The issue's repro: a filled AcroForm's value foobar is in the text, also when no page
    content draws it (the values are read from the fields)."""
    ex = pdf_text(_pdf(tmp_path, form_pdf({"name": "foobar", "会社": "株式会社テスト"})))
    assert ex.status == "ok" and ex.extractor == "pypdf", ex
    assert "Application form" in (ex.text or "")
    assert "foobar" in (ex.text or "") and "株式会社テスト" in (ex.text or "")
    drawn = pdf_text(_pdf(tmp_path, form_pdf({"name": "foobar"}, appearance=True), "b.pdf"))
    assert (drawn.text or "").count("foobar") == 1  # drawn and filled: once


@needs_poppler
def test_encryption_of_embedded_files_only_falls_back_to_pdftotext(tmp_path):
    """The issue's repro: pypdf asks for a password (the empty one does not open it), poppler
    reads the page text, which is not encrypted."""
    import pypdf

    path = _pdf(tmp_path, embedded_files_only_encrypted_pdf(["電線の接続を行うことができる"]))
    reader = pypdf.PdfReader(str(path))
    assert reader.is_encrypted and not reader.decrypt("")
    ex = pdf_text(path)
    assert ex.status == "ok" and ex.extractor == "pdftotext", ex
    assert "電線の接続を行うことができる" in (ex.text or "")
    assert "encrypted: password required" in (ex.reason or "")


def test_a_real_password_still_fails_with_its_reason(tmp_path):
    import io

    import pypdf

    w = pypdf.PdfWriter()
    w.add_blank_page(100, 100)
    w.encrypt(user_password="secret", algorithm="AES-128")
    buf = io.BytesIO()
    w.write(buf)
    ex = pdf_text(_pdf(tmp_path, buf.getvalue()))
    assert ex.status == "failed" and ex.extractor == "pypdf", ex
    assert (ex.reason or "").startswith("encrypted: password required")


@needs_poppler
def test_deposited_pdfs_are_searchable(client, demo, ctx):
    """Through the deposit path: the legend, the form value and the EFF-encrypted text."""
    auth = demo.auth("tanaka")
    f = team_folder(ctx)
    kind = {"content_type": "application/pdf"}
    a = deposit(
        client, auth, cjk_pdf(LEGEND, by_column=True), folder_id=f, filename="a.pdf", **kind
    ).json()
    b = deposit(client, auth, form_pdf({"name": "foobar"}), folder_id=f, filename="b.pdf", **kind)
    c = deposit(
        client,
        auth,
        embedded_files_only_encrypted_pdf(["速結端子の仕様"]),
        folder_id=f,
        filename="c.pdf",
        **kind,
    )
    sync(ctx)
    assert ids(search(client, auth, "土砂災害警戒区域")) == {a["id"]}
    assert ids(search(client, auth, "foobar")) == {b.json()["id"]}
    assert ids(search(client, auth, "速結端子")) == {c.json()["id"]}


@pytest.mark.corpus
def test_real_pdfs_scored(shared_data):
    """On real files: jo.pdf (a Japanese poem whose CID font pypdf turns into mojibake) goes to
    pdftotext with its reason; the AcroForm samples gain their filled values."""
    base = shared_data / "pdfs"
    with (base / "MANIFEST.csv").open(encoding="utf-8") as fh:
        names = {r["file"] for r in csv.DictReader(fh)}
    jo = pdf_text(base / "pdfminer__jo.pdf")
    assert jo.extractor == "pdftotext" and "わたくしといふ現象は" in (jo.text or "")
    assert "pypdf:" in (jo.reason or "") and "mojibake" in (jo.reason or "")
    if "pypdf-sample__libreoffice-form.pdf" in names:
        form: Extraction = pdf_text(base / "pypdf-sample__libreoffice-form.pdf")
        assert "Alice" in (form.text or "") and "Bob" in (form.text or "")
