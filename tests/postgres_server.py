"""A throwaway PostgreSQL server on 127.0.0.1 for tests: ``initdb`` into a temporary folder, then
``postgres`` on a loopback port, without fsync (nothing here must survive a power cut).

PostgreSQL refuses to run as root: as root, the cluster belongs to ``nobody`` and the server runs
as that user, in a folder of its own under the system's temporary directory (pytest's folders
are root's, 0700).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port

SUPERUSER = "socdef"


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    return str(versions[0]) if versions else None


class PortTaken(AssertionError):
    """The port was not this server's to have."""


class PostgresServer:
    """One ``postgres`` process on a loopback port, its cluster in a temporary folder."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="socdef-pg-"))
        self.data = self.folder / "data"
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self._run_as: dict[str, Any] = {}
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.folder, nobody.pw_uid, nobody.pw_gid)
            self._run_as = {"user": nobody.pw_uid, "group": nobody.pw_gid}

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> PostgresServer:
        """initdb, then start on a port chosen here. ``postgres`` cannot bind port 0 and say which
        port it got, so another program may take the port first: then the server exits (or
        another answers), and the start tries again on another port, up to five times."""
        subprocess.run(
            [_binary("initdb"), "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
             "--no-sync", "-E", "UTF8", "--locale=C"],
            check=True, capture_output=True, **self._run_as,
        )  # fmt: skip
        for attempt in range(5):
            self.port = free_port()
            try:
                self._launch()
                return self
            except PortTaken:
                self.stop()
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def _launch(self) -> None:
        log = open(self.folder / f"postgres-{self.port}.log", "a")  # noqa: SIM115 - owned by proc
        self.proc = subprocess.Popen(
            [_binary("postgres"), "-D", str(self.data), "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.folder}",
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=200"],
            stdout=log, stderr=subprocess.STDOUT, **self._run_as,
        )  # fmt: skip
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise PortTaken(f"postgres exited with {self.proc.returncode}")
            try:
                with psycopg.connect(self.url(), connect_timeout=1) as probe:
                    folder = probe.execute("SHOW data_directory").fetchone()[0]
            except psycopg.Error:
                time.sleep(0.05)
                continue
            if Path(folder).resolve() != self.data.resolve():  # another server holds the port
                raise PortTaken(f"port {self.port} answers for the cluster in {folder}")
            return
        raise AssertionError(f"postgres did not answer on port {self.port}")

    def restart(self) -> None:
        """Start again on the same port (clients know it), after ``stop``."""
        self._launch()

    def new_database(self) -> str:
        """The URL of a new, empty database of this server."""
        import psycopg

        name = f"socdef_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # "fast" shutdown: clients are disconnected
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def require_postgres() -> None:
    """Fail, saying what to install, when PostgreSQL or psycopg is missing (never a skip)."""
    if _binary("initdb") is None or _binary("postgres") is None:
        pytest.fail("PostgreSQL is not installed: `make system-deps` installs it with apt")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.fail("psycopg is not installed: pip install -e '.[postgres]'")


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A started server, stopped and removed on exit."""
    require_postgres()
    server = PostgresServer()
    try:
        yield server.start()
    finally:
        server.remove()
