"""The disposal certificate (廃棄証明書) of an executed destroy batch: issued once every approved
item is destroyed, signed with the system key, and kept as a record itself (a closed case of the
certificate class holding the signed JSON). The signed format and its verification are
:mod:`genpon.retention.certificate`.
"""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from typing import Any

from genpon.core.clock import as_utc, local_date, utcnow
from genpon.core.errors import Conflict, NotFound
from genpon.core.settings import Settings
from genpon.records import audit
from genpon.records.access import SYSTEM_ACTOR, Actor
from genpon.records.audit.actions import AuditAction
from genpon.records.models import Document, DocumentClass, Organization
from genpon.retention.models import (
    BatchStatus,
    DisposalCertificate,
    DispositionBatch,
    DispositionItem,
    Tombstone,
)
from genpon.retention.service import require_reader
from genpon.storage.base import BlobStore
from sqlmodel import Session, col, select


def require_key(settings: Settings) -> None:
    from genpon.core.signing import SystemKeyring

    try:
        _ = SystemKeyring.from_settings(settings).key_id
    except RuntimeError:
        raise Conflict(
            "signing_key_missing",
            "システム署名鍵がありません（genpon init を実行してください）。廃棄は実行していません。",
        ) from None


# --- the certificate ------------------------------------------------------------------------


def issue_certificate(
    s: Session, store: BlobStore, actor: Actor, settings: Settings, batch: DispositionBatch
) -> DisposalCertificate:
    """Sign the certificate of ``batch`` (every tombstone it left), keep it as a record and
    mark the batch executed, in the caller's transaction."""
    from genpon.core.signing import SystemKeyring
    from genpon.retention.certificate import build_certificate, certificate_bytes

    tombs = list(
        s.exec(
            select(Tombstone).where(Tombstone.batch_id == batch.id, Tombstone.action == "destroyed")
        ).all()
    )
    now = utcnow()
    cert_id = f"DC-{batch.id:06d}"
    cert = build_certificate(
        _certificate_header(s, batch, cert_id, now),
        _certificate_entries(s, tombs),
        signer=SystemKeyring.from_settings(settings),
    )
    record = _store_certificate_record(s, store, settings, batch, cert_id, certificate_bytes(cert))
    row = DisposalCertificate(
        certificate_id=cert_id,
        batch_id=batch.id or 0,
        document_id=record.id,
        key_id=cert["signature"]["key_id"],
        body=cert,
        issued_at=now,
    )
    s.add(row)
    batch.status = BatchStatus.EXECUTED
    batch.executed_at = now
    batch.certificate_id = cert_id
    s.add(batch)
    s.flush()
    audit.record(
        s,
        actor=actor.login,
        action=AuditAction.RETENTION_BATCH_EXECUTED,
        target_type="batch",
        target_id=batch.id or 0,
        details={
            "destroyed": len(tombs),
            "certificate_id": cert_id,
            "certificate_document_id": record.id,
            "key_id": row.key_id,
        },
    )
    return row


def _certificate_header(
    s: Session, batch: DispositionBatch, cert_id: str, now: datetime
) -> dict[str, Any]:
    decided_by = s.exec(
        select(DispositionItem.decided_by).where(
            DispositionItem.batch_id == batch.id, DispositionItem.decision == "approved"
        )
    ).all()
    approvers = sorted({login for login in decided_by if login is not None})
    return {
        "issuer": "Genpon 原本",
        "batch_id": batch.id,
        "certificate_id": cert_id,
        "requested_by": batch.created_by,
        "approved_by": approvers or [batch.decided_by or ""],
        "executed_at": now,
        "issued_at": now,
        "notes": batch.title,
    }


def _certificate_entries(s: Session, tombs: list[Tombstone]) -> list[dict[str, Any]]:
    """One entry per destroyed document, from its tombstone."""
    classes = {c.code: c for c in s.exec(select(DocumentClass)).all()}
    return [
        {
            "document_id": t.document_id,
            "title": t.title,
            "case_id": t.case_id,
            "class": {
                "code": t.class_code,
                "name": classes[t.class_code].name if t.class_code in classes else None,
            },
            "sha256": t.sha256,
            "size": t.size,
            "retention_end": t.retention_end,
            "approved_by": t.approved_by,
            "destroyed_at": as_utc(t.disposed_at),
        }
        for t in tombs
    ]


