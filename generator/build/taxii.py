"""The TAXII 2.1 part of a build: resources, object pages, manifests and their indexes.

A build sink (``generator/build/tree.py`` ``SINKS``). It takes each record's STIX objects as the day
partitions rendered them (``exports/stix21.py`` ``render_objects``: type, id and bytes of each),
and spools their bytes to a temporary file with a few numbers per object. Once every record is seen,
each object gets its ``date_added`` (``generator/build/taxii_order.py``), and every collection is
written in ``date_added`` order: data chunks of ``CHUNK`` objects and manifest records, one
fixed-size entry per object (``taxii/c/<name>/index.bin``), one entry file per STIX type for
``match[type]``, and one id index over all objects for ``match[id]``. Layout:
``worker/contract/taxii_common.py``; how the worker slices it: docs/taxii.md.

The per-object numbers live in flat arrays, and ``finish`` works on them column-wise with
pyarrow (sorts, takes, string joins): a million records make about three million objects, too
many for a Python loop or a sort of tuples.
"""

from __future__ import annotations

import calendar
import contextlib
import json
import mmap
import tempfile
import time
from array import array
from collections.abc import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from exports import stix21
from exports.model import IOCRecord, state_time
from exports.registry import Rendered
from exports.stix21 import StixObjects
from generator.build.sinks import BuildInfo, ObjectWriter
from generator.build.taxii_order import MICRO, dates_added, strictly_increasing
from generator.errors import SocdefError
from worker.contract import layout
from worker.contract import taxii_common as tc
from worker.contract.stix_common import DEFAULT_TLPS, IDENTITY, tlp_marking

IOC_CODES = {name: i for i, name in enumerate(layout.IOC_TYPES)}
TYPE_CODES = tc.TYPE_CODES
MAX_CONTENT_LENGTH = 65_536  # the largest request body the worker reads (read-only server)
RELEASE_BYTES = 64 << 20  # spool bytes read between releases of the mapped pages
UUID_BLOCK = 65_536  # object ids converted at a time
ENTRY_CHUNKS = 256  # chunks of entries made and written at a time
ID_ROWS = 262_144  # rows of the id index made and written at a time
# The largest µs timestamp pyarrow's strftime writes as time.strftime does (year 9999).
MAX_US = 253_402_300_799_999_999
CHUNK_CUT = 1_024  # a data chunk ends after an object whose UUID is 0 modulo this (a power of 2)
CHUNK_MAX = 4_096  # … or after this many objects


# What every collection holds besides the records' objects: the producer identity and the TLP
# markings the objects carry, so every created_by_ref and object_marking_refs resolves.
META_OBJECTS = (IDENTITY, *(tlp_marking(level) for level in DEFAULT_TLPS))


def _micros(stamp: str) -> int:
    return calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) * MICRO


class TaxiiError(SocdefError, RuntimeError):
    """A record's STIX objects do not have the shape TAXII pages need: the STIX renderer and
    this module disagree, which no input should cause; the message says to report it."""

    def __init__(self, message: str) -> None:
        super().__init__(
            f"TAXII build: {message} (the STIX renderer wrote a shape the TAXII build does not "
            "know: report it with the output of SOCDEF_DEBUG=1)"
        )


def _int_array(values: array, type_: pa.DataType) -> pa.Array:
    return pa.Array.from_buffers(type_, len(values), [None, pa.py_buffer(values)])


_RANGE: list[pa.Array] = [pa.array([], pa.int64())]


def _arange(n: int) -> pa.Array:
    """0, 1, …, n - 1 as int64: a slice of the longest one made so far."""
    if n > len(_RANGE[0]):
        _RANGE[0] = _int_array(array("q", range(n)), pa.int64())
    return _RANGE[0].slice(0, n)


def _words(arr: pa.Array) -> memoryview:
    """A fixed-width array's values as 32-bit words."""
    width = arr.type.bit_width // 8
    buf = arr.buffers()[1]
    return memoryview(buf).cast("B")[arr.offset * width : (arr.offset + len(arr)) * width].cast("I")


def _bytes_of(arr: pa.Array) -> memoryview:
    width = arr.type.byte_width
    buf = arr.buffers()[1]
    return memoryview(buf).cast("B")[arr.offset * width : (arr.offset + len(arr)) * width]


