"""The default hourly poll through the worker vs the same bytes from nginx, in one run.

    python bench/serve.py [--seconds 10] [--rounds 3] [--iocs 20000]

Builds and publishes a synthetic store with the real CLI, creates an enterprise key, then runs
wrk (``-t2 -c32 --latency``) against ``GET /api/v1/iocs`` with ``Authorization: Bearer`` on:
the worker with the SQLite limiter (1 and 2 processes), the worker with the in-memory limiter,
and nginx (2 workers) serving the identical body as a static file. Rounds are interleaved and
medians reported, with each figure's ratio to nginx from the same run. Limits are scaled up
(``--limit-scale``) so the limiter does its full work on every request but never refuses.
Needs ``wrk`` and ``nginx`` (Debian packages); without nginx a Python static server stands in.
"""

from __future__ import annotations

import argparse
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


def wrk(url: str, key: str, seconds: int) -> dict[str, float]:
    cmd = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", "--timeout", "10s",
           "-H", f"Authorization: Bearer {key}", url]
    subprocess.run(cmd[:4] + ["-d1s"] + cmd[5:], capture_output=True, check=True)  # warm-up
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"non-2xx answers during the run:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return {"rps": rps, "p50": _latency(out, "50%"), "p99": _latency(out, "99%")}


def _latency(out: str, pct: str) -> float:
    value, unit = re.search(rf"{pct}\s+([\d.]+)(us|ms|s)", out).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


class Worker:
    def __init__(self, data: Path, limiter: str, workers: int) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "generator", "serve", "--data-dir", str(data), "--port",
             str(self.port), "--limiter", limiter, "--workers", str(workers),
             "--limit-scale", "1000000"], cwd=ROOT,
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
        key = socdef(tmp / "data", "keys", "create", "--user", "bench@example.org", "--tier",
                     "enterprise").split("API key: ")[1].split()[0]
        configs = {
            "worker 1 proc, SQLite limiter": lambda: Worker(tmp / "data", "sqlite", 1),
            "worker 2 procs, SQLite limiter": lambda: Worker(tmp / "data", "sqlite", 2),
            "worker 1 proc, memory limiter": lambda: Worker(tmp / "data", "memory", 1),
        }
        probe = Worker(tmp / "data", "memory", 1)
        body = httpx.get(probe.url, headers={"Authorization": f"Bearer {key}"}).content
        probe.stop()
        print(f"default poll body: {len(body):,} bytes; wrk -t2 -c32 -d{args.seconds}s, "
              f"{args.rounds} rounds, medians")
        results: dict[str, list[dict[str, float]]] = {}
        nginx_name = ""
        for round_no in range(args.rounds):
            for name, start in configs.items():
                server = start()
                results.setdefault(name, []).append(wrk(server.url, key, args.seconds))
                server.stop()
            nginx = Nginx(body, tmp / f"nginx-{round_no}")
            nginx_name = nginx.name
            results.setdefault(nginx_name, []).append(wrk(nginx.url, key, args.seconds))
            nginx.stop()
    base = statistics.median(r["rps"] for r in results[nginx_name])
    print(f"{'config':<34} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'÷ nginx':>8}")
    for name, runs in results.items():
        rps = statistics.median(r["rps"] for r in runs)
        p50 = statistics.median(r["p50"] for r in runs)
        p99 = statistics.median(r["p99"] for r in runs)
        print(f"{name:<34} {rps:>9,.0f} {p50:>8.2f} {p99:>8.2f} {rps / base:>8.2f}")


if __name__ == "__main__":
    main()
