"""The TAXII 2.1 part of a build: resources, object pages, manifests and their indexes.

A build sink (``generator/build.py`` ``SINKS``). Each record's STIX objects are rendered once by
``exports/stix21.py`` (``render_line``, split per object) and spooled to a temporary file with a
few numbers per object. Once every record is seen, each object gets its ``date_added``
(``generator/taxii_order.py``), and every collection is written in ``date_added`` order: data
chunks of ``CHUNK`` objects and manifest records, one fixed-size entry per object
(``taxii/c/<name>/index.bin``), one entry file per STIX type for ``match[type]``, and one
id index over all objects for ``match[id]``. Layout: ``worker/taxii_common.py``; how the
worker slices it: docs/taxii.md.
"""

from __future__ import annotations

import json
import mmap
import re
import tempfile
from array import array

from exports import stix21
from exports.model import IOCRecord
from generator.objects import BuildInfo, ObjectWriter
from generator.taxii_order import (
    DateAllocator,
    object_key,
    relationship_events,
    strictly_increasing,
)
from worker import layout
from worker import taxii_common as tc

HEAD = re.compile(rb'\{"type":"([a-z-]+)","spec_version":"2\.1","id":"[a-z-]+--([0-9a-f-]{36})"')
SPLIT = b',{"type":"relationship",'  # cannot occur inside a JSON string: its quotes are bare
IOC_CODES = {name: i for i, name in enumerate(layout.IOC_TYPES)}
MAX_CONTENT_LENGTH = 65_536  # the largest request body the worker reads (read-only server)


class TaxiiError(RuntimeError):
    """A record's STIX line does not have the shape TAXII pages need."""


def split_objects(line: bytes) -> list[bytes]:
    """A record's comma-terminated STIX objects, one per element (each keeps its comma)."""
    parts = line.split(SPLIT)
    if len(parts) == 1:
        return [line]
    head = SPLIT[1:]
    return [parts[0] + b","] + [head + p + b"," for p in parts[1:-1]] + [head + parts[-1]]


class TaxiiSink:
    """Spools every STIX object with its numbers; writes the TAXII tree at ``finish``."""

    def __init__(self) -> None:
        self.alloc = DateAllocator()
        self.spool = tempfile.TemporaryFile(prefix="socdef-taxii-")
        self.size = 0
        self.event = array("q")  # the time of each object's current version event
        self.key = array("Q")
        self.modified = array("q")  # µs
        self.offset = array("Q")
        self.length = array("I")
        self.collection = bytearray()  # IOC type code of the record
        self.stix_type = bytearray()
        self.uuids = bytearray()  # 16 bytes per object

    def add_day(self, day: str, records: list[IOCRecord]) -> None:
        for r in records:
            self.add_record(r)

    def add_record(self, r: IOCRecord) -> None:
        parts = split_objects(stix21.render_line(r))
        main = r.version_times or (max(r.ingested_at, r.last_seen),)
        if len(parts) > 1 and len(parts) != len(r.mitre_techniques) + 1:
            raise TaxiiError(f"{r.type} {r.value}: {len(parts)} objects for "
                             f"{len(r.mitre_techniques)} techniques")
        for k, part in enumerate(parts):
            events = main
            if k:
                joined = r.technique_times[k - 1] if r.technique_times else 0
                events = relationship_events(main, joined or main[0])
            self._add(part, r, events)

    def _add(self, data: bytes, r: IOCRecord, events: tuple[int, ...]) -> None:
        found = HEAD.match(data)
        if found is None or found.group(1).decode() not in tc.TYPE_CODES:
            raise TaxiiError(f"unexpected STIX object head: {data[:80]!r}")
        uuid_hex = found.group(2).decode()
        key = object_key(uuid_hex)
        self.alloc.add(events, key)
        self.event.append(events[-1])
        self.key.append(key)
        self.modified.append(r.last_seen * 1_000_000)
        self.offset.append(self.size)
        self.length.append(len(data))
        self.collection.append(IOC_CODES[r.type])
        self.stix_type.append(tc.TYPE_CODES[found.group(1).decode()])
        self.uuids += bytes.fromhex(uuid_hex.replace("-", ""))
        self.spool.write(data)
        self.size += len(data)

    def finish(self, out: ObjectWriter, info: BuildInfo) -> None:
        dates = self._dates()
        order = sorted(range(len(dates)), key=dates.__getitem__)
        members: dict[str, list[int]] = {name: [] for name in tc.COLLECTIONS}
        members[tc.ALL_COLLECTION] = order
        for i in order:
            members[layout.IOC_TYPES[self.collection[i]]].append(i)
        self.spool.flush()
        data = mmap.mmap(self.spool.fileno(), 0, access=mmap.ACCESS_READ) if self.size else b""
        positions = {name: array("I", bytes(4 * len(dates))) for name in ("all", "own")}
        try:
            for name, picked in members.items():
                pos = positions["all" if name == tc.ALL_COLLECTION else "own"]
                CollectionWriter(self, name, dates, data).write(out, picked, pos)
        finally:
            if isinstance(data, mmap.mmap):
                data.close()
            self.spool.close()
        self._write_ids(out, positions["all"], positions["own"])
        write_resources(out, info.source_name)

    def _dates(self) -> array:
        self.alloc.finish()
        dates = array("q", map(self.alloc.date_added, self.event, self.key))
        order = sorted(range(len(dates)), key=dates.__getitem__)
        ordered = array("q", (dates[i] for i in order))
        if strictly_increasing(ordered):
            for j, i in enumerate(order):
                dates[i] = ordered[j]
        return dates

    def _write_ids(self, out: ObjectWriter, pos_all: array, pos_own: array) -> None:
        u = self.uuids
        rows = sorted(
            (bytes(u[16 * i : 16 * i + 16]), self.stix_type[i], self.collection[i], pos_all[i],
             pos_own[i])
            for i in range(len(self.key))
        )
        out.put(tc.ID_INDEX_KEY, b"".join(tc.ID_ENTRY.pack(*row) for row in rows))
        out.put(tc.ID_FENCE_KEY, b"".join(row[0] for row in rows[:: tc.ID_BLOCK]))


