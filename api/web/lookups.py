"""Display names for ids and logins shown on pages (master data reads, nothing else)."""

from __future__ import annotations

from dataclasses import dataclass, field

from genpon.records import master
from genpon.records.models import DocumentClass, Organization, User
from sqlmodel import Session, select


@dataclass
class Names:
    orgs: dict[int, Organization] = field(default_factory=dict)
    classes: dict[int, DocumentClass] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)
    user_ids: dict[int, str] = field(default_factory=dict)

    def org(self, org_id: int | None) -> str:
        o = self.orgs.get(org_id or 0)
        return o.name if o else ""

    def cls(self, class_id: int | None) -> str:
        c = self.classes.get(class_id or 0)
        return f"{c.code} {c.name}" if c else ""

    def person(self, login: str | None) -> str:
        if not login:
            return ""
        if login == "system":
            return "システム"
        return self.users.get(login, login)

    def person_id(self, user_id: int | None) -> str:
        return self.user_ids.get(user_id or 0, "")


def names(session: Session) -> Names:
    n = Names()
    n.orgs = {o.id or 0: o for o in master.list_organizations(session)}
    n.classes = {c.id or 0: c for c in master.list_classes(session)}
    for u in session.exec(select(User)).all():
        n.users[u.login] = u.name
        n.user_ids[u.id or 0] = u.name
    return n
