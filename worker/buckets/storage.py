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
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from worker.contract import coded, framing, layout

if TYPE_CHECKING:  # the signed pointer's check imports cryptography: only when configured
    from worker.buckets.trust import PointerTrust

log = logging.getLogger("socdef.storage")
NOTHING_PUBLISHED = "no build has been published yet"
PINNED_KEPT = 4  # earlier builds kept in memory for paging clients
BUILD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # a name, never a path
T = TypeVar("T")


class StorageError(RuntimeError):
    """The bucket is unreadable or holds no published build."""


class NoBuild(StorageError):
    """The bucket answers but holds no published build yet."""


class BadPointer(StorageError):
    """The bucket answers, but its pointer or the manifest it names is missing or unreadable."""


class Bucket(Protocol):
    """Where builds are read from: ``get`` a whole small object (the pointer, a manifest) or
    bytes [start, end) of an object whose total ``size`` the caller knows from the manifest.
    Backends: this folder, ``worker.buckets.remote`` (S3, an HTTP origin) behind ``worker.buckets.cache``."""

    def get(self, key: str) -> bytes | None: ...

    def get_range(self, key: str, start: int, end: int, size: int | None = None) -> bytes: ...


class LocalBucket:
    """A folder laid out as in :mod:`worker.contract.layout`; objects are memory-mapped once
    (``mapped``: a server reads the same objects again and again), or, for a reader that passes
    over many objects once (a build reading the build it follows), read by range from the file
    each time, so the pages it touched do not stay in its memory."""

    def __init__(self, root: str | os.PathLike[str], *, mapped: bool = True) -> None:
        self.root = Path(root)
        self.mapped = mapped
        self._maps: dict[str, mmap.mmap | bytes] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            return None

    def get_range(self, key: str, start: int, end: int, size: int | None = None) -> bytes:
        if not self.mapped:
            with open(self.root / key, "rb") as fh:
                return os.pread(fh.fileno(), max(0, end - start), start)
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
    sha256: str  # of the object in the bucket
    size: int  # bytes of its text (what a reader addresses)
    stored: int = -1  # bytes in the bucket when framed (worker/contract/framing.py), else -1
    # stored compressed whole (worker/contract/coded.py): the coding, the bytes in the bucket
    # and the SHA-256 of the text
    coding: str | None = None
    packed: int = -1
    text_sha256: str = ""

    @property
    def stored_size(self) -> int:
        """The size of the object in the bucket."""
        if self.coding is not None:
            return self.packed
        return self.stored if self.stored >= 0 else self.size

    @property
    def text_tag(self) -> str:
        """The strong ETag of the object's text (its identity representation)."""
        return f'"{(self.text_sha256 or self.sha256)[:32]}"'


def _ref(sha256: str, size: int, framed: int | None, coding: list[Any] | None) -> ObjectRef:
    """The reference of a manifest entry (``objects``, ``framed`` and ``coded`` sections)."""
    if framed is not None:
        return ObjectRef(sha256, framed, size)
    if coding is not None:
        return ObjectRef(sha256, coding[2], -1, coding[0], size, coding[1])
    return ObjectRef(sha256, size)


class Blocks:
    """The text blocks of framed objects lately read, under a byte budget (least recently used
    first out). Keyed by object hash and block number: objects are immutable, so a block stays
    good across builds."""

    def __init__(self, budget: int = 64 << 20) -> None:
        self.budget = budget
        self.used = 0
        self._kept: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int]) -> bytes | None:
        with self._lock:
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
            return found

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
            self.used = 0

    def put(self, key: tuple[str, int], block: bytes) -> None:
        with self._lock:
            if key in self._kept or len(block) > self.budget:
                return
            self._kept[key] = block
            self.used += len(block)
            while self.used > self.budget:
                _, dropped = self._kept.popitem(last=False)
                self.used -= len(dropped)


BLOCKS = Blocks()
# The texts of objects stored compressed, inflated for clients that refuse compression
# (``Build.text``): once per object and process while they fit, keyed by object hash.
TEXTS = Blocks()