def _rows(columns: list[pa.Array]) -> bytearray:
    """The values of fixed-width columns side by side, row by row, each as its bytes."""
    widths = [column.type.byte_width for column in columns]
    width = sum(widths)
    rows = bytearray(width * len(columns[0]))
    view = memoryview(rows)
    at = 0
    for column, size in zip(columns, widths, strict=True):
        values = _bytes_of(column)
        for k in range(size):
            view[at + k :: width] = values[k::size]
        at += size
    view.release()
    return rows


class TaxiiSink:
    """Spools every record's STIX line and numbers per object; writes the TAXII tree at ``finish``."""

    def __init__(self) -> None:
        self.spool = tempfile.TemporaryFile(prefix="socdef-taxii-")
        self.size = 0
        # per object
        self.ends = array("q", [0])  # object i is spool[ends[i]:ends[i + 1]]
        self.current = array("q")  # its latest version event: an index into the members
        self.stix_type = bytearray()
        self.uuids = bytearray()  # the 16 bytes of its UUID (its text is made again per chunk)
        # per version event of an object (a member of the event's group, taxii_order.py)
        self.member_time = array("q")
        # per record
        self.record_ends = array("q")  # objects of record j end at record_ends[j]
        self.record_modified = array("q")  # µs
        self.record_collection = bytearray()  # IOC type code
        self._add_meta()

    def _add_meta(self) -> None:
        """The objects every collection holds, at build date 0, 1, … (before every record's):
        each its own record of collection ``EVERY_COLLECTION``."""
        for obj in META_OBJECTS:
            data = _compact(obj) + b","
            self.spool.write(data)
            self.size += len(data)
            self.ends.append(self.size)
            self.stix_type.append(TYPE_CODES[obj["type"]])
            self.uuids += _uuid_bytes(obj["id"][-36:])
            self.member_time.append(0)
            self.current.append(len(self.member_time) - 1)
            self.record_ends.append(len(self.current))
            self.record_modified.append(_micros(obj.get("modified", obj["created"])))
            self.record_collection.append(tc.EVERY_COLLECTION)

    def add_day(self, day: str, records: list[IOCRecord]) -> None:
        self.add_objects(records, [stix21.render_objects(r) for r in records])

    def add_rendered(
        self, day: str, records: list[IOCRecord], rendered: Mapping[str, list[bytes]]
    ) -> None:
        objects = rendered.stix_objects if isinstance(rendered, Rendered) else None
        if objects is None:  # rendered by another process
            objects = [stix21.render_objects(r) for r in records]
        self.add_objects(records, objects)

    def add_objects(self, records: list[IOCRecord], objects: list[StixObjects]) -> None:
        """Spool each record's objects (the main object first, then its relationships)."""
        ends, current, member_time = self.ends, self.current, self.member_time
        stix_type, ids = self.stix_type, list[str]()
        size = self.size
        for r, rendered in zip(records, objects, strict=True):
            main = r.version_times or (max(r.ingested_at, r.last_seen),)
            for type_ in rendered.types:
                code = TYPE_CODES.get(type_)
                if code is None:
                    raise TaxiiError(f"{r.type} {r.value}: unexpected STIX type {type_!r}")
                stix_type.append(code)
            ids += rendered.ids
            if len(rendered.ends) == 1:
                ends.append(size + rendered.ends[0])
            else:
                ends.extend([size + end for end in rendered.ends])
            size += len(rendered.line)
            member_time.extend(main)
            current.append(len(member_time) - 1)
            if len(rendered.ids) > 1:
                self._relationships(r, len(rendered.ids) - 1, main)
            self.record_ends.append(len(current))
            self.record_modified.append(state_time(r) * MICRO)  # the object's "modified"
            self.record_collection.append(IOC_CODES[r.type])
        if ends[-1] != size:
            raise TaxiiError("the STIX objects' ends do not match their lines")
        self.size = size
        self.uuids += _uuid_bytes("".join([id_[-36:] for id_ in ids]))
        self.spool.write(b"".join([rendered.line for rendered in objects]))

    def _relationships(self, r: IOCRecord, count: int, main: tuple[int, ...]) -> None:
        if count != len(r.mitre_techniques):
            raise TaxiiError(
                f"{r.type} {r.value}: {count + 1} objects for {len(r.mitre_techniques)} techniques"
            )
        current, member_time = self.current, self.member_time
        first = main[0]
        for k in range(count):
            joined = (r.technique_times[k] if r.technique_times else 0) or first
            # generator.build.taxii_order.relationship_events(main, joined)
            if len(main) == 1:
                if first > joined:
                    member_time.append(joined)
                member_time.append(first if first > joined else joined)
            else:
                member_time.append(joined)
                member_time.extend(t for t in main if t > joined)
            current.append(len(member_time) - 1)

    def finish(self, out: ObjectWriter, info: BuildInfo) -> None:
        self.spool.flush()
        data = mmap.mmap(self.spool.fileno(), 0, access=mmap.ACCESS_READ) if self.size else None
        try:
            objects = Objects(self, data)
            # the columns wrap these buffers; the sink's own references would outlive them
            self.ends, self.uuids, self.stix_type = array("q"), bytearray(), bytearray()
            objects.write(out)
            del objects  # it holds views of the mapped spool
        finally:
            if data is not None:
                with contextlib.suppress(BufferError):  # on an error, views may live on
                    data.close()
            self.spool.close()
            _RANGE[0] = pa.array([], pa.int64())
        write_resources(out, info.source_name)


