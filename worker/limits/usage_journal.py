"""The usage log's journal: every request a process records, appended to a file of its own
before the response leaves, so a process killed with SIGKILL loses no usage.

Each worker process appends one line per request (``key, endpoint, status, latency ms,
indicators, time``) to ``<usage database>.journal-<random>``, opened owner-only and held under an
exclusive ``flock`` for the life of the process. The write lands in the page cache with one
``write`` call (no ``fsync``): it survives the process, not a power cut. When the process
flushes its buffered rows it stores, in the same transaction, how far into its journal those
rows reach (the ``usage_journal`` table), so no line is ever written to the database twice.

A journal whose lock can be taken belongs to a process that has ended (the kernel drops a dead
process's locks). ``dead_journals`` yields those; the usage log then writes the lines past the
stored offset, advances the offset in the same transaction, and deletes the file.
"""

from __future__ import annotations

import fcntl
import glob
import os
import uuid
from collections.abc import Iterator

SUFFIX = ".journal-"
ROTATE_BYTES = 1 << 20  # a journal wholly in the database is replaced once it is this large
SCHEMA = """
CREATE TABLE IF NOT EXISTS usage_journal (
    name TEXT PRIMARY KEY,
    offset INTEGER NOT NULL
)
"""
Entry = tuple[str, str, int, float, int, float]  # key, endpoint, status, latency ms, iocs, ts


def line(key_id: str, endpoint: str, status: int, latency_ms: float, iocs: int, ts: float) -> bytes:
    return f"{key_id}\t{endpoint}\t{status}\t{latency_ms}\t{iocs}\t{ts}\n".encode()


def parse(data: bytes) -> tuple[list[Entry], int]:
    """The entries of the complete lines in ``data`` and how many bytes they take; a line
    the process was killed while writing has no newline and is left out."""
    used = data.rfind(b"\n") + 1
    entries = []
    for raw in data[:used].splitlines():
        fields = raw.decode("utf-8", "replace").split("\t")
        try:
            key_id, endpoint, status, latency, iocs, ts = fields
            entries.append((key_id, endpoint, int(status), float(latency), int(iocs), float(ts)))
        except ValueError:
            continue  # not a journal line: skipped, never a crash
    return entries, used


class Journal:
    """This process's journal file; opened on the first append (again after a fork)."""

    def __init__(self, base: str) -> None:
        self._base = base
        self._fd = -1
        self._pid = 0
        self.name = ""
        self.size = 0

    @property
    def owned(self) -> bool:
        """Whether this process has a journal open (not one inherited across a fork)."""
        return self._pid == os.getpid()

    def append(self, data: bytes) -> bool:
        """Append ``data``; False when the journal cannot be written (a full or read-only
        disk): the request is then only in memory, as without a journal, and the caller logs."""
        try:
            if self._pid != os.getpid():
                self._open()
            self.size += os.write(self._fd, data)
        except OSError:
            return False
        return True

    def _open(self) -> None:
        """Create the file under a name no replayer looks at, lock it, then give it its journal
        name: a replayer never finds a journal that is not yet locked."""
        token = uuid.uuid4().hex
        name, draft = f"{self._base}{SUFFIX}{token}", f"{self._base}.draft-{token}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(draft, name)
        self._fd, self._pid, self.name, self.size = fd, os.getpid(), name, 0

    def discard(self) -> str:
        """Delete this process's journal (``owned``; its lines are all in the database); the
        next append starts a new one. Returns the old name, whose stored offset may now be forgotten."""
        name = self.name
        os.unlink(name)
        os.close(self._fd)
        self._fd, self._pid, self.name, self.size = -1, 0, "", 0
        return name


def dead_journals(base: str) -> Iterator[tuple[str, int]]:
    """(name, locked read-only descriptor) of every journal next to ``base`` whose process has
    ended; the caller closes the descriptor. A journal another process is already replaying
    (locked) or has replayed (unlinked) is skipped."""
    for name in sorted(glob.glob(glob.escape(base) + SUFFIX + "*")):
        try:
            fd = os.open(name, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        if os.fstat(fd).st_nlink == 0:
            os.close(fd)
            continue
        yield name, fd


def unread(fd: int, offset: int) -> bytes:
    """What a journal holds past ``offset``."""
    size = os.fstat(fd).st_size
    return os.pread(fd, max(0, size - offset), offset) if size > offset else b""
