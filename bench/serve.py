"""The default hourly poll through the worker vs the same bytes from nginx, in one run.

    python bench/serve.py [--seconds 10] [--rounds 3] [--iocs 150000]
    python bench/serve.py --trivial   # the servers' own floor: apps that only return the bytes
    python bench/serve.py --in-process 20000   # the worker's own work per request, by part
    python bench/serve.py --device-lines 100000   # also the device-file row (the default)
    python bench/serve.py --device-only           # only the device-file row
    python bench/serve.py --edge-rows   # only the default poll with nginx in front, and nginx

Builds and publishes a synthetic store with the real CLI, creates an enterprise key, then runs
wrk (``-t2 -c32 --latency``) against ``GET /api/v1/iocs`` with ``Authorization: Bearer`` on:
the worker (granian, RSGI: what ``socdef serve`` runs) with the SQLite limiter and with the
Redis limiter (a ``redis-server`` the bench starts on 127.0.0.1; 1 and 2 processes each), the
worker with the in-memory limiter, the worker over granian's ASGI interface
(``--interface asgi``) and under ``--server uvicorn`` (SQLite limiter both), and nginx
(2 workers) serving the identical body as a static file; and nginx in front of the worker
(``socdef serve --edge nginx``, nginx from ``deploy/nginx/socdef-edge.conf.j2`` with 2 workers),
reaching the worker over TCP and over its Unix socket (``--uds``, the default on one host):
the worker decides and answers with ``X-Accel-Redirect``, nginx sends the bytes. A second table
does the same for a download (the MISP feed's ``hashes.csv``, ~10 MB at the default 150,000
indicators): the worker alone, nginx in front of it, and nginx serving the same file. Rounds are
interleaved and
medians reported, with each figure's ratio to nginx from the same run. Limits are scaled up
(``--limit-scale``) so the limiter does its full work on every request but never refuses.
The last column is the CPU time the server (all its processes, plus redis-server for the Redis
rows) spent per request during the measured run: unlike req/s, it barely moves when other jobs
load the machine.
Needs ``wrk``, ``nginx`` and ``redis-server`` (Debian packages): it stops with an error naming
the missing one (the nginx rows are the baseline, so nothing stands in for nginx). Each Redis
row checks that Redis's day counter grew by at least the requests wrk counted in the measured
run (read after wrk's warm-up, so warm-up requests cannot make up for fail-open decisions).

A last row serves a device file of ``--device-lines`` lines (100,000 by default: an enterprise
key's ``ipv4.txt`` over a store of only IPv4 indicators) through the worker and from nginx,
in bytes/s (``device_file``).

``--trivial`` measures what the server interfaces themselves cost: granian running an ASGI app
and an RSGI app that do nothing but return the same body with the same headers (and an RSGI
app that also waits once per request on a batched future, as the limiter's decisions do, one
that sends the worker's 12 headers, and one that answers with ``response_file``), and nginx, in the same interleaved rounds (no build, key or limiter); ``--granian-options`` adds
RSGI rows with other granian settings.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import LISTENING, announced, free_port, reserved_port  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402
from worker.access.keys import account_limit_id  # noqa: E402
from worker.http import PRIVATE  # noqa: E402  (the checkout's own worker)

NGINX_CONF = """
worker_processes 2;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path {dir}/tmp; proxy_temp_path {dir}/tmp; fastcgi_temp_path {dir}/tmp;
  uwsgi_temp_path {dir}/tmp; scgi_temp_path {dir}/tmp;
  server {{
    listen 127.0.0.1:{port};
    location / {{ root {dir}/www; default_type application/json; }}
  }}
}}
"""


def socdef(data: Path, *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "generator", *args, "--data-dir", str(data)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def require(*tools: str) -> None:
    """Stop with a clear message when a Debian tool the benchmark measures against is missing."""
    missing = [tool for tool in tools if not shutil.which(tool)]
    if missing:
        packages = {"nginx": "nginx-light"}
        raise SystemExit(
            f"{', '.join(missing)} required: apt-get install "
            + " ".join(packages.get(tool, tool) for tool in missing)
        )


def wait(
    url: str,
    proc: subprocess.Popen | None = None,
    timeout: float = 30,
    client: httpx.Client | None = None,
) -> bool:
    """Poll ``url`` until it answers (True); False as soon as ``proc`` has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            (client or httpx).get(url, timeout=1)
            return True
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"no answer from {url}")