class Objects:
    """Every spooled object as columns, ordered by ``date_added``; writes the collections."""

    def __init__(self, sink: TaxiiSink, data: mmap.mmap | None) -> None:
        n = self.n = len(sink.current)
        self.data = data
        self.read = 0  # spool bytes read since its pages were last let go
        raw = sink.uuids
        if len(raw) != 16 * n:
            raise TaxiiError("an object id is not a UUID")
        self.uuids = pa.Array.from_buffers(pa.binary(16), n, [None, pa.py_buffer(raw)])
        record = _runs(sink.record_ends)
        self.modified = pc.take(_int_array(sink.record_modified, pa.int64()), record)
        self.collection = pc.take(_uint8(sink.record_collection), record)
        del record
        sink.record_ends, sink.record_modified = array("q"), array("q")
        self.stix_type = _uint8(sink.stix_type)
        self.objects = pa.Array.from_buffers(
            pa.large_binary(),
            n,
            [None, pa.py_buffer(sink.ends), pa.py_buffer(data if data is not None else b"")],
        )
        current = _int_array(sink.current, pa.int64())
        owner = _runs(pc.add(current, 1))
        members = dates_added(
            _int_array(sink.member_time, pa.int64()), pc.take(_uuid_words(raw, n, 0), owner)
        )
        del owner
        self.dates = pc.take(members, current)
        del current, members
        sink.member_time, sink.current = array("q"), array("q")  # not needed any more
        self.order = pc.sort_indices(self.dates)
        self.sorted_dates = pc.take(self.dates, self.order)
        if n > 1 and pc.any(pc.less_equal(self.sorted_dates[1:], self.sorted_dates[:-1])).as_py():
            fixed = array("q", self.sorted_dates.to_pylist())
            strictly_increasing(fixed)
            self.sorted_dates = _int_array(fixed, pa.int64())
            self.dates = pc.take(self.sorted_dates, pc.sort_indices(self.order))
        lowest = min(pc.min(self.dates).as_py() or 0, pc.min(self.modified).as_py() or 0)
        highest = max(pc.max(self.dates).as_py() or 0, pc.max(self.modified).as_py() or 0)
        self.chunk_of = _arange(0)  # the data chunk of each date-order position (chunk_lasts)
        self.stamps = None  # plain times: formatted column-wise
        if 0 <= lowest and highest <= MAX_US:
            self.stamps = (Stamps(self.dates, 6), Stamps(self.modified, 3))

    def write(self, out: ObjectWriter) -> None:
        codes = pc.take(self.collection, self.order)  # in date order
        writers = [CollectionWriter(self, tc.ALL_COLLECTION, None)]
        every = pc.equal(codes, tc.EVERY_COLLECTION)
        shared = self.shared = pc.sum(every).as_py() or 0
        if not pc.all(every.slice(0, shared)).as_py():
            raise TaxiiError("the objects every collection holds do not come first")
        for code, name in enumerate(layout.IOC_TYPES):
            picked = pc.indices_nonzero(pc.or_(pc.equal(codes, code), every))
            writers.append(CollectionWriter(self, name, picked))
        del codes, every
        # Every collection advances through date order together, so the spool is read in one
        # pass, a window at a time, and its pages are let go as the window moves on.
        for frontier in range(tc.CHUNK, self.n + tc.CHUNK, tc.CHUNK):
            for writer in writers:
                writer.chunks_before(out, frontier)
            if self.read >= RELEASE_BYTES and self.data is not None:
                self.data.madvise(mmap.MADV_DONTNEED)
                self.read = 0
        for writer in writers:
            writer.chunks_before(out, self.n + 1)
        self.stamps = None
        # where each object's bytes lie in the data chunks of "all", by date-order position:
        # every collection's entries point there
        spans = writers[0].spans
        self.spans = {
            kind: (
                pa.concat_arrays([o[:-1] for o in spans[kind]] or [pa.array([], pa.uint32())]),
                pa.concat_arrays([o[1:] for o in spans[kind]] or [pa.array([], pa.uint32())]),
            )
            for kind in ("obj", "man")
        }
        writers[0].spans = {}
        own = _arange(0)
        for writer in writers:
            writer.finish(out)
            pa.default_memory_pool().release_unused()
        if self.n:
            # every object once: those all collections hold (the first ``shared`` of each, at
            # the same positions everywhere), then each other object in its type's collection
            k = self.shared
            members = pa.concat_arrays(
                [self.order.slice(0, k), *(w.picked.slice(k) for w in writers[1:])]
            )
            ranks = pa.concat_arrays(
                [_arange(k), *(_arange(w.count).slice(k) for w in writers[1:])]
            )
            own = pc.take(ranks, pc.sort_indices(members))
            del members, ranks
        del writers, self.spans
        self.chunk_of = _arange(0)
        # the id index needs none of the objects' data, dates or texts: let them go first
        del self.objects, self.dates, self.sorted_dates, self.modified
        if self.data is not None:
            self.data.madvise(mmap.MADV_DONTNEED)
        pa.default_memory_pool().release_unused()
        self._write_ids(out, pc.sort_indices(self.order), own)

    def chunk_lasts(self) -> list[int]:
        """The date-order position of each data chunk's last object.

        Chunk boundaries follow the objects, not their count: a chunk ends after an object whose
        UUID's first 64 bits are 0 modulo ``CHUNK_CUT`` (about ``CHUNK_CUT`` objects a chunk), or
        after ``CHUNK_MAX`` objects. An object that changes moves to the newest chunk, and of the
        older chunks only the one it left changes (with chunks of a fixed count every later one
        would shift), so a publish uploads few of them again."""
        if not self.n:
            return []
        raw = memoryview(self.uuids.buffers()[1]).cast("B")
        words = pc.take(_uuid_words(raw, self.n, 0), self.order)
        cuts = pc.indices_nonzero(
            pc.equal(pc.bit_wise_and(words, pa.scalar(CHUNK_CUT - 1, pa.uint64())), 0)
        ).to_pylist()
        lasts: list[int] = []
        previous = -1
        for cut in [*cuts, self.n - 1]:
            while cut - previous > CHUNK_MAX:
                previous += CHUNK_MAX
                lasts.append(previous)
            if cut > previous:
                lasts.append(cut)
                previous = cut
        self.chunk_of = _runs(_int_array(array("q", [last + 1 for last in lasts]), pa.int64()))
        return lasts

    def manifest_records(self, at: pa.Array) -> pa.Array:
        """The manifest records of objects ``at``, each followed by a comma."""
        if self.stamps is not None:
            added, version = self.stamps[0].of(at), self.stamps[1].of(at)
        else:
            dates = pc.take(self.dates, at).to_pylist()
            modified = pc.take(self.modified, at).to_pylist()
            added = (pa.array([tc.timestamp_us(d)[:-1].encode() for d in dates], pa.binary()), b"")
            version = (
                pa.array([tc.version_string(m)[:-1].encode() for m in modified], pa.binary()),
                b"",
            )
        return pc.binary_join_element_wise(
            pc.take(ID_PREFIXES, pc.take(self.stix_type, at)),
            _uuid_text(pc.take(self.uuids, at)),
            b'","date_added":"',
            *added,
            b'Z","version":"',
            *version,
            b'Z","media_type":"' + tc.STIX_MEDIA_TYPE.encode() + b'"},',
            b"",
        )

    def _write_ids(self, out: ObjectWriter, pos_all: pa.Array, pos_own: pa.Array) -> None:
        """``ids.bin``: every object's ID_ENTRY sorted (as tuples: UUID, type, collection,
        positions); ``ids.fence``: every ID_BLOCK-th UUID of it."""
        n = self.n
        raw = memoryview(self.uuids.buffers()[1]).cast("B")
        columns = {
            "hi": _uuid_words(raw, n, 0),
            "lo": _uuid_words(raw, n, 8),
            "s": self.stix_type,
            "c": self.collection,
            "a": pos_all,
            "o": pos_own,
        }
        order = pc.sort_indices(
            pa.table(columns), sort_keys=[(name, "ascending") for name in columns]
        )
        del columns
        # each row's fields as bytes (little-endian), side by side: the rows of ids.bin,
        # made and written a block at a time
        fields = [
            self.uuids,
            self.stix_type,
            self.collection,
            pc.cast(pos_all, pa.uint32()),
            pc.cast(pos_own, pa.uint32()),
        ]
        with out.stream(tc.ID_INDEX_KEY) as ids:
            for start in range(0, n, ID_ROWS):
                at = order.slice(start, ID_ROWS)
                ids.write(_rows([pc.take(field, at) for field in fields]))
        del fields
        fenced = pc.take(order, _int_array(array("q", range(0, n, tc.ID_BLOCK)), pa.int64()))
        out.put(tc.ID_FENCE_KEY, _bytes_of(pc.take(self.uuids, fenced)))