class CollectionWriter:
    """Writes one collection: chunks, manifest records, entries, type entries, meta, info."""

    def __init__(self, sink: TaxiiSink, name: str, dates: array, data: bytes | mmap.mmap) -> None:
        self.s = sink
        self.name = name
        self.dates = dates
        self.data = data
        self.entries = bytearray()
        self.fences: list[int] = []
        self.by_type: dict[int, bytearray] = {}
        self.type_fences: dict[int, list[int]] = {}

    def write(self, out: ObjectWriter, picked: list[int], positions: array) -> None:
        for start in range(0, len(picked), tc.CHUNK):
            self._chunk(out, start // tc.CHUNK, picked[start : start + tc.CHUNK], positions, start)
        out.put(tc.collection_key(self.name, "index.bin"), bytes(self.entries))
        types = {}
        for code in sorted(self.by_type):
            stix_type = tc.STIX_TYPES[code]
            out.put(tc.type_index_key(self.name, stix_type), bytes(self.by_type[code]))
            entries = self.by_type[code]
            types[stix_type] = {"count": len(entries) // tc.ENTRY.size,
                                "fences": self.type_fences[code],
                                "last": tc.ENTRY.unpack_from(entries, len(entries) - tc.ENTRY.size)[0]}
        meta = {"count": len(picked), "fences": self.fences, "types": types}
        if picked:
            meta["last"] = self.dates[picked[-1]]
        out.put(tc.collection_key(self.name, "meta.json"), _compact(meta))
        out.put(tc.collection_key(self.name, "info.json"), _compact(collection_resource(self.name)))

    def _chunk(self, out: ObjectWriter, number: int, picked: list[int], positions: array,
               start: int) -> None:
        s = self.s
        objects, manifest = bytearray(), bytearray()
        self.fences.append(self.dates[picked[0]])
        for n, i in enumerate(picked):
            positions[i] = start + n
            o0, m0 = len(objects), len(manifest)
            objects += self.data[s.offset[i] : s.offset[i] + s.length[i]]
            manifest += self._manifest_record(i)
            entry = tc.ENTRY.pack(self.dates[i], s.modified[i], number, o0, len(objects), m0,
                                  len(manifest), s.stix_type[i])
            self.entries += entry
            self._typed(s.stix_type[i], entry, self.dates[i])
        out.put(tc.chunk_key(self.name, "obj", number), bytes(objects))
        out.put(tc.chunk_key(self.name, "man", number), bytes(manifest))

    def _typed(self, code: int, entry: bytes, date: int) -> None:
        found = self.by_type.get(code)
        if found is None:
            found = self.by_type[code] = bytearray()
            self.type_fences[code] = []
        if (len(found) // tc.ENTRY.size) % tc.CHUNK == 0:
            self.type_fences[code].append(date)
        found += entry

    def _manifest_record(self, i: int) -> bytes:
        s = self.s
        oid = tc.object_id(s.stix_type[i], bytes(s.uuids[16 * i : 16 * i + 16]))
        return (f'{{"id":"{oid}","date_added":"{tc.timestamp_us(self.dates[i])}",'
                f'"version":"{tc.version_string(s.modified[i])}",'
                f'"media_type":"{tc.STIX_MEDIA_TYPE}"}},').encode()


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
