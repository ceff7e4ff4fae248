"""Build: precompute the build tree (see ``worker.layout``) from the store.

Stages: aggregate the store into records → write one partition per UTC day and variant →
write the view indexes → precompute every (tier × view × format) default answer by running the
worker's own query engine over the fresh objects → write the manifest. The same store and clock
always give the same bytes and therefore the same build id.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from exports.model import IOCRecord
from exports.registry import VARIANT_RENDERERS
from generator.misp_feed import write_misp_feed
from generator.model import iter_records
from generator.objects import BuildInfo, DerivedInfo, ObjectWriter, RecordSink
from generator.search_index import SearchIndex
from generator.site import Site
from generator.stats import Stats
from generator.store import Store
from generator.taxii_build import TaxiiSink
from worker import layout, query
from worker.storage import Build, LocalBucket
from worker.tiers import TIERS

Progress = Callable[[str, int, int], None]
DEFAULT_LIMIT = 100


@dataclass(frozen=True, slots=True)
class BuildResult:
    build_id: str
    generated_at: int
    iocs: int
    objects: int
    bytes: int
    seconds: float
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage / sink


@cache
def _views_of(type_: str, category: str, confidence: str) -> tuple[str, ...]:
    return tuple(v for v in layout.views_of(type_, category, confidence) if v != layout.ALL_VIEW)


class ViewIndex:
    """Accumulates, per view, the line numbers of its records day by day."""

    def __init__(self) -> None:
        self.days: dict[str, list[list]] = {}
        self.lines: dict[str, array] = {}

    def add_day(self, day: str, records: list[IOCRecord]) -> None:
        per_view: dict[str, list[int]] = {}
        for i, r in enumerate(records):
            for view in _views_of(r.type, r.category, r.confidence):
                per_view.setdefault(view, []).append(i)
        self.days.setdefault(layout.ALL_VIEW, []).append([day, len(records), 0])
        for view, lines in per_view.items():
            store = self.lines.setdefault(view, array("I"))
            self.days.setdefault(view, []).append([day, len(lines), len(store)])
            store.extend(lines)

    def finish(self, out: ObjectWriter, info: BuildInfo) -> None:
        for view in sorted(self.days):
            index = {"view": view, "days": self.days[view]}
            out.put(layout.view_index_key(view), json.dumps(index, separators=(",", ":")).encode())
            if view != layout.ALL_VIEW:
                out.put(layout.view_lines_key(view), self.lines[view].tobytes())


def write_day(out: ObjectWriter, day: str, records: list[IOCRecord]) -> None:
    out.put(layout.day_ts_key(day), array("q", (r.last_seen for r in records)).tobytes())
    for variant, render in VARIANT_RENDERERS.items():
        lines = [render(r) for r in records]
        offsets = array("Q", [0])
        total = 0
        for line in lines:
            total += len(line)
            offsets.append(total)
        out.put(layout.day_data_key(day, variant), b"".join(lines))
        out.put(layout.day_index_key(day, variant), offsets.tobytes())


def split_days(records: Iterable[IOCRecord]) -> Iterator[tuple[str, list[IOCRecord]]]:
    """Group records (newest first) into UTC days, one day alive at a time."""
    day, batch = "", []
    for r in records:
        this = time.strftime("%Y-%m-%d", time.gmtime(r.last_seen))
        if this != day and batch:
            yield day, batch
            batch = []
        day = this
        batch.append(r)
    if batch:
        yield day, batch


def default_query(view: str, fmt: str, tier: str, generated_at: int) -> query.Query:
    lookback = TIERS[tier].lookback_days * layout.DAY_SECONDS
    limit = min(DEFAULT_LIMIT, TIERS[tier].max_limit)
    return query.Query(view, fmt, generated_at - lookback, generated_at, 0, limit)


def write_defaults(out: ObjectWriter, info: DerivedInfo) -> None:
    for tier in TIERS:
        for view in info.views:
            for fmt in layout.LIST_FORMATS:
                q = default_query(view, fmt, tier, info.build.generated_at)
                body, _ = query.render(info.build, q, fmt, info.source_name)
                out.put(layout.default_key(tier, view, fmt), body)


# The build's extension tables: sinks see every day of records; derived stages run after.
SINKS: list[Callable[[], RecordSink]] = [SearchIndex, Stats, Site, TaxiiSink]
DERIVED_STAGES: list[Callable[[ObjectWriter, DerivedInfo], None]] = [write_defaults, write_misp_feed]


def build(
    store: Store,
    out_dir: str | os.PathLike[str],
    *,
    now: int | None = None,
    source_name: str = "socdef",
    progress: Progress | None = None,
) -> BuildResult:
    started = time.perf_counter()
    stages: dict[str, float] = {}
    clock = _Clock(stages)
    out = ObjectWriter(Path(out_dir))
    count, records = iter_records(store.articles(), store.sightings())
    clock.lap("aggregate")
    views = ViewIndex()
    sinks: list[RecordSink] = [views, *(make() for make in SINKS)]
    newest = done = 0
    for day, day_records in split_days(records):
        clock.lap("records")
        newest = newest or day_records[0].last_seen
        write_day(out, day, day_records)
        clock.lap("days")
        for sink in sinks:
            sink.add_day(day, day_records)
            clock.lap(f"{type(sink).__name__}.add_day")
        done += len(day_records)
        if progress:
            progress("records", done, count)
    clock.lap("records")
    generated_at = now if now is not None else (store.state().get("as_of") or newest)
    for sink in sinks:
        sink.finish(out, BuildInfo(generated_at, source_name, store))
        clock.lap(f"{type(sink).__name__}.finish")
    # The id names the data; derived objects (default answers, ...) carry it.
    build_id = _build_id(generated_at, source_name, out.objects)
    data_only = Build(LocalBucket(out.root), _manifest(build_id, generated_at, out.objects))
    derived = DerivedInfo(data_only, sorted(views.days), source_name)
    for stage in DERIVED_STAGES:
        stage(out, derived)
        clock.lap(stage.__name__)
    manifest = _manifest(build_id, generated_at, out.objects, iocs=count)
    path = Path(out_dir) / layout.manifest_key(build_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode())
    (Path(out_dir) / "LATEST").write_text(build_id)
    return BuildResult(
        build_id,
        generated_at,
        count,
        len(out.objects),
        sum(size for _, size in out.objects.values()),
        time.perf_counter() - started,
        stages,
    )


class _Clock:
    """Adds the seconds since the previous lap to a named stage."""

    def __init__(self, stages: dict[str, float]) -> None:
        self.stages = stages
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.stages[name] = self.stages.get(name, 0.0) + now - self.last
        self.last = now


def _build_id(generated_at: int, source_name: str, objects: dict[str, list]) -> str:
    digest = hashlib.sha256(f"{layout.FORMAT_VERSION}\0{generated_at}\0{source_name}\n".encode())
    for key in sorted(objects):
        digest.update(f"{key}\0{objects[key][0]}\n".encode())
    return time.strftime("%Y%m%dT%H%M%SZ-", time.gmtime(generated_at)) + digest.hexdigest()[:12]


def _manifest(build_id: str, generated_at: int, objects: dict[str, list], iocs: int = 0) -> dict:
    return {
        "build_id": build_id,
        "format_version": layout.FORMAT_VERSION,
        "generated_at": generated_at,
        "iocs": iocs,
        "objects": dict(sorted(objects.items())),
    }
