"""Adapters to services of other domains (retention holds, fixity) that may not exist yet.

Each function returns plain data for templates and degrades to "not available" when the
domain module is absent, so the document page works on the foundation alone.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import datetime
from types import ModuleType
from typing import Any

from sqlmodel import Session

from records.access import Actor
from records.models import Blob, Document


def optional(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            return None
        raise


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
    service = optional("retention.service")
    if service is None:
        return None
    from retention.rules import HoldType

    labels = {t.value: t.label for t in HoldType}
    holds = service.active_holds(session, [doc]).get(doc.id or 0, [])
    return [
        {"label": f"{labels.get(h.hold_type, h.hold_type)}：{h.reason}", "until": None}
        for h in holds
    ]
