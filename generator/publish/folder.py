"""The folder destination of ``socdef publish``, what every destination offers, and the errors
every destination raises."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Protocol

from generator.errors import SocdefError


class PublishError(SocdefError, RuntimeError):
    """The build or the destination is not usable."""


RETRY_EXIT = 75  # EX_TEMPFAIL: another publish won the race; run again on top of it


class PointerMoved(PublishError):
    """Another publish switched the pointer after this one read it; nothing was switched."""

    exit_code = RETRY_EXIT

    def __init__(self, key: str) -> None:
        super().__init__(
            f"{key} changed while publishing (another publish won); re-run to publish on top of it"
        )


class Destination(Protocol):
    """A bucket the publisher writes to (``LocalDestination``, ``generator.publish.s3.S3Destination``).

    ``encodes`` says whether the bucket can store an object compressed with a
    ``Content-Encoding`` header (a folder cannot). ``get`` returns decoded bytes;
    ``get_stored`` the bytes as the build wrote them (an object stored compressed stays
    compressed), which is what content-addressed keys hash.
    """

    encodes: bool

    def sizes(self, prefix: str) -> dict[str, int]: ...

    def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str,
        cache_control: str,
        content_encoding: str | None = None,
    ) -> None: ...

    def get(self, key: str) -> bytes | None: ...

    def get_stored(self, key: str) -> bytes | None: ...

    def get_versioned(self, key: str) -> tuple[bytes | None, str | None]: ...

    def swap(
        self, key: str, data: bytes, expected: str | None, *, content_type: str, cache_control: str
    ) -> None: ...

    def delete_many(self, keys: Iterable[str]) -> int: ...


_TEMPORARY = re.compile(r"\..+\.(\d+)\.\d+\.tmp")  # LocalDestination.put's naming


def _running(pid: int) -> bool:
    """Whether ``pid`` is this process or another live one (then its files may be in use)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def version_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


class LocalDestination:
    """A bucket that is a folder; each write lands whole via rename."""

    encodes = False  # a file carries no Content-Encoding: everything is stored as is

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def sizes(self, prefix: str) -> dict[str, int]:
        base = self.root / prefix
        if not base.is_dir():
            return {}
        return {
            path.relative_to(self.root).as_posix(): path.stat().st_size
            for path in base.rglob("*")
            if path.is_file() and not path.name.startswith(".")
        }

    def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str,
        cache_control: str,
        content_encoding: str | None = None,
    ) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(data)}.tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def remove_stale_temporary(self) -> int:
        """Remove the temporary files (``.NAME.PID.N.tmp``) of publishes that are no longer
        running, such as one killed mid-upload; answer how many. A running publish's files,
        and files of any other naming, are left alone."""
        if not self.root.is_dir():
            return 0
        removed = 0
        for path in self.root.rglob(".*.tmp"):
            match = _TEMPORARY.fullmatch(path.name)
            if match is None or not path.is_file() or _running(int(match.group(1))):
                continue
            with suppress(FileNotFoundError):
                path.unlink()
                removed += 1
        return removed

    def get(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            return None

    def get_stored(self, key: str) -> bytes | None:
        return self.get(key)  # a folder has no coding layer: files hold the build's bytes

    def get_versioned(self, key: str) -> tuple[bytes | None, str | None]:
        data = self.get(key)
        return data, None if data is None else version_of(data)

    def swap(
        self, key: str, data: bytes, expected: str | None, *, content_type: str, cache_control: str
    ) -> None:
        """Replace ``key`` only if it still has version ``expected`` (None: still absent)."""
        with self._locked():
            if self.get_versioned(key)[1] != expected:
                raise PointerMoved(key)
            self.put(key, data, content_type=content_type, cache_control=cache_control)

    def delete_many(self, keys: Iterable[str]) -> int:
        removed = 0
        for key in keys:
            try:
                (self.root / key).unlink()
                removed += 1
            except FileNotFoundError:
                pass
        return removed

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".publish.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
