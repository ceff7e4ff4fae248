"""Device files: every file of ``worker.contract.device_files`` per tier, written whole by the build.

A build sink (``generator/build/tree.py`` ``SINKS``). It spools a slim copy of each active record
(what the device renderers read) to a temporary file, a day at a time, so the records phase does
not hold a million of them (about 400 MB at 1M IOCs); once the build's time is known, renders for each tier the records
its lookback covers (``last_seen`` in ``[generated_at − lookback, generated_at]``, as the list
answers count it) with no row cap, active records only (a device blocks what it is given). A list a device takes only in parts is written as several
files (``worker.contract.device_files.part_name``). Each tier's index (``devices/<tier>/index.json``)
lists what it wrote: what ``GET /api/v1/feeds`` answers, less the URLs.
"""

from __future__ import annotations

import json
import pickle
import tempfile
from collections.abc import Sequence

from exports.devices.common import DeviceMeta
from exports.devices.render import render_all
from exports.model import ACTIVE, IOCRecord
from generator.build.sinks import BuildInfo, ObjectWriter
from worker.contract import device_files, layout
from worker.contract.tiers import TIERS

DESC_CHARS = 200  # of a record's context kept for the files that describe it (Zeek's meta.desc)


def slim(r: IOCRecord) -> tuple:
    """What the device renderers read of a record (``unslim`` makes it a record again)."""
    return (
        r.type, r.value, r.confidence, r.first_seen, r.last_seen,
        r.article_title if not r.context else "", r.article_url, r.context[:DESC_CHARS],
    )  # fmt: skip


def unslim(
    type_: str, value: str, confidence: str, first_seen: int, last_seen: int, title: str,
    url: str, context: str,
) -> IOCRecord:  # fmt: skip
    return IOCRecord(
        "", type_, value, confidence, first_seen, last_seen, 0, "", title, url, "", "",
        context, (), (),
    )  # fmt: skip


class DeviceFiles:
    """The build sink writing ``devices/<tier>/…``."""

    def __init__(self) -> None:
        self.spool = tempfile.TemporaryFile(prefix="socdef-devices-")  # a pickled list a day

    def add_day(self, day: str, records: list[IOCRecord]) -> None:
        rows = [slim(r) for r in records if r.status == ACTIVE]  # active only
        if rows:
            pickle.dump(rows, self.spool, pickle.HIGHEST_PROTOCOL)

    def records(self) -> list[IOCRecord]:
        """The spooled records, newest first, as the days arrived."""
        self.spool.seek(0)
        records: list[IOCRecord] = []
        while True:
            try:
                rows = pickle.load(self.spool)
            except EOFError:
                return records
            records += (unslim(*row) for row in rows)

    def finish(self, out: ObjectWriter, info: BuildInfo) -> None:
        try:
            records = self.records()
        finally:
            self.spool.close()
        for tier in TIERS.values():
            since = info.generated_at - tier.lookback_days * layout.DAY_SECONDS
            covered = [r for r in records if since <= r.last_seen <= info.generated_at]
            meta = DeviceMeta(tier.name, info.generated_at, tier.lookback_days, info.source_name)
            write_tier(out, covered, meta)
            del covered


def write_tier(out: ObjectWriter, records: Sequence[IOCRecord], meta: DeviceMeta) -> None:
    """Every device file of one tier, then its index."""
    index = []
    for file, parts in render_all(records, meta):
        for number, data in enumerate(parts, start=1):
            name = device_files.part_name(file.name, number)
            out.put(device_files.key(meta.tier, name), data)
            index.append(
                {
                    "name": name,
                    "format": file.format,
                    "type": file.type,
                    "media_type": file.media_type,
                    "scope": file.scope,
                    "part": number,
                    "parts": len(parts),
                    "lines": data.count(b"\n"),
                }
            )
    body = json.dumps({"files": index}, separators=(",", ":"), sort_keys=True).encode()
    out.put(device_files.index_key(meta.tier), body)
