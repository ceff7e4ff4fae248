"""Reading the search shards of a build (written by ``generator/build/search_index.py``).

A lookup reads 16 bytes of ``shards.idx`` and then the one shard (a byte range of
``shards.dat``, a few KB) that holds a hash prefix, keeps the lines that start with it
and, for the records it answers with, reads their rendered JSON lines by byte range from the
day partitions. Nothing is rendered here.
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


def shard(build: Build, hash_prefix: str) -> bytes:
    """The bytes of the one shard that holds every hash starting with ``hash_prefix``."""
    number = int(hash_prefix[: prefix_hex(build)], 16)
    bounds = array("Q")
    bounds.frombytes(build.read_range(layout.SEARCH_OFFSETS_KEY, number * 8, number * 8 + 16))
    return build.read_range(layout.SEARCH_SHARDS_KEY, bounds[0], bounds[1])


def entries(build: Build, hash_prefix: str) -> list[Entry]:
    """Every entry whose hash starts with ``hash_prefix`` (lowercase hex, at least L long)."""
    text = shard(build, hash_prefix).decode("utf-8")
    return [Entry.parse(line) for line in text.splitlines() if line.startswith(hash_prefix)]


def _day(day_number: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(day_number * layout.DAY_SECONDS))


def record_json(build: Build, ref: str) -> bytes:
    """The spec ``IOC`` object of the record at ``ref`` (``<day number>.<line>``), as stored."""
    day_number, _, line = ref.partition(".")
    data = days.line(build, _day(int(day_number)), JSON_VARIANT, int(line))
    return data[:-1] if data.endswith(b",") else data
