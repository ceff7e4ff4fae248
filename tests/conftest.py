"""Shared factories: the real CLI, and a real worker process on 127.0.0.1 on a port it picked."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
# Tests publish and poll at once, with one worker and no cache in front of the pointer: TAXII
# serves a publish's objects at once (docs/taxii.md; tests/test_taxii_polling.py sets its own).
os.environ.setdefault("SOCDEF_TAXII_GRACE", "0")
T = TypeVar("T")


# Files whose checks depend on the wall clock: the limiters' minute windows, the TAXII grace
# period the polling interleavings wait out, kill -9 / full-disk faults timed against running
# commands, benchmark figures and time bounds. Under pytest-xdist (``make test``: ``-n 2 --dist
# loadfile``) they are one unit of work, run one after another in one worker in the order of a
# plain run, while the other worker takes the other files, each file one unit (so a module's
# shared fixtures, builds and servers, are set up once).
TIMED_FILES = frozenset(
    {
        "test_account_limits.py",
        "test_bench.py",
        "test_edge_nginx.py",
        "test_edge_s3.py",
        "test_extract_adversarial.py",
        "test_faults.py",
        "test_faults_cli.py",
        "test_faults_http.py",
        "test_faults_ingest.py",
        "test_faults_serve.py",
        "test_faults_usage.py",
        "test_feeds.py",
        "test_keys_api.py",
        "test_limits.py",
        "test_limits_fallback.py",
        "test_limits_redis.py",
        "test_postgres_replicas.py",
        "test_publish_s3.py",
        "test_rate_concurrency.py",
        "test_rate_headers.py",
        "test_rsgi.py",
        "test_taxii_http.py",
        "test_taxii_polling.py",
        "test_worker_hot.py",
        "test_worker_http.py",
    }
)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """``--dist loadfile`` with the files of ``TIMED_FILES`` as one unit of work."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class TimedFilesTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "timed" if Path(path).name in TIMED_FILES else path

    return TimedFilesTogether(config, log)


def free_port() -> int:
    """A port that was free a moment ago: another program may take it before it is used. Only
    for servers that cannot bind port 0 and say which port they got (``announced``), or for an
    address that must refuse connections."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reserved_port() -> socket.socket:
    """A loopback port held for a granian server's life: granian (2.x) binds one SO_REUSEPORT
    socket per worker, takes no file descriptor and cannot name a port 0 it bound. This socket
    is bound with SO_REUSEPORT but never listens: the kernel hands it no connections, no other
    program can take the port, and granian binds the same port beside it. Close it after the
    server stops."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def announced(
    log_path: Path, proc: subprocess.Popen, pattern: str, timeout: float = 60
) -> re.Match:
    """The first match of ``pattern`` in the output a server writes to ``log_path`` (such as the
    port it bound), polled until ``timeout``; fails at once if the server exits."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        text = log_path.read_text(errors="replace") if log_path.exists() else ""
        found = regex.search(text)
        if found:
            return found
        if proc.poll() is not None:
            raise AssertionError(f"server exited ({proc.returncode}) before {pattern!r}:\n{text}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {pattern!r} within {timeout} s:\n{text}")
        time.sleep(0.05)


def socdef(
    *args: str,
    data_dir: Path | None = None,
    check: bool = True,
    timeout: float = 300,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run the real ``socdef`` command line."""
    argv = [sys.executable, "-m", "generator", *args]
    if data_dir is not None:
        argv += ["--data-dir", str(data_dir)]
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"socdef {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"server exited early:\n{proc.stderr.read() if proc.stderr else ''}"
            )
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"server did not answer on {url}")


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


LISTENING = r"listening on (http://127\.0\.0\.1:[1-9][0-9]*)\n"


