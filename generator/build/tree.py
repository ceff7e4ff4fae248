"""Build: precompute the build tree (see ``worker.contract.layout``) from the store.

Stages: aggregate the store into records → write one partition per UTC day and variant →
write the view indexes → precompute every (tier × view × format) default answer by running the
worker's own query engine over the fresh objects → write the manifest. The same store and clock
always give the same bytes and therefore the same build id.

On Linux with two CPUs the per-day work is split over two processes (``SECOND``): the first
aggregates, makes the records and ships each day of them to the second, which it forked before
reading the store; each renders its variants and feeds its sinks, and the second sends back
the keys of what it wrote. The second process ends with the first, even one killed by
SIGKILL (``_die_with_parent``). ``build(..., processes=1)`` does it all in one process, to the byte.
The cyclic garbage collector is off during a build: millions of long-lived objects and no
cycles, so its passes would only rescan them.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import hashlib
import json
import multiprocessing
import os
import pickle
import signal
import sys
import tempfile
import threading
import time
import traceback
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from functools import cache, partial
from itertools import accumulate
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from operator import attrgetter
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from exports.model import IOCRecord
from exports.registry import VARIANT_RENDERERS, Rendered, render_variants
from generator.build import days
from generator.build.changes import ChangeFeed, write_index
from generator.build.devices import DeviceFiles
from generator.build.misp_feed import MispFeed
from generator.build.search_index import SearchIndex
from generator.build.sinks import BuildInfo, DerivedInfo, ObjectWriter, RecordSink, RenderedSink
from generator.build.stats import Stats
from generator.build.suppressed import SuppressionReport
from generator.build.taxii import TaxiiSink
from generator.errors import SocdefError
from generator.extract import warninglists
from generator.extract.warninglists import Warninglists
from generator.site.pages import Site
from generator.store.generations import Store
from generator.store.lifecycle import Expiry, Ledger, Lifecycle, Retraction, retracted_articles
from generator.store.lifecycle import expiry as default_expiry
from generator.store.records import iter_records
from worker.buckets.storage import Build, LocalBucket
from worker.contract import layout
from worker.contract.tiers import TIERS
from worker.endpoints import query

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
    ledger: Ledger | None = None  # the states it decided, for the next build (lifecycle.Ledger)


@cache
def _views_of(type_: str, category: str, confidence: str, status: str) -> tuple[str, ...]:
    return tuple(
        v for v in layout.views_of(type_, category, confidence, status) if v != layout.ALL_VIEW
    )


class ViewIndex:
    """Accumulates, per view, the line numbers of its records day by day."""

    def __init__(self) -> None:
        self.days: dict[str, list[list]] = {}
        self.lines: dict[str, array] = {}

    def add_day(
        self, day: str, records: list[IOCRecord], lines: Sequence[int] | None = None
    ) -> None:
        """``lines``: each record's logical line (None: 0..n-1, a fresh base)."""
        per_view: dict[str, list[int]] = {}
        numbers = range(len(records)) if lines is None else lines
        for i, r in zip(numbers, records, strict=True):
            for view in _views_of(r.type, r.category, r.confidence, r.status):
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
                out.put(layout.view_lines_key(view), memoryview(self.lines.pop(view)).cast("B"))
        self.lines = {}  # written: the sinks that finish after it need the memory