class Build:
    """One published build: logical keys resolved through its manifest."""

    def __init__(self, bucket: Bucket, manifest: dict[str, Any]) -> None:
        self.bucket = bucket
        self.build_id: str = manifest["build_id"]
        self.generated_at: int = manifest["generated_at"]
        framed: dict[str, int] = manifest.get("framed") or {}
        coded: dict[str, list[Any]] = manifest.get("coded") or {}
        self.objects = {
            k: _ref(v[0], v[1], framed.get(k), coded.get(k)) for k, v in manifest["objects"].items()
        }
        self.pointer: dict[str, Any] = {}  # the pointer that named it (publish facts, see taxii)
        self._cache: dict[str, Any] = {}
        # whole answers, see worker.endpoints.iocs
        self.responses: dict[tuple[Any, ...], tuple[bytes, str, dict[str, str]]] = {}

    def ref(self, key: str) -> ObjectRef | None:
        return self.objects.get(key)

    def read(self, key: str) -> bytes | None:
        ref = self.objects.get(key)
        if ref is None:
            return None
        if ref.size == 0:
            return b""
        if ref.stored >= 0:
            return self._text(ref, 0, ref.size)
        if ref.coding is not None:
            return coded.decompress(self.packed(ref))
        return self.bucket.get_range(layout.object_key(ref.sha256), 0, ref.size, ref.size)

    def text(self, key: str) -> bytes | None:
        """``read``, for an answer sent whole to a client that refuses compression: the text of
        an object stored compressed is inflated once and kept (``TEXTS``) while it fits."""
        ref = self.objects.get(key)
        if ref is None or ref.coding is None:
            return self.read(key)
        found = TEXTS.get((ref.sha256, 0))
        if found is None:
            found = coded.decompress(self.packed(ref))
            TEXTS.put((ref.sha256, 0), found)
        return found

    def packed(self, ref: ObjectRef) -> bytes:
        """The stored bytes of a compressed object (``ref.coding``), as they are."""
        return self.bucket.get_range(layout.object_key(ref.sha256), 0, ref.packed, ref.packed)

    def read_range(self, key: str, start: int, end: int) -> bytes:
        ref = self.objects[key]
        if ref.coding is not None:  # never read by range: a slice of the whole text
            return (self.read(key) or b"")[start:end]
        if ref.stored >= 0:
            return self._text(ref, start, end)
        return self.bucket.get_range(layout.object_key(ref.sha256), start, end, ref.size)

    def read_ranges(self, key: str, spans: list[tuple[int, int]]) -> bytes:
        """The ranges ``spans`` of one object, joined: for a framed object each block is
        looked up once, however many ranges it holds (a TAXII page of one type reads hundreds
        of small ranges of a data chunk)."""
        ref = self.objects[key]
        if ref.coding is not None:
            whole = self.read(key) or b""
            return b"".join(whole[s:e] for s, e in spans)
        if ref.stored < 0:
            okey = layout.object_key(ref.sha256)
            return b"".join(self.bucket.get_range(okey, s, e, ref.size) for s, e in spans)
        block = framing.BLOCK
        held: dict[int, bytes] = {}
        out = []
        for start, end in spans:
            first = start // block
            if first != (end - 1) // block:
                out.append(self._text(ref, start, end))
                continue
            text = held.get(first)
            if text is None:
                text = held[first] = self._text(ref, first * block, (first + 1) * block)
            out.append(text[start - first * block : end - first * block])
        return b"".join(out)

    def _text(self, ref: ObjectRef, start: int, end: int) -> bytes:
        """Bytes ``start … end`` of the text of a framed object: the blocks they touch, from
        the block cache or read as one range of the stored object and inflated."""
        end = min(end, ref.size)
        if start >= end:
            return b""
        key = layout.object_key(ref.sha256)

        def get(lo: int, hi: int) -> bytes:
            return self.bucket.get_range(key, lo, hi, ref.stored)

        table = self.cached(f"framing:{ref.sha256}", lambda: framing.Table.read(get, ref.stored))
        first, last = start // table.block, (end - 1) // table.block
        blocks: list[bytes | None] = [BLOCKS.get((ref.sha256, k)) for k in range(first, last + 1)]
        missing = [k for k, b in enumerate(blocks) if b is None]
        if missing:
            lo, hi = table.span(first + missing[0], first + missing[-1])
            packed = memoryview(get(lo, hi))
            for k in missing:
                a, b = table.span(first + k, first + k)
                blocks[k] = text = framing.inflate(packed[a - lo : b - lo])
                BLOCKS.put((ref.sha256, first + k), text)
        skip = start - first * table.block
        if first == last:
            return cast(bytes, blocks[0])[skip : skip + end - start]
        return b"".join(cast("list[bytes]", blocks))[skip : skip + end - start]

    def cached(self, name: str, make: Callable[[], T]) -> T:
        """Memoise a value derived from this (immutable) build."""
        # a name is always made by the same ``make``, so the kept value has its type
        value: T | None = self._cache.get(name)
        if value is None:
            value = self._cache[name] = make()
        return value

    def forget(self) -> None:
        """Drop what :meth:`cached` keeps: for a reader that passes over the build once, a part
        at a time (a build reading the day partitions of the build it follows)."""
        self._cache.clear()

    def read_json(self, key: str) -> object | None:
        raw = self.read(key)
        return None if raw is None else json.loads(raw)


