"""The store's history in the bucket: each publish uploads the live generation, ingest and build
restore the latest one, so no machine holds the only copy.

Bucket layout, beside the builds::

    store/current.json                 the store pointer (below)
    store/generations/<store_id>.json  one generation: its files, row counts, parent
    store/objects/<sh>/<sha256>        the files' bytes, content-addressed

A generation is the live folder of the local store (``articles.parquet``, ``sightings.parquet``,
``revisions.parquet``, ``state.json``). Its id is ``<as_of as UTC>-<hash>``, the hash taken over
its files, counts and parent, e.g. ``20261207T170000Z-3f2a9c1b7d40``. Only files whose bytes the
bucket lacks are sent; a publish whose store is unchanged writes nothing.

The pointer names the live generation and keeps the newest ``keep`` ids in ``history``; it is
switched after the build pointer, with a conditional write on the version read before anything
was sent (S3 ``If-Match`` / ``If-None-Match: *``; a folder bucket compares under a lock), so
two racing publishes cannot both advance it. The local store records, in ``store/SYNCED``, the
generation it was restored from or last published as: a publish whose store does not descend
from the bucket's live generation is refused (:class:`StoreMoved`) before anything is sent.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.errors import CorruptFile, SocdefError
from generator.publish.folder import RETRY_EXIT, Destination, PointerMoved, PublishError
from generator.publish.headers import IMMUTABLE, SHORT
from generator.store.generations import Store

STORE_POINTER = "store/current.json"
KEEP_STORES = 24  # a day of hourly runs
MIN_KEEP = 2
SHRINK_LIMIT = 0.5  # a build from fewer than half the published store's sightings is refused

Progress = Callable[[str, int, int], None]
Note = Callable[[str], None]


def generation_key(store_id: str) -> str:
    return f"store/generations/{store_id}.json"


def object_key(sha256: str) -> str:
    return f"store/objects/{sha256[:2]}/{sha256}"


class StoreMoved(PublishError):
    """The bucket's store moved on past the generation the local store descends from."""

    exit_code = RETRY_EXIT


class StoreRefused(SocdefError):
    """The local store would lose the bucket's history (empty, or much smaller)."""


@dataclass(frozen=True, slots=True)
class Generation:
    """One store generation as the bucket records it."""

    store_id: str
    as_of: int | None
    articles: int
    sightings: int
    files: dict[str, list[Any]]  # name → [sha256, size]
    parent: str | None

    def body(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of,
            "articles": self.articles,
            "sightings": self.sightings,
            "files": self.files,
            "parent": self.parent,
        }

    @classmethod
    def of(cls, data: dict[str, Any]) -> Generation:
        return cls(
            str(data["store_id"]),
            data.get("as_of"),
            int(data.get("articles", 0)),
            int(data.get("sightings", 0)),
            {str(k): list(v) for k, v in data["files"].items()},
            data.get("parent"),
        )


@dataclass(frozen=True, slots=True)
class Pointer:
    """The bucket's store pointer as read (``live`` is None when the bucket has no store)."""

    live: Generation | None
    history: list[str]
    version: str | None


