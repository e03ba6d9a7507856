"""``genpon ocr DOC_ID``: read a document's content again, with OCR (scanned PDF pages and
images), and put the new text in the search index. For records officers and admins; the
document must be readable by them. The stored original is only read, never changed."""

from __future__ import annotations

from typing import Annotated

import typer
from genpon.api.cli.common import ctx, fail, out, unit


def register(app: typer.Typer) -> None:
    @app.command("ocr")
    def ocr_cmd(
        doc_id: Annotated[int, typer.Argument(help="文書ID")],
    ) -> None:
        """文書の内容をOCRを含めて再抽出し、検索索引に反映する。"""
        from genpon.records.access import require_role
        from genpon.records.documents.common import get_document
        from genpon.search.indexer import drain, reextract
        from genpon.search.ocr import tesseract_available

        if not tesseract_available():
            fail("tesseract がインストールされていません。 [ocr_unavailable]")
        with unit() as (s, actor):
            require_role(actor, "records_officer", "admin")
            doc = get_document(s, actor, doc_id)
            sha = doc.sha256
        c = ctx()
        row = reextract(c, sha, force_ocr=True)
        if row is None:
            fail("文書の内容が保存されていません（廃棄・移管済み）。 [content_not_stored]")
            return
        try:
            drain(c)
        except Exception as exc:  # another process holds the index writer: the outbox keeps it
            typer.echo(f"genpon: 索引の反映を後回しにしました ({type(exc).__name__})", err=True)
        details = row.details or {}
        pages = details.get("pages", [])
        data = {
            "document_id": doc_id,
            "sha256": sha,
            "status": row.status,
            "extractor": row.extractor,
            "reason": row.reason,
            "chars": row.chars,
            "ocr_pages": len(pages),
            "mean_confidence": details.get("mean_confidence"),
            "pages": pages,
        }
        conf = data["mean_confidence"]
        out(
            data,
            f"再抽出しました: 文書 {doc_id} {row.status} {row.chars} 文字"
            f" (OCR {len(pages)} ページ"
            + (f", 平均信頼度 {conf}" if conf is not None else "")
            + ")",
        )