def write_day(
    out: ObjectWriter,
    day: str,
    records: list[IOCRecord],
    variants: Iterable[str] = VARIANT_RENDERERS,
    timestamps: bool = True,
    previous: days.Previous | None = None,
    day_plan: days.Plan | None = None,
    decided: Callable[[days.Plan], None] | None = None,
) -> tuple[Rendered, days.Plan]:
    """Write the day's partitions of ``variants``; answer its lines, variant → one per record
    (with each record's STIX objects when ``stix`` is one of them), and how it was written:
    a fresh base, or an overlay on the ``previous`` build's base (``generator/build/days.py``;
    ``day_plan``: decided by the other process, else here and handed to ``decided``)."""
    if day_plan is None and previous is None:
        day_plan = days.FRESH  # nothing to follow: known before rendering
        if decided is not None:
            decided(day_plan)
    rendered = render_variants(records, list(variants))
    if day_plan is None:
        day_plan = days.plan(previous, day, records, VARIANT_RENDERERS, rendered)
        if decided is not None:
            decided(day_plan)
    if day_plan.lines is not None and previous is not None:
        days.write_overlay(out, previous, day, records, rendered, timestamps, day_plan)
        previous.build.forget()  # the day's offsets, stamps and tables: read once
        return rendered, day_plan
    if previous is not None:
        previous.build.forget()  # what deciding the plan read of the day
    if timestamps:
        out.put(layout.day_ts_key(day), array("q", (r.last_seen for r in records)).tobytes())
    for variant, lines in rendered.items():
        offsets = array("Q", [0])
        offsets.extend(accumulate(map(len, lines)))
        out.put(layout.day_data_key(day, variant), b"".join(lines))
        out.put(layout.day_index_key(day, variant), offsets.tobytes())
    return rendered, days.FRESH


def split_days(records: Iterable[IOCRecord]) -> Iterator[tuple[str, list[IOCRecord]]]:
    """Group records (newest first) into UTC days, one day alive at a time."""
    day = ""
    batch: list[IOCRecord] = []
    number = None  # the day's number (Unix seconds // 86400): the name is made once a day
    for r in records:
        if r.last_seen // layout.DAY_SECONDS != number:
            this = time.strftime("%Y-%m-%d", time.gmtime(r.last_seen))
            if this != day and batch:
                yield day, batch
                batch = []
            day = this
            number = r.last_seen // layout.DAY_SECONDS
        batch.append(r)
    if batch:
        yield day, batch


def default_query(view: str, fmt: str, tier: str, generated_at: int) -> query.Query:
    lookback = TIERS[tier].lookback_days * layout.DAY_SECONDS
    limit = min(DEFAULT_LIMIT, TIERS[tier].max_limit)
    return query.Query(view, fmt, generated_at - lookback, generated_at, 0, limit)


def write_defaults(out: ObjectWriter, info: DerivedInfo) -> None:
    """The default answers of the active views (what pollers ask for); other statuses are
    composed on request."""
    active = [v for v in info.views if layout.view_parts(v)[0] == layout.ACTIVE]
    for tier in TIERS:
        for view in active:
            for fmt in layout.LIST_FORMATS:
                q = default_query(view, fmt, tier, info.build.generated_at)
                out.put(
                    layout.default_key(tier, view, fmt), query.stored_default(info.build, q, fmt)
                )


# The build's extension tables: sinks see every day of records; derived sinks too, but their
# objects are derived ones (not part of the build id); derived stages run after.
SINKS: list[Callable[[], RecordSink]] = [
    SearchIndex,
    Stats,
    Site,
    TaxiiSink,
    DeviceFiles,
    SuppressionReport,
]
DERIVED_SINKS: list[Callable[[BuildInfo, ObjectWriter], RecordSink]] = [MispFeed, ChangeFeed]
DERIVED_STAGES: list[Callable[[ObjectWriter, DerivedInfo], None]] = [write_index, write_defaults]
# With two processes, the second renders these variants and feeds these sinks, the first does
# the rest and makes the records, which it ships to the second. The split only balances the
# work: the objects are the same either way. The first renders STIX, whose objects its TAXII sink
# takes; the second every other variant of worker.contract.formats.
FIRST_VARIANTS = frozenset({"stix"})
SECOND: frozenset[object] = frozenset(
    {
        *(v for v in VARIANT_RENDERERS if v not in FIRST_VARIANTS),
        SearchIndex,
        MispFeed,
        ChangeFeed,
        Stats,
        Site,
        DeviceFiles,
        SuppressionReport,
    }
)


