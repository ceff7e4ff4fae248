"""TAXII's data chunks as an append-only log, carried from the build folder's previous build.

A collection is a log by ``date_added``: a publish adds object versions at its end. The data
chunks of ``all`` (``taxii/c/all/obj/<k>.dat`` and ``man/<k>.dat``) follow it: chunk ``k`` holds
log positions ``k·PER … k·PER + PER - 1``, each object (and manifest record) followed by ``,``.
A build reads the previous build's log (its ``all`` entries, id index and chunk texts):

- an object the previous build served with the same bytes and ``modified`` keeps its build
  date and its place (chunk and byte ranges);
- every other object (new, or changed in place: a new context or confidence without a new
  ingest) is *appended*: build dates after every date the log ever held
  (``max(own date, last + 1 + i)``), bytes after the last chunk's;
- what the previous build served and this one does not (superseded or aged out) stays in its
  chunk as dead bytes no entry names.

So every chunk but the last is byte for byte the previous build's, and a publish uploads the
last chunk (and the new ones) only. When fewer than half of the log's objects are still served
the log is *compacted*: laid out again from position 0 in date order, dates kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from generator.build import changes
from generator.build.sinks import ObjectWriter
from worker.buckets.storage import Build
from worker.contract import taxii_common as tc

PER = tc.CHUNK  # log positions (objects, served or dead) per data chunk
ENTRY_DTYPE = np.dtype(
    [
        ("date", "<i8"),
        ("modified", "<i8"),
        ("chunk", "<u4"),
        ("os", "<u4"),
        ("oe", "<u4"),
        ("ms", "<u4"),
        ("me", "<u4"),
        ("type", "<u4"),
    ]
)
ID_DTYPE = np.dtype([("uuid", "V16"), ("type", "u1"), ("coll", "u1"), ("date", "<i8")])
assert ENTRY_DTYPE.itemsize == tc.ENTRY.size and ID_DTYPE.itemsize == tc.ID_ENTRY.size


@dataclass
class Log:
    """The previous build's log: its served entries (in ``all``'s order) and their keys."""

    build: Build
    chunks: int  # data chunks of all
    tail: int  # log positions in the last chunk (1 … PER)
    last: int  # the latest build date the log ever held
    entries: np.ndarray  # ENTRY_DTYPE, one per served object, in date order
    file_dates: np.ndarray  # build dates of every entry of all's entry file, served or dead
    keys: np.ndarray  # 17 bytes per entry: UUID, STIX type code
    ids: np.ndarray  # the base of its id index (ID_DTYPE rows)

    @property
    def positions(self) -> int:
        return (self.chunks - 1) * PER + self.tail if self.chunks else 0

    def text(self, kind: str, chunk: int) -> bytes:
        return self.build.read(tc.chunk_key(tc.ALL_COLLECTION, kind, chunk)) or b""

    def entry_file(self, name: str, stix_type: str | None) -> list[bytes] | None:
        """The partitions of an entry file of the previous build (None: it has none)."""
        meta = self.build.read_json(tc.collection_key(name, "meta.json"))
        if not isinstance(meta, dict) or "part" not in meta:
            return None
        if stix_type is None:
            base, count = tc.collection_key(name, "index"), int(meta["count"])
        elif stix_type in meta["types"]:
            base = tc.type_index_key(name, stix_type)[: -len(".bin")]
            count = int(meta["types"][stix_type]["count"])
        else:
            return None
        return [
            self.build.read(tc.part_key(base, k)) or b""
            for k in range((count + tc.PART - 1) // tc.PART)
        ]


class Parts:
    """An entry file written as partitions of ``tc.PART`` entries (each partition a framed
    object, so the full ones a later build carries stay byte for byte the same)."""

    def __init__(self, out: ObjectWriter, base: str) -> None:
        self.out, self.base = out, base
        self.buf = bytearray()
        self.count = 0
        self.part = 0
        self.fences: list[int] = []  # build date of every CHUNK-th entry

    def add(self, entries: bytes | bytearray | memoryview) -> None:
        n = len(entries) // tc.ENTRY.size
        if not n:
            return
        dates = np.frombuffer(entries, ENTRY_DTYPE)["date"]
        self.fences += dates[(-self.count) % tc.CHUNK :: tc.CHUNK].tolist()
        self.count += n
        self.buf += entries
        step = tc.PART * tc.ENTRY.size
        while len(self.buf) >= step:
            self.out.put(tc.part_key(self.base, self.part), bytes(self.buf[:step]))
            del self.buf[:step]
            self.part += 1

    def close(self) -> None:
        if self.buf:
            self.out.put(tc.part_key(self.base, self.part), bytes(self.buf))
            self.buf = bytearray()


def keys_of(uuids: bytes | bytearray | memoryview, types: np.ndarray) -> np.ndarray:
    """17-byte keys (the 16 bytes of a UUID, then the STIX type code), one per object."""
    n = len(types)
    out = np.empty((n, 17), np.uint8)
    out[:, :16] = np.frombuffer(uuids, np.uint8, 16 * n).reshape(n, 16)
    out[:, 16] = types
    return out.view("S17").ravel() if n else np.empty(0, "S17")


def previous(root: Path) -> Log | None:
    """The log of the build folder's latest build (None: none, or one written before logs)."""
    try:
        previous_build = changes.previous_build(Path(root))
        if previous_build is None:
            return None
        build = previous_build[1]
        meta = build.read_json(tc.collection_key(tc.ALL_COLLECTION, "meta.json"))
        if not isinstance(meta, dict) or not isinstance(meta.get("log"), dict):
            return None
        log = meta["log"]
        if "part" not in meta:
            return None
        count = int(meta["count"])
        index = b"".join(
            build.read(tc.part_key(tc.collection_key(tc.ALL_COLLECTION, "index"), k)) or b""
            for k in range((count + tc.PART - 1) // tc.PART)
        )
        gone = np.frombuffer(build.read(tc.DEAD_KEY) or b"", "<i8")
        base = np.frombuffer(build.read(tc.ID_INDEX_KEY) or b"", ID_DTYPE)
        new = np.frombuffer(build.read(tc.ID_NEW_KEY) or b"", ID_DTYPE)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    every = np.frombuffer(index, ENTRY_DTYPE)
    if len(every) != count:
        return None
    entries = every[~np.isin(every["date"], gone)] if len(gone) else every
    # each entry's UUID: the row with its build date (build dates are never reused)
    rows = np.concatenate([base, new])
    at = np.minimum(np.searchsorted(entries["date"], rows["date"]), max(len(entries) - 1, 0))
    hit = (entries["date"][at] == rows["date"]) if len(entries) else np.zeros(len(rows), bool)
    uuids = np.empty(len(entries), "V16")
    found = np.zeros(len(entries), bool)
    uuids[at[hit]] = rows["uuid"][hit]
    found[at[hit]] = True
    if not found.all():
        return None
    types = entries["type"].astype(np.uint8)
    return Log(
        build,
        int(log["chunks"]),
        int(log["tail"]),
        int(log["last"]),
        entries,
        every["date"].copy(),
        keys_of(uuids.tobytes(), types),
        base,
    )


def meta_of(chunks: int, tail: int, last: int) -> dict[str, int]:
    """What ``all``'s meta.json records of its log (``"log"``), for the next build."""
    return {"per": PER, "chunks": chunks, "tail": tail, "last": last}
