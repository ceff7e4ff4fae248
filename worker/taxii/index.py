"""Slicing a precomputed TAXII collection: which entries a page holds, and their bytes.

A collection is a list of fixed-size entries in ``date_added`` order (``index/<k>.bin``
partitions, and one such file per STIX type for ``match[type]``; entries whose build date is
in ``taxii/dead.bin`` are no longer served and skipped) plus a small ``meta.json`` holding the
``date_added`` of every ``CHUNK``-th entry (its *fences*). A page request finds its first entry from the fences and one
index partition, reads the following entries in one range, and the objects (or manifest
records) of those entries as coalesced byte ranges of at most two data chunks. Its cost is the
page plus one index partition, whatever the collection's size. ``match[id]`` goes through the
id index instead (a small file of the newest rows, then a fence list of UUIDs and one block of
sorted rows of its base): the object's build date, then its entry found by that date.
"""

from __future__ import annotations

import bisect
import dataclasses
import heapq
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

from worker.buckets.storage import Build
from worker.contract import taxii_common as tc
from worker.errors import NotFound
from worker.taxii.params import Filters

Entry = tuple[int, int, int, int, int, int, int, int]  # see taxii_common.ENTRY
DATE = struct.Struct("<q")  # the first field of an entry
MAX_SCAN = 20_000  # entries one page may skip over for filters the index cannot answer
WINDOW = tc.CHUNK
OBJECT_ID = re.compile(
    r"([a-z0-9-]+)--([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
)


@dataclass(frozen=True, slots=True)
class Seq:
    """One entry file of a collection: all its entries, or those of one STIX type."""

    key: str  # the file, or with ``part`` the base of its partitions' keys
    count: int
    fences: list[int]
    last: int  # date_added of its final served entry (-1 when none)
    part: int = 0  # entries per partition (0: one object)


@dataclass(frozen=True, slots=True)
class Page:
    entries: list[Entry]
    more: bool
    cursor: int | None  # date_added of the last entry considered, when ``more``


def meta(build: Build, name: str) -> dict[str, Any]:
    key = tc.collection_key(name, "meta.json")
    # the build writes a collection's meta.json as one JSON object
    found = build.cached(key, lambda: cast("dict[str, Any] | None", build.read_json(key)))
    if found is None:
        raise NotFound("This build has no TAXII collections; rebuild and publish.")
    return found


def sequences(build: Build, name: str, types: tuple[str, ...] | None) -> list[Seq]:
    """The entry files to merge: the whole index, or one per requested type it holds."""
    m = meta(build, name)
    held = m["types"]
    part = int(m.get("part", 0))
    if types is None or set(held) <= set(types):
        key = tc.collection_key(name, "index" if part else "index.bin")
        return [Seq(key, m["count"], m["fences"], m.get("last", -1), part)]
    return [
        Seq(
            tc.type_index_key(name, t)[: -len(".bin")] if part else tc.type_index_key(name, t),
            held[t]["count"],
            held[t]["fences"],
            held[t]["last"],
            part,
        )
        for t in sorted(set(types) & set(held))
    ]


def dead(build: Build) -> frozenset[int]:
    """Build dates of the entries no longer served (kept in place in the entry files)."""
    return build.cached(
        tc.DEAD_KEY,
        lambda: frozenset(d for (d,) in DATE.iter_unpack(build.read(tc.DEAD_KEY) or b"")),
    )


def entries(build: Build, seq: Seq, lo: int, hi: int) -> list[Entry]:
    size = tc.ENTRY.size
    hi = min(hi, seq.count)
    if not seq.part:
        return list(tc.ENTRY.iter_unpack(build.read_range(seq.key, lo * size, hi * size)))
    out: list[Entry] = []
    while lo < hi:
        k = lo // seq.part
        end = min(hi, (k + 1) * seq.part)
        at = k * seq.part
        raw = build.read_range(tc.part_key(seq.key, k), (lo - at) * size, (end - at) * size)
        out += tc.ENTRY.iter_unpack(raw)
        lo = end
    return out


