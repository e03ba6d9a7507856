"""Deposit benchmark (預け入れ性能): prints its figures; not a test.

Runs a real server (``genpon serve`` in a subprocess, SQLite + local store, indexer off so only
the deposit path is measured) in a throwaway data directory and measures, in one run:

1. peak RSS growth of the server while one large file (default 2 GB) is deposited over HTTP
   (``/proc/PID/clear_refs`` resets the high-water mark just before the upload);
2. large files (default 8 × 256 MB) through the HTTP API versus the raw rate of
   ``hashlib.sha256`` + write + fsync over the same bytes — the floor any durable store pays;
3. small files (default 5,000 × 20 KB): documents/s through the HTTP API and through a direct
   service call (``records.documents.deposit``), and their ratio; the two alternate in
   ``--rounds`` blocks so that changes in the machine's load hit both. The HTTP client is
   httpx (~1.2 ms of client CPU a request, which a sequential caller waits for);
   ``--lean-too`` also times a client that costs next to nothing (``http.client``, the form
   in one buffer, as curl sends it), so the server's own HTTP cost can be told from httpx's.

Usage: ``.venv/bin/python bench/deposit.py [--big-mb 2048] [--large-count 8] [--large-mb 256]
[--small-count 5000] [--small-kb 20] [--rounds 10] [--workdir DIR] [--streamed-too] [--lean-too]
[--profile OUT]``.
``--big-mb 0`` and ``--large-count 0`` skip parts 1 and 2; ``--profile`` needs ``py-spy``.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import magic
from sqlmodel import select

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from genpon.core.db import make_engine, session_scope  # noqa: E402
from genpon.core.settings import Settings  # noqa: E402
from genpon.records import documents  # noqa: E402
from genpon.records.access import actor_for_user  # noqa: E402
from genpon.records.bootstrap import initialize  # noqa: E402
from genpon.records.models import Folder, User  # noqa: E402
from genpon.storage.base import HEAD_SIZE  # noqa: E402
from genpon.storage.registry import make_store  # noqa: E402

MB = 1024 * 1024
#: fixed leading bytes, so libmagic never mistakes random content for an executable
HEADER = b"\x00GENPON-BENCH\x00" * 4


def rand(n: int) -> bytes:
    """Random bytes that libmagic calls plain data: now and then random bytes match one of its
    rules (a DOS program, say) and the deposit is refused with 415."""
    while True:
        data = HEADER + os.urandom(n - len(HEADER))
        if magic.from_buffer(data[:HEAD_SIZE], mime=True) == "application/octet-stream":
            return data


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_cpu(pid: int, tid: int | None = None) -> float:
    """CPU seconds (user + system) a process (or one of its threads) has used so far."""
    path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_random(path: Path, size: int) -> None:
    with path.open("wb") as fh:
        fh.write(HEADER)
        left = size - len(HEADER)
        while left:
            n = min(left, 16 * MB)
            fh.write(os.urandom(n))
            left -= n


def proc_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def raw_rate(files: list[Path], out_dir: Path) -> float:
    """MB/s of sha256 + write + fsync + rename over ``files`` (the durable-store floor)."""
    total = 0
    t0 = time.perf_counter()
    for i, src in enumerate(files):
        h = hashlib.sha256()
        tmp = out_dir / f"raw-{i}.part"
        with src.open("rb") as fin, tmp.open("wb") as fout:
            while chunk := fin.read(MB):
                h.update(chunk)
                fout.write(chunk)
                total += len(chunk)
            fout.flush()
            os.fsync(fout.fileno())
        os.replace(tmp, out_dir / h.hexdigest())
        dfd = os.open(out_dir, os.O_RDONLY)
        os.fsync(dfd)
        os.close(dfd)
    return total / MB / (time.perf_counter() - t0)


def upload(
    client: httpx.Client, key: str, folder_id: int, path: Path, *, streamed: bool = False
) -> None:
    """One deposit. The multipart body is encoded into one buffer first, as curl or a browser
    sends it; ``streamed`` leaves it to httpx, which writes each piece of the form (boundary,
    part headers, value, CRLF...) with a send() of its own, about ten small TCP segments per
    request, each waking the server's event loop."""
    with path.open("rb") as fh:
        request = client.build_request(
            "POST",
            "/api/v1/documents",
            files={"file": (path.name, fh, "application/octet-stream")},
            data={"folder_id": str(folder_id)},
            headers={"Authorization": f"Bearer {key}"},
        )
        if not streamed and path.stat().st_size <= 1 << 20:
            request.read()
        r = client.send(request)
    if r.status_code != 201:
        raise SystemExit(f"deposit failed: {r.status_code} {r.text[:200]}")


