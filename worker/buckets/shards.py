"""Reading the search shards of a build (written by ``generator/build/search_index.py``).

A lookup reads 16 bytes of ``shards.idx`` and then the one shard (a byte range of
``shards.dat``, a few KB) that holds a hash prefix, keeps the lines that start with it
and, for the records it answers with, reads their rendered JSON lines by byte range from the
day partitions. Nothing is rendered here.

The shards are a *base* a build may carry from the build before it, plus a *delta*
(``shards.delta.dat`` and ``.idx``, cut into the base's shards): the entries that differ from
the base and tombstones (``hash\ttype``) for the base's entries gone. A lookup reads the delta
shard too (16 bytes of its index and its range, when the build has one) and merges: a delta line
replaces the base line of its (hash, type), a tombstone removes it.
"""

from __future__ import annotations

import time
from array import array
from dataclasses import dataclass

from worker.buckets import days
from worker.buckets.storage import Build
from worker.contract import layout
from worker.errors import Unavailable

JSON_VARIANT = "json"
_TYPE_CODES = {name: i for i, name in enumerate(layout.IOC_TYPES)}


@dataclass(frozen=True, slots=True)
class Entry:
    hash: str
    type: str
    confidence: str
    first_seen: int
    last_seen: int
    sightings: int
    ref: str
    related: tuple[str, ...]

    @classmethod
    def parse(cls, line: str) -> Entry:
        h, type_, confidence, first, last, sightings, ref, related = line.split("\t")
        return cls(
            h,
            type_,
            confidence,
            int(first),
            int(last),
            int(sightings),
            ref,
            tuple(related.split(",")) if related else (),
        )


def prefix_hex(build: Build) -> int:
    def load() -> int:
        meta = build.read_json(layout.SEARCH_META_KEY)
        if not isinstance(meta, dict) or build.ref(layout.SEARCH_SHARDS_KEY) is None:
            raise Unavailable("The published build has no search index; rebuild and publish.")
        return int(meta["prefix_hex"])

    return build.cached("search:prefix_hex", load)


def _range(build: Build, data_key: str, offsets_key: str, number: int) -> bytes:
    bounds = array("Q")
    bounds.frombytes(build.read_range(offsets_key, number * 8, number * 8 + 16))
    return build.read_range(data_key, bounds[0], bounds[1])


def shard(build: Build, hash_prefix: str) -> bytes:
    """The bytes of the one base shard that holds every hash starting with ``hash_prefix``."""
    number = int(hash_prefix[: prefix_hex(build)], 16)
    return _range(build, layout.SEARCH_SHARDS_KEY, layout.SEARCH_OFFSETS_KEY, number)


def delta_shard(build: Build, hash_prefix: str) -> bytes:
    """The bytes of the delta shard of ``hash_prefix`` (empty: the build has no delta)."""
    if build.ref(layout.SEARCH_DELTA_KEY) is None:
        return b""
    number = int(hash_prefix[: prefix_hex(build)], 16)
    return _range(build, layout.SEARCH_DELTA_KEY, layout.SEARCH_DELTA_OFFSETS_KEY, number)


def _key(line: str) -> str:
    """``hash\ttype`` of an entry or tombstone line."""
    head, _, rest = line.partition("\t")
    return f"{head}\t{rest.partition(chr(9))[0]}"


def _order(line: str) -> tuple[str, int]:
    return line[:64], _TYPE_CODES.get(line[65:].partition("\t")[0], len(_TYPE_CODES))


def merged(base: list[str], delta: list[str]) -> list[str]:
    """The lines of a base shard with its delta applied, sorted by (hash, type)."""
    found = {_key(line): line for line in base}
    for line in delta:
        key = _key(line)
        if line.count("\t") == 1:  # a tombstone
            found.pop(key, None)
        else:
            found[key] = line
    return sorted(found.values(), key=_order)


def entries(build: Build, hash_prefix: str) -> list[Entry]:
    """Every entry whose hash starts with ``hash_prefix`` (lowercase hex, at least L long)."""
    text = shard(build, hash_prefix).decode("utf-8")
    lines = [line for line in text.splitlines() if line.startswith(hash_prefix)]
    delta = delta_shard(build, hash_prefix).decode("utf-8")
    if delta:
        changed = [line for line in delta.splitlines() if line.startswith(hash_prefix)]
        if changed:
            lines = merged(lines, changed)
    return [Entry.parse(line) for line in lines]


def _day(day_number: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(day_number * layout.DAY_SECONDS))


def record_json(build: Build, ref: str) -> bytes:
    """The spec ``IOC`` object of the record at ``ref`` (``<day number>.<line>``), as stored."""
    day_number, _, line = ref.partition(".")
    data = days.line(build, _day(int(day_number)), JSON_VARIANT, int(line))
    return data[:-1] if data.endswith(b",") else data