@dataclass(frozen=True, slots=True)
class StoreUpload:
    store_id: str
    uploaded: int
    skipped: int
    uploaded_bytes: int
    removed: int = 0
    changed: bool = True


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What ``sync`` did: ``none`` (no history in the bucket), ``kept`` (the local store is the
    bucket's or newer), ``restored`` or ``fresh`` (told to start without the history)."""

    action: str
    store_id: str | None = None
    downloaded: int = 0
    reused: int = 0
    downloaded_bytes: int = 0


@dataclass(slots=True)
class Plan:
    """A store upload prepared before the build goes up."""

    store: Store
    dest: Destination
    pointer: Pointer
    generation: Generation
    paths: dict[str, Path] = field(default_factory=dict)  # sha256 → local file

    @property
    def changed(self) -> bool:
        live = self.pointer.live
        return live is None or live.files != self.generation.files


# --- reading the bucket ----------------------------------------------------------------------
def read_pointer(dest: Destination) -> Pointer:
    raw, version = dest.get_versioned(STORE_POINTER)
    if raw is None:
        return Pointer(None, [], None)
    try:
        data = json.loads(raw)
        history = data["history"]
        if not (isinstance(history, list) and all(isinstance(h, str) for h in history)):
            raise TypeError("history")
        return Pointer(Generation.of(data), history, version)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise PublishError(
            f"the bucket's store pointer {STORE_POINTER} is damaged (not a JSON object with a "
            f"store_id, files and a history list); point it at a kept generation "
            "(docs/deploy.md, Recovery) or delete it, then publish again"
        ) from None


def read_generation(dest: Destination, store_id: str) -> Generation:
    raw = dest.get(generation_key(store_id))
    if raw is None:
        raise StoreRefused(
            f"the bucket holds no store generation {store_id} ({generation_key(store_id)} is "
            "missing); the kept ones are listed in store/current.json's history"
        )
    try:
        return Generation.of({**json.loads(raw), "store_id": store_id})
    except (ValueError, KeyError, TypeError, AttributeError):
        raise CorruptFile(f"the store generation {generation_key(store_id)} is damaged") from None


# --- the local generation --------------------------------------------------------------------
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def local_generation(store: Store, parent: str | None) -> tuple[Generation, dict[str, Path]]:
    """The live local generation as the bucket would record it, and its files by hash."""
    paths: dict[str, Path] = {}
    files: dict[str, list[Any]] = {}
    for name, path in store.files().items():
        sha = _sha256(path)
        paths[sha] = path
        files[name] = [sha, path.stat().st_size]
    articles, sightings = store.counts()
    as_of = store.state().get("as_of")
    body = {
        "as_of": as_of,
        "articles": articles,
        "sightings": sightings,
        "files": files,
        "parent": parent,
    }
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12]
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(as_of or 0))
    return Generation(f"{stamp}-{digest}", as_of, articles, sightings, files, parent), paths


# --- publishing ------------------------------------------------------------------------------
def prepare(store: Store, dest: Destination) -> Plan:
    """Read the store pointer and check the local store descends from its live generation;
    :class:`StoreMoved` (nothing sent yet) when another publish advanced it meanwhile."""
    if not store.exists():
        raise StoreRefused(f"no store in {store.root} to upload; run `socdef ingest` first")
    pointer = read_pointer(dest)
    live = pointer.live
    if live is not None and store.synced() != live.store_id and not _adoptable(store, live):
        raise StoreMoved(
            f"the bucket's store moved on to {live.store_id} after this store was taken from "
            f"{store.synced() or 'elsewhere'}; nothing was published: run `socdef ingest` "
            "again (it restores the newer store and merges the sources into it), then build "
            "and publish"
        )
    generation, paths = local_generation(store, live.store_id if live else None)
    return Plan(store, dest, pointer, generation, paths)


def _adoptable(store: Store, live: Generation) -> bool:
    """A store with no record of the bucket (made before the store was kept there) may go on
    top of the bucket's when it is at least as recent and not much smaller."""
    if store.synced() is not None:
        return False
    articles, sightings = store.counts()
    return (store.state().get("as_of") or 0) >= (live.as_of or 0) and not _shrunk(
        sightings, live.sightings
    )