def cpu_seconds(*roots: int) -> float:
    """User + system CPU so far of these processes and their descendants (Linux /proc; else 0)."""
    ticks, todo = 0, list(roots)
    while todo:
        pid = todo.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except (OSError, IndexError):
            continue
        ticks += int(fields[11]) + int(fields[12])
        todo += [int(child) for child in children]
    return ticks / os.sysconf("SC_CLK_TCK")


def wrk(
    url: str,
    key: str,
    seconds: int,
    pids: tuple[int, ...] = (),
    after_warmup: Callable[[], None] | None = None,
) -> dict[str, float]:
    """wrk after a 1 s warm-up; ``after_warmup`` runs between the two (to read counters)."""
    base = ["wrk", "-t2", "-c32", "--timeout", "10s", "-H", f"Authorization: Bearer {key}"]
    cmd = [*base, f"-d{seconds}s", "--latency", url]
    subprocess.run([*base, "-d1s", url], capture_output=True, check=True)  # warm-up
    if after_warmup is not None:
        after_warmup()
    cpu = cpu_seconds(*pids)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(*pids) - cpu
    if "Non-2xx" in out:
        raise SystemExit(f"non-2xx answers during the run:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    done = int(re.search(r"(\d+) requests in", out).group(1))
    return {
        "rps": rps,
        "p50": _latency(out, "50%"),
        "p99": _latency(out, "99%"),
        "n": done,
        "cpu_us": cpu / done * 1e6,
    }


def _latency(out: str, pct: str) -> float:
    value, unit = re.search(rf"{pct}\s+([\d.]+)(us|ms|s)", out).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def start_redis(tmp: Path) -> RedisServer:
    """A ``redis-server`` on 127.0.0.1 (``tests.redis_server``: it cannot bind port 0 and name
    it, so the port is picked, and the server answering there is checked to be this one)."""
    return RedisServer(tmp).start()


def redis_decided(redis: RedisServer, limit_id: str) -> int:
    """The account's day counter in Redis: proves the limiter decided every request in Redis,
    not in its fallback (decisions come in batches, so EVALSHA calls are fewer)."""
    from worker.limits.redis_store import DEFAULT_PREFIX

    count = redis.client().hget(f"{DEFAULT_PREFIX}{{{limit_id}}}:d", "n")
    return int(count or 0)


class Worker:
    def __init__(
        self,
        data: Path,
        limiter: str,
        workers: int,
        redis_url: str = "",
        server: str = "granian",
        interface: str = "rsgi",
        path: str = "/api/v1/iocs",
        edge: Path | None = None,
        uds: Path | None = None,
    ) -> None:
        extra = ["--redis-url", redis_url] if redis_url else []
        extra += ["--server", server, "--interface", interface]
        if edge is not None:  # behind nginx: answers with X-Accel-Redirect
            extra += ["--edge", "nginx", "--answers-dir", str(edge)]
        # a Unix socket, or a free port the server binds and names
        extra += ["--uds", str(uds)] if uds is not None else ["--port", "0"]
        self.uds = uds
        log, name = tempfile.mkstemp(prefix="serve-", suffix=".log", dir=data)
        with os.fdopen(log, "w") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "generator",
                    "serve",
                    "--data-dir",
                    str(data),
                    "--limiter",
                    limiter,
                    "--workers",
                    str(workers),
                    "--limit-scale",
                    "1000000",
                    *extra,
                ],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        pattern = f"listening on unix:{re.escape(str(uds))}\n" if uds is not None else LISTENING
        try:
            found = announced(Path(name), self.proc, pattern)
        except AssertionError as exc:
            raise SystemExit(f"socdef serve did not start: {exc}") from None
        if uds is not None:
            self.address = f"unix:{uds}"
            with httpx.Client(transport=httpx.HTTPTransport(uds=str(uds)), timeout=30) as client:
                wait("http://worker/healthz", self.proc, client=client)
            return
        base = found.group(1)
        self.port = int(base.rsplit(":", 1)[1])
        self.address = f"127.0.0.1:{self.port}"
        self.url = f"{base}{path}"
        wait(f"{base}/healthz", self.proc)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


