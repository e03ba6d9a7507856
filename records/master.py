"""共通マスタ: organizations, users and service accounts, document classes.

CSV import is all-or-nothing and idempotent: every row is validated first (errors carry the
CSV line number, header = line 1); only a clean file is written, as upserts keyed by code/login.
Files may be UTF-8 with or without BOM (Excel writes the BOM).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from genpon.core.clock import utcnow
from genpon.core.errors import InvalidInput, NotFound
from genpon.records import audit
from genpon.records.access import Actor, require_role
from genpon.records.audit import AuditAction
from genpon.records.models import (
    ROLES,
    DocumentClass,
    Organization,
    ServiceGrant,
    User,
)
from sqlmodel import Session, select

RETENTION_ALIASES = {
    "1年未満": "lt1",
    "lt1": "lt1",
    "<1": "lt1",
    "1": "1",
    "1年": "1",
    "3": "3",
    "3年": "3",
    "5": "5",
    "5年": "5",
    "10": "10",
    "10年": "10",
    "30": "30",
    "30年": "30",
    "永年": "permanent",
    "永久": "permanent",
    "permanent": "permanent",
}
DISPOSITION_ALIASES = {
    "廃棄": "destroy",
    "destroy": "destroy",
    "移管": "transfer",
    "transfer": "transfer",
}
START_RULES = ("next_fiscal_year", "closing_date")
KINDS = ("organizations", "users", "document_classes")
MAX_CSV_BYTES = 20 * 1024 * 1024


@dataclass
class ImportResult:
    kind: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    codes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
        }


@dataclass
class _RowError:
    row: int
    column: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "message": self.message}


def _read_csv(data: bytes, required: Iterable[str]) -> list[tuple[int, dict[str, str]]]:
    if len(data) > MAX_CSV_BYTES:
        raise InvalidInput("csv_too_large", "CSVファイルが大きすぎます。")
    try:
        textdata = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            "csv_encoding", "CSVはUTF-8（BOM付き可）で保存してください。", {"position": exc.start}
        ) from None
    reader = csv.DictReader(io.StringIO(textdata, newline=""))
    if reader.fieldnames is None:
        raise InvalidInput("csv_empty", "CSVが空です。")
    header = [h.strip() for h in reader.fieldnames]
    missing = [c for c in required if c not in header]
    if missing:
        raise InvalidInput(
            "csv_missing_columns",
            f"必須の列がありません: {', '.join(missing)}",
            {"missing": missing},
        )
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        for raw in reader:
            clean = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
            if None in raw:
                raise InvalidInput(
                    "csv_invalid",
                    f"{reader.line_num}行目: 列が多すぎます。",
                    {
                        "errors": [
                            {"row": reader.line_num, "column": None, "message": "列が多すぎます"}
                        ]
                    },
                )
            if any(clean.values()):
                rows.append((reader.line_num, clean))
    except csv.Error as exc:
        raise InvalidInput("csv_malformed", f"CSVを読めません: {exc}") from None
    return rows


def _fail(kind: str, errors: list[_RowError]) -> None:
    if errors:
        first = errors[0]
        raise InvalidInput(
            "csv_invalid",
            f"{kind}: {len(errors)}件のエラー。最初のエラーは{first.row}行目: {first.message}",
            {"errors": [e.as_dict() for e in errors[:200]], "error_count": len(errors)},
        )


def _order_by_parent(
    rows: list[tuple[int, dict[str, str]]], key: str, existing: set[str], errors: list[_RowError]
) -> list[tuple[int, dict[str, str]]]:
    """Parents before children, whatever the file order; unknown parents and cycles are errors."""
    by_code = {r[key]: (n, r) for n, r in rows}
    ordered: list[tuple[int, dict[str, str]]] = []
    state: dict[str, int] = {}

    def visit(code: str, trail: tuple[str, ...]) -> None:
        if state.get(code) == 2:
            return
        n, row = by_code[code]
        if code in trail:
            errors.append(_RowError(n, "parent_code", f"親コードが循環しています: {code}"))
            return
        parent = row.get("parent_code", "")
        if parent:
            if parent in by_code:
                visit(parent, (*trail, code))
            elif parent not in existing:
                errors.append(_RowError(n, "parent_code", f"親コード {parent} が存在しません"))
        if state.get(code) != 2:
            state[code] = 2
            ordered.append((n, row))

    for code in by_code:
        visit(code, ())
    return ordered


def _check_codes(rows: list[tuple[int, dict[str, str]]], key: str, errors: list[_RowError]) -> None:
    seen: dict[str, int] = {}
    for n, row in rows:
        code = row.get(key, "")
        if not code:
            errors.append(_RowError(n, key, f"{key} が空です"))
        elif len(code) > 32 or not code.isprintable() or "/" in code:
            errors.append(_RowError(n, key, f"{key} が不正です: {code!r}"))
        elif code in seen:
            errors.append(_RowError(n, key, f"{key} {code} が{seen[code]}行目と重複しています"))
        else:
            seen[code] = n
        if not row.get("name"):
            errors.append(_RowError(n, "name", "name が空です"))


def import_organizations(session: Session, actor: Actor, data: bytes) -> ImportResult:
    require_role(actor, "admin")
    rows = _read_csv(data, ["code", "name"])
    errors: list[_RowError] = []
    _check_codes(rows, "code", errors)
    existing = {o.code: o for o in session.exec(select(Organization)).all()}
    ordered = _order_by_parent([r for r in rows if r[1].get("code")], "code", set(existing), errors)
    _fail("organizations", errors)
    result = ImportResult("organizations")
    for _n, row in ordered:
        parent = existing.get(row.get("parent_code", "")) if row.get("parent_code") else None
        values: dict[str, Any] = {"name": row["name"], "parent_id": parent.id if parent else None}
        org = existing.get(row["code"])
        if org is None:
            org = Organization(code=row["code"], **values)
            result.created += 1
        elif any(getattr(org, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(org, k, v)
            org.updated_at = utcnow()
            result.updated += 1
        else:
            result.unchanged += 1
            continue
        session.add(org)
        session.flush()
        existing[org.code] = org
    _audit_import(session, actor, result)
    return result


def _split(value: str) -> list[str]:
    return [p for p in value.replace(";", " ").replace(",", " ").split() if p]


def import_users(session: Session, actor: Actor, data: bytes) -> ImportResult:
    require_role(actor, "admin")
    rows = _read_csv(data, ["login", "name", "organization_code", "roles"])
    errors: list[_RowError] = []
    orgs = {o.code: o for o in session.exec(select(Organization)).all()}
    seen: dict[str, int] = {}
    parsed: list[tuple[dict[str, str], list[str], list[int]]] = []
    for n, row in rows:
        roles, grants = _check_user_row(n, row, orgs, seen, errors)
        parsed.append((row, roles, grants))
    _fail("users", errors)
    result = ImportResult("users")
    existing = {u.login: u for u in session.exec(select(User)).all()}
    for row, roles, grants in parsed:
        values: dict[str, Any] = {
            "name": row["name"],
            "organization_id": orgs[row["organization_code"]].id,
            "roles": roles,
            "kind": row.get("kind") or "person",
        }
        user = existing.get(row["login"])
        changed = True
        if user is None:
            user = User(login=row["login"], **values)
            result.created += 1
        elif any(getattr(user, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(user, k, v)
            user.updated_at = utcnow()
            result.updated += 1
        else:
            changed = False
        session.add(user)
        session.flush()
        if _sync_grants(session, user, grants) and not changed:
            result.updated += 1
            changed = True
        if not changed:
            result.unchanged += 1
    _audit_import(session, actor, result)
    return result


def _check_user_row(
    n: int,
    row: dict[str, str],
    orgs: dict[str, Organization],
    seen: dict[str, int],
    errors: list[_RowError],
) -> tuple[list[str], list[int]]:
    """Check one user row (adding to ``errors`` and ``seen``); its roles and granted
    organization ids."""
    login = row.get("login", "")
    if (
        not login
        or len(login) > 64
        or not login.replace("-", "").replace("_", "").replace(".", "").isalnum()
    ):
        errors.append(_RowError(n, "login", f"login が不正です: {login!r}"))
    elif login in seen:
        errors.append(_RowError(n, "login", f"login {login} が{seen[login]}行目と重複しています"))
    else:
        seen[login] = n
    if not row.get("name"):
        errors.append(_RowError(n, "name", "name が空です"))
    if row.get("organization_code") not in orgs:
        errors.append(
            _RowError(
                n,
                "organization_code",
                f"所属コード {row.get('organization_code')} が存在しません",
            )
        )
    roles = _split(row.get("roles", ""))
    bad = [r for r in roles if r not in ROLES]
    kind = row.get("kind") or "person"
    if kind not in ("person", "service"):
        errors.append(_RowError(n, "kind", "kind は person か service です"))
    if bad:
        errors.append(_RowError(n, "roles", f"不明な役割: {', '.join(bad)}"))
    if kind == "person" and not roles:
        errors.append(_RowError(n, "roles", "役割を1つ以上指定してください"))
    grants: list[int] = []
    for g in _split(row.get("grants", "")):
        if g not in orgs:
            errors.append(_RowError(n, "grants", f"所属コード {g} が存在しません"))
        else:
            grants.append(orgs[g].id or 0)
    if grants and kind != "service":
        errors.append(_RowError(n, "grants", "grants はサービスアカウントにのみ指定できます"))
    return roles, grants


def _sync_grants(session: Session, user: User, grants: list[int]) -> bool:
    """Make ``user``'s service grants exactly ``grants``; True when they changed."""
    current = set(
        session.exec(select(ServiceGrant.organization_id).where(ServiceGrant.user_id == user.id))
    )
    if current == set(grants):
        return False
    for g in current - set(grants):
        grant = session.get(ServiceGrant, (user.id, g))
        if grant:
            session.delete(grant)
    for g in set(grants) - current:
        session.add(ServiceGrant(user_id=user.id or 0, organization_id=g))
    return True


