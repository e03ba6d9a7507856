"""Retention benchmark: the disposition list at a million documents, and a 10,000-item destroy.

    .venv/bin/python bench/retention.py --db sqlite   [--docs 1000000] [--batch 10000]
    .venv/bin/python bench/retention.py --db postgres [--pg-url URL]   (default: a throwaway
                                                       server from tests/servers.py)

Generates ``--docs`` official documents in closed cases (one case per 50 documents) with
retention ends spread over 2011–2040, so about half are due as of 2026-04-01. Every document has
a blob row; the ``--batch`` documents that get destroyed also have real content in the local
blob store. Prints: generation time, the due list (count + first page of 1,000, grouped) as of
2026-04-01, and the destroy batch (create, approve, execute with certificate) in items/s.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genpon.core.db import make_engine, migrate
from genpon.core.settings import Settings
from genpon.core.signing import SystemKeyring
from genpon.records.access import actor_for_user
from genpon.records.bootstrap import InitResult, load_demo
from genpon.records.models import (
    Blob,
    Case,
    Document,
    DocumentClass,
    DocumentVersion,
    Folder,
    Organization,
    User,
)
from genpon.retention import batches, disposal, disposition_list
from genpon.storage.registry import make_store
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

AS_OF = date(2026, 4, 1)
TZ = "Asia/Tokyo"


def _content(i: int) -> bytes:
    return f"bench-{i}".encode().ljust(64, b" ")


def _sha(i: int) -> str:
    return hashlib.sha256(_content(i)).hexdigest()


class _Loader:
    """Bulk rows into tables in one transaction: COPY on PostgreSQL (psycopg), executemany
    on SQLite (values through SQLAlchemy's own bind processors, so they read back the same)."""

    def __init__(self, engine: Engine) -> None:
        self.raw = engine.raw_connection()
        self.dialect = engine.dialect
        self.pg = engine.dialect.name == "postgresql"
        if not self.pg:  # keep the random sha256 index pages in memory during the load
            self.raw.cursor().execute("PRAGMA cache_size = -1048576")

    def scalar(self, sql: str) -> Any:
        cur = self.raw.cursor()
        cur.execute(sql)
        value = cur.fetchone()[0]
        cur.close()
        return value

    def load(self, model: Any, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        table = model.__table__
        if self.pg:
            names = ", ".join(f'"{c}"' for c in columns)
            with (
                self.raw.driver_connection.cursor() as cur,
                cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as cp,
            ):
                for row in rows:
                    cp.write_row(row)
            return
        procs = [table.c[c].type.bind_processor(self.dialect) for c in columns]
        conv = [(i, p) for i, p in enumerate(procs) if p is not None]
        if conv:
            out = []
            for r in rows:
                lst = list(r)
                for i, p in conv:
                    lst[i] = p(lst[i])
                out.append(tuple(lst))
            rows = out
        marks = ", ".join("?" for _ in columns)
        cur = self.raw.cursor()
        cur.executemany(f'INSERT INTO "{table.name}" ({", ".join(columns)}) VALUES ({marks})', rows)
        cur.close()

    def commit(self) -> None:
        self.raw.commit()

    def close(self) -> None:
        self.raw.close()


def generate(settings: Settings, n_docs: int, n_batch: int) -> list[int]:
    engine = make_engine(settings.db_url)
    with Session(engine) as s:
        load_demo(s, InitResult())
        s.commit()
    store = make_store(settings)
    with Session(engine) as s:
        org = s.exec(select(Organization).where(Organization.code == "SOUMU-ZAISEI")).one()
        cls = s.exec(select(DocumentClass).where(DocumentClass.code == "B0102")).one()
        org_id, cls_id = org.id, cls.id
        last_case = s.exec(text("SELECT COALESCE(MAX(id), 0) FROM case_record")).one()[0]
        last_folder = s.exec(text("SELECT COALESCE(MAX(id), 0) FROM folder")).one()[0]
    per_case = 50
    n_cases = (n_docs + per_case - 1) // per_case
    now = datetime.now(UTC)
    loader = _Loader(engine)
    try:
        case_cols = [
            "id",
            "case_id",
            "title",
            "organization_id",
            "document_class_id",
            "status",
            "fiscal_year",
            "opened_on",
            "closed_at",
            "issuer",
            "created_at",
            "updated_at",
        ]
        folder_cols = ["id", "kind", "name", "organization_id", "case_pk", "created_at"]
        cases, folders = [], []
        for c in range(n_cases):
            year = 2010 + c % 30  # closed FY2010..2039 -> ends 2016..2045 (5 years)
            code = f"BENCH-{c:07d}"
            cases.append(
                (
                    last_case + 1 + c,
                    code,
                    f"ベンチ案件 {c}",
                    org_id,
                    cls_id,
                    "closed",
                    year,
                    date(year, 5, 1),
                    datetime(year, 7, 1, tzinfo=UTC),
                    "bench",
                    now,
                    now,
                )
            )
            folders.append((last_folder + 1 + c, "case", code, org_id, last_case + 1 + c, now))
        loader.load(Case, case_cols, cases)
        loader.load(Folder, folder_cols, folders)
        del cases, folders
        last_doc = loader.scalar("SELECT COALESCE(MAX(id), 0) FROM document")
        blob_cols = ["sha256", "size", "mime_type", "state", "stored_at"]
        doc_cols = [
            "id",
            "folder_id",
            "case_pk",
            "organization_id",
            "document_class_id",
            "title",
            "filename",
            "sha256",
            "size",
            "mime_type",
            "status",
            "state",
            "version",
            "doc_date",
            "retention_start",
            "retention_end",
            "created_at",
            "updated_at",
        ]
        version_cols = [
            "document_id",
            "version",
            "sha256",
            "size",
            "filename",
            "mime_type",
            "created_at",
        ]
        batch_ids: list[int] = []
        chunk = 100_000
        for start in range(0, n_docs, chunk):
            blobs, docs, versions = [], [], []
            for i in range(start, min(start + chunk, n_docs)):
                c = i // per_case
                year = 2010 + c % 30
                sha = _sha(i)
                doc_id = last_doc + 1 + i
                name = f"doc{i}.txt"
                blobs.append((sha, 64, "text/plain", "stored", now))
                docs.append(
                    (
                        doc_id,
                        last_folder + 1 + c,
                        last_case + 1 + c,
                        org_id,
                        cls_id,
                        f"ベンチ文書 {i}",
                        name,
                        sha,
                        64,
                        "text/plain",
                        "official",
                        "live",
                        1,
                        date(year, 6, 1),
                        date(year + 1, 4, 1),
                        date(year + 6, 3, 31),
                        now,
                        now,
                    )
                )
                if len(batch_ids) < n_batch and year + 6 < AS_OF.year:
                    batch_ids.append(doc_id)
                    versions.append((doc_id, 1, sha, 64, name, "text/plain", now))
            loader.load(Blob, blob_cols, blobs)
            loader.load(Document, doc_cols, docs)
            if versions:
                loader.load(DocumentVersion, version_cols, versions)
        if loader.pg:  # rows came with their ids: move the sequences past them
            for table in ("case_record", "folder", "document"):
                loader.scalar(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT MAX(id) FROM {table}))"
                )
        loader.commit()
    finally:
        loader.close()

    # real content for the documents that will be destroyed
    def put(doc_id: int) -> None:
        store.put_staged(store.stage([_content(doc_id - last_doc - 1)]))

    with ThreadPoolExecutor(16) as pool:  # the store fsyncs each blob: overlap the waits
        list(pool.map(put, batch_ids))
    if settings.db_url.startswith("postgresql"):  # what autovacuum does on a live system
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    engine.dispose()
    return batch_ids