BODY_ENV = "SOCDEF_BENCH_BODY"  # the file whose bytes the trivial apps answer with


def _trivial_body() -> bytes:
    return Path(os.environ[BODY_ENV]).read_bytes()


def trivial_asgi() -> object:
    """An ASGI app answering every request with the bench body (granian ``--factory``)."""
    body = _trivial_body()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    start = {"type": "http.response.start", "status": 200, "headers": headers}
    message = {"type": "http.response.body", "body": body}

    async def app(scope: dict, receive: object, send: object) -> None:
        if scope["type"] == "http":
            await send(start)  # type: ignore[operator]
            await send(message)  # type: ignore[operator]

    return app


def trivial_rsgi() -> object:
    """The same as :func:`trivial_asgi` over granian's RSGI interface."""
    body = _trivial_body()
    headers = [("content-type", "application/json"), ("content-length", str(len(body)))]

    class App:
        async def __rsgi__(self, scope: object, protocol: object) -> None:
            protocol.response_bytes(200, headers, body)  # type: ignore[attr-defined]

    return App()


WORKER_HEADERS = [  # the names and sizes of the worker's answer to the default poll
    ("etag", '"3eb80d1f4b1f779603dfae39"'),
    ("last-modified", "Sun, 29 Nov 2026 04:39:54 GMT"),
    ("cache-control", PRIVATE),
    ("vary", "Accept-Encoding"),
    ("x-ratelimit-limit", "1000000000"),
    ("x-ratelimit-remaining", "999999997"),
    ("x-ratelimit-reset", "1795927380"),
    ("ratelimit-policy", '"minute";q=1000000000;w=60, "day";q=1000000000000;w=86400'),
    ("ratelimit", '"minute";r=999999997;t=4'),
    ("x-request-id", "req_1fe67df547acb1fa"),
]


def trivial_rsgi_headers() -> object:
    """:func:`trivial_rsgi` with the worker's headers: what sending them costs the server."""
    body = _trivial_body()
    headers = [
        ("content-type", "application/json"),
        ("content-length", str(len(body))),
        *WORKER_HEADERS,
    ]

    class App:
        async def __rsgi__(self, scope: object, protocol: object) -> None:
            protocol.response_bytes(200, list(headers), body)  # type: ignore[attr-defined]

    return App()


def trivial_rsgi_file() -> object:
    """:func:`trivial_rsgi` answering with ``response_file`` (granian reads the file)."""
    path = os.environ[BODY_ENV]
    headers = [
        ("content-type", "application/json"),
        ("content-length", str(Path(path).stat().st_size)),
    ]

    class App:
        async def __rsgi__(self, scope: object, protocol: object) -> None:
            protocol.response_file(200, headers, path)  # type: ignore[attr-defined]

    return App()


def trivial_rsgi_wait() -> object:
    """:func:`trivial_rsgi`, but each request first waits on a future resolved with the others
    of its event-loop turn, as the worker's batched limiter decisions do: the cost of a request
    that suspends once."""
    import asyncio

    body = _trivial_body()
    headers = [("content-type", "application/json"), ("content-length", str(len(body)))]
    pending: list[asyncio.Future] = []

    def resolve() -> None:
        batch = pending[:]
        pending.clear()
        for future in batch:
            future.set_result(None)

    class App:
        async def __rsgi__(self, scope: object, protocol: object) -> None:
            loop = asyncio.get_running_loop()
            future = loop.create_future()
            if not pending:
                loop.call_soon(resolve)
            pending.append(future)
            await future
            protocol.response_bytes(200, headers, body)  # type: ignore[attr-defined]

    return App()


