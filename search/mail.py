"""Text of saved e-mail messages (``.eml``, RFC 822 / MIME).

Shares and personal folders hold mail saved as files — requests, approvals, the only copy of
an attachment. libmagic calls a message ``message/rfc822`` when it begins with ``Received:`` or
``Return-Path:``, but plain ``text/plain`` when it begins with ``Subject:``; either way its raw
form (encoded words, base64 and ISO-2022-JP bodies) is useless to search. The message is parsed
with the standard library instead: the subject, sender, recipients and date (encoded words
decoded), the text body (the plain part of an alternative, else the HTML part as text) in its
own charset, and the names of attachments (their contents are not read).
"""

from __future__ import annotations

import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

HEADERS = (("Subject", "件名"), ("From", "差出人"), ("To", "宛先"), ("Cc", "CC"), ("Date", "日付"))
_HEADER_LINE = re.compile(rb"^[A-Za-z][A-Za-z0-9-]*:")
_MAIL_MARKERS = {b"from", b"received", b"return-path", b"message-id"}
_CONTEXT_MARKERS = {b"date", b"subject", b"mime-version", b"received", b"message-id", b"to"}


def looks_like_mail(head: bytes) -> bool:
    """Whether ``head`` starts with an RFC 822 header block: header lines (and folded
    continuations) up to a blank line, with a sender or relay header and a date, subject,
    recipient or MIME header."""
    names: set[bytes] = set()
    lines = head.split(b"\n")
    for n, line in enumerate(lines):
        line = line.rstrip(b"\r")
        if not line:
            break
        if n == len(lines) - 1:
            return False  # the header block runs past the head: undecided, so no
        if line[:1] in (b" ", b"\t") and names:
            continue
        if not _HEADER_LINE.match(line):
            return False
        names.add(line.split(b":", 1)[0].lower())
    else:
        return False
    return bool(names & _MAIL_MARKERS) and bool(names & _CONTEXT_MARKERS)


def mail_text(data: bytes) -> str:
    """Headers, text body and attachment names of the message in ``data`` (HTML parts and
    undecodable parts through the extractor's own ``html_text`` and ``decode_text``)."""
    from genpon.search.extract import html_text

    msg = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    lines = [f"{label}: {msg[name]}" for name, label in HEADERS if msg[name]]
    plain: list[str] = []
    html: list[str] = []
    attachments: list[str] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        name = part.get_filename()
        if part.get_content_disposition() == "attachment" or name:
            attachments.append(str(name or "（名前なし）"))
            continue
        kind = part.get_content_type()
        if kind == "text/plain":
            plain.append(_part_text(part))
        elif kind == "text/html":
            html.append(html_text(_payload_bytes(part)))
    lines += plain or html
    lines += [f"添付ファイル: {a}" for a in attachments]
    return "\n".join(x for x in lines if x)


def _part_text(part: EmailMessage) -> str:
    from genpon.search.extract import decode_text

    try:
        content = part.get_content()
        if isinstance(content, str):
            return content
    except (LookupError, UnicodeError, ValueError):
        pass  # an unknown or wrong charset: guess from the bytes
    raw = _payload_bytes(part)
    return decode_text(raw) or raw.decode("utf-8", "replace")


def _payload_bytes(part: EmailMessage) -> bytes:
    """The transfer-decoded body of a single (not multipart) part; b"" when it has none."""
    raw = part.get_payload(decode=True)
    return raw if isinstance(raw, bytes) else b""