class CollectionWriter:
    """Writes one collection: entries, type entries, meta, info; and for ``all``, the data
    chunks (objects and manifest records) that every collection's entries point into."""

    def __init__(self, objects: Objects, name: str, positions: pa.Array | None) -> None:
        self.o = objects
        self.name = name
        # the date-order positions of the collection's objects (None: all of them) and the
        # objects themselves, in date order
        self.positions = positions
        self.picked = objects.order if positions is None else pc.take(objects.order, positions)
        self.count = len(self.picked)
        # the date-order position of each data chunk's last object (``all`` only: the other
        # collections' entries point into its chunks)
        self.lasts = objects.chunk_lasts() if positions is None else []
        self.written = 0
        # per chunk: the offsets of its objects and of its manifest records (len + 1 each)
        self.spans: dict[str, list[pa.Array]] = {"obj": [], "man": []}

    def chunks_before(self, out: ObjectWriter, frontier: int) -> None:
        """Write every chunk whose objects all lie before date-order position ``frontier``
        (``all`` only: the other collections' objects are its objects)."""
        if self.positions is not None:
            return
        while self.written < len(self.lasts) and self.lasts[self.written] < frontier:
            self._chunk(out, self.written)
            self.written += 1

    def _chunk(self, out: ObjectWriter, number: int) -> None:
        first = self.lasts[number - 1] + 1 if number else 0
        at = self.picked.slice(first, self.lasts[number] + 1 - first)
        for kind, values in (
            ("obj", pc.take(self.o.objects, at)),
            ("man", self.o.manifest_records(at)),
        ):
            offsets = _offsets(values)
            first, last = offsets[0].as_py(), offsets[-1].as_py()
            out.put(
                tc.chunk_key(self.name, kind, number),
                memoryview(values.buffers()[2]).cast("B")[first:last],
            )
            if first:
                offsets = pc.subtract(offsets, first)
            self.spans[kind].append(pc.cast(offsets, pa.uint32()))
            if kind == "obj":
                self.o.read += last - first

    def _dates(self) -> pa.Array:
        if self.positions is None:
            return self.o.sorted_dates
        return pc.take(self.o.sorted_dates, self.positions)

    def finish(self, out: ObjectWriter) -> None:
        """Write the entries (all, and per STIX type) a block of ``ENTRY_CHUNKS`` chunks at a
        time, then the meta and info documents."""
        count = self.count
        dates = self._dates()
        modified = pc.take(self.o.modified, self.picked)
        kinds = pc.take(self.o.stix_type, self.picked)
        codes = sorted(pc.unique(kinds).to_pylist())
        block = ENTRY_CHUNKS * tc.CHUNK
        with contextlib.ExitStack() as files:
            index = files.enter_context(out.stream(tc.collection_key(self.name, "index.bin")))
            typed = {
                code: files.enter_context(
                    out.stream(tc.type_index_key(self.name, tc.STIX_TYPES[code]))
                )
                for code in codes
            }
            for start in range(0, count, block):
                size = min(block, count - start)
                entries = self._entries(start, size, dates, modified, kinds)
                index.write(entries)
                table = pa.Array.from_buffers(
                    pa.binary(tc.ENTRY.size), size, [None, pa.py_buffer(entries)]
                )
                block_kinds = kinds.slice(start, size)
                for code, stream in typed.items():
                    stream.write(_bytes_of(pc.filter(table, pc.equal(block_kinds, code))))
                del table
        del modified
        types = {}
        for code in codes:
            typed_dates = pc.filter(dates, pc.equal(kinds, code))
            types[tc.STIX_TYPES[code]] = {
                "count": len(typed_dates),
                "fences": _every(typed_dates, tc.CHUNK),
                "last": typed_dates[-1].as_py(),
            }
        meta: dict = {"count": count, "fences": _every(dates, tc.CHUNK), "types": types}
        if self.positions is not None:
            meta["data"] = tc.ALL_COLLECTION  # the collection whose chunks the entries name
        if count:
            meta["last"] = dates[-1].as_py()
        out.put(tc.collection_key(self.name, "meta.json"), _compact(meta))
        out.put(tc.collection_key(self.name, "info.json"), _compact(collection_resource(self.name)))

    def _entries(
        self,
        start: int,
        size: int,
        dates: pa.Array,
        modified: pa.Array,
        kinds: pa.Array,
    ) -> bytearray:
        """The ENTRY of objects ``start … start + size``: the chunk and byte spans name where
        the object lies in the chunks of ``all``."""
        words = tc.ENTRY.size // 4
        entries = bytearray(tc.ENTRY.size * size)
        view = memoryview(entries).cast("I")

        def fill(word: int, values: pa.Array) -> None:
            src = _words(values)
            width = values.type.bit_width // 32
            for k in range(width):
                view[word + k :: words] = src[k::width]

        fill(0, dates.slice(start, size))
        fill(2, modified.slice(start, size))
        at = pc.add(_arange(size), start)
        if self.positions is not None:
            at = pc.take(self.positions, at)
        fill(4, pc.cast(pc.take(self.o.chunk_of, at), pa.uint32()))
        for word, kind in ((5, "obj"), (7, "man")):
            starts, ends = self.o.spans[kind]
            fill(word, pc.take(starts, at))
            fill(word + 1, pc.take(ends, at))
        fill(9, pc.cast(kinds.slice(start, size), pa.uint32()))
        view.release()
        return entries