def first_at_or_after(build: Build, seq: Seq, lower: int) -> int:
    """Position of the first entry whose date_added is ``lower`` or more."""
    chunk = max(0, bisect.bisect_right(seq.fences, lower) - 1)
    if chunk + 1 == len(seq.fences) and lower > seq.last:
        return seq.count
    size = tc.ENTRY.size
    lo = chunk * tc.CHUNK
    hi = min(lo + tc.CHUNK, seq.count)
    if seq.part:  # the window lies in one partition (a partition is whole CHUNKs)
        k = lo // seq.part
        at = k * seq.part
        raw = build.read_range(tc.part_key(seq.key, k), (lo - at) * size, (hi - at) * size)
    else:
        raw = build.read_range(seq.key, lo * size, hi * size)
    at = bisect.bisect_left(
        range(len(raw) // size), lower, key=lambda j: DATE.unpack_from(raw, j * size)[0]
    )
    return lo + at


def scan(build: Build, seq: Seq, lower: int, first: int) -> Iterator[Entry]:
    """Entries from date_added ``lower`` on: ``first`` of them, then a window at a time."""
    pos = first_at_or_after(build, seq, lower)
    size = first
    while pos < seq.count:
        yield from entries(build, seq, pos, pos + size)
        pos += size
        size = WINDOW


def _keep(e: Entry, f: Filters, floor: int, gone: frozenset[int]) -> bool:
    return (
        (e[1] >= floor or e[7] in tc.TIMELESS)
        and (f.versions is None or e[1] in f.versions)
        and e[0] not in gone
    )


def select(build: Build, name: str, f: Filters, floor: int, cap: int | None = None) -> Page:
    """The entries of one page of collection ``name`` for these filters and lookback floor;
    none with a build date above ``cap`` (the visible end, worker/taxii_epochs.py)."""
    if not f.spec_ok:
        return Page([], False, None)
    if f.ids is not None:
        return select_ids(build, name, f, floor, cap)
    if f.after + 1 >= floor:
        return _select(build, name, f, floor, cap)
    # Below the lookback floor only the objects the others refer to are served (TIMELESS): a
    # few hundred, read through their type indexes; then the page goes on from the floor.
    # (Every other object's build date is at or after its ``modified``, so none lies below.)
    wanted = f.types or tc.STIX_TYPES
    timeless = tuple(t for t in wanted if tc.TYPE_CODES.get(t, -1) in tc.TIMELESS)
    head = Page([], False, None)
    if timeless:
        below = floor - 1 if cap is None else min(cap, floor - 1)
        head = _select(build, name, dataclasses.replace(f, types=timeless), 0, below)
        if head.more or len(head.entries) == f.limit:
            last = head.entries[-1][0] if head.entries else head.cursor
            return Page(head.entries, True, head.cursor if head.more else last)
    rest = dataclasses.replace(f, after=floor - 1, limit=f.limit - len(head.entries))
    tail = _select(build, name, rest, floor, cap)
    return Page(head.entries + tail.entries, tail.more, tail.cursor)


def _select(build: Build, name: str, f: Filters, floor: int, cap: int | None) -> Page:
    seqs = [s for s in sequences(build, name, f.types) if s.count]
    lower = max(f.after + 1, floor)
    if cap is not None:
        seqs = [_capped(s, cap) for s in seqs]
    if len(seqs) == 1:
        return _select_one(build, seqs[0], lower, f, floor)
    streams = [_upto(scan(build, s, lower, f.limit), s.last) for s in seqs]
    merged = streams[0] if len(streams) == 1 else heapq.merge(*streams)
    picked: list[Entry] = []
    last = None
    gone = dead(build)
    for scanned, e in enumerate(merged, 1):
        last = e[0]
        if _keep(e, f, floor, gone):
            picked.append(e)
        if len(picked) == f.limit or scanned >= MAX_SCAN:
            more = any(s.last > last for s in seqs)
            return Page(picked, more, last if more else None)
    return Page(picked, False, None)


def _capped(seq: Seq, cap: int) -> Seq:
    """``seq`` seen up to build date ``cap``: its last entry is the last at or below it."""
    if seq.last <= cap:
        return seq
    return Seq(seq.key, seq.count, seq.fences, min(seq.last, cap), seq.part)


def _upto(stream: Iterator[Entry], last: int) -> Iterator[Entry]:
    for e in stream:
        if e[0] > last:
            return
        yield e


def _select_one(build: Build, seq: Seq, lower: int, f: Filters, floor: int) -> Page:
    """``select`` over one entry file: whole windows at a time (the common, hot case)."""
    pos = first_at_or_after(build, seq, lower)
    picked: list[Entry] = []
    size, scanned = f.limit, 0
    gone = dead(build)
    while pos < seq.count:
        batch = entries(build, seq, pos, pos + size)
        if batch and batch[-1][0] > seq.last:  # past the visible end
            batch = [e for e in batch if e[0] <= seq.last]
            if not batch:
                break
        kept = [e for e in batch if _keep(e, f, floor, gone)]
        if len(picked) + len(kept) >= f.limit:
            picked += kept[: f.limit - len(picked)]
            last = picked[-1][0]
            return Page(picked, seq.last > last, last if seq.last > last else None)
        picked += kept
        pos += len(batch)
        scanned += len(batch)
        if batch[-1][0] >= seq.last:
            break
        if scanned >= MAX_SCAN and pos < seq.count:
            return Page(picked, True, batch[-1][0])
        size = WINDOW
    return Page(picked, False, None)


def select_ids(build: Build, name: str, f: Filters, floor: int, cap: int | None = None) -> Page:
    """Objects named by ``match[id]`` (or the object-by-id path) that pass the other filters."""
    found: dict[int, Entry] = {}
    for oid in f.ids or ():
        e = entry_of(build, name, oid)
        if (
            e is not None
            and e[0] > f.after
            and (cap is None or e[0] <= cap)
            and _keep(e, f, floor, frozenset())
            and (f.types is None or tc.STIX_TYPES[e[7]] in f.types)
        ):
            found[e[0]] = e
    ordered = [found[d] for d in sorted(found)]
    more = len(ordered) > f.limit
    page = ordered[: f.limit]
    return Page(page, more, page[-1][0] if more else None)


def entry_of(build: Build, name: str, oid: str) -> Entry | None:
    """The entry of object ``oid`` in collection ``name``, or None."""
    found = OBJECT_ID.fullmatch(oid)
    if found is None or found.group(1) not in tc.TYPE_CODES:
        return None
    raw_uuid, type_code = (
        bytes.fromhex(found.group(2).replace("-", "")),
        tc.TYPE_CODES[found.group(1)],
    )
    if "log" not in meta(build, tc.ALL_COLLECTION):
        return _entry_by_position(build, name, raw_uuid, type_code)
    row = _new_ids(build).get((raw_uuid, type_code)) or _id_row(build, raw_uuid, type_code)
    if row is None:
        return None
    ioc_code, date = row
    if not (
        name == tc.ALL_COLLECTION
        or ioc_code == tc.EVERY_COLLECTION
        or tc.COLLECTIONS.index(name) - 1 == ioc_code
    ):
        return None
    # the entry with that build date (none: the row names an object no longer served)
    seq = sequences(build, name, None)[0]
    pos = first_at_or_after(build, seq, date)
    if pos >= seq.count:
        return None
    e = entries(build, seq, pos, pos + 1)[0]
    return e if e[0] == date and date not in dead(build) else None


OLD_ID_ENTRY = struct.Struct("<16sBBII")  # before logs: UUID, types, position in all, in its own


def _entry_by_position(build: Build, name: str, raw_uuid: bytes, type_code: int) -> Entry | None:
    """``entry_of`` in a build published before TAXII logs (its id index holds positions)."""
    row = _id_row(build, raw_uuid, type_code, OLD_ID_ENTRY)
    if row is None:
        return None
    ioc_code, pos_all, pos_own = row
    if name == tc.ALL_COLLECTION or ioc_code == tc.EVERY_COLLECTION:
        pos = pos_all
    elif tc.COLLECTIONS.index(name) - 1 == ioc_code:
        pos = pos_own
    else:
        return None
    seq = sequences(build, name, None)[0]
    return entries(build, seq, pos, pos + 1)[0]


def _id_fences(build: Build) -> list[bytes]:
    def load() -> list[bytes]:
        raw = build.read(tc.ID_FENCE_KEY) or b""
        return [raw[i : i + 16] for i in range(0, len(raw), 16)]

    return build.cached(tc.ID_FENCE_KEY, load)


def _new_ids(build: Build) -> dict[tuple[bytes, int], tuple[int, int]]:
    """The rows the id index's base lacks (``ids.new.bin``, small): read once per build."""

    def load() -> dict[tuple[bytes, int], tuple[int, int]]:
        raw = build.read(tc.ID_NEW_KEY) or b""
        return {(u, t): (c, d) for u, t, c, d in tc.ID_ENTRY.iter_unpack(raw)}

    return build.cached(tc.ID_NEW_KEY, load)


def _id_row(
    build: Build, raw_uuid: bytes, type_code: int, row: struct.Struct = tc.ID_ENTRY
) -> tuple[int, ...] | None:
    """The fields after UUID and type of the base row for this object, or None."""
    ref = build.ref(tc.ID_INDEX_KEY)
    if ref is None or ref.size == 0:
        return None
    size = row.size
    block = max(0, bisect.bisect_right(_id_fences(build), raw_uuid) - 1)
    lo = block * tc.ID_BLOCK
    hi = min(ref.size // size, lo + tc.ID_BLOCK)
    raw = build.read_range(tc.ID_INDEX_KEY, lo * size, hi * size)
    rows = list(row.iter_unpack(raw))
    at = bisect.bisect_left(rows, (raw_uuid, type_code), key=lambda r: (r[0], r[1]))
    if at < len(rows) and rows[at][0] == raw_uuid and rows[at][1] == type_code:
        return tuple(rows[at][2:])
    return None


def page_bytes(build: Build, name: str, picked: list[Entry], kind: str) -> bytes:
    """The comma-terminated objects (``kind`` ``obj``) or manifest records (``man``) of a page.

    The entries of a per-type collection name the chunks of ``all`` (its meta's ``data``), which
    hold every object once."""
    data = meta(build, name).get("data", name)
    at = 3 if kind == "obj" else 5
    runs: dict[int, list[tuple[int, int]]] = {}  # chunk → its coalesced ranges, in page order
    order: list[int] = []
    for e in picked:
        chunk, start, end = e[2], e[at], e[at + 1]
        spans = runs.get(chunk)
        if spans is None:
            spans = runs[chunk] = []
        if order and order[-1] == chunk and spans[-1][1] == start:
            spans[-1] = (spans[-1][0], end)
        else:
            if not order or order[-1] != chunk:
                order.append(chunk)
            spans.append((start, end))
    if len(order) == len(runs):  # each chunk's ranges are one stretch of the page
        return b"".join(build.read_ranges(tc.chunk_key(data, kind, c), runs[c]) for c in order)
    return b"".join(  # pragma: no cover - date order visits each chunk in one stretch
        build.read_range(tc.chunk_key(data, kind, c), s, t)
        for c, s, t in _in_page_order(picked, at)
    )


def _in_page_order(picked: list[Entry], at: int) -> list[tuple[int, int, int]]:
    runs: list[list[int]] = []
    for e in picked:
        start, end = e[at], e[at + 1]
        if runs and runs[-1][0] == e[2] and runs[-1][2] == start:
            runs[-1][2] = end
        else:
            runs.append([e[2], start, end])
    return [(c, s, t) for c, s, t in runs]