def import_document_classes(session: Session, actor: Actor, data: bytes) -> ImportResult:
    require_role(actor, "admin", "records_officer")
    rows = _read_csv(data, ["code", "name", "retention", "disposition"])
    errors: list[_RowError] = []
    _check_codes(rows, "code", errors)
    for n, row in rows:
        if row.get("retention") not in RETENTION_ALIASES:
            errors.append(
                _RowError(
                    n,
                    "retention",
                    f"保存期間が不正です: {row.get('retention')!r}（1年未満, 1, 3, 5, 10, 30, 永年）",
                )
            )
        if row.get("disposition") not in DISPOSITION_ALIASES:
            errors.append(
                _RowError(
                    n,
                    "disposition",
                    f"満了時の措置が不正です: {row.get('disposition')!r}（廃棄 / 移管）",
                )
            )
        if row.get("start_rule") and row["start_rule"] not in START_RULES:
            errors.append(
                _RowError(n, "start_rule", f"起算ルールが不正です: {row['start_rule']!r}")
            )
    existing = {c.code: c for c in session.exec(select(DocumentClass)).all()}
    ordered = _order_by_parent([r for r in rows if r[1].get("code")], "code", set(existing), errors)
    _fail("document_classes", errors)
    result = ImportResult("document_classes")
    for _n, row in ordered:
        parent = existing.get(row.get("parent_code", "")) if row.get("parent_code") else None
        values: dict[str, Any] = {
            "name": row["name"],
            "parent_id": parent.id if parent else None,
            "level": (parent.level + 1) if parent else 1,
            "retention": RETENTION_ALIASES[row["retention"]],
            "disposition": DISPOSITION_ALIASES[row["disposition"]],
            "start_rule": row.get("start_rule") or "next_fiscal_year",
        }
        if values["level"] > 3:
            raise InvalidInput(
                "csv_invalid",
                f"{_n}行目: 分類は大・中・小の3階層までです",
                {"errors": [{"row": _n, "column": "parent_code", "message": "too deep"}]},
            )
        cls = existing.get(row["code"])
        if cls is None:
            cls = DocumentClass(code=row["code"], **values)
            result.created += 1
        elif any(getattr(cls, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(cls, k, v)
            cls.updated_at = utcnow()
            result.updated += 1
        else:
            result.unchanged += 1
            continue
        session.add(cls)
        session.flush()
        existing[cls.code] = cls
    _audit_import(session, actor, result)
    return result


IMPORTERS = {
    "organizations": import_organizations,
    "users": import_users,
    "document_classes": import_document_classes,
}


def import_csv(session: Session, actor: Actor, kind: str, source: bytes | BinaryIO) -> ImportResult:
    if kind not in IMPORTERS:
        raise InvalidInput(
            "unknown_master_kind", f"不明なマスタ種別です: {kind}", {"kinds": list(KINDS)}
        )
    data = source if isinstance(source, bytes) else source.read(MAX_CSV_BYTES + 1)
    return IMPORTERS[kind](session, actor, data)


def _audit_import(session: Session, actor: Actor, result: ImportResult) -> None:
    if result.created or result.updated:
        audit.record(
            session,
            actor=actor.login,
            action=AuditAction.MASTER_IMPORTED,
            target_type="master",
            target_id=result.kind,
            details=result.as_dict(),
        )


# --- reads ---------------------------------------------------------------------------------


def get_organization(session: Session, code: str) -> Organization:
    org = session.exec(select(Organization).where(Organization.code == code)).first()
    if org is None:
        raise NotFound("organization_not_found", f"所属 {code} が見つかりません。", {"code": code})
    return org


def get_class(session: Session, code: str) -> DocumentClass:
    cls = session.exec(select(DocumentClass).where(DocumentClass.code == code)).first()
    if cls is None:
        raise NotFound(
            "document_class_not_found", f"文書分類 {code} が見つかりません。", {"code": code}
        )
    return cls


def get_user(session: Session, login: str) -> User:
    user = session.exec(select(User).where(User.login == login)).first()
    if user is None:
        raise NotFound("user_not_found", f"利用者 {login} が見つかりません。", {"login": login})
    return user


def list_organizations(session: Session) -> list[Organization]:
    return list(session.exec(select(Organization).order_by(Organization.code)).all())


def list_classes(session: Session) -> list[DocumentClass]:
    return list(session.exec(select(DocumentClass).order_by(DocumentClass.code)).all())


def list_users(session: Session, actor: Actor) -> list[User]:
    require_role(actor, "admin", "records_officer", "auditor")
    return list(session.exec(select(User).order_by(User.login)).all())


def grant_codes(session: Session, user: User) -> list[str]:
    """Codes of the organizations a service account is granted, sorted."""
    return sorted(
        session.exec(
            select(Organization.code)
            .join(ServiceGrant, ServiceGrant.organization_id == Organization.id)  # type: ignore[arg-type]
            .where(ServiceGrant.user_id == user.id)
        ).all()
    )


# --- CSV export (the import's columns, so an exported file imports unchanged) -------------

EXPORT_COLUMNS = {
    "organizations": ("code", "name", "parent_code"),
    "document_classes": ("code", "name", "parent_code", "retention", "disposition", "start_rule"),
    "users": ("login", "name", "organization_code", "roles", "kind", "grants"),
}
_RETENTION_OUT = {"lt1": "1年未満", "permanent": "永年"}
_DISPOSITION_OUT = {"destroy": "廃棄", "transfer": "移管"}


def export_csv(session: Session, actor: Actor, kind: str) -> bytes:
    """A master as CSV (UTF-8 with BOM, for Excel) in the columns :func:`import_csv` reads;
    audited as ``master.exported``. Users: admins only; the others: admins, records officers
    and auditors."""
    if kind not in EXPORT_COLUMNS:
        raise InvalidInput(
            "unknown_master_kind", f"不明なマスタ種別です: {kind}", {"kinds": list(KINDS)}
        )
    if kind == "users":
        require_role(actor, "admin")
    else:
        require_role(actor, "admin", "records_officer", "auditor")
    rows: list[dict[str, str]] = []
    if kind == "organizations":
        orgs = list_organizations(session)
        by_id = {o.id: o.code for o in orgs}
        rows = [
            {"code": o.code, "name": o.name, "parent_code": by_id.get(o.parent_id, "")}
            for o in orgs
        ]
    elif kind == "document_classes":
        classes = list_classes(session)
        by_id_cls = {c.id: c.code for c in classes}
        rows = [
            {
                "code": c.code,
                "name": c.name,
                "parent_code": by_id_cls.get(c.parent_id, ""),
                "retention": _RETENTION_OUT.get(str(c.retention), str(c.retention)),
                "disposition": _DISPOSITION_OUT.get(str(c.disposition), str(c.disposition)),
                "start_rule": str(c.start_rule),
            }
            for c in classes
        ]
    else:
        org_codes = {o.id: o.code for o in list_organizations(session)}
        rows = [
            {
                "login": u.login,
                "name": u.name,
                "organization_code": org_codes.get(u.organization_id, ""),
                "roles": " ".join(u.roles),
                "kind": str(u.kind),
                "grants": " ".join(grant_codes(session, u)),
            }
            for u in session.exec(select(User).order_by(User.login)).all()
        ]
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=EXPORT_COLUMNS[kind], lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    audit.record(
        session,
        actor=actor.login,
        action=AuditAction.MASTER_EXPORTED,
        target_type="master",
        target_id=kind,
        details={"rows": len(rows)},
    )
    return buf.getvalue().encode("utf-8-sig")
