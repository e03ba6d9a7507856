"""The reference multi-node deployment on one machine, all on 127.0.0.1 (``scripts/cluster``).

    python -m tests.cluster.cluster up|down|status|kill NAME|start NAME [--base DIR]

Components (docs/cluster.md maps each onto real machines):

- ``pg-primary`` + ``pg-replica``: Debian's PostgreSQL, streaming replication from a
  ``pg_basebackup``; scram passwords on TCP, trust only on the unix socket in a 0700 directory;
- ``weed-master``, ``weed-vol1..3`` (``-volume.allowUntrustedRemoteEndpoints`` so repair works on
  loopback), ``weed-filer``, ``weed-s3``: SeaweedFS with replication 001;
- ``app1..3``: ``genpon serve`` (``GENPON_DATABASE_READ_URL`` on the replica);
- ``worker1..2``: ``genpon worker`` when the installed genpon has it, otherwise the index worker
  runs inside ``app1`` only (``GENPON_INDEX_AUTOSTART``);
- ``haproxy``: round robin over the app servers, ``option redispatch`` + ``retry-on``.

Layout of the base directory (default ``var/cluster``, or ``GENPON_CLUSTER_DIR``, or ``--base``):
``state.json`` (ports, pids, commands: no secrets), ``secrets/`` (0700: passwords, the S3 identity,
the app environment, ``init.out`` with the demo API keys), ``logs/``, ``pg/`` (owned by postgres),
``weed/``, ``nodes/<app>/`` (each node's own data dir; ``keys`` is the one shared signing key).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.prefix) / "bin"
HOST = "127.0.0.1"
APPS = ("app1", "app2", "app3")
WORKERS = ("worker1", "worker2")
VOLUMES = ("weed-vol1", "weed-vol2", "weed-vol3")
# stop order: the front first, the data last (CLUSTER.md: s3, filer, volumes, master)
STOP_ORDER = (
    "haproxy",
    *APPS,
    *WORKERS,
    "weed-s3",
    "weed-filer",
    *VOLUMES,
    "weed-master",
    "pg-replica",
    "pg-primary",
)
S3_BUCKET = "genpon"


class ClusterError(RuntimeError):
    pass


def _settings_has(name: str) -> bool:
    from genpon.core.settings import Settings

    return name in Settings.model_fields


def free_port_pairs(n: int) -> list[int]:
    """``n`` free ports ``p`` whose ``p + 10000`` (SeaweedFS's gRPC port) is free too."""
    out: list[int] = []
    held: list[socket.socket] = []
    try:
        while len(out) < n:
            s = socket.socket()
            s.bind((HOST, 0))
            port = s.getsockname()[1]
            if port + 10000 > 65535:
                s.close()
                continue
            t = socket.socket()
            try:
                t.bind((HOST, port + 10000))
            except OSError:
                s.close()
                t.close()
                continue
            held += [s, t]
            out.append(port)
        return out
    finally:
        for s in held:
            s.close()


def pg_bin() -> Path:
    for c in (
        Path("/usr/lib/postgresql/15/bin"),
        *sorted(Path("/usr/lib/postgresql").glob("*/bin")),
    ):
        if (c / "initdb").is_file():
            return c
    raise ClusterError("PostgreSQL not found: run scripts/setup")


@dataclass
class Component:
    name: str
    argv: list[str]
    port: int
    check: str  # "tcp", "http:/path", "pg"
    stop_signal: int = signal.SIGTERM
    env_file: str | None = None  # under secrets/, KEY=VALUE lines
    as_postgres: bool = False
    pid: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "argv": self.argv,
            "port": self.port,
            "check": self.check,
            "stop_signal": int(self.stop_signal),
            "env_file": self.env_file,
            "as_postgres": self.as_postgres,
            "pid": self.pid,
        }


