"""The search index: every record under the SHA-256 of its normalised value, in prefix shards.

A build sink. Each record becomes one entry, keyed by ``search_hash(normalise(value))`` (see
:mod:`worker.contract.ioc_norm`), in the shard named by the first ``L`` hex characters of that hash.
``L`` grows with the number of records so that a shard holds about ``TARGET_PER_SHARD``
entries or fewer (1M records: ``L`` = 4, 65,536 shards of about 4 KB); it never exceeds 4, so
a range query's 5-hex prefix always lies inside one shard.

The shards are packed, in prefix order, into one object ``iocs/search/shards.dat``;
``iocs/search/shards.idx`` holds the ``16**L + 1`` byte offsets (uint64 LE), so shard ``s`` is
``dat[idx[s]:idx[s + 1]]`` and a lookup reads 16 bytes of the index and then that one shard.
(One object per shard would cost one file or one PUT per shard and a manifest entry each:
65,536 of them at 1M records.) ``iocs/search/meta.json`` records ``L``.

An entry is one tab-separated line, entries sorted by hash (then type) within a shard::

    hash  type  confidence  first_seen  last_seen  sightings  ref  related

``ref`` points at the record's rendered JSON line: ``<day number>.<line>``, the UTC day
(Unix seconds // 86400) of its partition ``iocs/day/<day>/json.dat`` and its line there. A
record's JSON is stored once, in its day partition; the entry only points at it, as views do.
``related`` is up to ``MAX_RELATED`` comma-separated refs of other records mentioned by the
same articles, newest first (record order).

**A base and a delta.** Those three objects are a *base* that later builds in the same build
folder keep byte for byte (same SHA-256: a publish does not upload them again). A build that
follows one with a base (:func:`generator.build.changes.previous_manifest`, so also a build
after the change-feed restore on a new machine) lays its entries out in the base's shards and
compares them, shard by shard, with the base's (each block of the base inflated once): every
entry whose line differs from the base's (new, or changed for any reason: confidence,
last_seen, a ref) goes to ``iocs/search/shards.delta.dat``, and every base entry the build no
longer has gets a *tombstone* there, ``hash  type`` alone. The delta's lines are sorted by
(hash, type) within the base's shards; ``iocs/search/shards.delta.idx`` holds its ``16**L + 1``
offsets, as ``shards.idx`` does for the base. An empty delta is not written. A reader merges the
base shard with its delta shard: a delta line replaces the base line of its (hash, type), a
tombstone deletes it (``worker/buckets/shards.py``). When the delta would hold more than
``1 / COMPACT_AT`` of the base's entries the build writes a new base (and no delta) instead;
it also does when the delta of the first ``1 / PEEK`` of the shards, times ``PEEK``, passes
3/4 of that bound (hashes are spread evenly over the shards), so it seldom compares all the
shards before making the lines again for a new base.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import time
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from exports.model import IOCRecord
from generator.build import changes
from generator.build.sinks import BuildInfo, ObjectWriter
from worker.buckets.storage import Build
from worker.contract import framing, layout
from worker.contract.ioc_norm import normalise

MAX_RELATED = 20
TARGET_PER_SHARD = 32
MAX_PREFIX_HEX = 4
SORTED_BATCH = 65_536  # sorted records read out at a time
COMPACT_AT = 8  # a new base when the delta would pass 1/8 of the base's entries
PEEK = 16  # ... or when the first 1/16 of the shards' delta, times 16, passes 3/4 of that
BASE_KEYS = (layout.SEARCH_META_KEY, layout.SEARCH_SHARDS_KEY, layout.SEARCH_OFFSETS_KEY)
_TYPE_CODES = {name: i for i, name in enumerate(layout.IOC_TYPES)}


def prefix_hex(count: int) -> int:
    """Hex characters that name a shard, for ``count`` entries."""
    length = 1
    while length < MAX_PREFIX_HEX and count > TARGET_PER_SHARD * 16**length:
        length += 1
    return length


def _day_number(day: str) -> int:
    return calendar.timegm(time.strptime(day, "%Y-%m-%d")) // layout.DAY_SECONDS


class SearchIndex:
    """Collects a compact row per record (in record order), then writes the shards."""

    def __init__(self) -> None:
        self.digests = bytearray()  # 32 bytes per record
        self.types = bytearray()
        self.confidences: list[str] = []
        self.first = array("q")
        self.last = array("q")
        self.sightings = array("I")
        self.day_numbers = array("I")
        self.lines = array("I")
        self.article_of: dict[str, int] = {}
        self.pair_articles = array(
            "I"
        )  # the articles of record i: pair_articles[ends[i-1]:ends[i]]
        self.pair_ends = array("Q")
        self.order: pa.Array | None = None  # record numbers sorted by (hash, type)

    def add_day(
        self, day: str, records: list[IOCRecord], lines: Sequence[int] | None = None
    ) -> None:
        """``lines``: each record's logical line in its day partition (None: 0..n-1, a fresh
        base; worker/buckets/days.py)."""
        sha256, article_of, pairs = hashlib.sha256, self.article_of, self.pair_articles
        for r in records:
            self.digests += sha256(normalise(r.value).encode("utf-8", "surrogatepass")).digest()
            self.types.append(_TYPE_CODES[r.type])
            self.confidences.append(r.confidence)
            self.first.append(r.first_seen)
            self.last.append(r.last_seen)
            self.sightings.append(r.sightings)
            for article in r.article_ids or (r.article_id,):
                pairs.append(article_of.setdefault(article, len(article_of)))
            self.pair_ends.append(len(pairs))
        self.day_numbers.extend(repeat(_day_number(day), len(records)))
        self.lines.extend(range(len(records)) if lines is None else lines)

    def finish(self, out: ObjectWriter, info: BuildInfo) -> None:
        count = len(self.lines)
        refs = [f"{d}.{n}" for d, n in zip(self.day_numbers, self.lines, strict=True)]
        related = Related(self._members(), refs)
        base = previous_base(out.root)
        if base is not None and self._write_delta(out, base, related, refs):
            return
        self._write_base(out, prefix_hex(count), related, refs)

    def _shard_text(self, shard: list[int], related: Related, refs: list[str]) -> bytes:
        return "".join(
            [self._line(i, related.of(i, self._articles(i)), refs) for i in shard]
        ).encode()

    def _write_base(
        self, out: ObjectWriter, length: int, related: Related, refs: list[str]
    ) -> None:
        offsets = array("Q", [0])
        with out.stream(layout.SEARCH_SHARDS_KEY) as data:  # hundreds of MB at 1M records
            for shard in self._shards(length):
                data.write(self._shard_text(shard, related, refs))
                offsets.append(data.size)
        out.put(layout.SEARCH_OFFSETS_KEY, offsets.tobytes())
        meta = {
            "prefix_hex": length,
            "shards": 16**length,
            "entries": len(self.lines),
            "max_related": MAX_RELATED,
            "hash": "sha256",
        }
        out.put(layout.SEARCH_META_KEY, json.dumps(meta, sort_keys=True).encode())

    def _write_delta(
        self, out: ObjectWriter, base: Base, related: Related, refs: list[str]
    ) -> bool:
        """Keep ``base`` and write the entries that differ from it; False (nothing written)
        when they would pass ``1 / COMPACT_AT`` of its entries."""
        limit = base.entries // COMPACT_AT
        # entries are spread evenly over the shards (random hashes): when the delta of the
        # first 1/PEEK of them, extrapolated, passes 3/4 of the bound, a new base is due (the
        # margin: a delta near the bound would often be found too big only at the end)
        peek = len(base.offsets) // PEEK if len(base.offsets) > 4 * PEEK else 0
        lines: list[str] = []
        ends = array("Q", [0])
        size = 0
        shards = zip(base.shard_texts(), self._shards(base.length), strict=True)
        for number, (text, shard) in enumerate(shards):
            if number == peek and peek and len(lines) * PEEK * 4 > limit * 3:
                return False
            new = self._shard_text(shard, related, refs)
            if new != text:
                found = shard_delta(text.decode(), new.decode())
                if len(lines) + len(found) > limit:
                    return False
                lines += found
                size += len("".join(found).encode())
            ends.append(size)
        for key in BASE_KEYS:
            out.carry(key, base.objects[key], base.framed.get(key), base.coded.get(key))
        if lines:
            out.put(layout.SEARCH_DELTA_KEY, "".join(lines).encode())
            out.put(layout.SEARCH_DELTA_OFFSETS_KEY, ends.tobytes())
        return True

    def _articles(self, i: int) -> array:
        return self.pair_articles[self.pair_ends[i - 1] if i else 0 : self.pair_ends[i]]

    def _members(self) -> list[array]:
        """For every article, its records in record order (newest first)."""
        members = [array("I") for _ in self.article_of]
        for i in range(len(self.lines)):
            for article in self._articles(i):
                members[article].append(i)
        return members

    def _shards(self, length: int) -> Iterator[list[int]]:
        """The records of every shard, in prefix order (empty shards too), each sorted by
        (hash, type): one sort of every record by (hash, type) lists the shards in order, since
        a shard is a prefix of the hash."""
        shift = 16 - 4 * length
        n = len(self.lines)
        digests = self.digests
        if self.order is None:
            self.order = pc.sort_indices(
                pa.table(
                    {
                        "d": pa.Array.from_buffers(pa.binary(32), n, [None, pa.py_buffer(digests)]),
                        "t": pa.Array.from_buffers(pa.uint8(), n, [None, pa.py_buffer(self.types)]),
                    }
                ),
                sort_keys=[("d", "ascending"), ("t", "ascending")],
            )
        order = self.order
        shard = 0
        rows: list[int] = []
        for start in range(0, n, SORTED_BATCH):
            for i in order.slice(start, SORTED_BATCH).to_pylist():
                prefix = (digests[32 * i] << 8 | digests[32 * i + 1]) >> shift
                while shard < prefix:
                    yield rows
                    rows, shard = [], shard + 1
                rows.append(i)
        while shard < 16**length:
            yield rows
            rows, shard = [], shard + 1

    def _line(self, i: int, related: str, refs: list[str]) -> str:
        return (
            f"{self.digests[32 * i : 32 * i + 32].hex()}\t{layout.IOC_TYPES[self.types[i]]}\t"
            f"{self.confidences[i]}\t{self.first[i]}\t{self.last[i]}\t{self.sightings[i]}\t"
            f"{refs[i]}\t{related}\n"
        )


class Related:
    """The related refs of a record: the first ``MAX_RELATED`` other members of its articles.

    Most records come from one article; that article's head (its first ``MAX_RELATED + 1``
    members and their refs) is worked out once and shared by all of them.
    """

    def __init__(self, members: list[array], refs: list[str]) -> None:
        self.members = members
        self.refs = refs
        self.heads: list[tuple[list[int], list[str], str] | None] = [None] * len(members)

    def _head(self, article: int) -> tuple[list[int], list[str], str]:
        head = self.heads[article]
        if head is None:
            ids = self.members[article][: MAX_RELATED + 1].tolist()
            names = [self.refs[j] for j in ids]
            head = self.heads[article] = (ids, names, ",".join(names[:MAX_RELATED]))
        return head

    def of(self, i: int, articles: array) -> str:
        if len(articles) == 1:
            ids, names, joined = self._head(articles[0])
            if i not in ids:
                return joined
            k = ids.index(i)
            return ",".join(names[:k] + names[k + 1 :])
        found = set(chain.from_iterable(self._head(a)[0] for a in articles))
        found.discard(i)
        return ",".join([self.refs[j] for j in sorted(found)[:MAX_RELATED]])


def _key(line: str) -> str:
    """The (hash, type) of an entry or tombstone line: ``hash\ttype``."""
    return line[: line.find("\t", 65)] if line.count("\t") > 1 else line.rstrip("\n")


def _order(line: str) -> tuple[str, int]:
    return line[:64], _TYPE_CODES[_key(line)[65:]]


def shard_delta(old: str, new: str) -> list[str]:
    """The delta lines of one shard: the lines of ``new`` that ``old`` lacks (entries new or
    changed) and a tombstone (``hash\ttype\n``) for every entry of ``old`` that ``new`` lacks,
    sorted by (hash, type)."""
    old_lines, new_lines = old.splitlines(keepends=True), new.splitlines(keepends=True)
    held, kept = set(old_lines), set(new_lines)
    found = [line for line in new_lines if line not in held]
    gone = [line for line in old_lines if line not in kept]
    if gone:
        keys = {_key(line) for line in new_lines}
        found += [_key(line) + "\n" for line in gone if _key(line) not in keys]
        found.sort(key=_order)
    return found


@dataclass
class Base:
    """The search base of the build this build follows (in the same build folder)."""

    build: Build
    length: int  # L of the base
    entries: int
    offsets: array  # 16**L + 1 uint64 offsets
    objects: dict[str, list]  # the base's objects: key → [SHA-256, size] (stored)
    framed: dict[str, int]
    coded: dict[str, list]

    def shard_texts(self) -> Iterator[bytes]:
        """The text of every shard of the base, in order; every block inflated once."""
        ref = self.build.objects[layout.SEARCH_SHARDS_KEY]
        name, bucket, stored = layout.object_key(ref.sha256), self.build.bucket, ref.stored

        def get(lo: int, hi: int) -> bytes:
            return bucket.get_range(name, lo, hi, stored)

        table = framing.Table.read(get, stored)
        pending = bytearray()
        at = 0  # the text offset of pending[0]
        block = 0
        offsets = self.offsets
        for s in range(len(offsets) - 1):
            start, end = offsets[s], offsets[s + 1]
            while at + len(pending) < end:
                pending += framing.inflate(get(*table.span(block, block)))
                block += 1
            yield bytes(pending[start - at : end - at])
            if end - at >= framing.BLOCK:
                del pending[: end - at]
                at = end


def previous_base(root: Path) -> Base | None:
    """The search base of the build the next build in ``root`` follows (None: none, one this
    version does not read, or its objects are not in the folder)."""
    try:
        previous = changes.previous_build(Path(root))
        if previous is None:
            return None
        manifest, build = previous
        objects, framed = manifest["objects"], manifest["framed"]
        coded = manifest.get("coded") or {}
        if not all(changes.holds(Path(root), *objects[key]) for key in BASE_KEYS):
            return None
        if layout.SEARCH_SHARDS_KEY not in framed or layout.SEARCH_OFFSETS_KEY not in framed:
            return None
        meta = build.read_json(layout.SEARCH_META_KEY)
        if not isinstance(meta, dict) or meta.get("max_related") != MAX_RELATED:
            return None
        if meta.get("hash") != "sha256":
            return None
        length = int(meta["prefix_hex"])
        offsets = array("Q")
        offsets.frombytes(build.read(layout.SEARCH_OFFSETS_KEY) or b"")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not 1 <= length <= MAX_PREFIX_HEX or len(offsets) != 16**length + 1:
        return None
    carried = {key: list(objects[key]) for key in BASE_KEYS}
    return Base(
        build,
        length,
        int(meta["entries"]),
        offsets,
        carried,
        {k: int(framed[k]) for k in BASE_KEYS if k in framed},
        {k: list(coded[k]) for k in BASE_KEYS if k in coded},
    )