@dataclass(slots=True)
class Lane:
    """One process's share of the build: variants to render, sinks to feed."""

    variants: list[str]
    timestamps: bool
    sinks: list[RecordSink]
    out: ObjectWriter
    derived: ObjectWriter  # where derived sinks put their objects
    previous: days.Previous | None = None  # the build this one follows (day overlays)
    stages: dict[str, float] = field(default_factory=dict)

    def run(
        self,
        items: Iterable[tuple[str, list[IOCRecord]] | tuple[str, list[IOCRecord], days.Plan]],
        info: BuildInfo,
        count: int,
        progress: Progress | None = None,
        ship: RecordShipper | None = None,
    ) -> None:
        clock = _Clock(self.stages)
        done = 0
        for item in items:
            day, day_records = item[0], item[1]
            clock.lap("records")
            rendered, day_plan = write_day(
                self.out,
                day,
                day_records,
                self.variants,
                self.timestamps,
                self.previous,
                item[2] if len(item) > 2 else None,
                None if ship is None else partial(ship.send, day, day_records),
            )
            clock.lap("days")
            for sink in self.sinks:
                if isinstance(sink, (ViewIndex, SearchIndex)):  # refs name logical lines
                    sink.add_day(day, day_records, day_plan.lines)
                elif isinstance(sink, RenderedSink):
                    sink.add_rendered(day, day_records, rendered)
                else:
                    sink.add_day(day, day_records)
                clock.lap(f"{type(sink).__name__}.add_day")
            done += len(day_records)
            if progress:
                progress("records", done, count)
        clock.lap("records")
        if ship is not None:  # the second process finishes its sinks while this one does
            ship.close()
        pa.default_memory_pool().release_unused()  # the store's columns went with the records
        for sink in self.sinks:
            sink.finish(self.out, info)
            _trim()  # what the sink freed, back to the system before the next one's peak
            clock.lap(f"{type(sink).__name__}.finish")


def _trim() -> None:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``; elsewhere
    nothing): a sink's finish frees hundreds of MB in chunks the heap would otherwise keep."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def _main_lane(out_dir: Path, info: BuildInfo, processes: int) -> tuple[Lane, ViewIndex]:
    """The main process's lane (all of the work for one process) and its view index."""
    views = ViewIndex()
    mine = (lambda item: item not in SECOND) if processes > 1 else (lambda item: True)
    lane = Lane(
        [v for v in VARIANT_RENDERERS if mine(v)],
        True,
        [views],
        ObjectWriter(out_dir),
        ObjectWriter(out_dir),
    )
    lane.sinks += [make() for make in SINKS if mine(make)]
    lane.sinks += [make(info, lane.derived) for make in DERIVED_SINKS if mine(make)]
    return lane, views


def _second_lane(out_dir: Path, info: BuildInfo) -> Lane:
    lane = Lane(
        [v for v in VARIANT_RENDERERS if v in SECOND],
        False,
        [],
        ObjectWriter(out_dir),
        ObjectWriter(out_dir),
    )
    lane.sinks += [make() for make in SINKS if make in SECOND]
    lane.sinks += [make(info, lane.derived) for make in DERIVED_SINKS if make in SECOND]
    return lane


_FIELDS = attrgetter(*(f.name for f in fields(IOCRecord)))


class RecordShipper:
    """Hands the main process's records to the second one: each day pickled (as tuples) into a
    shared temporary file, and its place sent over a pipe. The main process never waits for
    the second one, and the second one never touches the aggregation it inherited (so neither
    copies it)."""

    def __init__(self, spool: BinaryIO, notices: Connection) -> None:
        self.spool = spool
        self.notices = notices
        self.size = 0

    def start(self, generated_at: int, count: int) -> None:
        self._notify((generated_at, count))

    def send(self, day: str, records: list[IOCRecord], day_plan: days.Plan) -> None:
        if self.notices.closed:
            return  # the second process ended early; _join reports why
        shipped = (day, list(map(_FIELDS, records)), day_plan.lines, day_plan.base)
        data = pickle.dumps(shipped, pickle.HIGHEST_PROTOCOL)
        os.pwrite(self.spool.fileno(), data, self.size)
        self._notify((self.size, len(data)))
        self.size += len(data)

    def close(self) -> None:
        """Tell the second process the last day was shipped (once; later calls do nothing)."""
        if self.notices.closed:
            return
        self._notify(None)
        self.notices.close()

    def _notify(self, notice: object) -> None:
        try:
            self.notices.send(notice)
        except BrokenPipeError:  # the second process ended (failed): stop shipping to it
            self.notices.close()


