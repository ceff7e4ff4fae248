"""The TAXII 2.1 part of a build: resources, object pages, manifests and their indexes.

A build sink (``generator/build/tree.py`` ``SINKS``). It takes each record's STIX objects as the day
partitions rendered them (``exports/stix21.py`` ``render_objects``: type, id and bytes of each),
and spools their bytes to a temporary file with a few numbers per object. Once every record is seen,
each object gets its ``date_added`` (``generator/build/taxii_order.py``), and every collection is
written in ``date_added`` order: data chunks of objects and manifest records laid out as an
append-only log carried from the previous build (``generator/build/taxii_log.py``), one
fixed-size entry per object in partitioned entry files (``taxii/c/<name>/index/<k>.bin``), one
entry file per STIX type for ``match[type]``, and one id index over all objects for
``match[id]``. Layout:
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
from generator.build import taxii_log
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
ENTRY_CHUNKS = 256  # chunks of entries made and written at a time
DEAD_SHARE = 8  # entry files are written again when the dead entries pass 1/8 of them
ID_NEW_SHARE = 8  # the id index's base is made again when the rows it lacks pass 1/8 of it
# The largest µs timestamp pyarrow's strftime writes as time.strftime does (year 9999).
MAX_US = 253_402_300_799_999_999


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
            objects = Objects(self, data, taxii_log.previous(out.root))
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

    def __init__(
        self, sink: TaxiiSink, data: mmap.mmap | None, log: taxii_log.Log | None = None
    ) -> None:
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
        self.log = log
        self.places: np.ndarray | None = None
        self.log_meta: dict[str, int] = {}
        self.entries_carried = False
        self.kept = 0  # the first ``kept`` objects in date order keep their place in the log
        if log is not None and n:
            self._carry(log, raw)
        lowest = min(pc.min(self.dates).as_py() or 0, pc.min(self.modified).as_py() or 0)
        highest = max(pc.max(self.dates).as_py() or 0, pc.max(self.modified).as_py() or 0)
        self.chunk_of = _arange(0)  # the data chunk of each date-order position (write_log)
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
        # where each object's bytes lie in the data chunks of "all", by date-order position:
        # every collection's entries point there
        self.write_log(out)
        self._dead(out)
        self.stamps = None
        for writer in writers:
            writer.finish(out)
            pa.default_memory_pool().release_unused()
        del writers, self.spans
        self.chunk_of = _arange(0)
        # the id index needs none of the objects' data or texts (only their dates): let them go
        del self.objects, self.sorted_dates, self.modified
        if self.data is not None:
            self.data.madvise(mmap.MADV_DONTNEED)
        pa.default_memory_pool().release_unused()
        self._write_ids(out)
        self.log = None

    def _carry(self, log: taxii_log.Log, raw: bytearray) -> None:
        """Give every object the previous build served unchanged its build date (and, unless
        the log is compacted, its place); the others build dates after the log's last
        (``generator/build/taxii_log.py``)."""
        n = self.n
        keys = taxii_log.keys_of(raw, np.asarray(self.stix_type))
        sorted_at = np.argsort(log.keys, kind="stable")
        sorted_keys = log.keys[sorted_at]
        where = np.minimum(np.searchsorted(sorted_keys, keys), max(len(sorted_keys) - 1, 0))
        found = sorted_keys[where] == keys if len(sorted_keys) else np.zeros(n, bool)
        prev = np.where(found, sorted_at[where] if len(sorted_at) else 0, -1)
        del keys, sorted_at, sorted_keys, where
        entries = log.entries
        modified = np.asarray(self.modified)
        same = found.copy()
        same[found] = entries["modified"][prev[found]] == modified[found]
        # the same bytes: compared a previous chunk at a time
        ends = np.frombuffer(self.objects.buffers()[1], np.int64, n + 1)
        data = memoryview(self.data) if self.data is not None else memoryview(b"")
        candidates = np.flatnonzero(same)
        chunks = entries["chunk"][prev[candidates]]
        by_chunk = np.argsort(chunks, kind="stable")
        bounds = np.flatnonzero(np.diff(chunks[by_chunk])) + 1
        starts, stops = entries["os"][prev[candidates]], entries["oe"][prev[candidates]]
        for group in np.split(by_chunk, bounds) if len(by_chunk) else []:
            text = memoryview(log.text("obj", int(chunks[group[0]])))
            for i, a, b in zip(
                candidates[group].tolist(),
                starts[group].tolist(),
                stops[group].tolist(),
                strict=True,
            ):
                if data[ends[i] : ends[i + 1]] != text[a:b]:
                    same[i] = False
            text.release()
        data.release()
        dates = np.array(self.dates)  # a copy: pyarrow's buffers are read-only
        dates[same] = entries["date"][prev[same]]
        fresh = np.flatnonzero(~same)
        if len(fresh):
            fresh = fresh[np.argsort(dates[fresh], kind="stable")]
            floor = log.last + 1 + np.arange(len(fresh), dtype=np.int64)
            dates[fresh] = np.maximum(dates[fresh], floor)
        self.dates = pa.array(dates, pa.int64())
        self.order = pc.sort_indices(self.dates)
        self.sorted_dates = pc.take(self.dates, self.order)
        kept = int(same.sum())
        if 2 * kept >= log.positions:  # else the log is laid out again (compacted)
            self.kept = kept
            at = prev[np.asarray(self.order)[:kept]]
            self.places = entries[at]  # the kept objects' places, in date order

    def _dead(self, out: ObjectWriter) -> None:
        """Decide whether the entry files carry the previous build's (while the entries no
        longer served are at most ``1 / DEAD_SHARE`` of them), and write ``taxii/dead.bin``."""
        log, kept = self.log, self.kept
        gone = np.empty(0, np.int64)
        self.entries_carried = False
        if log is not None and kept:
            served = np.asarray(self.sorted_dates.slice(0, kept))
            dead = np.setdiff1d(log.file_dates, served)
            if len(dead) * DEAD_SHARE <= len(log.file_dates) + self.n - kept:
                gone, self.entries_carried = dead, True
        out.put(tc.DEAD_KEY, gone.astype("<i8").tobytes())

    def write_log(self, out: ObjectWriter) -> None:
        """Write the data chunks of ``all`` (objects and manifest records): the previous log's
        chunks as they were, then every object not kept appended in date order; set where each
        object lies (``chunk_of`` and ``spans``, by date-order position)."""
        n, kept, log = self.n, self.kept, self.log
        chunk_of = np.zeros(n, np.uint32)
        spans = {kind: (np.zeros(n, np.uint32), np.zeros(n, np.uint32)) for kind in ("obj", "man")}
        chunk, count = 0, 0  # the chunk the next appended object goes to, and what it holds
        if kept and log is not None and self.places is not None:
            chunk_of[:kept] = self.places["chunk"]
            for kind, (a, b) in (("obj", ("os", "oe")), ("man", ("ms", "me"))):
                spans[kind][0][:kept] = self.places[a]
                spans[kind][1][:kept] = self.places[b]
            chunk, count = log.chunks - 1, log.tail
            if count >= taxii_log.PER:
                chunk, count = log.chunks, 0
            for number in range(chunk if kept < n else log.chunks):
                for kind in ("obj", "man"):
                    out.put(tc.chunk_key(tc.ALL_COLLECTION, kind, number), log.text(kind, number))
        last = log.last if log is not None else -1
        p = kept
        while p < n:
            size = min(taxii_log.PER - count, n - p)
            at = self.order.slice(p, size)
            for kind, values in (
                ("obj", pc.take(self.objects, at)),
                ("man", self.manifest_records(at)),
            ):
                prefix = self.log.text(kind, chunk) if count and self.log is not None else b""
                offsets = _offsets(values)
                first, end = offsets[0].as_py(), offsets[-1].as_py()
                body = memoryview(values.buffers()[2]).cast("B")[first:end]
                out.put(tc.chunk_key(tc.ALL_COLLECTION, kind, chunk), bytes(prefix) + body)
                where = np.asarray(pc.subtract(offsets, first - len(prefix))).astype(np.uint32)
                spans[kind][0][p : p + size] = where[:-1]
                spans[kind][1][p : p + size] = where[1:]
                if kind == "obj":
                    self.read += end - first
            chunk_of[p : p + size] = chunk
            p += size
            count += size
            if count == taxii_log.PER and p < n:
                chunk, count = chunk + 1, 0
            if self.read >= RELEASE_BYTES and self.data is not None:
                self.data.madvise(mmap.MADV_DONTNEED)
                self.read = 0
        if n:
            last = max(last, self.sorted_dates[-1].as_py())
        if count:
            self.log_meta = taxii_log.meta_of(chunk + 1, count, last)
        else:  # the last chunk is full (or there is none)
            self.log_meta = taxii_log.meta_of(chunk, taxii_log.PER if chunk else 0, last)
        self.chunk_of = pa.array(chunk_of)
        self.spans = {kind: (pa.array(a), pa.array(b)) for kind, (a, b) in spans.items()}
        self.places = None

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

    def _write_ids(self, out: ObjectWriter) -> None:
        """The id index: one ID_ENTRY (UUID, STIX type, collection, build date) per object,
        sorted by UUID then type, as a *base* (``ids.bin``, with ``ids.fence``: every
        ID_BLOCK-th UUID of it) and the rows the base lacks (``ids.new.bin``).

        The previous build's base is kept byte for byte while the rows it lacks (objects new
        or appended since, whose build date it does not hold) are at most ``1 / ID_NEW_SHARE``
        of it; a base row of an object no longer served names a build date no entry has.
        Otherwise every row goes into a new base."""
        n = self.n
        raw = memoryview(self.uuids.buffers()[1]).cast("B")
        keys = taxii_log.keys_of(raw, np.asarray(self.stix_type))
        order = np.argsort(keys, kind="stable")
        rows = np.empty(n, taxii_log.ID_DTYPE)
        rows["uuid"] = np.frombuffer(raw, "V16", n)[order]
        rows["type"] = np.asarray(self.stix_type)[order]
        rows["coll"] = np.asarray(self.collection)[order]
        rows["date"] = np.asarray(self.dates)[order]
        keys = keys[order]
        del order
        base = self.log.ids if self.log is not None else None
        new = rows[:0]
        if base is not None and len(base):
            base_keys = taxii_log.keys_of(base["uuid"].tobytes(), base["type"])
            where = np.minimum(np.searchsorted(base_keys, keys), len(base) - 1)
            held = (
                (base_keys[where] == keys)
                & (base["date"][where] == rows["date"])
                & (base["coll"][where] == rows["coll"])
            )
            new = rows[~held]
            if len(new) * ID_NEW_SHARE > len(base):
                base, new = None, rows[:0]
            del base_keys, where, held
        if base is None or not len(base):
            base = rows
        del keys
        out.put(tc.ID_INDEX_KEY, base.tobytes())
        out.put(tc.ID_NEW_KEY, new.tobytes())
        out.put(tc.ID_FENCE_KEY, base["uuid"][:: tc.ID_BLOCK].tobytes())
        del self.dates


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

    def _dates(self) -> pa.Array:
        if self.positions is None:
            return self.o.sorted_dates
        return pc.take(self.o.sorted_dates, self.positions)

    def finish(self, out: ObjectWriter) -> None:
        """Write the entry files (all, and per STIX type) a block of ``ENTRY_CHUNKS`` chunks at
        a time, in partitions; then the meta and info documents.

        While the previous build's entries are carried (``Objects.entries_carried``), an entry
        file is that build's, partitions and all (its entries no longer served stay, listed in
        ``taxii/dead.bin``), followed by the entries after the log's last build date."""
        count = self.count
        dates = self._dates()
        modified = pc.take(self.o.modified, self.picked)
        kinds = pc.take(self.o.stix_type, self.picked)
        codes = sorted(pc.unique(kinds).to_pylist())
        block = ENTRY_CHUNKS * tc.CHUNK
        log = self.o.log if self.o.entries_carried else None
        index = taxii_log.Parts(out, tc.collection_key(self.name, "index"))
        typed = {
            code: taxii_log.Parts(out, tc.type_index_key(self.name, tc.STIX_TYPES[code])[:-4])
            for code in codes
        }
        carried: set[int | None] = set()  # the files carried (None: the whole collection's)
        if log is not None:
            for code, parts in [(None, index), *typed.items()]:
                previous = log.entry_file(self.name, None if code is None else tc.STIX_TYPES[code])
                if previous is not None:
                    carried.add(code)
                    for data in previous:
                        parts.add(data)
        after = log.last if log is not None else 0
        for start in range(0, count, block):
            size = min(block, count - start)
            entries = self._entries(start, size, dates, modified, kinds)
            table = pa.Array.from_buffers(
                pa.binary(tc.ENTRY.size), size, [None, pa.py_buffer(entries)]
            )
            new = pc.greater(dates.slice(start, size), after)
            index.add(_bytes_of(pc.filter(table, new)) if None in carried else entries)
            block_kinds = kinds.slice(start, size)
            for code, parts in typed.items():
                wanted = pc.equal(block_kinds, code)
                if code in carried:
                    wanted = pc.and_(wanted, new)
                parts.add(_bytes_of(pc.filter(table, wanted)))
            del table
        del modified
        index.close()
        types = {}
        for code, parts in typed.items():
            parts.close()
            typed_dates = pc.filter(dates, pc.equal(kinds, code))
            types[tc.STIX_TYPES[code]] = {
                "count": parts.count,
                "served": len(typed_dates),
                "fences": parts.fences,
                "last": typed_dates[-1].as_py(),
            }
        meta: dict = {
            "count": index.count,
            "served": count,
            "fences": index.fences,
            "types": types,
            "part": tc.PART,
        }
        if self.positions is not None:
            meta["data"] = tc.ALL_COLLECTION  # the collection whose chunks the entries name
        else:
            meta["log"] = self.o.log_meta  # the data chunks' log, for the next build
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
