"""Schemathesis against the app's own ``/openapi.json``, with a key of each role: no server error
(5xx), and every response matches the documented status codes, content types and schemas.

Bounded: a few generated examples per operation and role, and a time budget for the whole run
(it must stay under a minute on two cores). Every operation is exercised with every role.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from genpon.api.app import create_app
from genpon.core.db import make_engine
from genpon.core.settings import Settings
from genpon.storage.context import AppContext
from genpon.storage.registry import make_store
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.slow

ROLES = {
    "staff": "tanaka",
    "records_officer": "suzuki",
    "auditor": "yamada",
    "admin": "admin",
    "service": "denshi-kessai",
}
EXAMPLES = 3
BUDGET_S = 90.0  # a loaded machine; about 20 s on two idle cores


def not_a_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    if response.status_code >= 500:
        raise AssertionError(f"{response.status_code}: {response.text[:300]}")
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@dataclass
class Fuzzed:
    schema: Any
    keys: dict[str, str]


@pytest.fixture(scope="module")
def fuzzed(
    tmp_path_factory: pytest.TempPathFactory, sqlite_demo_template: tuple[Path, dict[str, str]]
) -> Iterator[Fuzzed]:
    """One demo database and app for the whole run (the fuzzer's writes pile up in it)."""
    template, keys = sqlite_demo_template
    root = tmp_path_factory.mktemp("fuzz")
    shutil.copyfile(template, root / "genpon.db")
    s = Settings(
        environment="test",
        data_dir=root / "data",
        database_url=f"sqlite:///{root / 'genpon.db'}",
        index_autostart=False,
        ocr_enabled=False,
    )
    s.data_dir.mkdir(parents=True, exist_ok=True)
    ctx = AppContext(settings=s, engine=make_engine(s.db_url), store=make_store(s))
    app = create_app(s, ctx)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    yield Fuzzed(schema=schema, keys=keys)
    ctx.engine.dispose()


def _runner(op: Any, headers: dict[str, str], statuses: Counter[int]) -> Any:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=op.as_strategy())
    def run(case: Any) -> None:
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        statuses[response.status_code // 100] += 1

    return run


def _operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


def test_api_conforms_to_its_schema_for_every_role(fuzzed: Fuzzed) -> None:
    operations = _operations(fuzzed.schema)
    assert len(operations) > 40
    deadline = time.monotonic() + BUDGET_S
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    done = 0
    for role, login in ROLES.items():
        headers = {"Authorization": f"Bearer {fuzzed.keys[login]}"}
        for op in operations:
            if time.monotonic() > deadline:
                pytest.fail(f"fuzz budget of {BUDGET_S} s spent after {done} operation runs")

            run = _runner(op, headers, statuses)
            try:
                run()
            except (
                Exception,
                BaseExceptionGroup,
            ) as exc:  # collect every operation's failure, then report all
                failures.append(f"[{role}] {op.method.upper()} {op.path}: {exc}"[:1500])
            done += 1
    print(f"{done} operation runs, responses by class: {dict(statuses)}")
    assert not failures, "\n\n".join(failures)
    assert statuses[2] > 100  # the fuzzer reaches the services, not only the validation
