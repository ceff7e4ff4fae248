"""nginx in front of a worker, configured from ``deploy/nginx/socdef-edge.conf.j2``, for tests.

nginx cannot listen on port 0 and has no way to say which port it got, so a port is drawn at
random from the dynamic range and nginx binds it itself; when another program holds it, nginx
exits with "Address already in use" and the next draw is tried (nothing binds the port first,
so no other program can take it between a check and nginx's bind).
"""

from __future__ import annotations

import getpass
import os
import random
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import jinja2

from tests.conftest import ROOT, Server, announced, poll_until, stop_process

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
TEMPLATE = ROOT / "deploy" / "nginx" / "socdef-edge.conf.j2"
HEADERS = ROOT / "deploy" / "nginx" / "socdef-headers.conf"
ATTEMPTS = 20


@dataclass
class Nginx:
    url: str
    proc: subprocess.Popen
    prefix: Path

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


def start_socket_worker(data_dir: Path, log_path: Path, *extra: str) -> Server:
    """``socdef serve --edge nginx`` with no address: the worker listens on its Unix socket
    (``DATA_DIR/worker.sock`` unless ``extra`` has ``--uds``), answering. Its ``url`` is the
    ``unix:PATH`` nginx's upstream names."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "generator", "serve", "--data-dir", str(data_dir)]
            + ["--edge", "nginx", *extra],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        path = announced(log_path, proc, r"listening on unix:(/\S+)\n").group(1)
        poll_until(lambda: _answers(Path(path), proc), timeout=30, what="the worker's socket")
    except BaseException:
        stop_process(proc)
        raise
    return Server(f"unix:{path}", proc, log_path)


def _answers(path: Path, proc: subprocess.Popen) -> bool:
    """True once the worker answers on its socket (it listens once its processes started)."""
    import httpx

    if proc.poll() is not None:
        raise AssertionError(f"the worker exited ({proc.returncode}) before answering")
    try:
        return socket_get(path, "/healthz").status_code in (200, 503)
    except httpx.TransportError:
        return False


def socket_get(path: Path, target: str, **headers: str):  # -> httpx.Response
    """A GET straight to a worker's Unix socket (what nginx's upstream connection sends)."""
    import httpx

    transport = httpx.HTTPTransport(uds=str(path))
    with httpx.Client(transport=transport, timeout=30) as client:
        return client.get("http://worker" + target, headers=headers)


def socket_path(server: Server) -> Path:
    found = re.fullmatch(r"unix:(/.+)", server.url)
    assert found, server.url
    return Path(found.group(1))


def render(prefix: Path, *, listen: str, worker: str, bucket: Path, answers: Path) -> Path:
    """The deploy template rendered into ``prefix/nginx.conf`` (with its headers file)."""
    template = jinja2.Template(TEMPLATE.read_text(), undefined=jinja2.StrictUndefined)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / "tmp" / sub).mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(
        template.render(
            prefix=prefix,
            listen=listen,
            worker=worker,
            bucket=bucket,
            answers=answers,
            processes=1,
            user=getpass.getuser() if os.geteuid() == 0 else "",
        )
    )
    shutil.copy(HEADERS, prefix / HEADERS.name)
    return conf


def start_nginx(prefix: Path, worker_url: str, bucket: Path, answers: Path) -> Nginx:
    """nginx (one worker process, foreground) in front of ``worker_url``, answering."""
    worker = worker_url.removeprefix("http://")
    for _ in range(ATTEMPTS):
        port = random.randint(20000, 60999)
        conf = render(
            prefix, listen=f"127.0.0.1:{port}", worker=worker, bucket=bucket, answers=answers
        )
        (prefix / "error.log").unlink(missing_ok=True)
        proc = subprocess.Popen(
            [
                NGINX,
                "-c",
                str(conf),
                "-p",
                str(prefix),
                "-e",
                str(prefix / "error.log"),
                "-g",
                "daemon off;",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        edge = Nginx(f"http://127.0.0.1:{port}", proc, prefix)
        if _started(edge):
            return edge
        stop_process(proc)
        if "Address already in use" not in edge.error_log() + _stderr(proc):
            raise AssertionError(f"nginx did not start:\n{edge.error_log()}{_stderr(proc)}")
    raise AssertionError(f"no free port for nginx in {ATTEMPTS} draws")


def _started(edge: Nginx) -> bool:
    """True once nginx listens; False when it exited (its port was taken, or worse)."""
    import httpx

    def ready() -> str:
        if edge.proc.poll() is not None:
            return "exited"
        try:
            httpx.get(edge.url + "/healthz", timeout=1)
            return "up"
        except httpx.HTTPError:
            return ""

    return poll_until(ready, timeout=30, what="nginx to listen") == "up"


def _stderr(proc: subprocess.Popen) -> str:
    return proc.stderr.read().decode(errors="replace") if proc.stderr else ""


def stop_nginx(edge: Nginx) -> None:
    stop_process(edge.proc)
    if edge.proc.stderr:
        edge.proc.stderr.close()