ID_PREFIXES = pa.array([f'{{"id":"{name}--'.encode() for name in tc.STIX_TYPES], pa.binary())


def _uint8(values: bytearray) -> pa.Array:
    return pa.Array.from_buffers(pa.uint8(), len(values), [None, pa.py_buffer(values)])


def _runs(ends: array | pa.Array) -> pa.Array:
    """``i`` repeated for every position below ``ends[i]`` (and at or above ``ends[i - 1]``)."""
    if not isinstance(ends, pa.Array):
        ends = _int_array(ends, pa.int64())
    return pc.run_end_decode(pa.RunEndEncodedArray.from_arrays(ends, _arange(len(ends))))


def _uuid_bytes(text: str) -> bytes:
    """The 16 bytes of each of the 36-character UUIDs in ``text`` (lower-case hex: the STIX
    renderer's ids, which ``_uuid_text`` writes again)."""
    try:
        values = bytes.fromhex(text.replace("-", ""))
    except ValueError:
        values = b""
    if len(values) * 36 != len(text) * 16 or text != text.lower():
        raise TaxiiError("an object id is not a UUID")
    return values


_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)
_UUID_GROUPS = ((0, 0, 8), (9, 8, 12), (14, 12, 16), (19, 16, 20), (24, 20, 32))  # text, hex