def lean_upload(conn: http.client.HTTPConnection, key: str, folder_id: int, path: Path) -> None:
    """One deposit as curl sends it, from a client that costs next to nothing: the form
    encoded into one buffer, one kept-alive connection (``http.client``). httpx spends
    ~1.2 ms of CPU on each request (building the request and the multipart encoder), which the
    caller of a sequential benchmark waits for; this measures the server."""
    boundary = "genpon-" + os.urandom(12).hex()
    body = b"".join(
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="folder_id"\r\n\r\n'
            f"{folder_id}\r\n--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode(),
            path.read_bytes(),
            f"\r\n--{boundary}--\r\n".encode(),
        )
    )
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
    }
    conn.request("POST", "/api/v1/documents", body=body, headers=headers)
    r = conn.getresponse()
    answer = r.read()
    if r.status != 201:
        raise SystemExit(f"deposit failed: {r.status} {answer[:200]!r}")


def big_file(
    client: httpx.Client, key: str, folder_id: int, pid: int, big: Path, big_mb: int
) -> None:
    """Peak RSS growth of the server while one big file is deposited."""
    write_random(big, big_mb * MB)
    rss_before = proc_kb(pid, "VmRSS")
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset VmHWM
    t0 = time.perf_counter()
    upload(client, key, folder_id, big)
    dt = time.perf_counter() - t0
    peak = proc_kb(pid, "VmHWM")
    print(
        f"big file      {big_mb} MB in {dt:.1f} s ({big_mb / dt:.0f} MB/s); "
        f"server RSS before {rss_before / 1024:.1f} MB, peak {peak / 1024:.1f} MB, "
        f"growth {(peak - rss_before) / 1024:.1f} MB (target <= 64)"
    )
    big.unlink()


