"""The default hourly poll through the worker vs the same bytes from nginx, in one run.

    python bench/serve.py [--seconds 10] [--rounds 3] [--iocs 20000]

Builds and publishes a synthetic store with the real CLI, creates an enterprise key, then runs
wrk (``-t2 -c32 --latency``) against ``GET /api/v1/iocs`` with ``Authorization: Bearer`` on:
the worker with the SQLite limiter and with the Redis limiter (a ``redis-server`` the bench
starts on 127.0.0.1; 1 and 2 processes each), the worker with the in-memory limiter, the same with ``--server uvicorn`` instead of
granian (SQLite limiter), and nginx
(2 workers) serving the identical body as a static file. Rounds are interleaved and
medians reported, with each figure's ratio to nginx from the same run. Limits are scaled up
(``--limit-scale``) so the limiter does its full work on every request but never refuses.
The last column is the CPU time the server (all its processes, plus redis-server for the Redis
rows) spent per request during the measured run: unlike req/s, it barely moves when other jobs
load the machine.
Needs ``wrk``, ``nginx`` and ``redis-server`` (Debian packages); without nginx a Python static
server stands in, without redis-server the Redis rows are left out.
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
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

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
    return subprocess.run([sys.executable, "-m", "generator", *args, "--data-dir", str(data)],
                          cwd=ROOT, check=True, capture_output=True, text=True).stdout


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(url: str, headers: dict[str, str] | None = None) -> None:
    for _ in range(300):
        try:
            httpx.get(url, headers=headers, timeout=1)
            return
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


def wrk(url: str, key: str, seconds: int, pids: tuple[int, ...] = ()) -> dict[str, float]:
    cmd = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", "--timeout", "10s",
           "-H", f"Authorization: Bearer {key}", url]
    subprocess.run(cmd[:4] + ["-d1s"] + cmd[5:], capture_output=True, check=True)  # warm-up
    cpu = cpu_seconds(*pids)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(*pids) - cpu
    if "Non-2xx" in out:
        raise SystemExit(f"non-2xx answers during the run:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    done = int(re.search(r"(\d+) requests in", out).group(1))
    return {"rps": rps, "p50": _latency(out, "50%"), "p99": _latency(out, "99%"), "n": done,
            "cpu_us": cpu / done * 1e6}


def _latency(out: str, pct: str) -> float:
    value, unit = re.search(rf"{pct}\s+([\d.]+)(us|ms|s)", out).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


class Redis:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(tmp)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)

    def decided(self, key_id: str) -> int:
        """The key's day counter in Redis: proves the limiter decided every request in Redis,
        not in its fallback (decisions come in batches, so EVALSHA calls are fewer)."""
        import redis

        from worker.limits_redis import DEFAULT_PREFIX

        count = redis.Redis.from_url(self.url).hget(f"{DEFAULT_PREFIX}{{{key_id}}}:d", "n")
        return int(count or 0)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


class Worker:
    def __init__(self, data: Path, limiter: str, workers: int, redis_url: str = "",
                 server: str = "granian") -> None:
        self.port = free_port()
        extra = ["--redis-url", redis_url] if redis_url else []
        extra += ["--server", server]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "generator", "serve", "--data-dir", str(data), "--port",
             str(self.port), "--limiter", limiter, "--workers", str(workers),
             "--limit-scale", "1000000", *extra], cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}/api/v1/iocs"
        wait(f"http://127.0.0.1:{self.port}/healthz")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


class Nginx:
    def __init__(self, body: bytes, tmp: Path) -> None:
        self.port = free_port()
        (tmp / "www" / "api" / "v1").mkdir(parents=True)
        (tmp / "tmp").mkdir()
        (tmp / "www" / "api" / "v1" / "iocs").write_bytes(body)
        conf = tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=tmp, port=self.port))
        if shutil.which("nginx"):
            cmd = ["nginx", "-c", str(conf), "-p", str(tmp), "-g", "daemon off;"]
            self.name = "nginx (2 workers)"
        else:
            cmd = [sys.executable, "-m", "http.server", str(self.port), "--bind", "127.0.0.1",
                   "--directory", str(tmp / "www")]
            self.name = "python http.server (nginx absent)"
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}/api/v1/iocs"
        wait(self.url)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iocs", type=int, default=20_000)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is required: apt-get install wrk")
    from generator.synthetic import synthetic_store

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        tmp.chmod(0o755)  # nginx workers drop privileges and must read the page
        synthetic_store(str(tmp / "data" / "store"), args.iocs, now=int(time.time()), days=60)
        socdef(tmp / "data", "build")
        socdef(tmp / "data", "publish")
        created = socdef(tmp / "data", "keys", "create", "--user", "bench@example.org",
                         "--tier", "enterprise")
        key, key_id = created.split("API key: ")[1].split()[0], created.split("id: ")[1].split()[0]
        configs = {
            "worker 1 proc, SQLite limiter": lambda: Worker(tmp / "data", "sqlite", 1),
            "worker 2 procs, SQLite limiter": lambda: Worker(tmp / "data", "sqlite", 2),
            "worker 1 proc, memory limiter": lambda: Worker(tmp / "data", "memory", 1),
            "uvicorn 1 proc, SQLite limiter": lambda: Worker(tmp / "data", "sqlite", 1,
                                                             server="uvicorn"),
        }
        redis = Redis(tmp) if shutil.which("redis-server") else None
        if redis is not None:
            configs["worker 1 proc, Redis limiter"] = lambda: Worker(
                tmp / "data", "redis", 1, redis.url)
            configs["worker 2 procs, Redis limiter"] = lambda: Worker(
                tmp / "data", "redis", 2, redis.url)
        probe = Worker(tmp / "data", "memory", 1)
        body = httpx.get(probe.url, headers={"Authorization": f"Bearer {key}"}).content
        probe.stop()
        print(f"default poll body: {len(body):,} bytes; wrk -t2 -c32 -d{args.seconds}s, "
              f"{args.rounds} rounds, medians")
        results: dict[str, list[dict[str, float]]] = {}
        nginx_name = ""
        try:
            for round_no in range(args.rounds):
                for name, start in configs.items():
                    server = start()
                    decided = redis.decided(key_id) if redis is not None else 0
                    pids = (server.proc.pid, redis.proc.pid) if "Redis" in name else (server.proc.pid,)
                    results.setdefault(name, []).append(run := wrk(server.url, key, args.seconds, pids))
                    server.stop()
                    if "Redis" in name and redis.decided(key_id) - decided < run["n"]:
                        raise SystemExit(f"{name}: Redis did not decide every request")
                nginx = Nginx(body, tmp / f"nginx-{round_no}")
                nginx_name = nginx.name
                results.setdefault(nginx_name, []).append(
                    wrk(nginx.url, key, args.seconds, (nginx.proc.pid,)))
                nginx.stop()
        finally:  # also when a run fails: leave no redis-server behind
            if redis is not None:
                redis.stop()
    base = statistics.median(r["rps"] for r in results[nginx_name])
    print(f"{'config':<34} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'÷ nginx':>8} "
          f"{'CPU µs/req':>10}")
    for name, runs in results.items():
        rps = statistics.median(r["rps"] for r in runs)
        p50 = statistics.median(r["p50"] for r in runs)
        p99 = statistics.median(r["p99"] for r in runs)
        cpu = statistics.median(r["cpu_us"] for r in runs)
        print(f"{name:<34} {rps:>9,.0f} {p50:>8.2f} {p99:>8.2f} {rps / base:>8.2f} {cpu:>10.0f}")


if __name__ == "__main__":
    main()