def upload(plan: Plan, *, jobs: int = 8, progress: Progress | None = None) -> StoreUpload:
    """Send the files the bucket lacks and the generation record (the pointer stays)."""
    gen = plan.generation
    if not plan.changed:
        return StoreUpload(gen.store_id, 0, len(gen.files), 0, changed=False)
    present = plan.dest.sizes("store/objects/")
    wanted = {object_key(sha): (sha, size) for sha, size in gen.files.values()}
    missing = sorted(k for k, (_, size) in wanted.items() if present.get(k) != size)
    if progress:
        progress("store", 0, len(missing))

    def send(key: str) -> int:
        data = plan.paths[wanted[key][0]].read_bytes()
        plan.dest.put(key, data, content_type="application/octet-stream", cache_control=IMMUTABLE)
        return len(data)

    sent = _in_pool(send, missing, jobs, "store", progress)
    record = json.dumps(gen.body(), sort_keys=True).encode()
    plan.dest.put(
        generation_key(gen.store_id),
        record,
        content_type="application/json",
        cache_control=IMMUTABLE,
    )
    return StoreUpload(gen.store_id, len(missing), len(wanted) - len(missing), sent)


def switch(
    plan: Plan,
    sent: StoreUpload,
    *,
    keep: int = KEEP_STORES,
    clock: Callable[[], float] = time.time,
) -> StoreUpload:
    """Switch the store pointer (conditional on the version read in :func:`prepare`), record
    the generation in the local store and remove generations beyond ``keep``."""
    gen = plan.generation
    if not plan.changed:
        live = plan.pointer.live
        assert live is not None
        plan.store.mark_synced(live.store_id)
        return StoreUpload(live.store_id, 0, sent.skipped, 0, changed=False)
    history = [gen.store_id] + [h for h in plan.pointer.history if h != gen.store_id]
    history = history[: max(MIN_KEEP, keep)]
    pointer = {**gen.body(), "store_id": gen.store_id, "history": history}
    pointer["published_at"] = int(clock())
    try:
        plan.dest.swap(
            STORE_POINTER,
            json.dumps(pointer, sort_keys=True).encode(),
            plan.pointer.version,
            content_type="application/json",
            cache_control=SHORT,
        )
    except PointerMoved:
        raise StoreMoved(
            f"{STORE_POINTER} changed while publishing (another publish advanced the store "
            "first); the build pointer already names this build, the store was not advanced: "
            "run `socdef ingest` again (it restores the newer store and merges the sources "
            "into it), then build and publish"
        ) from None
    plan.store.mark_synced(gen.store_id)
    removed = prune(plan.dest, history, [h for h in plan.pointer.history if h not in history])
    return StoreUpload(gen.store_id, sent.uploaded, sent.skipped, sent.uploaded_bytes, removed)


def prune(dest: Destination, history: list[str], dropped: list[str]) -> int:
    """Remove the ``dropped`` generations' records and the files only they used.

    Only generations this publish dropped from the pointer's history are touched: the record
    and files of a publish still in flight (not in any history yet) are never removed. A
    record whose generation never reached the pointer (its publish failed) stays behind.
    """
    gone: set[str] = set()
    for store_id in dropped:
        gone.update(_files_of(dest, store_id))
    for store_id in history:
        gone.difference_update(_files_of(dest, store_id))
    removed = dest.delete_many(sorted(generation_key(h) for h in dropped))
    return removed + dest.delete_many(sorted(gone))


def _files_of(dest: Destination, store_id: str) -> set[str]:
    raw = dest.get(generation_key(store_id))
    if raw is None:
        return set()
    return {object_key(sha) for sha, _ in json.loads(raw)["files"].values()}


def _in_pool(
    work: Callable[[str], int],
    keys: Iterable[str],
    jobs: int,
    stage: str,
    progress: Progress | None,
) -> int:
    todo = list(keys)
    done = total = 0
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix=stage) as pool:
        for size in pool.map(work, todo):
            done, total = done + 1, total + size
            if progress:
                progress(stage, done, len(todo))
    return total


