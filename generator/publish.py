"""Publish: copy a build into a bucket and switch the pointer to it.

Order makes the switch atomic for readers: first every object the bucket lacks (objects are
content-addressed, so an object already there is never sent again), then the build's manifest,
then the one small pointer ``current.json``. Until the pointer moves, readers keep the old build
whole; afterwards they see the new one whole. Re-running an interrupted publish skips what
already arrived. Old builds beyond ``keep`` are removed after the switch, together with the
objects no kept build references.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from worker import layout

Progress = Callable[[str, int, int], None]


class PublishError(RuntimeError):
    """The build or the destination is not usable."""


class Destination(Protocol):
    def exists(self, key: str) -> bool: ...

    def put(self, key: str, data: bytes, *, content_type: str, cache_control: str) -> None: ...

    def get(self, key: str) -> bytes | None: ...

    def delete(self, key: str) -> None: ...

    def keys(self, prefix: str) -> Iterator[str]: ...


class LocalDestination:
    """A bucket that is a folder; each write lands whole via rename."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def exists(self, key: str) -> bool:
        return (self.root / key).exists()

    def put(self, key: str, data: bytes, *, content_type: str, cache_control: str) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def get(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def keys(self, prefix: str) -> Iterator[str]:
        base = self.root / prefix
        if base.is_dir():
            for path in sorted(base.rglob("*")):
                if path.is_file() and not path.name.startswith("."):
                    yield path.relative_to(self.root).as_posix()


@dataclass(frozen=True, slots=True)
class PublishResult:
    build_id: str
    uploaded: int
    skipped: int
    removed: int


IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=30"


def latest_build(build_dir: Path) -> str:
    try:
        return (build_dir / "LATEST").read_text().strip()
    except FileNotFoundError:
        raise PublishError(f"no build found in {build_dir}; run `socdef build` first") from None


def publish(
    build_dir: str | os.PathLike[str],
    dest: Destination,
    *,
    build_id: str | None = None,
    keep: int = 3,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.time,
) -> PublishResult:
    src = Path(build_dir)
    build_id = build_id or latest_build(src)
    manifest_raw = _read(src / layout.manifest_key(build_id))
    manifest = json.loads(manifest_raw)
    uploaded = skipped = 0
    shas = sorted({sha for sha, _ in manifest["objects"].values()})
    for done, sha in enumerate(shas, 1):
        key = layout.object_key(sha)
        if dest.exists(key):
            skipped += 1
        else:
            dest.put(key, _read(src / key), content_type="application/octet-stream",
                     cache_control=IMMUTABLE)
            uploaded += 1
        if progress:
            progress("objects", done, len(shas))
    dest.put(layout.manifest_key(build_id), manifest_raw, content_type="application/json",
             cache_control=IMMUTABLE)
    history = _switch(dest, build_id, manifest["generated_at"], keep, clock)
    removed = _prune(dest, history)
    return PublishResult(build_id, uploaded, skipped, removed)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise PublishError(f"build is incomplete: {path} is missing") from None


def _switch(dest: Destination, build_id: str, generated_at: int, keep: int,
            clock: Callable[[], float]) -> list[str]:
    old = dest.get(layout.POINTER_KEY)
    history = json.loads(old).get("history", []) if old else []
    history = [build_id] + [b for b in history if b != build_id]
    history = history[: max(1, keep)]
    pointer = {
        "build_id": build_id,
        "generated_at": generated_at,
        "published_at": int(clock()),
        "history": history,
    }
    dest.put(layout.POINTER_KEY, json.dumps(pointer, sort_keys=True).encode(),
             content_type="application/json", cache_control=SHORT)
    return history


def _prune(dest: Destination, history: list[str]) -> int:
    """Remove manifests outside ``history`` and the objects only they referenced."""
    removed = 0
    kept = {layout.manifest_key(b) for b in history}
    live: set[str] = set()
    for key in kept:
        raw = dest.get(key)
        if raw is not None:
            live.update(layout.object_key(sha) for sha, _ in json.loads(raw)["objects"].values())
    for key in list(dest.keys("builds/")):
        if key not in kept:
            dest.delete(key)
            removed += 1
    for key in list(dest.keys("objects/")):
        if key not in live:
            dest.delete(key)
            removed += 1
    return removed