def run(settings: Settings, n_docs: int, n_batch: int) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings.db_url)
    SystemKeyring(settings.key_dir).ensure()
    t0 = time.perf_counter()
    batch_ids = generate(settings, n_docs, n_batch)
    print(f"generated {n_docs:,} documents in {time.perf_counter() - t0:.1f} s")
    engine = make_engine(settings.db_url)
    store = make_store(settings)
    with Session(engine) as s:
        suzuki = actor_for_user(s, s.exec(select(User).where(User.login == "suzuki")).one())
        sato = actor_for_user(s, s.exec(select(User).where(User.login == "sato")).one())
    timings = []
    for _ in range(3):
        with Session(engine) as s:
            t = time.perf_counter()
            page = disposition_list.due_list(s, suzuki, timezone=TZ, as_of=AS_OF, limit=1000)
            timings.append(time.perf_counter() - t)
    print(
        f"due list as of {AS_OF}: {page.total:,} due, first page {len(page.items)} items in "
        f"{len(page.groups)} case groups: best {min(timings):.3f} s, first {timings[0]:.3f} s"
    )
    t = time.perf_counter()
    with Session(engine) as s:
        b = batches.create_batch(
            s, suzuki, action="destroy", timezone=TZ, as_of=AS_OF, document_ids=batch_ids
        )
        s.commit()
        batch_id = b.id or 0
    t_create = time.perf_counter() - t
    t = time.perf_counter()
    with Session(engine) as s:
        batches.decide(s, sato, batch_id, approve=True)
        s.commit()
    t_approve = time.perf_counter() - t
    t = time.perf_counter()
    report = disposal.execute_batch(engine, store, sato, settings, batch_id, as_of=AS_OF)
    t_exec = time.perf_counter() - t
    print(
        f"destroy batch of {len(batch_ids):,}: create {t_create:.1f} s, approve {t_approve:.1f} s, "
        f"execute {t_exec:.1f} s = {report.done / t_exec:,.0f} items/s "
        f"(status {report.status}, certificate {report.certificate_id})"
    )
    engine.dispose()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--pg-url")
    p.add_argument("--docs", type=int, default=1_000_000)
    p.add_argument("--batch", type=int, default=10_000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="genpon-bench-") as tmp:
        data = Path(tmp)
        server = None
        if args.db == "sqlite":
            url = f"sqlite:///{data / 'bench.db'}"
        elif args.pg_url:
            url = args.pg_url
        else:
            from tests.servers import PostgresServer

            server = PostgresServer().start()
            server.create_database("bench")
            url = server.url_for("bench")
        try:
            print(f"backend: {args.db}")
            run(
                Settings(environment="test", data_dir=data, database_url=url), args.docs, args.batch
            )
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