def start_server(
    data_dir: Path,
    log_path: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    new_session: bool = False,
) -> Server:
    """``socdef serve --port 0`` on 127.0.0.1, answering; its output goes to ``log_path``. The
    server binds the port itself and names it on stdout, so no other program can take it first.
    ``new_session``: in a process group of its own (to kill it with its workers at once)."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "generator",
                "serve",
                "--data-dir",
                str(data_dir),
                "--port",
                "0",
                *extra,
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=new_session,
        )
    try:
        url = announced(log_path, proc, LISTENING).group(1)
        server = Server(url, proc, log_path)
        wait_http(server.url + "/healthz", proc)
    except BaseException:
        stop_process(proc)
        raise
    return server


def wait_for_room_in_minute(need: float) -> None:
    """Wait for the next minute window if fewer than ``need`` seconds are left in this one (the
    wall clock's, which the worker's SQLite and memory limiters use)."""
    left = 60 - time.time() % 60
    if left < need:
        time.sleep(left + 1)


def in_one_minute(sequence: Callable[[], T], need: float = 20, attempts: int = 3) -> T:
    """``sequence()`` with all of it inside one minute window of the wall clock (which the
    worker's limiters use): it starts with at least ``need`` seconds left in the minute, and if
    it still ended in the next minute (a stalled machine) it runs again. ``sequence`` must start
    from nothing each time, such as with a key of its own."""
    for _ in range(attempts):
        wait_for_room_in_minute(need)
        started = time.time() // 60
        result = sequence()
        if time.time() // 60 == started:
            return result
    raise AssertionError(f"{attempts} runs each crossed a minute boundary")


def poll_until(condition: Callable[[], T], timeout: float = 15, what: str = "") -> T:
    """The first truthy ``condition()``, polled every 50 ms until ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = condition()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what or condition}")
        time.sleep(0.05)


def stop_process(proc: subprocess.Popen) -> None:
    """Terminate a server process; kill it if it has not ended within 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def stop_server(server: Server) -> None:
    stop_process(server.proc)


@contextmanager
def running_server(data_dir: Path, log_path: Path, *extra: str) -> Iterator[Server]:
    server = start_server(data_dir, log_path, *extra)
    try:
        yield server
    finally:
        stop_server(server)


def socdef_here(
    *args: str,
    data_dir: Path | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Like ``socdef``, but through the command line's own entry point (``generator.cli.main``:
    the same options, settings from the environment, stages, messages and exit statuses) in
    this process. It saves starting Python and compiling the bundled warninglists for each
    command (about 3 s of CPU a build; ``warninglists.bundled`` is kept per process). For
    commands run one after another; ``env`` is set for the command's time, and the process's
    umask (which commands set to 077) is put back. Commands run side by side, killed, or whose
    process-level behaviour is the point use ``socdef``."""
    import contextlib
    import gc
    import io

    from generator.cli import main

    argv = [*args, *(["--data-dir", str(data_dir)] if data_dir is not None else [])]
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    saved = {name: os.environ.get(name) for name in env or {}}
    umask = os.umask(0o022)
    os.umask(umask)
    try:
        os.environ.update(env or {})
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(argv)
            except SystemExit as exc:
                code = exc.code
    finally:
        # what a process's exit does: close the files the command left open (a key store's
        # SQLite connection sits in a reference cycle; open, it keeps the WAL beside the file)
        gc.collect()
        os.umask(umask)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    returncode = code if isinstance(code, int) else (0 if code is None else 1)
    result = subprocess.CompletedProcess(
        ["socdef", *argv], returncode, out.getvalue(), err.getvalue()
    )
    if check and returncode != 0:
        raise AssertionError(
            f"socdef {' '.join(args)} failed ({returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def build_and_publish(data_dir: Path) -> Path:
    """Build the store under ``data_dir`` and publish it to its bucket with the CLI's own
    commands (in this process: ``socdef_here``)."""
    socdef_here("build", data_dir=data_dir)
    socdef_here("publish", data_dir=data_dir)
    return data_dir


@pytest.fixture
def serve_process(tmp_path) -> Iterator:
    """Start ``socdef serve`` on a free port; stopped after the test."""
    started: list[Server] = []

    def start(data_dir: Path, *extra: str) -> Server:
        server = start_server(data_dir, tmp_path / f"server-{len(started)}.log", *extra)
        started.append(server)
        return server

    yield start
    for server in started:
        stop_server(server)
