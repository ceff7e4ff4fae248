"""Writing a build's objects, and the two extension points of the build.

A *sink* sees every day of records (newest first) and then writes data objects; a *derived
stage* runs once the build id is known, with a reader over the data objects. Adding an output to
the build is one sink or stage plus one line in ``generator/build.py``'s tables.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from exports.model import IOCRecord
from worker import layout
from worker.storage import Build

if TYPE_CHECKING:
    from generator.store import Store


class ObjectWriter:
    """Writes content-addressed objects under ``root/objects`` and remembers their keys."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects: dict[str, list] = {}

    def put(self, key: str, data: bytes) -> None:
        if key in self.objects:
            raise ValueError(f"two producers for one build object: {key}")
        sha = hashlib.sha256(data).hexdigest()
        self.objects[key] = [sha, len(data)]
        path = self.root / layout.object_key(sha)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{sha}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)


@dataclass(frozen=True, slots=True)
class BuildInfo:
    generated_at: int
    source_name: str
    store: Store  # the store being built (articles, per-source state)


@dataclass(frozen=True, slots=True)
class DerivedInfo:
    build: Build  # a reader over the data objects, with the final build id
    views: list[str]  # every non-empty view
    source_name: str


class RecordSink(Protocol):
    def add_day(self, day: str, records: list[IOCRecord]) -> None: ...

    def finish(self, out: ObjectWriter, info: BuildInfo) -> None: ...
