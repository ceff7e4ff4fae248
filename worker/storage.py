"""Reading published builds: a bucket interface, the local-folder bucket and a build reader.

Builds are immutable, so everything read through a :class:`Build` is cached for the life of the
process under the build id; only the pointer (``current.json``) is re-read, at most every
``pointer_ttl`` seconds.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from worker import layout

log = logging.getLogger("socdef.storage")

class StorageError(RuntimeError):
    """The bucket is unreadable or holds no published build."""


class NoBuild(StorageError):
    """The bucket answers but holds no published build yet."""


class Bucket(Protocol):
    """Where builds are read from: ``get`` a whole small object (the pointer, a manifest) or
    bytes [start, end) of an object whose total ``size`` the caller knows from the manifest.
    Backends: this folder, ``worker.remote`` (S3, an HTTP origin) behind ``worker.cache``."""

    def get(self, key: str) -> bytes | None: ...

    def get_range(self, key: str, start: int, end: int, size: int | None = None) -> bytes: ...


class LocalBucket:
    """A folder laid out as in :mod:`worker.layout`; objects are memory-mapped once."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._maps: dict[str, mmap.mmap | bytes] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            return None

    def get_range(self, key: str, start: int, end: int, size: int | None = None) -> bytes:
        return self._map(key)[start:end]

    def _map(self, key: str) -> mmap.mmap | bytes:
        found = self._maps.get(key)
        if found is None:
            with self._lock:
                found = self._maps.get(key) or self._open(key)
                self._maps[key] = found
        return found

    def _open(self, key: str) -> mmap.mmap | bytes:
        with open(self.root / key, "rb") as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                return b""
            return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)


@dataclass(frozen=True, slots=True)
class ObjectRef:
    sha256: str
    size: int


class Build:
    """One published build: logical keys resolved through its manifest."""

    def __init__(self, bucket: Bucket, manifest: dict) -> None:
        self.bucket = bucket
        self.build_id: str = manifest["build_id"]
        self.generated_at: int = manifest["generated_at"]
        self.objects = {k: ObjectRef(v[0], v[1]) for k, v in manifest["objects"].items()}
        self._cache: dict[str, object] = {}
        self.responses: dict[tuple, tuple[bytes, str]] = {}  # whole answers, see worker.iocs

    def ref(self, key: str) -> ObjectRef | None:
        return self.objects.get(key)

    def read(self, key: str) -> bytes | None:
        ref = self.objects.get(key)
        if ref is None:
            return None
        if ref.size == 0:
            return b""
        return self.bucket.get_range(layout.object_key(ref.sha256), 0, ref.size, ref.size)

    def read_range(self, key: str, start: int, end: int) -> bytes:
        ref = self.objects[key]
        return self.bucket.get_range(layout.object_key(ref.sha256), start, end, ref.size)

    def cached(self, name: str, make: Callable[[], object]) -> object:
        """Memoise a value derived from this (immutable) build."""
        value = self._cache.get(name)
        if value is None:
            value = self._cache[name] = make()
        return value

    def read_json(self, key: str) -> object | None:
        raw = self.read(key)
        return None if raw is None else json.loads(raw)


class BuildSource:
    """Follows the bucket's pointer and keeps the current :class:`Build` in memory."""

    def __init__(
        self, bucket: Bucket, *, pointer_ttl: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.bucket = bucket
        self.pointer_ttl = pointer_ttl
        self.clock = clock
        self._build: Build | None = None
        self._checked = float("-inf")
        self._lock = threading.Lock()

    def current(self) -> Build:
        now = self.clock()
        if self._build is not None and now - self._checked < self.pointer_ttl:
            return self._build
        with self._lock:
            if self._build is None or now - self._checked >= self.pointer_ttl:
                self._refresh(now)  # once, however many requests waited for the lock
        if self._build is None:
            raise NoBuild("no build has been published yet")
        return self._build

    def _refresh(self, now: float) -> None:
        try:
            raw = self.bucket.get(layout.POINTER_KEY)
        except StorageError as exc:
            if self._build is None:
                raise
            log.warning("pointer unreadable, still serving %s: %s", self._build.build_id, exc)
            raw = None
        self._checked = now
        if raw is None:
            return
        build_id = json.loads(raw)["build_id"]
        if self._build is not None and self._build.build_id == build_id:
            return
        manifest = self.bucket.get(layout.manifest_key(build_id))
        if manifest is None:
            raise StorageError(f"pointer names build {build_id} whose manifest is missing")
        self._build = Build(self.bucket, json.loads(manifest))