def shipped_days(
    spool: BinaryIO, notices: Connection
) -> Iterator[tuple[str, list[IOCRecord], days.Plan]]:
    """The days a :class:`RecordShipper` sends, as they arrive, with how each is written."""
    while (notice := notices.recv()) is not None:
        offset, size = notice
        day, rows, lines, base = pickle.loads(os.pread(spool.fileno(), size, offset))
        yield day, [IOCRecord(*row) for row in rows], days.Plan(lines, base)


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PARENT_POLL_SECONDS = 0.5


def _die_with_parent(parent: int, inherited: Iterable[Connection]) -> None:
    """Make the second process end when the first one does, however it ends (even SIGKILL).

    The pipe ends the first process keeps were inherited by the fork: closed here, the
    second process's reads see end-of-file once the first is gone, instead of waiting on a
    write end it holds itself. On Linux the kernel also kills it when its parent dies
    (``PR_SET_PDEATHSIG``); everywhere a thread polls the parent pid as a fallback.
    """
    for end in inherited:
        end.close()
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the poll below still ends it
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="socdef-parent-watch", daemon=True).start()


def _second_process(
    conn: Connection,
    spool: BinaryIO,
    notices: Connection,
    out_dir: Path,
    store: Store,
    source_name: str,
    parent: int = 0,
    inherited: tuple[Connection, ...] = (),
) -> None:
    """The second process, forked before the store is read (so it shares no aggregation with
    the first): once told the build time, run its lane over the shipped days and send back
    its objects and stage times. It ends when the first process (``parent``) dies."""
    if parent:
        _die_with_parent(parent, inherited)
    try:
        start = notices.recv()
        if start is None:
            return  # the first process failed before any record
        generated_at, count = start
        info = BuildInfo(generated_at, source_name, store)
        lane = _second_lane(out_dir, info)
        lane.previous = days.Previous.of(out_dir)
        lane.run(shipped_days(spool, notices), info, count)
        framed = {**lane.out.framed, **lane.derived.framed}
        coded = {**lane.out.coded, **lane.derived.coded}
        conn.send(("ok", lane.out.objects, lane.derived.objects, lane.stages, framed, coded))
    except BaseException as exc:
        expected = isinstance(exc, (OSError, SocdefError))  # a full disk, not a bug
        with contextlib.suppress(OSError):  # the first process may be gone (killed)
            conn.send(("error", traceback.format_exc(), expected))
    finally:
        conn.close()


def _processes() -> int:
    """Two where forking is safe and there are two CPUs to use, else one."""
    if not sys.platform.startswith("linux") or (os.cpu_count() or 1) < 2:
        return 1
    return 2