class BuildSource:
    """Follows the bucket's pointer and keeps the current :class:`Build` in memory.

    Once a build is loaded it is served until a valid pointer names another readable build: a
    pointer that is unreadable, deleted, not JSON or without a ``build_id``, or that names a
    manifest which is missing or unreadable leaves the loaded build in place. ``problem`` then
    says why (for ``/healthz``); it is logged once when it appears or changes, and once more
    when a valid pointer is back. Without a loaded build such a pointer is a
    :class:`StorageError` (:class:`NoBuild` when there is no pointer at all).

    With ``trust`` (a public key is configured), a pointer is followed only when it is signed
    and does not go back (``worker.buckets.trust``); a refused one is logged as an error and
    leaves the loaded build in place like any other unfollowable pointer.
    """

    def __init__(
        self,
        bucket: Bucket,
        *,
        pointer_ttl: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        trust: PointerTrust | None = None,
    ) -> None:
        self.bucket = bucket
        self.trust = trust
        self.pointer_ttl = pointer_ttl
        self.clock = clock
        self._build: Build | None = None
        self._checked = float("-inf")
        self._lock = threading.Lock()
        self.problem: str | None = None  # why the pointer was not followed, safe to show
        self._pinned: dict[str, Build] = {}  # earlier builds a paging client still reads

    def current(self) -> Build:
        now = self.clock()
        if self._build is not None and now - self._checked < self.pointer_ttl:
            return self._build
        with self._lock:
            if self._build is None or now - self._checked >= self.pointer_ttl:
                self._refresh(now)  # once, however many requests waited for the lock
        if self._build is None:
            raise NoBuild(NOTHING_PUBLISHED)
        return self._build

    def pinned(self, build_id: str) -> Build | None:
        """Build ``build_id`` while the bucket still holds it (the current one, or one of the
        ``keep_builds`` kept after a publish), for paging that must stay on the build it began
        on; None when it is gone or not a build name. The last few are kept in memory."""
        current = self.current()
        if build_id == current.build_id:
            return current
        found = self._pinned.get(build_id)
        if found is not None or not BUILD_ID.fullmatch(build_id):
            return found
        try:
            manifest = self.bucket.get(layout.manifest_key(build_id))
            build = None if manifest is None else Build(self.bucket, json.loads(manifest))
        except (ValueError, KeyError, TypeError, AttributeError, IndexError):
            return None
        if build is None or build.build_id != build_id:
            return None
        if len(self._pinned) >= PINNED_KEPT:
            self._pinned.pop(next(iter(self._pinned)))
        self._pinned[build_id] = build
        return build

    @property
    def build_id(self) -> str | None:
        """The id of the loaded build, None before one is loaded."""
        return self._build.build_id if self._build is not None else None

    def preload(self) -> threading.Thread:
        """Load the current build now, in the background, rather than on the first request: a
        worker process that has not answered anything yet still holds the last good build when
        the pointer breaks later. Failures are reported like any refresh's."""

        def load() -> None:
            try:
                self.current()
            except StorageError:
                pass  # reported by _refresh; the next request tries again
            except Exception:
                log.exception("loading the current build failed")

        thread = threading.Thread(target=load, name="socdef-preload", daemon=True)
        thread.start()
        return thread

    def _refresh(self, now: float) -> None:
        self._checked = now
        try:
            build = self._follow()
        except _Unfollowable as exc:
            self._report(exc.shown, exc.logged, exc.level)
            if self._build is None:
                raise exc.kind(exc.shown) from None
            return
        if build is not None:
            self._build = build
        self._report(None, "")

    def _follow(self) -> Build | None:
        """The build the pointer names; None when it is the loaded one."""
        try:
            raw = self.bucket.get(layout.POINTER_KEY)
        except (StorageError, OSError) as exc:
            raise _Unfollowable(
                "the pointer could not be read (the bucket did not answer)", str(exc), StorageError
            ) from exc
        if raw is None:
            raise _Unfollowable(
                NOTHING_PUBLISHED
                if self._build is None
                else f"the pointer {layout.POINTER_KEY} is missing",
                "",
                NoBuild,
            )
        build_id = _pointer_build_id(raw)
        facts = self._trusted(raw)
        if self._build is not None and self._build.build_id == build_id:
            if facts is not None and self.trust is not None:
                self.trust.accepted(facts)
            return None
        where = f"the manifest of build {build_id}"
        try:
            manifest = self.bucket.get(layout.manifest_key(build_id))
        except (StorageError, OSError) as exc:
            raise _Unfollowable(
                f"{where} could not be read (the bucket did not answer)", str(exc), StorageError
            ) from exc
        if manifest is None:
            raise _Unfollowable(f"the pointer names build {build_id} whose manifest is missing", "")
        if facts is not None and self.trust is not None:
            self._check_manifest(facts, manifest)
        try:
            build = Build(self.bucket, json.loads(manifest))
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            raise _Unfollowable(f"{where} is not a valid manifest", repr(exc)) from exc
        if build.build_id != build_id:
            raise _Unfollowable(f"{where} names build {build.build_id!r}", "")
        build.pointer = json.loads(raw)
        if facts is not None and self.trust is not None:
            self.trust.accepted(facts)
        return build

    def _trusted(self, raw: bytes) -> Any:
        """The signed facts of the pointer ``raw`` (``trust.Accepted``), None without a
        ``trust``; a pointer it refuses is unfollowable."""
        if self.trust is None:
            return None
        from worker.buckets.trust import PointerRefused

        try:
            return self.trust.check(self.bucket, raw)
        except PointerRefused as exc:
            raise _Unfollowable(
                f"the pointer {layout.POINTER_KEY} was refused: {exc}", "", level=logging.ERROR
            ) from None
        except (StorageError, OSError) as exc:
            raise _Unfollowable(
                "the pointer's signature could not be read (the bucket did not answer)",
                str(exc),
                StorageError,
            ) from exc

    @staticmethod
    def _check_manifest(facts: Any, manifest: bytes) -> None:
        from worker.buckets.trust import PointerRefused, check_manifest

        try:
            check_manifest(facts, manifest)
        except PointerRefused as exc:
            raise _Unfollowable(
                f"the pointer {layout.POINTER_KEY} was refused: {exc}", "", level=logging.ERROR
            ) from None

    def _report(self, problem: str | None, detail: str, level: int = logging.WARNING) -> None:
        """Log a change of ``problem`` (once, not per request) and keep it for ``/healthz``."""
        if problem == self.problem:
            return
        before, self.problem = self.problem, problem
        serving = self._build.build_id if self._build is not None else None
        if problem is None and before == NOTHING_PUBLISHED:
            log.info("a build has been published: serving build %s", serving)
        elif problem is None:
            log.warning("pointer valid again: serving build %s", serving)
        elif serving is not None:
            log.log(
                level,
                "%s%s; still serving build %s",
                problem,
                f" ({detail})" if detail else "",
                serving,
            )
        else:
            log.log(level, "%s%s", problem, f" ({detail})" if detail else "")


class _Unfollowable(Exception):
    """Why the pointer could not be followed: ``shown`` (no bucket address, for ``/healthz``),
    ``logged`` (the underlying error), ``kind``: what it is when no build is loaded."""

    def __init__(
        self,
        shown: str,
        logged: str,
        kind: type[StorageError] = BadPointer,
        *,
        level: int = logging.WARNING,
    ) -> None:
        super().__init__(shown)
        self.shown, self.logged, self.kind, self.level = shown, logged, kind, level


def _pointer_build_id(raw: bytes) -> str:
    """The ``build_id`` of a pointer's bytes, or ``_Unfollowable`` (truncated, not JSON, an
    HTML error page an origin answered with 200, no ``build_id``, not a plain name)."""
    try:
        build_id = json.loads(raw).get("build_id")
    except (ValueError, AttributeError) as exc:
        raise _Unfollowable(
            f"the pointer {layout.POINTER_KEY} is not a JSON object",
            f"{exc}; starts {bytes(raw[:60])!r}",
        ) from exc
    if not isinstance(build_id, str) or not BUILD_ID.fullmatch(build_id):
        raise _Unfollowable(
            f"the pointer {layout.POINTER_KEY} names no valid build_id", f"build_id {build_id!r}"
        )
    return build_id
