"""The root of every failure the generator expects and can explain in one line.

A :class:`SocdefError` is an operational failure a user can act on: a bad settings or sources
file, a store, build or bucket that cannot be read or written, a damaged database. Its message
names the file or thing and says what to do. It is a :class:`click.ClickException` (as in
mkdocs), so the command line prints ``Error: <message>`` and exits 1; any other exception is a
bug and keeps its traceback.

Each class keeps the built-in base it had (``OSError``, ``ValueError``, ``RuntimeError``), so an
``except`` written against that base still catches it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click


class SocdefError(click.ClickException):
    """An expected failure: printed as ``Error: <message>``, exit status 1, no traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class StorageError(SocdefError, OSError):
    """A file of the store, a build or a publish target could not be read or written."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class MissingFile(SocdefError, FileNotFoundError):
    """A file or folder a stage needs (a build, the store) is not there."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class CorruptFile(SocdefError, ValueError):
    """A data file (store parquet, build file) is damaged or not in the expected format."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


def os_failure(action: str, exc: OSError) -> StorageError:
    """One line for an ``OSError`` while ``action`` (e.g. "writing the store"): the file, the
    reason (disk full, permission denied, ...) and what to check."""
    where = f" at {exc.filename}" if exc.filename else ""
    reason = exc.strerror or str(exc) or type(exc).__name__
    hint = ""
    if isinstance(exc, PermissionError):
        hint = ": check the owner and permissions of the data dir"
    elif exc.errno == 28:  # ENOSPC
        hint = ": free some space and run it again"
    return StorageError(f"{action} failed{where}: {reason}{hint}")


@contextmanager
def on_disk(action: str) -> Iterator[None]:
    """Turn an ``OSError`` while ``action`` (disk full, permission denied, a file gone) into a
    :class:`StorageError` naming the file; a :class:`SocdefError` passes unchanged."""
    try:
        yield
    except SocdefError:
        raise
    except OSError as exc:
        raise os_failure(action, exc) from exc