def _uuid_text(uuids: pa.Array) -> pa.Array:
    """The 36-character text of each 16-byte UUID (``str(uuid.UUID(bytes=...))``), as binary."""
    raw = np.frombuffer(_bytes_of(uuids), np.uint8).reshape(-1, 16)
    digits = np.empty((len(raw), 32), np.uint8)
    digits[:, 0::2] = _HEX[raw >> 4]
    digits[:, 1::2] = _HEX[raw & 15]
    text = np.full((len(raw), 36), ord("-"), np.uint8)
    for at, first, last in _UUID_GROUPS:
        text[:, at : at + last - first] = digits[:, first:last]
    return pa.Array.from_buffers(
        pa.binary(),
        len(raw),
        [
            None,
            pa.py_buffer(np.arange(0, 36 * len(raw) + 1, 36, dtype=np.int32)),
            pa.py_buffer(text),
        ],
    )


def _uuid_words(raw: bytes | bytearray | memoryview, n: int, start: int) -> pa.Array:
    """The big-endian 64-bit number in bytes ``start…start+8`` of every 16-byte UUID."""
    src = memoryview(raw)
    buf = bytearray(8 * n)
    view = memoryview(buf)
    for k in range(8):
        view[k::8] = src[start + 7 - k :: 16]
    return pa.Array.from_buffers(pa.uint64(), n, [None, pa.py_buffer(buf)])