def build(
    store: Store,
    out_dir: str | os.PathLike[str],
    *,
    now: int | None = None,
    source_name: str = "socdef",
    progress: Progress | None = None,
    processes: int | None = None,
    lists: Warninglists | None = None,
    expiry: Expiry | None = None,
    retractions: Sequence[Retraction] = (),
    ledger: Ledger | None = None,
) -> BuildResult:
    """Build ``out_dir`` from ``store``; ``processes`` (1 or 2, default: 2 where the platform
    forks and has two CPUs) changes the speed only, never a byte. ``lists`` (default: the
    bundled warninglists) and ``expiry`` (default: the default lifetimes) decide each record's
    state (``generator/store/lifecycle.py``)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _build(
            store,
            Path(out_dir),
            now,
            source_name,
            progress,
            min(2, processes or _processes()),
            lists,
            expiry if expiry is not None else default_expiry(),
            retractions,
            ledger,
        )
    finally:
        if collecting:
            gc.enable()


def _build(
    store: Store,
    out_dir: Path,
    now: int | None,
    source_name: str,
    progress: Progress | None,
    processes: int,
    lists: Warninglists | None,
    expiry: Expiry,
    retractions: Sequence[Retraction] = (),
    ledger: Ledger | None = None,
) -> BuildResult:
    started = time.perf_counter()
    stages: dict[str, float] = {}
    clock = _Clock(stages)
    child, receiver, ship = None, None, None
    with tempfile.TemporaryFile(prefix="socdef-records-") as spool:
        if processes > 1:
            context = multiprocessing.get_context("fork")
            receiver, sender = context.Pipe(duplex=False)
            notices, notify = context.Pipe(duplex=False)
            child = context.Process(
                target=_second_process,
                daemon=True,
                args=(
                    sender,
                    spool,
                    notices,
                    out_dir,
                    store,
                    source_name,
                    os.getpid(),
                    (receiver, notify),
                ),
            )
            child.start()
            sender.close()
            notices.close()
            ship = RecordShipper(spool, notify)
        try:
            articles, sightings = store.articles(), store.sightings()
            if now is not None:
                generated_at = now
            else:  # the last ingest, else the newest sighting's article
                generated_at = store.state().get("as_of") or _newest(articles, sightings)
            lifecycle = Lifecycle(
                lists if lists is not None else warninglists.bundled(),
                expiry,
                generated_at,
                retracted_articles(retractions, articles),
                ledger if ledger is not None else Ledger(),
            )
            count, records = iter_records(articles, sightings, lifecycle)
            del articles, sightings
            info = BuildInfo(generated_at, source_name, store)
            pa.default_memory_pool().release_unused()  # what the records need of the store stays
            clock.lap("aggregate")
            main, views = _main_lane(out_dir, info, processes)
            main.previous = days.Previous.of(out_dir)
            if ship is not None:
                ship.start(generated_at, count)
            main.run(split_days(records), info, count, progress, ship)
            derived_objects = _join(main, child, receiver, stages, clock)
        finally:
            if child is not None and child.is_alive():
                child.terminate()
                child.join()
    out = main.out
    # The id names the data; derived objects (default answers, the MISP feed, ...) carry it.
    build_id = _build_id(generated_at, source_name, out.objects)
    data_only = Build(
        LocalBucket(out.root),
        _manifest(build_id, generated_at, out.objects, framed=out.framed, coded=out.coded),
    )
    _merge(out, derived_objects)
    derived = DerivedInfo(data_only, sorted(views.days), source_name)
    for stage in DERIVED_STAGES:
        stage(out, derived)
        clock.lap(stage.__name__)
    manifest = _manifest(
        build_id, generated_at, out.objects, iocs=count, framed=out.framed, coded=out.coded
    )
    path = out_dir / layout.manifest_key(build_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode())
    (out_dir / "LATEST").write_text(build_id)
    return BuildResult(
        build_id,
        generated_at,
        count,
        len(out.objects),
        sum(size for _, size in out.objects.values()),
        time.perf_counter() - started,
        stages,
        lifecycle.after,
    )


class SecondProcessFailed(SocdefError, RuntimeError):
    """The second build process failed on an expected failure (a full disk, a file it could not
    write, or it ended without an answer); its traceback is kept as a note."""


def _join(
    main: Lane,
    child: BaseProcess | None,
    receiver: Connection | None,
    stages: dict[str, float],
    clock: _Clock,
) -> dict[str, list]:
    """Wait for the second process; merge its data objects into the main lane's. Answer the
    derived objects of both."""
    out = main.out
    derived_objects = dict(main.derived.objects)
    out.framed.update(main.derived.framed)
    out.coded.update(main.derived.coded)
    stages.update(main.stages)
    clock.last = time.perf_counter()
    if child is not None and receiver is not None:
        try:
            answer = receiver.recv()
        except EOFError:
            answer = ("error", "it ended without an answer", True)
        child.join()
        clock.lap("wait for the second process")
        if answer[0] != "ok":  # the child's traceback as a note; an expected failure is one
            # line (the CLI prints it), a bug in the child a traceback with that note
            message = (
                "the second build process failed: " + (answer[1].strip().splitlines() or ["?"])[-1]
            )
            error = SecondProcessFailed(message) if answer[2] else RuntimeError(message)
            error.add_note(answer[1])
            raise error
        _, objects, child_derived, child_stages, framed, coded = answer
        _merge(out, objects)
        out.framed.update(framed)
        out.coded.update(coded)
        derived_objects.update(child_derived)
        stages.update({f"2:{name}": seconds for name, seconds in child_stages.items()})
    return derived_objects


def _newest(articles: pa.Table, sightings: pa.Table) -> int:
    """The latest publication time of an article with sightings (0 for an empty store)."""
    used = pc.is_in(articles["article_id"], value_set=sightings["article_id"].combine_chunks())
    newest = pc.max(articles.filter(used)["published"]).as_py()
    return int(newest or 0)


def _merge(out: ObjectWriter, objects: dict[str, list]) -> None:
    for key, entry in objects.items():
        if key in out.objects:
            raise ValueError(f"two producers for one build object: {key}")
        out.objects[key] = entry


MEMTRACE = "SOCDEF_BUILD_MEMTRACE"  # a file: each stage's peak resident memory, appended


class _Clock:
    """Adds the seconds since the previous lap to a named stage.

    With ``SOCDEF_BUILD_MEMTRACE=<file>`` each lap also appends a line to that file: process id,
    seconds since the epoch, the stage, the process's resident MB at the lap and its peak since
    the previous lap (the kernel's high-water mark, reset at each lap), so a memory peak is
    pinned to the stage that made it (docs/performance.md)."""

    def __init__(self, stages: dict[str, float]) -> None:
        self.stages = stages
        self.last = time.perf_counter()
        self.trace = os.environ.get(MEMTRACE) or None
        if self.trace:
            _memory_mark()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.stages[name] = self.stages.get(name, 0.0) + now - self.last
        self.last = now
        if self.trace:
            rss, peak = _memory_mark()
            with open(self.trace, "a") as fh:
                fh.write(f"{os.getpid()} {time.time():.2f} {name!r} {rss} {peak}\n")


def _memory_mark() -> tuple[int, int]:
    """This process's resident and peak resident MB (Linux; 0 elsewhere); resets the peak."""
    rss = peak = 0
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    kb = int(line.split()[1]) // 1024
                    rss, peak = (kb, peak) if line.startswith("VmRSS") else (rss, kb)
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset the high-water mark
    except OSError:
        pass
    return rss, peak


def _build_id(generated_at: int, source_name: str, objects: dict[str, list]) -> str:
    digest = hashlib.sha256(f"{layout.FORMAT_VERSION}\0{generated_at}\0{source_name}\n".encode())
    for key in sorted(objects):
        digest.update(f"{key}\0{objects[key][0]}\n".encode())
    return time.strftime("%Y%m%dT%H%M%SZ-", time.gmtime(generated_at)) + digest.hexdigest()[:12]


def _manifest(
    build_id: str,
    generated_at: int,
    objects: dict[str, list],
    iocs: int = 0,
    framed: dict[str, int] | None = None,
    coded: dict[str, list] | None = None,
) -> dict:
    """The manifest: every object's stored SHA-256 and size, the size of the text of each
    framed one (``worker/contract/framing.py``), and the coding, SHA-256 and size of the text
    of each compressed one (``worker/contract/coded.py``)."""
    manifest = {
        "build_id": build_id,
        "format_version": layout.FORMAT_VERSION,
        "generated_at": generated_at,
        "iocs": iocs,
        "objects": dict(sorted(objects.items())),
    }
    if framed:
        manifest["framed"] = {key: framed[key] for key in sorted(framed) if key in objects}
    if coded:
        manifest["coded"] = {key: coded[key] for key in sorted(coded) if key in objects}
    return manifest
