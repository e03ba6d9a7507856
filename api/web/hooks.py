"""Adapters that give the document page plain data from other domains (retention holds, fixity)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from genpon.records.access import Actor
from genpon.records.models import Blob, Document
from genpon.retention import holding
from genpon.retention.rules import HoldType
from sqlmodel import Session


@dataclass
class Fixity:
    checked_at: datetime | None
    ok: bool | None


def fixity_of(session: Session, actor: Actor, sha256: str) -> Fixity:
    """Last fixity check of the content (filled by the fixity audits)."""
    blob = session.get(Blob, sha256)
    if blob is None:
        return Fixity(None, None)
    return Fixity(blob.last_fixity_at, blob.fixity_ok)


def holds_of(session: Session, actor: Actor, doc: Document) -> list[Any] | None:
    """Active holds on the document (None: the retention domain is not installed)."""

    labels = {t.value: t.label for t in HoldType}
    holds = holding.active_holds(session, [doc]).get(doc.id or 0, [])
    return [
        {"label": f"{labels.get(h.hold_type, h.hold_type)}：{h.reason}", "until": None}
        for h in holds
    ]