def large_files(
    client: httpx.Client, key: str, folder_id: int, src: Path, work: Path, count: int, mb: int
) -> None:
    """Large files over HTTP versus sha256 + write + fsync of the same bytes."""
    large = []
    for i in range(count):
        p = src / f"large-{i}.bin"
        write_random(p, mb * MB)
        large.append(p)
    raw_dir = work / "raw"
    raw_dir.mkdir()
    raw = raw_rate(large, raw_dir)
    shutil.rmtree(raw_dir)
    t0 = time.perf_counter()
    for p in large:
        upload(client, key, folder_id, p)
    http = count * mb / (time.perf_counter() - t0)
    print(
        f"large files   {count} x {mb} MB: HTTP {http:.0f} MB/s, "
        f"sha256+write+fsync {raw:.0f} MB/s, ratio {http / raw:.2f} (target >= 0.7)"
    )
    for p in large:
        p.unlink()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--big-mb", type=int, default=2048)
    ap.add_argument("--large-count", type=int, default=8)
    ap.add_argument("--large-mb", type=int, default=256)
    ap.add_argument("--small-count", type=int, default=5000)
    ap.add_argument("--small-kb", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=10, help="HTTP/service alternations")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument(
        "--streamed-too",
        action="store_true",
        help="also time small files with httpx streaming the form, as before",
    )
    ap.add_argument(
        "--lean-too",
        action="store_true",
        help="also time small files with a lean client (http.client, the form in one buffer)",
    )
    ap.add_argument(
        "--profile", type=Path, default=None, help="py-spy the server (collapsed stacks here)"
    )
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="genpon-bench-", dir=args.workdir))
    data_dir = work / "data"
    src = work / "src"
    src.mkdir()
    settings = Settings(data_dir=data_dir, index_autostart=False)
    engine = make_engine(settings.db_url)
    init = initialize(settings, engine, demo=True)
    key = init.demo_keys["tanaka"]
    with session_scope(engine) as s:
        team = s.exec(select(Folder).where(Folder.name == "財政課チーム")).one()
        folder_id = int(team.id or 0)

    port = free_port()
    env = {**os.environ, "GENPON_DATA_DIR": str(data_dir), "GENPON_INDEX_AUTOSTART": "false"}
    server = subprocess.Popen(
        [str(REPO / ".venv/bin/genpon"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(work / "server.log").open("wb"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(1200):
            if server.poll() is not None:
                raise SystemExit(f"server exited with {server.returncode}")
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise SystemExit("server did not start")
        client = httpx.Client(base_url=base, timeout=600)
        warm = src / "warm.bin"
        warm.write_bytes(rand(64 * 1024))
        upload(client, key, folder_id, warm)
        print(
            f"# Genpon deposit benchmark  (python {sys.version.split()[0]}, {os.cpu_count()} cpus)"
        )

        # 1. peak RSS while depositing one big file (--big-mb 0 skips it)
        if args.big_mb:
            big_file(client, key, folder_id, server.pid, src / "big.bin", args.big_mb)
        # 2. large files: HTTP vs hash+write+fsync (--large-count 0 skips them)
        if args.large_count:
            large_files(client, key, folder_id, src, work, args.large_count, args.large_mb)
        # 3. small files: HTTP vs direct service call
        n, size = args.small_count, args.small_kb * 1024
        small_dir = src / "small"
        small_dir.mkdir()
        paths: list[Path] = []
        streamed_paths: list[Path] = []
        lean_paths: list[Path] = []
        for i in range(n):
            for prefix, wanted, into in (
                ("s", True, paths),
                ("t", args.streamed_too, streamed_paths),
                ("l", args.lean_too, lean_paths),
            ):
                if wanted:
                    p = small_dir / f"{prefix}{i:05d}.bin"
                    p.write_bytes(rand(size))
                    into.append(p)
        lean = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        store = make_store(settings)
        with session_scope(engine) as s:
            user = s.exec(select(User).where(User.login == "tanaka")).one()
            actor = actor_for_user(s, user)
        # HTTP and service alternate in --rounds blocks, so drift in the machine's load (it
        # is shared) hits both alike
        profiler = None
        if args.profile:  # py-spy on the server (idle during service blocks)
            profiler = subprocess.Popen(
                [
                    "py-spy",
                    "record",
                    "--gil",  # only the thread holding the GIL: Python CPU, not waits
                    "--pid",
                    str(server.pid),
                    "--format",
                    "raw",
                    "--rate",
                    "250",
                    "-o",
                    str(args.profile),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1)
        http_s = direct_s = streamed_s = client_cpu = server_cpu = loop_cpu = direct_cpu = 0.0
        lean_s = lean_cpu = lean_server_cpu = 0.0
        block = -(-n // args.rounds)
        for start in range(0, n, block):
            t0, c0, s0 = time.perf_counter(), time.process_time(), proc_cpu(server.pid)
            l0 = proc_cpu(server.pid, server.pid)
            for p in paths[start : start + block]:
                upload(client, key, folder_id, p)
            http_s += time.perf_counter() - t0
            client_cpu += time.process_time() - c0
            server_cpu += proc_cpu(server.pid) - s0
            loop_cpu += proc_cpu(server.pid, server.pid) - l0
            contents = [rand(size) for _ in range(start, min(n, start + block))]
            t0, c0 = time.perf_counter(), time.process_time()
            for i, content in enumerate(contents, start):
                staged = store.stage([content])
                with session_scope(engine) as s:
                    documents.deposit(
                        s,
                        store,
                        actor,
                        staged,
                        documents.DepositIn(filename=f"direct-{i}.bin", folder_id=folder_id),
                        allowed_types=settings.allowed_types,
                        timezone=settings.timezone,
                    )
            direct_s += time.perf_counter() - t0
            direct_cpu += time.process_time() - c0
            t0 = time.perf_counter()
            for p in streamed_paths[start : start + block]:
                upload(client, key, folder_id, p, streamed=True)
            streamed_s += time.perf_counter() - t0
            lean.close()  # (uvicorn closes a connection idle for 5 s: a new one per block)
            t0, c0, s0 = time.perf_counter(), time.process_time(), proc_cpu(server.pid)
            for p in lean_paths[start : start + block]:
                lean_upload(lean, key, folder_id, p)
            lean_s += time.perf_counter() - t0
            lean_cpu += time.process_time() - c0
            lean_server_cpu += proc_cpu(server.pid) - s0
        http_rate, direct_rate = n / http_s, n / direct_s
        print(
            f"small files   {n} x {args.small_kb} KB: HTTP {http_rate:.0f} docs/s, "
            f"service {direct_rate:.0f} docs/s, ratio {http_rate / direct_rate:.2f}"
        )
        print(
            f"  per doc: HTTP {1000 * http_s / n:.1f} ms (server CPU {1000 * server_cpu / n:.1f}"
            f" of which event loop {1000 * loop_cpu / n:.1f}, "
            f"client CPU {1000 * client_cpu / n:.1f}), service {1000 * direct_s / n:.1f} ms "
            f"(CPU {1000 * direct_cpu / n:.1f}); "
            f"load average {os.getloadavg()[0]:.2f}"
        )
        if streamed_paths:
            print(
                f"  httpx streaming the form (a send() per piece): HTTP {n / streamed_s:.0f} "
                f"docs/s, ratio {direct_s / streamed_s:.2f}"
            )
        if lean_paths:
            print(
                f"  lean client (http.client, as curl): HTTP {n / lean_s:.0f} docs/s, ratio "
                f"{direct_s / lean_s:.2f}; per doc {1000 * lean_s / n:.1f} ms (server CPU "
                f"{1000 * lean_server_cpu / n:.1f}, client CPU {1000 * lean_cpu / n:.1f})"
            )
        lean.close()
        client.close()
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(60)
    finally:
        server.terminate()
        server.wait(10)
        engine.dispose()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