# --- restoring -------------------------------------------------------------------------------
def sync(
    store: Store,
    dest: Destination,
    *,
    fresh: bool = False,
    generation: str | None = None,
    jobs: int = 8,
    progress: Progress | None = None,
    note: Note | None = None,
) -> SyncResult:
    """Bring the local store level with the bucket's before an ingest or a build.

    Restores the live generation (or ``generation``, one the pointer keeps) when the local
    store is missing, descends from an older generation, or (with no record of the bucket) is
    older; refuses an empty local store while the bucket holds history, unless ``fresh``.
    """
    pointer = read_pointer(dest)
    live = pointer.live
    if live is None:
        if generation is not None:
            raise StoreRefused(f"the bucket holds no store history to restore {generation} from")
        return SyncResult("none")
    if generation is not None:
        return restore(store, dest, read_generation(dest, generation), live, jobs, progress, note)
    if fresh:
        store.mark_synced(live.store_id)  # the next publish replaces the bucket's history
        return SyncResult("fresh", live.store_id)
    if not store.exists():
        return restore(store, dest, live, live, jobs, progress, note)
    base = store.synced()
    if base == live.store_id:
        return SyncResult("kept", base)
    articles, _ = store.counts()
    if articles == 0 and live.articles > 0:
        raise StoreRefused(
            f"the local store {store.root} is empty but the bucket holds {live.articles} "
            f"articles (store {live.store_id}); move {store.root} away to restore them, or "
            "pass --fresh to start over without that history (docs/deploy.md, Recovery)"
        )
    if base is None and (store.state().get("as_of") or 0) >= (live.as_of or 0):
        return SyncResult("kept", None)
    return restore(store, dest, live, live, jobs, progress, note)


def restore(
    store: Store,
    dest: Destination,
    gen: Generation,
    live: Generation,
    jobs: int,
    progress: Progress | None,
    note: Note | None,
) -> SyncResult:
    """Make ``gen`` the live local generation; files the local store already holds are copied,
    the others downloaded and checked against their hash. The local store then descends from
    ``live`` (the bucket's live generation), so the next publish goes on top of it."""
    local = {_sha256(p): p for p in store.files().values()}
    size = sum(s for _, s in gen.files.values())
    if note:
        note(f"restoring store {gen.store_id} ({len(gen.files)} files, {size / 1e6:.1f} MB)")
    todo = sorted({sha for sha, _ in gen.files.values() if sha not in local})
    blobs = {sha: local[sha].read_bytes() for sha, _ in gen.files.values() if sha in local}
    if progress:
        progress("restore", 0, len(todo))

    def fetch(sha: str) -> int:
        data = dest.get(object_key(sha))
        if data is None or hashlib.sha256(data).hexdigest() != sha:
            problem = "missing" if data is None else "damaged (its hash does not match)"
            raise CorruptFile(
                f"the store object {object_key(sha)} of generation {gen.store_id} is {problem}; "
                "restore an older kept generation with --store-generation (docs/deploy.md)"
            )
        blobs[sha] = data
        return len(data)

    got = _in_pool(fetch, todo, jobs, "restore", progress)
    store.install({name: blobs[sha] for name, (sha, _) in gen.files.items()})
    store.mark_synced(live.store_id)
    if note:
        reused = len(gen.files) - len(todo)
        note(f"restored store {gen.store_id}: {len(todo)} files downloaded, {reused} reused")
    return SyncResult("restored", gen.store_id, len(todo), len(gen.files) - len(todo), got)


# --- the size check --------------------------------------------------------------------------
def _shrunk(local: int, published: int) -> bool:
    return published > 0 and local < published * SHRINK_LIMIT


def check_size(store: Store, dest: Destination) -> None:
    """Refuse a store with fewer than ``SHRINK_LIMIT`` of the published store's sightings."""
    live = read_pointer(dest).live
    if live is None:
        return
    _, sightings = store.counts()
    if _shrunk(sightings, live.sightings):
        raise StoreRefused(
            f"the store holds {sightings} sightings, fewer than {SHRINK_LIMIT:.0%} of the "
            f"{live.sightings} of the published store {live.store_id}: a lost or damaged "
            "store would withdraw most indicators from readers; restore it (docs/deploy.md, "
            "Recovery) or pass --force to build it anyway"
        )
