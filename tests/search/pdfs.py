"""Small PDFs written byte by byte for extraction tests: CJK text drawn glyph by glyph, a filled
form, a file whose encryption covers only its embedded files.

The CJK font is a non-embedded Type0 font with a ToUnicode map (code = Unicode code point), so
every extractor reads the same characters and only the layout differs.
"""

from __future__ import annotations

import io

_CJK_SIZE = 12


def write_pdf(objects: list[bytes], trailer: bytes = b"") -> bytes:
    """A PDF of ``objects`` (object 1 is the catalog) with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R ".encode() + trailer + b" >>\n"
    out += f"startxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _stream(data: bytes) -> bytes:
    return b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def _glyph(ch: str, x: int, y: int) -> str:
    return f"BT /F1 {_CJK_SIZE} Tf 1 0 0 1 {x} {y} Tm <{ord(ch):04X}> Tj ET"


def cjk_objects(lines: list[str], *, by_column: bool = False) -> list[bytes]:
    """Objects of a one-page PDF showing ``lines`` (BMP characters) one under another.

    ``by_column``: every glyph is its own text object and they are drawn column by column
    (the first character of every line, then the second...), as some map and drawing programs
    write legends. The page looks the same; pypdf, which follows the drawing order, then
    returns one character per line, pdftotext (which sorts by position) whole lines."""
    ops: list[str] = []
    if by_column:
        for col in range(max(map(len, lines))):
            for row, line in enumerate(lines):
                if col < len(line):
                    ops.append(_glyph(line[col], 50 + col * _CJK_SIZE, 780 - row * 20))
    else:
        for row, line in enumerate(lines):
            codes = "".join(f"{ord(c):04X}" for c in line)
            ops.append(f"BT /F1 {_CJK_SIZE} Tf 1 0 0 1 50 {780 - row * 20} Tm <{codes}> Tj ET")
    chars = sorted({c for line in lines for c in line})
    cmap = (
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CIDSystemInfo "
        "<< /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def /CMapName /Adobe-Identity-UCS "
        "def /CMapType 2 def 1 begincodespacerange <0000> <FFFF> endcodespacerange "
        f"{len(chars)} beginbfchar "
        + " ".join(f"<{ord(c):04X}> <{ord(c):04X}>" for c in chars)
        + " endbfchar endcmap CMapName currentdict /CMap defineresource pop end end"
    )
    return [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        _stream("\n".join(ops).encode()),
        b"<< /Type /Font /Subtype /Type0 /BaseFont /HeiseiMin-W3 /Encoding /Identity-H "
        b"/DescendantFonts [6 0 R] /ToUnicode 8 0 R >>",
        b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /HeiseiMin-W3 /CIDSystemInfo "
        b"<< /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /FontDescriptor 7 0 R "
        b"/DW 1000 >>",
        b"<< /Type /FontDescriptor /FontName /HeiseiMin-W3 /Flags 6 /FontBBox [0 -141 1000 859] "
        b"/ItalicAngle 0 /Ascent 859 /Descent -141 /CapHeight 700 /StemV 80 >>",
        _stream(cmap.encode()),
    ]


def cjk_pdf(lines: list[str], *, by_column: bool = False) -> bytes:
    return write_pdf(cjk_objects(lines, by_column=by_column))


def embedded_files_only_encrypted_pdf(lines: list[str]) -> bytes:
    """A PDF whose encryption dictionary (AES-128, user password "secret") applies only to
    embedded files (``/EFF``): strings and streams use the ``/Identity`` filter, so the page
    text is in the clear. pypdf asks for the password; poppler reads the text."""
    import pypdf

    w = pypdf.PdfWriter()
    w.add_blank_page(100, 100)
    w.encrypt(user_password="secret", owner_password="owner", algorithm="AES-128")
    buf = io.BytesIO()
    w.write(buf)
    r = pypdf.PdfReader(io.BytesIO(buf.getvalue()))
    enc = r.trailer["/Encrypt"]

    def hexstr(v: object) -> str:
        return "<" + bytes(getattr(v, "original_bytes", v)).hex() + ">"  # type: ignore[call-overload]

    objects = cjk_objects(lines)
    objects.append(
        (
            "<< /Filter /Standard /V 4 /R 4 /Length 128 /CF << /StdCF << /CFM /AESV2 "
            "/AuthEvent /EFOpen /Length 16 >> >> /StmF /Identity /StrF /Identity /EFF /StdCF "
            f"/O {hexstr(enc['/O'])} /U {hexstr(enc['/U'])} /P {int(enc['/P'])} >>"
        ).encode()
    )
    ids = " ".join(hexstr(x) for x in r.trailer["/ID"])
    return write_pdf(objects, f"/Encrypt {len(objects)} 0 R /ID [{ids}]".encode())


def form_pdf(values: dict[str, str], *, appearance: bool = False) -> bytes:
    """A one-page PDF with a printed heading and an AcroForm holding a text field per
    ``values`` item, filled in. Without ``appearance`` the values live only in the fields
    (``/V``), as many form programs leave them (``/NeedAppearances``): no page content shows
    them, and pypdf's page text has the heading only."""
    import pypdf
    from pypdf.generic import (
        ArrayObject,
        BooleanObject,
        DecodedStreamObject,
        DictionaryObject,
        FloatObject,
        NameObject,
        NumberObject,
        TextStringObject,
    )

    w = pypdf.PdfWriter()
    page = w.add_blank_page(595, 842)
    helv = w._add_object(
        DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
    )
    heading = DecodedStreamObject()
    heading.set_data(b"BT /Helv 14 Tf 50 810 Td (Application form, please fill in) Tj ET")
    page[NameObject("/Contents")] = w._add_object(heading)
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/Helv"): helv})}
    )
    fields = ArrayObject()
    for n, name in enumerate(values):
        y = 780 - 30 * n
        widget = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Annot"),
                NameObject("/Subtype"): NameObject("/Widget"),
                NameObject("/FT"): NameObject("/Tx"),
                NameObject("/T"): TextStringObject(name),
                NameObject("/V"): TextStringObject(""),
                NameObject("/Rect"): ArrayObject(
                    [FloatObject(50), FloatObject(y), FloatObject(300), FloatObject(y + 20)]
                ),
                NameObject("/F"): NumberObject(4),
                NameObject("/DA"): TextStringObject("/Helv 10 Tf 0 g"),
                NameObject("/P"): page.indirect_reference,
            }
        )
        fields.append(w._add_object(widget))
    page[NameObject("/Annots")] = ArrayObject(list(fields))
    w._root_object[NameObject("/AcroForm")] = DictionaryObject(
        {
            NameObject("/Fields"): fields,
            NameObject("/NeedAppearances"): BooleanObject(True),
            NameObject("/DA"): TextStringObject("/Helv 10 Tf 0 g"),
            NameObject("/DR"): DictionaryObject(
                {NameObject("/Font"): DictionaryObject({NameObject("/Helv"): helv})}
            ),
        }
    )
    if appearance:
        w.update_page_form_field_values(page, values, auto_regenerate=False)
    else:
        for ref in fields:
            obj = ref.get_object()
            obj[NameObject("/V")] = TextStringObject(values[str(obj["/T"])])
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()
