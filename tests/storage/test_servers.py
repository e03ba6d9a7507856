"""The real test servers start, answer, and clean up after themselves."""

from __future__ import annotations

import io
import uuid

import psycopg
import pytest

from tests.servers import PostgresServer, SeaweedServer


@pytest.mark.postgres
def test_postgres_server_answers(pg_server: PostgresServer) -> None:
    url = pg_server.url
    assert url.startswith("postgresql+psycopg://genpon:genpon@127.0.0.1:")
    with psycopg.connect(url.replace("+psycopg", "", 1)) as conn:
        row = conn.execute(
            "select 1, current_user, current_setting('server_version_num')"
        ).fetchone()
        encoding = conn.execute("show server_encoding").fetchone()
        collate = conn.execute(
            "select datcollate from pg_database where datname = 'genpon'"
        ).fetchone()
    assert row is not None and row[0] == 1 and row[1] == "genpon"
    assert int(row[2]) >= 150000
    assert encoding == ("UTF8",)
    assert collate == ("C.UTF-8",)


@pytest.mark.postgres
def test_postgres_create_and_drop_database(pg_server: PostgresServer) -> None:
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = pg_server.create_database(name, template="genpon")
    with psycopg.connect(url.replace("+psycopg", "", 1)) as conn:
        conn.execute("create table t (x int)")  # the genpon role owns the new database
        conn.execute("insert into t values (42)")
        assert conn.execute("select x from t").fetchone() == (42,)
    pg_server.drop_database(name)
    with pg_server.admin_connection() as admin:
        assert (
            admin.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
            is None
        )
    with pytest.raises(ValueError):
        pg_server.create_database("bad; drop database genpon")


@pytest.mark.s3
def test_seaweed_server_serves_s3(s3_server: SeaweedServer) -> None:
    assert s3_server.endpoint_url.startswith("http://127.0.0.1:")
    store = s3_server.make_store()
    staged = store.stage(io.BytesIO(b"hello"))
    assert store.put_staged(staged) is True
    with store.open(staged.sha256) as fh:
        assert fh.read() == b"hello"
    # auth is on: a request without credentials is refused
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", s3_server.s3_port, timeout=5)
    conn.request("GET", f"/{store.bucket}/")
    assert conn.getresponse().status == 403
    conn.close()