def _store_certificate_record(
    s: Session,
    store: BlobStore,
    settings: Settings,
    batch: DispositionBatch,
    cert_id: str,
    data: bytes,
) -> Document:
    """The certificate is a record itself: a closed case of the certificate class (30 years)
    holding the signed JSON as an official document."""
    from genpon.records.cases import close_case, create_case
    from genpon.records.documents import ApprovalIn, DepositIn, deposit

    org = s.get(Organization, batch.organization_id) if batch.organization_id else None
    if org is None:
        org = s.exec(
            select(Organization)
            .where(col(Organization.parent_id).is_(None))
            .order_by(col(Organization.id))
        ).first()
    if org is None:
        raise Conflict("no_organization", "証明書を保存する所属がありません。")
    case, _folder = create_case(
        s,
        SYSTEM_ACTOR,
        title=f"廃棄証明書 {cert_id}（{batch.title}）"[:500],
        organization_code=org.code,
        class_code=settings.certificate_class_code,
        case_id_format=settings.case_id_format,
        timezone=settings.timezone,
    )
    staged = store.stage(io.BytesIO(data))
    approvers = sorted({batch.created_by, batch.decided_by or batch.created_by})
    outcome = deposit(
        s,
        store,
        SYSTEM_ACTOR,
        staged,
        DepositIn(
            filename=f"{cert_id}.json",
            case_id=case.case_id,
            title=f"廃棄証明書 {cert_id}",
            declared_type="application/json",
            approval=ApprovalIn(
                approved_on=local_date(utcnow(), settings.timezone), approvers=approvers
            ),
            provenance={"source": "retention", "batch_id": batch.id, "certificate_id": cert_id},
        ),
        allowed_types=(*settings.allowed_types, "application/json", "text/*"),
        timezone=settings.timezone,
    )
    close_case(s, SYSTEM_ACTOR, case.case_id, timezone=settings.timezone)
    return outcome.document


def get_certificate(session: Session, actor: Actor, batch_id: int) -> DisposalCertificate:
    require_reader(actor)
    row = session.exec(
        select(DisposalCertificate).where(DisposalCertificate.batch_id == batch_id)
    ).first()
    if row is None:
        raise NotFound(
            "certificate_not_found", "この伺いの廃棄証明書はありません。", {"batch_id": batch_id}
        )
    return row


def certificate_file(session: Session, actor: Actor, batch_id: int) -> tuple[str, bytes]:
    """(file name, bytes) of the signed certificate, as stored."""
    from genpon.retention.certificate import certificate_bytes

    row = get_certificate(session, actor, batch_id)
    return f"{row.certificate_id}.json", certificate_bytes(row.body)


def certificate_css() -> str:
    """The printable certificate's style sheet (inline in a file, linked on a web page)."""
    return (Path(__file__).parent / "templates" / "certificate.css").read_text("utf-8")


def certificate_html(
    session: Session,
    actor: Actor,
    batch_id: int,
    *,
    timezone: str,
    stylesheet: str | None = None,
) -> tuple[str, str]:
    """(file name, HTML) of a printable 廃棄証明書 for people: the signed certificate's content
    in Japanese, with times in the city (``timezone``, offset shown), the signature's key ID
    and how to verify the signed JSON. The signed JSON stays the certificate of record. The
    style is inline unless ``stylesheet`` (an address) is given (web pages forbid inline
    styles)."""
    import hashlib

    from genpon.core.clock import local_text
    from genpon.records.models import User
    from genpon.retention.certificate import certificate_bytes
    from jinja2 import Environment, PackageLoader, select_autoescape

    row = get_certificate(session, actor, batch_id)
    cert = row.body
    signed = certificate_bytes(cert)
    users = dict(session.exec(select(User.login, User.name)).all())

    def person(value: str | list[str] | None) -> str:
        logins = [value] if isinstance(value, str) else list(value or [])
        return "、".join(f"{users[x]}（{x}）" if x in users else x for x in logins)

    def when(value: str | None) -> str:
        return (
            local_text(datetime.fromisoformat(value.replace("Z", "+00:00")), timezone)
            if value
            else ""
        )

    def day(value: str | None) -> str:
        if not value:
            return "—"
        y, m, d = (int(x) for x in value.split("-"))
        return f"{y}年{m}月{d}日"

    env = Environment(
        loader=PackageLoader("genpon.retention", "templates"), autoescape=select_autoescape()
    )
    html = env.get_template("certificate.html").render(
        c=cert,
        person=person,
        when=when,
        day=day,
        timezone=timezone,
        json_name=f"{row.certificate_id}.json",
        json_sha256=hashlib.sha256(signed).hexdigest(),
        stylesheet=stylesheet,
    )
    return f"{row.certificate_id}.html", html


def verify_certificate_file(
    path: str | Path, key_dir: Path, extra_public_keys: dict[str, Any] | None = None
) -> Any:
    """Verify a certificate file with the system's public keys (every key ever used) and any
    extra PEM keys (offline use). Returns :class:`retention.certificate.VerifyResult`."""
    from genpon.core.signing import SystemKeyring
    from genpon.retention.certificate import verify_certificate

    keys: dict[str, Any] = {}
    if key_dir.is_dir():
        keys.update(SystemKeyring(key_dir).public_keys())
    for kid, pem in (extra_public_keys or {}).items():
        keys[kid] = pem
    return verify_certificate(path, keys)
