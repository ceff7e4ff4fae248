"""Owner-only files for the SQLite databases under the data dir (usage, limits)."""

from __future__ import annotations

import contextlib
import os

SIDE_FILES = ("", "-wal", "-shm", "-journal")


def private_sqlite(path: str | os.PathLike[str]) -> str:
    """Create ``path`` with mode 0600 before SQLite opens it, or make an existing one (and its
    side files) 0600; answer the path for ``sqlite3.connect``. SQLite gives the ``-wal`` and
    ``-shm`` files it creates the database file's mode."""
    target = os.fspath(path)
    if target == ":memory:" or target.startswith("file:") or not target:
        return target
    try:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        for suffix in SIDE_FILES:
            with contextlib.suppress(FileNotFoundError, PermissionError):
                os.chmod(target + suffix, 0o600)
    return target
