"""Writing a build's objects, and the two extension points of the build.

A *sink* sees every day of records (newest first) and then writes data objects; a *derived
stage* runs once the build id is known, with a reader over the data objects. Adding an output to
the build is one sink or stage plus one line in ``generator/build.py``'s tables.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

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
        self._folders: set[str] = set()  # object folders known to exist

    def put(self, key: str, data: bytes | bytearray | memoryview) -> None:
        """Store ``data`` (bytes, or a C-contiguous byte view) under ``key``."""
        if key in self.objects:
            raise ValueError(f"two producers for one build object: {key}")
        sha = hashlib.sha256(data).hexdigest()
        self.objects[key] = [sha, data.nbytes if isinstance(data, memoryview) else len(data)]
        # os.path on strings: a big build writes tens of thousands of objects
        path = os.path.join(self.root, layout.object_key(sha))
        if os.path.exists(path):
            return
        folder = os.path.dirname(path)
        if folder not in self._folders:
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)
        tmp = os.path.join(folder, f".{sha}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
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


@runtime_checkable
class RenderedSink(RecordSink, Protocol):
    """A sink that also reads the day's rendered lines (variant → one line per record), so it
    need not render a variant again."""

    def add_rendered(self, day: str, records: list[IOCRecord],
                     rendered: Mapping[str, list[bytes]]) -> None: ...
