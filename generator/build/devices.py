"""Device files: every file of ``worker.contract.device_files`` per tier, written whole by the build.

A build sink (``generator/build/tree.py`` ``SINKS``). It keeps a slim copy of each record (what the
device renderers read) and, once the build's time is known, renders for each tier the records
its lookback covers (``last_seen`` in ``[generated_at − lookback, generated_at]``, as the list
answers count it) with no row cap. A list a device takes only in parts is written as several
files (``worker.contract.device_files.part_name``). Each tier's index (``devices/<tier>/index.json``)
lists what it wrote: what ``GET /api/v1/feeds`` answers, less the URLs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from exports.devices.common import DeviceMeta
from exports.devices.render import render_all
from exports.model import IOCRecord
from generator.build.sinks import BuildInfo, ObjectWriter
from worker.contract import device_files, layout
from worker.contract.tiers import TIERS

DESC_CHARS = 200  # of a record's context kept for the files that describe it (Zeek's meta.desc)


def slim(r: IOCRecord) -> IOCRecord:
    """What the device renderers read of a record; the rest dropped to save memory."""
    return IOCRecord(
        "", r.type, r.value, r.confidence, r.first_seen, r.last_seen, 0, "",
        r.article_title if not r.context else "", r.article_url, "", "",
        r.context[:DESC_CHARS], (), (),
    )  # fmt: skip


class DeviceFiles:
    """The build sink writing ``devices/<tier>/…``."""

    def __init__(self) -> None:
        self.records: list[IOCRecord] = []  # newest first, as the days arrive

    def add_day(self, day: str, records: list[IOCRecord]) -> None:
        self.records += map(slim, records)

    def finish(self, out: ObjectWriter, info: BuildInfo) -> None:
        for tier in TIERS.values():
            since = info.generated_at - tier.lookback_days * layout.DAY_SECONDS
            covered = [r for r in self.records if since <= r.last_seen <= info.generated_at]
            meta = DeviceMeta(tier.name, info.generated_at, tier.lookback_days, info.source_name)
            write_tier(out, covered, meta)
        self.records = []


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