@dataclass
class Cluster:
    base: Path
    ports: dict[str, int] = field(default_factory=dict)
    components: dict[str, Component] = field(default_factory=dict)
    worker_mode: str = "worker"  # or "autostart" (no genpon worker command yet)

    # -- paths and state ------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.base / "state.json"

    @property
    def secrets(self) -> Path:
        return self.base / "secrets"

    @property
    def logs(self) -> Path:
        return self.base / "logs"

    @property
    def front_url(self) -> str:
        return f"http://{HOST}:{self.ports['haproxy']}"

    def app_url(self, name: str) -> str:
        return f"http://{HOST}:{self.ports[name]}"

    def save(self) -> None:
        data = {
            "ports": self.ports,
            "worker_mode": self.worker_mode,
            "components": {n: c.as_json() for n, c in self.components.items()},
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(self.state_file)

    @classmethod
    def load(cls, base: Path) -> Cluster:
        data = json.loads((base / "state.json").read_text())
        c = cls(base=base, ports=data["ports"], worker_mode=data.get("worker_mode", "worker"))
        for name, d in data["components"].items():
            c.components[name] = Component(
                name=name,
                argv=d["argv"],
                port=d["port"],
                check=d["check"],
                stop_signal=d["stop_signal"],
                env_file=d["env_file"],
                as_postgres=d["as_postgres"],
                pid=d["pid"],
            )
        return c

    def write_secret(self, name: str, value: str) -> None:
        path = self.secrets / name
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(value)

    def secret(self, name: str) -> str:
        return (self.secrets / name).read_text().strip()

    def app_env(self) -> dict[str, str]:
        """The environment every genpon process of the cluster gets (secrets included)."""
        env: dict[str, str] = {}
        for line in (self.secrets / "genpon.env").read_text().splitlines():
            key, _, value = line.partition("=")
            if key:
                env[key] = value
        return env

    def api_key(self, login: str = "admin") -> str:
        """A demo API key printed by ``genpon init --demo`` (kept in secrets/init.out)."""
        for line in (self.secrets / "init.out").read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == login:
                return parts[1]
        raise ClusterError(f"no demo API key for {login}")

    # -- processes -------------------------------------------------------------------------

    def _spawn(self, comp: Component) -> None:
        env = {"PATH": f"{VENV_BIN}:/usr/bin:/bin:/usr/sbin:/sbin", "LC_ALL": "C.UTF-8"}
        if comp.env_file:
            env.update(self.app_env())
            extra = self.secrets / comp.env_file
            if extra.is_file():
                for line in extra.read_text().splitlines():
                    key, _, value = line.partition("=")
                    if key:
                        env[key] = value
        kwargs: dict[str, Any] = {}
        if comp.as_postgres:
            kwargs = {"user": "postgres", "group": "postgres", "extra_groups": []}
        with open(self.logs / f"{comp.name}.log", "ab") as log:
            log.write(f"\n--- start {time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                comp.argv,
                cwd=self.base,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **kwargs,
            )
        comp.pid = proc.pid
        self.save()

    def alive(self, name: str) -> bool:
        pid = self.components[name].pid
        if not pid:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        # a zombie child of this process counts as dead
        with contextlib.suppress(ChildProcessError):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return False
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        return stat.rsplit(")", 1)[1].split()[0] != "Z"

    def answers(self, name: str) -> bool:
        comp = self.components[name]
        if comp.check == "alive":
            return self.alive(name)
        if comp.check == "pg":
            return self._pg_ready(comp.port)
        if comp.check.startswith("http:"):
            conn = http.client.HTTPConnection(HOST, comp.port, timeout=2)
            try:
                conn.request("GET", comp.check[5:])
                status = conn.getresponse().status
                return status < 500
            except OSError:
                return False
            finally:
                conn.close()
        with socket.socket() as s:
            s.settimeout(1)
            return s.connect_ex((HOST, comp.port)) == 0

    def _pg_ready(self, port: int) -> bool:
        r = subprocess.run(
            [str(pg_bin() / "pg_isready"), "-h", HOST, "-p", str(port), "-t", "2"],
            capture_output=True,
            check=False,
        )
        return r.returncode == 0

    def wait_answers(self, name: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.answers(name):
                return
            if not self.alive(name):
                break
            time.sleep(0.1)
        tail = "\n".join((self.logs / f"{name}.log").read_text(errors="replace").splitlines()[-25:])
        raise ClusterError(f"{name} did not come up; log tail:\n{tail}")

    def start(self, name: str, wait: bool = True) -> None:
        """(Re)start one component with the command it was first started with."""
        if self.alive(name):
            return
        self._spawn(self.components[name])
        if wait:
            self.wait_answers(name)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        pid = self.components[name].pid
        if pid and self.alive(name):
            os.kill(pid, sig)
            if sig == signal.SIGKILL:
                self._reap(pid, 5)

    def _reap(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            if not Path(f"/proc/{pid}").exists():
                return True
            stat = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}").exists() else ""
            if stat and stat.rsplit(")", 1)[1].split()[0] == "Z":
                return True
            time.sleep(0.1)
        return False

    def stop(self, name: str, timeout: float = 5.0) -> None:
        """The component's stop signal, then SIGKILL after ``timeout`` s (the filer ignores
        TERM once the master is gone)."""
        comp = self.components.get(name)
        if comp is None or not comp.pid:
            return
        if self.alive(name):
            with contextlib.suppress(ProcessLookupError):
                os.kill(comp.pid, comp.stop_signal)
            if not self._reap(comp.pid, timeout):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(comp.pid, signal.SIGKILL)
                self._reap(comp.pid, 5)
        comp.pid = None
        self.save()

    def status(self) -> list[tuple[str, int, str]]:
        rows = []
        for name in reversed(STOP_ORDER):
            if name not in self.components:
                continue
            comp = self.components[name]
            if not self.alive(name):
                state = "stopped"
            else:
                state = "answers" if self.answers(name) else "running, not answering"
            rows.append((name, comp.port, state))
        return rows

    # -- bring up ----------------------------------------------------------------------------

    def prepare(self) -> None:
        """A fresh base directory and free ports for every component."""
        if self.state_file.exists():
            old = Cluster.load(self.base)
            if any(old.alive(n) for n in old.components):
                raise ClusterError(f"a cluster is already running in {self.base}: cluster down")
        if self.base.exists():
            shutil.rmtree(self.base)
        self.base.mkdir(parents=True)
        self.base.chmod(0o755)  # postgres must traverse it
        for d in (self.secrets, self.logs):
            d.mkdir(mode=0o700)
        names = ["pg-primary", "pg-replica", "weed-master", *VOLUMES, "weed-filer", "weed-s3"]
        names += [*APPS, "haproxy"]
        self.ports = dict(zip(names, free_port_pairs(len(names)), strict=True))
        self.save()

    def up(self) -> None:
        self.prepare()
        t0 = time.monotonic()
        for step in (
            self.up_postgres,
            self._up_seaweed,
            self._write_app_env,
            self._init_genpon,
            self._up_apps,
            self._up_haproxy,
        ):
            t = time.monotonic()
            step()
            print(f"  {step.__name__.strip('_')}: {time.monotonic() - t:.1f} s", file=sys.stderr)
        print(f"cluster up in {time.monotonic() - t0:.1f} s: {self.front_url}", file=sys.stderr)

    def _pg(self, *argv: str, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
        r = subprocess.run(
            list(argv),
            input=stdin,
            cwd="/",
            user="postgres",
            group="postgres",
            extra_groups=[],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", **(env or {})},
            check=False,
        )
        if r.returncode:
            raise ClusterError(f"{argv[0]} failed: {r.stderr[-2000:]}")
        return r.stdout

    def psql(self, sql: str, db: str = "postgres", server: str = "pg-primary") -> str:
        """Run SQL as the superuser over the unix socket (trust there: the directory is 0700)."""
        return self._pg(
            str(pg_bin() / "psql"),
            *("-h", str(self.base / "pg"), "-p", str(self.ports[server])),
            *("-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-Atq", "-f", "-"),
            stdin=sql,
        )

    def up_postgres(self) -> None:
        pgdir = self.base / "pg"
        pgdir.mkdir(mode=0o700)
        shutil.chown(pgdir, "postgres", "postgres")
        b = pg_bin()
        primary, replica = pgdir / "primary", pgdir / "replica"
        self._pg(
            str(b / "initdb"),
            *("-D", str(primary), "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8"),
            *("--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"),
        )
        with open(primary / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# scripts/cluster\nwal_level = replica\nmax_wal_senders = 10\n"
                "wal_keep_size = 256MB\nhot_standby = on\nmax_connections = 300\n"
                "logging_collector = off\n"
                # search indexing (docs/cluster.md, PostgreSQL settings): each indexed
                # document writes 0.2 to 10 MB of RUM WAL; the index is GBs per 100,000
                "shared_buffers = 512MB\nmax_wal_size = 8GB\ncheckpoint_timeout = 15min\n"
                "max_slot_wal_keep_size = 16GB\n"
            )

        def server(name: str, data: Path) -> Component:
            return Component(
                name=name,
                argv=[
                    str(b / "postgres"),
                    *("-D", str(data), "-p", str(self.ports[name]), "-k", str(pgdir)),
                    *("-c", f"listen_addresses={HOST}"),
                ],
                port=self.ports[name],
                check="pg",
                stop_signal=signal.SIGINT,  # fast shutdown
                as_postgres=True,
            )

        self.components["pg-primary"] = server("pg-primary", primary)
        self.start("pg-primary")
        repl_pw, app_pw = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self.write_secret("pg-replicator", repl_pw)
        self.write_secret("pg-genpon", app_pw)
        # (SQL goes to psql on stdin: the passwords are in no argv and no log)
        self.psql(f"CREATE ROLE replicator REPLICATION LOGIN PASSWORD '{repl_pw}'")
        self.psql(f"CREATE ROLE genpon LOGIN PASSWORD '{app_pw}'")
        self.psql("CREATE DATABASE genpon OWNER genpon")
        avail = self.psql("SELECT 1 FROM pg_available_extensions WHERE name = 'rum'", "genpon")
        if avail.strip():
            self.psql("CREATE EXTENSION IF NOT EXISTS rum", "genpon")
        self._pg(
            str(b / "pg_basebackup"),
            *("-h", HOST, "-p", str(self.ports["pg-primary"]), "-U", "replicator"),
            *("-D", str(replica), "-R", "-X", "stream", "-c", "fast"),
            # a slot: the primary keeps the WAL the replica has not received (up to
            # max_slot_wal_keep_size), where wal_keep_size alone is seconds of indexing
            *("-C", "-S", "genpon_replica"),
            env={"PGPASSWORD": repl_pw},
        )
        self.components["pg-replica"] = server("pg-replica", replica)
        self.start("pg-replica")

    def pg_url(self, name: str = "pg-primary") -> str:
        pw = self.secret("pg-genpon")
        return f"postgresql+psycopg://genpon:{pw}@{HOST}:{self.ports[name]}/genpon"

    def _up_seaweed(self) -> None:
        weed = str(VENV_BIN / "weed")
        wd = self.base / "weed"
        for d in ("master", "filer", *VOLUMES):
            (wd / d).mkdir(parents=True)
        ak, sk = "genpon-cluster", secrets.token_urlsafe(32)
        self.write_secret("s3-access-key", ak)
        self.write_secret("s3-secret-key", sk)
        s3conf = self.secrets / "s3.json"
        self.write_secret(
            "s3.json",
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "genpon",
                            "credentials": [{"accessKey": ak, "secretKey": sk}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            ),
        )
        mp = self.ports["weed-master"]
        master = f"{HOST}:{mp}"

        def comp(name: str, argv: list[str], check: str = "tcp") -> Component:
            return Component(name=name, argv=[weed, *argv], port=self.ports[name], check=check)

        self.components["weed-master"] = comp(
            "weed-master",
            [
                "master",
                f"-ip={HOST}",
                f"-ip.bind={HOST}",
                f"-port={mp}",
                f"-mdir={wd / 'master'}",
                "-peers=none",
                "-defaultReplication=001",
                "-volumeSizeLimitMB=64",
                "-telemetry=false",
            ],
            "http:/cluster/status",
        )
        self.start("weed-master")
        for name in VOLUMES:
            self.components[name] = comp(
                name,
                [
                    "volume",
                    f"-ip={HOST}",
                    f"-ip.bind={HOST}",
                    f"-port={self.ports[name]}",
                    f"-dir={wd / name}",
                    "-max=30",
                    "-volume.allowUntrustedRemoteEndpoints",
                    f"-master={master}",
                    "-dataCenter=dc1",
                    "-rack=rack1",
                    "-preStopSeconds=1",
                ],
                "http:/status",
            )
            self.start(name, wait=False)
        for name in VOLUMES:
            self.wait_answers(name)
        fp = self.ports["weed-filer"]
        self.components["weed-filer"] = comp(
            "weed-filer",
            [
                "filer",
                f"-ip={HOST}",
                f"-ip.bind={HOST}",
                f"-port={fp}",
                f"-master={master}",
                f"-defaultStoreDir={wd / 'filer'}",
                "-defaultReplicaPlacement=001",
            ],
        )
        self.start("weed-filer")
        self.components["weed-s3"] = comp(
            "weed-s3",
            [
                "s3",
                f"-ip.bind={HOST}",
                f"-port={self.ports['weed-s3']}",
                f"-filer={HOST}:{fp}",
                f"-config={s3conf}",
                "-port.iceberg=0",
                "-port.lance=0",
            ],
            "http:/",
        )
        self.start("weed-s3")

    def _write_app_env(self) -> None:
        env = {
            "GENPON_ENVIRONMENT": "production",
            "GENPON_SECRET_KEY": secrets.token_urlsafe(32),
            "GENPON_DATABASE_URL": self.pg_url("pg-primary"),
            "GENPON_DATABASE_READ_URL": self.pg_url("pg-replica"),
            "GENPON_SEARCH_BACKEND": "postgres",
            "GENPON_STORAGE_BACKEND": "s3",
            "GENPON_S3_ENDPOINT_URL": f"http://{HOST}:{self.ports['weed-s3']}",
            "GENPON_S3_BUCKET": S3_BUCKET,
            "GENPON_S3_ACCESS_KEY": self.secret("s3-access-key"),
            "GENPON_S3_SECRET_KEY": self.secret("s3-secret-key"),
            "GENPON_HOST": HOST,
        }
        keys = self.base / "shared-keys"  # the one signing key of the deployment
        keys.mkdir(mode=0o700)
        if _settings_has("signing_key_file"):
            # one PEM file every node reads (on real machines: provisioned like a TLS key)
            env["GENPON_SIGNING_KEY_FILE"] = str(keys / "signing-key.pem")
        for passed in ("GENPON_CHECKPOINT_EVERY", "GENPON_READ_WAIT_MS"):
            if passed in os.environ:  # tuning a caller may pass through (the tests do)
                env[passed] = os.environ[passed]
        self.write_secret("genpon.env", "".join(f"{k}={v}\n" for k, v in env.items()))
        for name in (*APPS, *WORKERS, "admin"):
            node = self.base / "nodes" / name
            node.mkdir(parents=True, mode=0o700)
            if "GENPON_SIGNING_KEY_FILE" not in env:  # older genpon: the key dir is shared
                (node / "keys").symlink_to(keys)
            (self.secrets / f"{name}.env").write_text(f"GENPON_DATA_DIR={node}\n")

    def genpon(self, *args: str, node: str = "admin", timeout: float = 300) -> str:
        """Run a ``genpon`` command with the cluster's environment; returns stdout."""
        env = {"PATH": f"{VENV_BIN}:/usr/bin:/bin", "LC_ALL": "C.UTF-8", **self.app_env()}
        env["GENPON_DATA_DIR"] = str(self.base / "nodes" / node)
        env["GENPON_INDEX_AUTOSTART"] = "false"
        env.setdefault("GENPON_CLI_USER", "admin")  # the operator acts as the demo admin
        r = subprocess.run(
            [str(VENV_BIN / "genpon"), *args],
            cwd=self.base,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if r.returncode:
            raise ClusterError(f"genpon {args[0]} failed ({r.returncode}): {r.stderr[-3000:]}")
        return r.stdout

    def _init_genpon(self) -> None:
        out = self.genpon("init", "--demo", "--no-history")  # exact counts: no past cases
        self.write_secret("init.out", out)
        help_ = subprocess.run(
            [str(VENV_BIN / "genpon"), "worker", "--help"], capture_output=True, check=False
        )
        self.worker_mode = "worker" if help_.returncode == 0 else "autostart"
        init_help = subprocess.run(
            [str(VENV_BIN / "genpon"), "init", "--help"], capture_output=True, text=True
        )
        if "--join" in init_help.stdout:
            # every other node joins: same database, same key, no second key created
            nodes = [*APPS, *(WORKERS if self.worker_mode == "worker" else ())]
            with ThreadPoolExecutor(2) as pool:
                list(pool.map(lambda n: self.genpon("init", "--join", node=n), nodes))

    def _up_apps(self) -> None:
        genpon = str(VENV_BIN / "genpon")
        for i, name in enumerate(APPS):
            autostart = self.worker_mode == "autostart" and i == 0
            (self.secrets / f"{name}.env").write_text(
                f"GENPON_DATA_DIR={self.base / 'nodes' / name}\n"
                f"GENPON_INDEX_AUTOSTART={'true' if autostart else 'false'}\n"
                + ("GENPON_WORKER_IN_SERVER=true\n" if autostart else "")
            )
            self.components[name] = Component(
                name=name,
                argv=[genpon, "serve", "--host", HOST, "--port", str(self.ports[name])],
                port=self.ports[name],
                check="http:/healthz",
                env_file=f"{name}.env",
            )
            self.start(name, wait=False)
        if self.worker_mode == "worker":
            for name in WORKERS:
                (self.secrets / f"{name}.env").write_text(
                    f"GENPON_DATA_DIR={self.base / 'nodes' / name}\nGENPON_INDEX_AUTOSTART=false\n"
                )
                self.components[name] = Component(
                    name=name,
                    argv=[genpon, "worker"],
                    port=0,
                    check="alive",
                    env_file=f"{name}.env",
                )
                self._spawn(self.components[name])
        for name in APPS:
            self.wait_answers(name, timeout=120)
        self.save()

    def _up_haproxy(self) -> None:
        hp = self.base / "haproxy"
        hp.mkdir()
        servers = "\n".join(f"    server {n} {HOST}:{self.ports[n]}" for n in APPS)
        cfg = hp / "haproxy.cfg"
        cfg.write_text(HAPROXY_CFG.format(front=self.ports["haproxy"], servers=servers))
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        check = subprocess.run(
            [haproxy, "-c", "-q", "-f", str(cfg)], capture_output=True, text=True
        )
        if check.returncode:
            raise ClusterError(f"haproxy config: {check.stderr}")
        self.components["haproxy"] = Component(
            name="haproxy",
            argv=[haproxy, "-db", "-f", str(cfg)],
            port=self.ports["haproxy"],
            check="http:/healthz",
            stop_signal=signal.SIGUSR1,  # soft stop: finish the requests in flight
        )
        self.start("haproxy")

    # -- tear down ---------------------------------------------------------------------------

    def down(self) -> None:
        for name in STOP_ORDER:
            self.stop(name, timeout=5.0 if not name.startswith("pg-") else 30.0)
        for name in ("weed-s3", "weed-filer"):
            # weed leaves its unix sockets in the temp directory, named after the port
            kind = name.split("-")[1]
            port = self.ports.get(name)
            for pattern in (f"seaweedfs-{kind}-{port}.sock", f"seaweedfs-{kind}-grpc-*.sock"):
                for sock in Path(os.environ.get("TMPDIR", "/tmp")).glob(pattern):
                    if pattern.endswith(f"{port}.sock") or self._our_grpc_sock(sock):
                        with contextlib.suppress(OSError):
                            sock.unlink()

    def _our_grpc_sock(self, sock: Path) -> bool:
        stem = sock.name.rsplit("-", 1)[-1].removesuffix(".sock")
        return stem.isdigit() and int(stem) - 10000 in self.ports.values()


# Why each line: docs/cluster.md ("HAProxy").
HAPROXY_CFG = """\
global
    maxconn 2000
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout 502 503 504
frontend fe
    bind 127.0.0.1:{front}
    default_backend genpon
backend genpon
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    default-server check inter 500 fall 2 rise 2
{servers}
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/cluster", description=__doc__.split("\n")[0])
    p.add_argument("command", choices=["up", "down", "status", "kill", "start", "env"])
    p.add_argument("name", nargs="?")
    p.add_argument(
        "--base",
        type=Path,
        default=Path(os.environ.get("GENPON_CLUSTER_DIR", REPO / "var" / "cluster")),
    )
    a = p.parse_args(argv)
    base = a.base.resolve()
    if a.command == "up":
        c = Cluster(base=base)
        try:
            c.up()
        except BaseException:
            c.down()
            raise
        for name, port, state in c.status():
            print(f"{name:12s} {port:6d}  {state}")
        print(f"front: {c.front_url}  (worker mode: {c.worker_mode})")
        return 0
    if not (base / "state.json").exists():
        print(f"no cluster in {base}", file=sys.stderr)
        return 0 if a.command == "down" else 1
    c = Cluster.load(base)
    if a.command == "down":
        c.down()
        print("cluster down", file=sys.stderr)
        return 0
    if a.command == "status":
        rows = c.status()
        for name, port, state in rows:
            print(f"{name:12s} {port:6d}  {state}")
        return 0 if all(s == "answers" for _, _, s in rows) else 3
    if a.command == "env":  # non-secret facts for scripts: front URL, ports
        print(json.dumps({"front": c.front_url, "ports": c.ports, "worker_mode": c.worker_mode}))
        return 0
    if not a.name or a.name not in c.components:
        p.error(f"name one of: {', '.join(c.components)}")
    if a.command == "kill":
        c.kill(a.name)
    else:
        c.start(a.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