def _offsets(values: pa.Array) -> pa.Array:
    """The value offsets of a binary or large_binary array (len + 1 of them)."""
    width = pa.int64() if pa.types.is_large_binary(values.type) else pa.int32()
    return pa.Array.from_buffers(
        width, len(values) + 1, [None, values.buffers()[1]], offset=values.offset
    )


class Stamps:
    """``%Y-%m-%dT%H:%M:%S.`` plus the first ``digits`` digits of the µs (6 or 3), as binary
    pieces to join.

    For non-negative µs values only (``Objects.stamps``): division truncates. Each
    distinct second is formatted once; every value keeps the number of its second's text.
    """

    def __init__(self, micros: pa.Array, digits: int) -> None:
        self.micros = micros
        self.digits = digits
        seconds = pc.divide(micros, MICRO)
        distinct = pc.unique(seconds)
        self.text = pc.cast(
            pc.strftime(pc.cast(distinct, pa.timestamp("s")), format="%Y-%m-%dT%H:%M:%S."),
            pa.binary(),
        )
        self.second = pc.index_in(seconds, value_set=distinct)
        whole = pc.all(pc.equal(pc.subtract(micros, pc.multiply(seconds, MICRO)), 0)).as_py()
        self.zeros = b"0" * digits if whole or not len(micros) else None  # every fraction is 0

    def of(self, at: pa.Array) -> tuple[pa.Array, pa.Array | bytes]:
        """(the seconds' texts, the fractions' digits) of values ``at``."""
        seconds = pc.take(self.text, pc.take(self.second, at))
        if self.zeros is not None:
            return seconds, self.zeros
        micros = pc.take(self.micros, at)
        fraction = pc.subtract(micros, pc.multiply(pc.divide(micros, MICRO), MICRO))
        if self.digits < 6:
            fraction = pc.divide(fraction, 10 ** (6 - self.digits))
        digits = pc.utf8_lpad(pc.cast(fraction, pa.string()), self.digits, "0")
        return seconds, pc.cast(digits, pa.binary())


def _every(values: pa.Array, step: int) -> list[int]:
    return pc.take(
        values, _int_array(array("q", range(0, len(values), step)), pa.int64())
    ).to_pylist()


def collection_resource(name: str) -> dict:
    if name == tc.ALL_COLLECTION:
        title, what = "All indicators", "every indicator, vulnerability and ATT&CK technique"
    else:
        title, what = f"Indicators: {tc.TYPE_LABELS[name]}", f"the {tc.TYPE_LABELS[name]}"
    return {
        "id": tc.collection_id(name),
        "title": title,
        "description": f"STIX 2.1 objects for {what} extracted from public security articles, "
        "with their relationships to ATT&CK techniques.",
        "alias": name,
        "can_read": True,
        "can_write": False,
        "media_types": [tc.STIX_MEDIA_TYPE],
    }


def write_resources(out: ObjectWriter, source_name: str) -> None:
    discovery = {
        "title": f"{source_name} TAXII 2.1 server",
        "description": "Indicators of compromise extracted from public security articles, "
        "as STIX 2.1 objects. Read-only.",
    }
    root = {
        "title": f"{source_name} indicators",
        "description": "One collection with every object, one per indicator type.",
        "versions": [tc.TAXII_MEDIA_TYPE],
        "max_content_length": MAX_CONTENT_LENGTH,
    }
    collections = {"collections": [collection_resource(name) for name in tc.COLLECTIONS]}
    out.put(tc.DISCOVERY_KEY, _compact(discovery))
    out.put(tc.ROOT_KEY, _compact(root))
    out.put(tc.COLLECTIONS_KEY, _compact(collections))


def _compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
