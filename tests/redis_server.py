"""A throwaway ``redis-server`` on 127.0.0.1 for tests: started, stopped and restarted by them."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import free_port

BINARY = "redis-server"


class PortTaken(AssertionError):
    """The port was not this redis-server's to have."""


class RedisServer:
    """One redis-server process on a fixed loopback port, without persistence."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder = folder
        self._fixed_port = port is not None
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        """Start on ``self.port``. redis-server cannot bind port 0 and report it, so a port chosen
        here (``free_port``) may be taken by another program first: then redis exits, and a
        first start tries again on another port (a restart keeps its port: clients know it)."""
        for attempt in range(5):
            log = open(self.folder / f"redis-{self.port}.log", "a")  # noqa: SIM115 - owned by proc
            self.proc = subprocess.Popen(
                [
                    BINARY,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.folder),
                    "--protected-mode",
                    "yes",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                self._wait_ready()
                self._fixed_port = True  # restarts keep this port
                return self
            except PortTaken:
                self.stop()
                if self._fixed_port or attempt == 4:
                    raise
                self.port = free_port()
                self.url = f"redis://127.0.0.1:{self.port}/0"
        raise AssertionError("unreachable")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def client(self):
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=2)

    def _wait_ready(self, timeout: float = 15) -> None:
        import redis

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise PortTaken(f"redis-server exited with {self.proc.returncode}")
            try:
                with redis.Redis.from_url(self.url, socket_timeout=1) as probe:
                    pid = probe.info("server")["process_id"]
            except redis.RedisError:
                time.sleep(0.05)
                continue
            if self.proc is None or pid != self.proc.pid:  # another redis holds the port
                raise PortTaken(f"port {self.port} answers for redis pid {pid}")
            return
        raise AssertionError(f"redis-server did not answer on port {self.port}")


def require_redis() -> None:
    if shutil.which(BINARY) is None:
        pytest.skip(f"{BINARY} is not installed (`make system-deps` installs it with apt)")
    pytest.importorskip("redis", reason="redis-py is not installed (pip install -e '.[test]')")


@contextmanager
def running_redis(folder: Path) -> Iterator[RedisServer]:
    """A started server, stopped on exit; skips the test when redis-server is absent."""
    require_redis()
    server = RedisServer(folder).start()
    try:
        yield server
    finally:
        server.stop()
