"""Shared fixtures: settings on a temp dir, a migrated database per test (SQLite by default,
PostgreSQL where a test parametrizes ``db_kind``), the app, demo master data and API keys."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("GENPON_ENVIRONMENT", "test")

from fastapi.testclient import TestClient
from genpon.api.app import create_app
from genpon.core.db import make_engine, migrate
from genpon.core.settings import Settings
from genpon.records.access import SYSTEM_ACTOR
from genpon.records.bootstrap import InitResult, load_demo
from genpon.storage.context import AppContext
from genpon.storage.registry import make_store
from sqlmodel import Session

pytest_plugins = ["tests.servers"]

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GENPON_SHARED_DATA", REPO.parent / "shared" / "data"))

BOTH_DBS = pytest.mark.parametrize(
    "db_kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)


@pytest.fixture
def shared_data() -> Path:
    """../shared/data: skipped where absent, a failure in CI (which always has it)."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"corpus missing in CI: {SHARED_DATA}")
        pytest.skip(f"corpus not present: {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_template(pg_server: Any) -> str:
    name = "genpon_template"
    pg_server.create_database(name)
    migrate(pg_server.url_for(name))
    return name


# Demo master data costs seconds per test (argon2 password hashes for nine users), so it is loaded
# once per session into a second template; tests that ask for ``demo`` get a copy of it.
DEMO_KEYS = pytest.StashKey[dict[str, str]]()


def _load_demo_into(url: str) -> dict[str, str]:
    engine = make_engine(url)
    try:
        result = InitResult()
        with Session(engine) as s:
            load_demo(s, result)
            s.commit()
        return result.demo_keys
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def sqlite_demo_template(sqlite_template: Path) -> tuple[Path, dict[str, str]]:
    path = sqlite_template.with_name("template-demo.db")
    shutil.copyfile(sqlite_template, path)
    return path, _load_demo_into(f"sqlite:///{path}")


@pytest.fixture(scope="session")
def pg_demo_template(pg_server: Any, pg_template: str) -> tuple[str, dict[str, str]]:
    name = "genpon_template_demo"
    pg_server.create_database(name, template=pg_template)
    return name, _load_demo_into(pg_server.url_for(name))


@pytest.fixture
def db_kind() -> str:
    return "sqlite"


@pytest.fixture
def db_url(request: pytest.FixtureRequest, db_kind: str, tmp_path: Path) -> Iterator[str]:
    with_demo = "demo" in request.fixturenames
    if db_kind == "sqlite":
        if with_demo:
            template, keys = request.getfixturevalue("sqlite_demo_template")
            request.node.stash[DEMO_KEYS] = keys
        else:
            template = request.getfixturevalue("sqlite_template")
        target = tmp_path / "genpon.db"
        shutil.copyfile(template, target)
        yield f"sqlite:///{target}"
        return
    pg = request.getfixturevalue("pg_server")
    if with_demo:
        template_name, keys = request.getfixturevalue("pg_demo_template")
        request.node.stash[DEMO_KEYS] = keys
    else:
        template_name = request.getfixturevalue("pg_template")
    name = f"t_{uuid.uuid4().hex[:12]}"
    pg.create_database(name, template=template_name)
    yield pg.url_for(name)
    pg.drop_database(name)


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path / "data",
        database_url=db_url,
        gc_grace_seconds=3600,
        index_autostart=False,  # tests drain the index explicitly (search.indexer.drain)
        ocr_enabled=False,  # OCR costs seconds a page: tests/ocr turns it on where it is tested
    )


@pytest.fixture
def ctx(settings: Settings) -> Iterator[AppContext]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    c = AppContext(settings=settings, engine=engine, store=make_store(settings))
    yield c
    engine.dispose()


@dataclass
class Demo:
    keys: dict[str, str]

    def auth(self, login: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[login]}"}


@pytest.fixture
def demo(request: pytest.FixtureRequest, ctx: AppContext) -> Demo:
    keys = request.node.stash.get(DEMO_KEYS, None)
    if keys is not None:  # the database was copied from the demo template
        return Demo(keys=dict(keys))
    result = InitResult()
    with Session(ctx.engine) as s:
        load_demo(s, result)
        s.commit()
    return Demo(keys=result.demo_keys)


@pytest.fixture
def app(ctx: AppContext) -> Any:
    return create_app(ctx.settings, ctx)


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def system() -> Any:
    return SYSTEM_ACTOR
