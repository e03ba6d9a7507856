"""Search visibility by token equals the read rule: for generated folders, cases and callers,
an index entry built with ``folder_acl_tokens`` is found by ``Actor.acl_tokens`` exactly when
``can_read_folder`` allows the read (no database needed: the rule is pure)."""

from __future__ import annotations

import random
from datetime import date

from genpon.records.access import Actor, can_read_folder, folder_acl_tokens
from genpon.records.models import Case, Folder

ORGS = [1, 2, 3, 4]
ROLES = ["staff", "records_officer", "auditor", "admin"]


def _case(rng: random.Random, case_pk: int) -> Case:
    return Case(
        id=case_pk,
        case_id=f"2026-X-{case_pk:05d}",
        title="案件",
        organization_id=rng.choice(ORGS),
        document_class_id=1,
        fiscal_year=2026,
        opened_on=date(2026, 4, 1),
    )


def _folder(rng: random.Random, cases: list[Case]) -> tuple[Folder, Case | None]:
    kind = rng.choice(["team", "shared", "case", "case", "unknown"])
    case = rng.choice([*cases, None]) if kind in ("case", "team") else None
    # a case folder may sit in another organization than its case (handed over, moved)
    folder = Folder(
        kind=kind,
        name="フォルダ",
        organization_id=rng.choice(ORGS),
        case_pk=case.id if case else None,
    )
    return folder, case


def _actor(rng: random.Random, n: int, cases: list[Case]) -> Actor:
    kind = rng.choice(["person", "person", "person", "service", "system"])
    org = rng.choice(ORGS)
    return Actor(
        user_id=n,
        login=f"u{n}",
        kind=kind,
        roles=frozenset(rng.sample(ROLES, rng.choice([0, 1, 1, 1, 2]))),
        organization_id=org,
        org_and_ancestors=frozenset({org, *rng.sample(ORGS, rng.randint(0, 2))}),
        granted_orgs=frozenset(rng.sample(ORGS, rng.randint(0, 2))),
        member_cases=frozenset(c.id for c in rng.sample(cases, rng.randint(0, 2)) if c.id),
    )


def _found_by_tokens(actor: Actor, entry_tokens: list[str]) -> bool:
    caller = actor.acl_tokens()
    return caller is None or bool(set(caller) & set(entry_tokens))


def test_token_match_is_the_read_rule() -> None:
    rng = random.Random(13)
    cases = [_case(rng, pk) for pk in range(1, 9)]
    folders = [_folder(rng, cases) for _ in range(200)]
    actors = [_actor(rng, n, cases) for n in range(200)]
    outcomes = {True: 0, False: 0}
    for actor in actors:
        for folder, case in folders:
            allowed = can_read_folder(actor, folder, case)
            assert _found_by_tokens(actor, folder_acl_tokens(folder, case)) == allowed, (
                actor,
                folder,
                case,
            )
            outcomes[allowed] += 1
    assert min(outcomes.values()) > 5_000  # both answers well exercised


def test_case_folder_in_another_organization_follows_the_case() -> None:
    """The case's organization reads a case folder, not the folder's (the old builder's bug)."""
    case = Case(
        id=5,
        case_id="2026-X-00005",
        title="案件",
        organization_id=1,
        document_class_id=1,
        fiscal_year=2026,
        opened_on=date(2026, 4, 1),
    )
    folder = Folder(kind="case", name="案件フォルダ", organization_id=2, case_pk=5)
    staff_of = {
        org: Actor(
            user_id=org,
            login=f"s{org}",
            kind="person",
            roles=frozenset({"staff"}),
            organization_id=org,
            org_and_ancestors=frozenset({org}),
        )
        for org in (1, 2)
    }
    tokens = folder_acl_tokens(folder, case)
    assert _found_by_tokens(staff_of[1], tokens) and can_read_folder(staff_of[1], folder, case)
    assert not _found_by_tokens(staff_of[2], tokens)
    assert not can_read_folder(staff_of[2], folder, case)