class Trivial:
    """granian (1 process, uvloop) running one of the trivial apps."""

    def __init__(self, body_file: Path, interface: str, options: tuple[str, ...] = ()) -> None:
        # granian cannot name a port 0 it bound: the port is held by a socket that never
        # listens (SO_REUSEPORT) and granian binds beside it (tests.conftest.reserved_port)
        self.reserved = reserved_port()
        self.port = self.reserved.getsockname()[1]
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "granian",
                "--interface",
                interface.split("_")[0],
                "--factory",
                "--port",
                str(self.port),
                "--workers",
                "1",
                "--no-ws",
                "--loop",
                "uvloop",
                "--log-level",
                "warning",
                *options,
                f"bench.serve:trivial_{interface}",
            ],
            cwd=ROOT,
            env={**os.environ, BODY_ENV: str(body_file)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}/api/v1/iocs"
        if not wait(self.url, self.proc):
            raise SystemExit(f"granian exited ({self.proc.returncode})")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self.reserved.close()


class Nginx:
    """nginx (2 workers) serving ``body`` as a static file. nginx cannot name a port 0 it
    bound, so the port is picked; when another program took it first nginx exits (its bind
    fails) and it starts again on another port, and the answer is checked to be ``body``."""

    def __init__(self, body: bytes, tmp: Path, path: str = "/api/v1/iocs") -> None:
        require("nginx")
        served = tmp / "www" / path.lstrip("/")
        served.parent.mkdir(parents=True)
        (tmp / "tmp").mkdir()
        served.write_bytes(body)
        self.name = "nginx (2 workers)"
        for _ in range(5):
            self.port = free_port()
            conf = tmp / "nginx.conf"
            conf.write_text(NGINX_CONF.format(dir=tmp, port=self.port))
            cmd = ["nginx", "-c", str(conf), "-p", str(tmp), "-g", "daemon off;"]
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.url = f"http://127.0.0.1:{self.port}{path}"
            if wait(self.url, self.proc):
                if httpx.get(self.url).content != body:
                    self.stop()
                    raise SystemExit(f"port {self.port} answers with another body than nginx's")
                return
        raise SystemExit(f"nginx did not start: {(tmp / 'nginx-error.log').read_text()[-500:]}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


EDGE_TEMPLATE = ROOT / "deploy" / "nginx" / "socdef-edge.conf.j2"


class Edge:
    """nginx (2 workers, the deploy template) in front of ``socdef serve --edge nginx``: the
    worker decides and answers with X-Accel-Redirect, nginx sends the file."""

    def __init__(
        self, data: Path, tmp: Path, workers: int, path: str, *, uds: bool = False
    ) -> None:
        import getpass

        import jinja2

        tmp.mkdir()
        answers = tmp / "answers"
        sock = tmp / "worker.sock" if uds else None
        self.worker = Worker(data, "sqlite", workers, path=path, edge=answers, uds=sock)
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (tmp / "tmp" / sub).mkdir(parents=True)
        shutil.copy(EDGE_TEMPLATE.with_name("socdef-headers.conf"), tmp)
        template = jinja2.Template(EDGE_TEMPLATE.read_text(), undefined=jinja2.StrictUndefined)
        conf = tmp / "nginx.conf"
        for _ in range(5):  # a port another program took first: nginx exits, try another
            self.port = free_port()
            conf.write_text(
                template.render(
                    prefix=tmp,
                    listen=f"127.0.0.1:{self.port}",
                    worker=self.worker.address,
                    bucket=data / "bucket",
                    answers=answers,
                    processes=2,
                    user=getpass.getuser() if os.geteuid() == 0 else "",
                )
            )
            cmd = ["nginx", "-c", str(conf), "-p", str(tmp), "-e", str(tmp / "error.log")]
            self.proc = subprocess.Popen(
                [*cmd, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            self.url = f"http://127.0.0.1:{self.port}{path}"
            if wait(self.url, self.proc):
                return
        self.worker.stop()
        raise SystemExit(f"nginx did not start: {(tmp / 'error.log').read_text()[-500:]}")

    @property
    def pids(self) -> tuple[int, ...]:
        return (self.proc.pid, self.worker.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self.worker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--iocs",
        type=int,
        default=None,
        help="indicators in the synthetic store [default: 150,000, which makes the download "
        "(the MISP feed's hashes.csv, 70 bytes per indicator) ~10 MB; 20,000 with --trivial and "
        "--in-process]; the default poll's size does not depend on it",
    )
    parser.add_argument(
        "--device-lines",
        type=int,
        default=100_000,
        help="the device-file row: a store of this many IPv4 indicators, its ipv4.txt "
        "through the worker vs the same bytes from nginx (0: no such row)",
    )
    parser.add_argument(
        "--device-only",
        action="store_true",
        help="only the device-file row (worker 1 and 2 processes vs nginx on --device-lines)",
    )
    parser.add_argument(
        "--trivial",
        action="store_true",
        help="only the servers' floor: trivial ASGI and RSGI apps vs nginx",
    )
    parser.add_argument(
        "--in-process",
        type=int,
        default=0,
        metavar="REQUESTS",
        help="only the worker's own work per hot-path request, in process, "
        "and its parts (no server, no wrk)",
    )
    parser.add_argument(
        "--limiter",
        default="sqlite",
        choices=["sqlite", "memory"],
        help="the limiter of --in-process",
    )
    parser.add_argument(
        "--edge-rows",
        action="store_true",
        help="only the default poll through nginx in front of the worker (X-Accel-Redirect, "
        "1 and 2 worker processes) and nginx serving the same bytes, interleaved",
    )
    parser.add_argument(
        "--granian-options",
        action="append",
        default=[],
        metavar="OPTIONS",
        help="with --trivial: one more RSGI row with these granian options "
        "(e.g. '--http 1 --runtime-threads 2'); repeatable",
    )
    args = parser.parse_args()
    if args.iocs is None:
        args.iocs = 20_000 if args.trivial or args.in_process else 150_000
    if args.in_process:
        in_process(args.in_process, args.iocs, args.limiter)
        return
    require("wrk", "nginx")
    if args.trivial:
        trivial(args.seconds, args.rounds, args.iocs, args.granian_options)
        return
    if args.device_only:
        device_file(args.seconds, args.rounds, args.device_lines or 100_000)
        return
    require("redis-server")
    run_serving(args.seconds, args.rounds, args.iocs, edge_rows=args.edge_rows)
    if args.device_lines and not args.edge_rows:
        device_file(args.seconds, args.rounds, args.device_lines)


POLL, DOWNLOAD = "/api/v1/iocs", "/feeds/misp/hashes.csv"


def run_serving(seconds: int, rounds: int, iocs: int, *, edge_rows: bool = False) -> None:
    """Every serving configuration on the default poll and on the download, interleaved; with
    ``edge_rows``, only nginx in front of the worker and nginx alone on the default poll."""
    from generator.store.synthetic import synthetic_store

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        tmp.chmod(0o755)  # nginx workers drop privileges and must read the page
        data = tmp / "data"
        synthetic_store(str(data / "store"), iocs, now=int(time.time()), days=60)
        socdef(data, "build")
        socdef(data, "publish")
        created = socdef(
            data, "keys", "create", "--user", "bench@example.org", "--tier", "enterprise"
        )
        key = created.split("API key: ")[1].split()[0]
        limit_id = account_limit_id("bench@example.org")  # limits count per account
        redis = start_redis(tmp)
        edges = iter(range(1_000_000))
        poll: dict[str, Callable[[], Any]] = {
            "worker 1 proc, SQLite limiter": lambda: Worker(data, "sqlite", 1),
            "worker 2 procs, SQLite limiter": lambda: Worker(data, "sqlite", 2),
            "worker 1 proc, memory limiter": lambda: Worker(data, "memory", 1),
            "worker ASGI 1 proc, SQLite limiter": lambda: Worker(
                data, "sqlite", 1, interface="asgi"
            ),
            "uvicorn 1 proc, SQLite limiter": lambda: Worker(data, "sqlite", 1, server="uvicorn"),
            "worker 1 proc, Redis limiter": lambda: Worker(data, "redis", 1, redis.url),
            "worker 2 procs, Redis limiter": lambda: Worker(data, "redis", 2, redis.url),
            "nginx → worker 1 proc, SQLite (X-Accel, TCP)": lambda: Edge(
                data, tmp / f"edge-{next(edges)}", 1, POLL
            ),
            "nginx → worker 2 procs, SQLite (X-Accel, TCP)": lambda: Edge(
                data, tmp / f"edge-{next(edges)}", 2, POLL
            ),
            "nginx → worker 1 proc, SQLite (X-Accel, UDS)": lambda: Edge(
                data, tmp / f"edge-{next(edges)}", 1, POLL, uds=True
            ),
            "nginx → worker 2 procs, SQLite (X-Accel, UDS)": lambda: Edge(
                data, tmp / f"edge-{next(edges)}", 2, POLL, uds=True
            ),
        }
        download: dict[str, Callable[[], Any]] = {
            "worker 1 proc, SQLite limiter": lambda: Worker(data, "sqlite", 1, path=DOWNLOAD),
            "nginx → worker 1 proc, SQLite (X-Accel, UDS)": lambda: Edge(
                data, tmp / f"edge-{next(edges)}", 1, DOWNLOAD, uds=True
            ),
        }
        if edge_rows:
            poll = {name: start for name, start in poll.items() if "X-Accel" in name}
            download = {}
        probe = Worker(data, "memory", 1)
        plain = {"Authorization": f"Bearer {key}"}
        bodies = {
            path: httpx.get(probe.url.replace(POLL, path), headers=plain, timeout=60).content
            for path in (POLL, DOWNLOAD)
        }
        probe.stop()
        print(
            f"default poll body: {len(bodies[POLL]):,} bytes; download ({DOWNLOAD}): "
            f"{len(bodies[DOWNLOAD]):,} bytes; wrk -t2 -c32 -d{seconds}s, {rounds} rounds, medians"
        )
        tables: dict[str, dict[str, list[dict[str, float]]]] = {POLL: {}, DOWNLOAD: {}}
        decided = [0]  # Redis's day counter for the key, read after each run's warm-up

        def read_counter() -> None:
            decided[0] = redis_decided(redis, limit_id)

        def measure(which: str, name: str, server: Any) -> None:
            uses_redis = "Redis" in name
            pids = getattr(server, "pids", (server.proc.pid,))
            if uses_redis:
                pids = (*pids, redis.proc.pid)
            run = wrk(server.url, key, seconds, pids, read_counter if uses_redis else None)
            tables[which].setdefault(name, []).append(run)
            server.stop()
            if uses_redis and redis_decided(redis, limit_id) - decided[0] < run["n"]:
                raise SystemExit(f"{name}: Redis did not decide every request")

        try:
            for round_no in range(rounds):
                for which, configs in ((POLL, poll), (DOWNLOAD, download)):
                    if not configs:
                        continue
                    for name, start in configs.items():
                        measure(which, name, start())
                    nginx = Nginx(bodies[which], tmp / f"nginx-{round_no}-{len(which)}", which)
                    measure(which, nginx.name, nginx)
        finally:  # also when a run fails: leave no redis-server behind
            redis.stop()
    print(f"\ndefault poll ({POLL})")
    table(tables[POLL], "nginx (2 workers)")
    if download:
        print(f"\ndownload of {len(bodies[DOWNLOAD]) / 1e6:.1f} MB ({DOWNLOAD})")
        table(tables[DOWNLOAD], "nginx (2 workers)")


DEVICE_FILE = "ipv4.txt"
DEVICE_WORKERS = {"worker 1 proc, SQLite limiter": 1, "worker 2 procs, SQLite limiter": 2}


def device_file(seconds: int, rounds: int, lines: int) -> None:
    """A device file of ``lines`` lines (an enterprise key's ``ipv4.txt`` of a store holding
    only IPv4 indicators) through the worker (1 and 2 processes, SQLite limiter), against nginx
    (2 workers) serving the same bytes; bytes/s is requests/s times the file's size (the same
    for all)."""
    from generator.store.synthetic import synthetic_store

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        tmp.chmod(0o755)
        data = tmp / "data"
        synthetic_store(str(data / "store"), lines, now=int(time.time()), days=60, types=("ipv4",))
        socdef(data, "build")
        socdef(data, "publish")
        created = socdef(
            data, "keys", "create", "--user", "dev@example.org", "--tier", "enterprise"
        )
        key = created.split("API key: ")[1].split()[0]
        runs: dict[str, list[dict[str, float]]] = {}
        body = b""
        for round_no in range(rounds):
            for label, processes in DEVICE_WORKERS.items():
                worker = Worker(data, "sqlite", processes)
                url = worker.url.replace("/api/v1/iocs", f"/api/v1/feeds/{DEVICE_FILE}")
                body = httpx.get(url, headers={"Authorization": f"Bearer {key}"}).content
                runs.setdefault(label, []).append(wrk(url, key, seconds, (worker.proc.pid,)))
                worker.stop()
            nginx = Nginx(body, tmp / f"nginx-device-{round_no}")
            runs.setdefault(nginx.name, []).append(wrk(nginx.url, key, seconds, (nginx.proc.pid,)))
            nginx.stop()
    count = body.count(b"\n")
    print(f"device file {DEVICE_FILE}: {count:,} lines, {len(body):,} bytes; medians")
    base = statistics.median(r["rps"] for r in runs["nginx (2 workers)"])
    for label, label_runs in runs.items():
        rps = statistics.median(r["rps"] for r in label_runs)
        print(
            f"  {label}: device file {rps * len(body) / 1e6:>10,.1f} MB/s {rps:>9,.1f} req/s "
            f"{rps / base:>6.2f}× nginx"
        )


def trivial(seconds: int, rounds: int, iocs: int, variants: list[str]) -> None:
    """granian with a do-nothing ASGI app and RSGI app vs nginx, on a body of the poll's size."""
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        tmp.chmod(0o755)
        body = (
            b"["
            + b",".join(
                b'{"value":"%08d.example.org","type":"domain"}' % i
                for i in range(max(1, iocs // 18))
            )
            + b"]"
        )
        (tmp / "body.json").write_bytes(body)
        print(
            f"trivial apps, body {len(body):,} bytes; wrk -t2 -c32 -d{seconds}s, {rounds} rounds, "
            f"medians"
        )
        configs: dict[str, tuple[str, tuple[str, ...]]] = {
            "granian ASGI, trivial app": ("asgi", ()),
            "granian RSGI, trivial app": ("rsgi", ()),
            "granian RSGI, one batched wait": ("rsgi_wait", ()),
            "granian RSGI, the worker's headers": ("rsgi_headers", ()),
            "granian RSGI, response_file": ("rsgi_file", ()),
        }
        for options in variants:
            configs[f"RSGI {options}"] = ("rsgi", tuple(options.split()))
        results: dict[str, list[dict[str, float]]] = {}
        nginx_name = ""
        for round_no in range(rounds):
            for name, (interface, options) in configs.items():
                server = Trivial(tmp / "body.json", interface, options)
                results.setdefault(name, []).append(
                    wrk(server.url, "-", seconds, (server.proc.pid,))
                )
                server.stop()
            nginx = Nginx(body, tmp / f"nginx-{round_no}")
            nginx_name = nginx.name
            results.setdefault(nginx_name, []).append(
                wrk(nginx.url, "-", seconds, (nginx.proc.pid,))
            )
            nginx.stop()
    table(results, nginx_name)


class _Headers:
    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)


class _Scope:
    """What granian's RSGI scope offers, for a bearer GET of the default poll."""

    proto, http_version, scheme, method = "http", "1.1", "http", "GET"
    server, client, path, query_string = "127.0.0.1:8000", "127.0.0.1:5000", "/api/v1/iocs", ""

    def __init__(self, key: str) -> None:
        self.headers = _Headers([("host", "127.0.0.1:8000"), ("authorization", f"Bearer {key}")])


class _Protocol:
    def response_bytes(self, status: int, headers: list, body: bytes) -> None:
        self.status = status


def in_process(requests: int, iocs: int, limiter: str) -> None:
    """The worker's own work per hot-path request, without a server or sockets: the RSGI
    entry point called in-process, 32 requests per event-loop turn (so SQLite and Redis decide
    in batches of 32, as under wrk -c32; memory decides inline), CPU time of this process; then
    each part alone."""
    import asyncio
    import timeit

    from generator.store.synthetic import synthetic_store
    from worker.app import rate_text
    from worker.config import WorkerConfig, create_app
    from worker.http import new_request_id
    from worker.limits.usage import UsageLog
    from worker.rsgi import RSGIApp, hot_inputs

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        synthetic_store(str(tmp / "data" / "store"), iocs, now=int(time.time()), days=60)
        socdef(tmp / "data", "build")
        socdef(tmp / "data", "publish")
        created = socdef(
            tmp / "data", "keys", "create", "--user", "bench@example.org", "--tier", "enterprise"
        )
        key = created.split("API key: ")[1].split()[0]
        results: dict[str, float] = {}

        def per_request(app: object, label: str) -> None:
            scope, protocol = _Scope(key), _Protocol()
            rsgi = RSGIApp(app)  # type: ignore[arg-type]

            async def turns(n: int) -> None:
                for _ in range(n // 32):
                    await asyncio.gather(*(rsgi.__rsgi__(scope, protocol) for _ in range(32)))

            async def floor(n: int) -> None:
                async def nothing() -> None:
                    protocol.response_bytes(200, [], b"")

                for _ in range(n // 32):
                    await asyncio.gather(*(nothing() for _ in range(32)))

            async def run() -> None:
                await turns(4_096)  # keeps the answer, fills the key cache, flushes usage once
                for name, job in ((f"{label}: hot path", turns), ("do-nothing coroutine", floor)):
                    started = time.process_time()
                    await job(requests)
                    results[name] = (time.process_time() - started) / requests * 1e6
                assert protocol.status == 200

            try:
                import uvloop  # the servers' loop, when installed

                factory = uvloop.new_event_loop
            except ImportError:
                factory = asyncio.new_event_loop
            with asyncio.Runner(loop_factory=factory) as runner:
                runner.run(run())

        config = WorkerConfig.for_data_dir(tmp / "data", limiter=limiter, limit_scale=1e6)
        app = create_app(config)
        per_request(app, "RSGI app")
        app.usage = None
        per_request(app, "RSGI app without the usage log")
        scope = _Scope(key)
        hot = hot_inputs(scope)
        found = app._hot_ready(hot)
        assert hot is not None and found is not None
        record, ready = found
        limits = app._limits(record.tier)
        decider = app.coalescer.limiter if app.coalescer is not None else None
        batch = [(record.id, *limits)] * 32
        decision = app.limiter.hit(record.id, *limits)
        usage = UsageLog(tmp / "data" / "usage-parts.sqlite")

        def timed(job: object, calls: int = 20_000) -> float:
            return timeit.timeit(job, number=calls) / calls * 1e6  # type: ignore[arg-type]

        parts = {
            "request parse (hot_inputs)": timed(lambda: hot_inputs(scope)),
            "key cache + kept-answer lookup": timed(lambda: app._hot_ready(hot)),
            (
                "limiter: one decision in a batch of 32"
                if decider is not None
                else "limiter: one decision, inline"
            ): (
                timed(lambda: decider.hit_many(batch), 500) / 32
                if decider is not None
                else timed(lambda: app.limiter.hit(record.id, *limits))
            ),
            "rate-limit headers + header list": timed(lambda: ready.text + rate_text(decision)),
            "request id": timed(new_request_id),
            "usage log row (flushes included)": timed(
                lambda: usage.record(record.id, "/api/v1/iocs", 200, 0.1, 100)
            ),
        }
    print(f"in-process, {limiter} limiter, {requests:,} requests, CPU µs per request")
    for name, value in {**results, **parts}.items():
        print(f"  {name:<44} {value:7.2f}")


def table(results: dict[str, list[dict[str, float]]], nginx_name: str) -> None:
    base = statistics.median(r["rps"] for r in results[nginx_name])
    print(
        f"{'config':<42} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'÷ nginx':>8} {'CPU µs/req':>10}"
    )
    for name, runs in results.items():
        rps = statistics.median(r["rps"] for r in runs)
        p50 = statistics.median(r["p50"] for r in runs)
        p99 = statistics.median(r["p99"] for r in runs)
        cpu = statistics.median(r["cpu_us"] for r in runs)
        print(f"{name:<42} {rps:>9,.0f} {p50:>8.2f} {p99:>8.2f} {rps / base:>8.2f} {cpu:>10.0f}")


if __name__ == "__main__":
    main()
