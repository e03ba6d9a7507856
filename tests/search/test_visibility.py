"""The visibility rule every backend encodes (one hit per content: the first placement the
caller may read that matches the filters), checked against its definition on random data."""

from __future__ import annotations

import itertools
import random
from datetime import date
from typing import Any

from genpon.search.backends.base import (
    FILTER_FIELDS,
    IndexEntry,
    SearchQuery,
    hidden_keys,
    prior_filter_keys,
)

DOMAINS: dict[str, list[Any]] = {
    "case_id": ["", "2026-A-00001", "2026-B-00002"],
    "organization": ["ORG1", "ORG2"],
    "doc_class": ["", "B0101"],
    "folder_kind": ["case", "team", "shared"],
    "status": ["working", "official"],
    "fiscal_year": [2025, 2026],
}
TOKENS = ["team:1", "team:2", "case:3", "org:4"]


def _placements(rng: random.Random, first_id: int) -> list[IndexEntry]:
    """One content's placements in index order, built as ``search.indexer`` builds them."""
    out: list[IndexEntry] = []
    prior: list[str] = []
    prior_values: list[tuple[dict[str, Any], list[str]]] = []
    for n in range(rng.randint(1, 5)):
        values = {d: rng.choice(DOMAINS[d]) for d in FILTER_FIELDS}
        acl = rng.sample(TOKENS, rng.randint(1, 2))
        out.append(
            IndexEntry(
                document_id=first_id + n,
                sha256="x",
                body_tokens=[],
                title_tokens=[],
                filename_tokens=[],
                meta_tokens=[],
                acl=acl,
                prior_acl=sorted(set(prior)),
                is_first=n == 0,
                is_original=n == 0,
                **values,
                doc_date=date(2026, 4, 1),
                prior_keys=prior_filter_keys(values, prior_values),
            )
        )
        prior += acl
        prior_values.append((values, acl))
    return out


def _shown_by_rule(entries: list[IndexEntry], q: SearchQuery) -> set[int]:
    """What a backend returns: the tests it runs on each entry."""
    hidden = hidden_keys(q)
    shown = set()
    for e in entries:
        if q.acl is not None and not set(e.acl) & set(q.acl):
            continue
        if any(getattr(e, k) != v for k, v in q.filters.items()):
            continue
        if hidden is not None:
            ok = not set(e.prior_keys) & set(hidden)
        elif q.acl is None:
            ok = e.is_first
        else:
            ok = not set(e.prior_acl) & set(q.acl)
        if ok:
            shown.add(e.document_id)
    return shown


def _shown_by_definition(entries: list[IndexEntry], q: SearchQuery) -> set[int]:
    """Without filters: the first readable placement (city-wide readers: the first one).
    With filters: the first readable placement that matches them."""
    for e in entries:
        if q.acl is not None and not set(e.acl) & set(q.acl):
            continue
        if all(getattr(e, k) == v for k, v in q.filters.items()):
            return {e.document_id}
    return set()


def test_keys_give_exactly_the_first_readable_placement_matching_the_filters() -> None:
    rng = random.Random(7)
    contents = [_placements(rng, 100 * i) for i in range(300)]
    acls: list[list[str] | None] = [None, [], *([t] for t in TOKENS), ["team:1", "case:3"]]
    checked = 0
    for entries in contents:
        for acl in acls:
            for r in (0, 1, 2, 3):
                for dims in itertools.combinations(FILTER_FIELDS, r):
                    ref = rng.choice(entries)  # filter values some placement has
                    filters = {d: getattr(ref, d) for d in dims}
                    q = SearchQuery(terms=[], acl=acl, filters=filters)
                    assert _shown_by_rule(entries, q) == _shown_by_definition(entries, q), (
                        entries,
                        q,
                    )
                    checked += 1
    assert checked > 80_000


def test_keys_stay_few_for_copies_filed_elsewhere() -> None:
    """Only the fields on which an earlier placement agrees with this one are combined."""
    a = {"case_id": "A", "organization": "O", "doc_class": "C", "folder_kind": "case"}
    b = {**a, "case_id": "B"}
    for v in (a, b):
        v.update(status="working", fiscal_year=2026)
    keys = prior_filter_keys(b, [(a, ["case:1"])])
    assert not any("case_id=" in k for k in keys)
    assert len(keys) == (2**5 - 1) * 2  # five agreeing fields, one token and everyone
