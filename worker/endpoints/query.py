"""Answering a list query from day partitions, without rendering a single record.

A query names a view, a variant, an inclusive [since, until] window of ``last_seen`` seconds,
an offset and a limit. Records are ordered newest first: days descending, and within a day in
partition order. The cost is the bytes returned plus the index of at most the two boundary
days of the window (see docs/architecture.md).
"""

from __future__ import annotations

import bisect
import calendar
import functools
import json
import time
from array import array
from dataclasses import dataclass
from typing import Any

from worker.buckets import days
from worker.buckets.storage import Build
from worker.contract import formats, layout


@dataclass(frozen=True, slots=True)
class Query:
    view: str
    variant: str
    since: int
    until: int
    offset: int
    limit: int


@dataclass(frozen=True, slots=True)
class Segment:
    """Positions [lo, hi) of one view's records on one day."""

    day: str
    start: int
    lo: int
    hi: int


@dataclass(frozen=True, slots=True)
class Selection:
    total: int
    count: int
    data: bytes


@functools.lru_cache(maxsize=4096)
def day_start(day: str) -> int:
    return calendar.timegm(time.strptime(day, "%Y-%m-%d"))


def view_days(build: Build, view: str) -> list[tuple[str, int, int]]:
    def load() -> list[tuple[str, int, int]]:
        raw = build.read_json(layout.view_index_key(view))
        # the build writes the view index as a JSON object with a "days" list
        return [] if raw is None else [tuple(d) for d in raw["days"]]  # type: ignore[index]

    return build.cached(f"view:{view}", load)


def _view_lines(build: Build, view: str, start: int, stop: int) -> array[int]:
    lines = array("I")
    lines.frombytes(build.read_range(layout.view_lines_key(view), start * 4, stop * 4))
    return lines


def _trim(build: Build, view: str, day: str, start: int, count: int, q: Query) -> Segment:
    """Narrow a boundary day to the records whose last_seen lies inside the window."""
    ts = days.stamps(build, day)
    stamps: list[int] | array[int]
    if view != layout.ALL_VIEW:
        stamps = [ts[i] for i in _view_lines(build, view, start, start + count)]
    elif (listed := days.order(build, day)) is not None:
        stamps = [ts[i] for i in listed]
    else:
        stamps = ts
    lo = bisect.bisect_left(stamps, -q.until, key=lambda t: -t)
    hi = bisect.bisect_right(stamps, -q.since, key=lambda t: -t)
    return Segment(day, start, lo, max(lo, hi))


def segments(build: Build, q: Query) -> list[Segment]:
    found: list[Segment] = []
    for day, count, start in view_days(build, q.view):
        first = day_start(day)
        last = first + layout.DAY_SECONDS - 1
        if last < q.since:
            break
        if first > q.until:
            continue
        if q.since <= first and last <= q.until:
            found.append(Segment(day, start, 0, count))
        else:
            found.append(_trim(build, q.view, day, start, count, q))
    return [s for s in found if s.hi > s.lo]


def page(found: list[Segment], offset: int, limit: int) -> list[Segment]:
    picked: list[Segment] = []
    skip, take = offset, limit
    for seg in found:
        size = seg.hi - seg.lo
        if skip >= size:
            skip -= size
            continue
        lo = seg.lo + skip
        hi = min(seg.hi, lo + take)
        skip = 0
        picked.append(Segment(seg.day, seg.start, lo, hi))
        take -= hi - lo
        if take == 0:
            break
    return picked


def read_segment(build: Build, view: str, variant: str, seg: Segment) -> list[bytes]:
    """The lines of one segment, through the day's overlay (``worker/buckets/days.py``)."""
    if view == layout.ALL_VIEW:
        listed = days.order(build, seg.day)
        if listed is None and days.overlay(build, seg.day, variant) is None:
            index_key = layout.day_index_key(seg.day, variant)
            bounds = array("Q")
            bounds.frombytes(build.read_range(index_key, seg.lo * 8, seg.hi * 8 + 8))
            return [build.read_range(layout.day_data_key(seg.day, variant), bounds[0], bounds[-1])]
        lines: array[int] | range = (
            range(seg.lo, seg.hi) if listed is None else listed[seg.lo : seg.hi]
        )
    else:
        lines = _view_lines(build, view, seg.start + seg.lo, seg.start + seg.hi)
    return days.read_lines(build, seg.day, variant, lines)


def select(build: Build, q: Query) -> Selection:
    found = segments(build, q)
    total = sum(s.hi - s.lo for s in found)
    picked = page(found, q.offset, q.limit)
    chunks = [c for seg in picked for c in read_segment(build, q.view, q.variant, seg)]
    return Selection(total, sum(s.hi - s.lo for s in picked), b"".join(chunks))


def select_total(build: Build, q: Query) -> int:
    """How many records the window and view of ``q`` hold (its pages' total)."""
    return sum(s.hi - s.lo for s in segments(build, q))


def meta_filters(view: str, since: int, until: int) -> dict[str, str]:
    status, type_, category, confidence = layout.view_parts(view)
    return {
        "type": ",".join(layout.TYPE_GROUPS.get(type_, (type_,))),
        "category": category,
        "confidence": confidence,
        "status": status,
        "since": iso(since),
        "until": iso(until),
    }


def iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def json_head(meta: dict[str, Any], data: bytes) -> bytes:
    """A JSON list answer without its ``links`` member (the edge appends it)."""
    if data.endswith(b","):
        data = data[:-1]
    return (
        b'{"meta":' + json.dumps(meta, separators=(",", ":")).encode() + b',"data":[' + data + b"]"
    )


def json_envelope(meta: dict[str, Any], data: bytes) -> bytes:
    """``{"meta": …, "data": …}`` around ``data``, already JSON (an object or an array)."""
    return (
        b'{"meta":' + json.dumps(meta, separators=(",", ":")).encode() + b',"data":' + data + b"}"
    )


def list_meta(build: Build, q: Query, total: int, source_name: str) -> dict[str, Any]:
    """``meta`` of a JSON list answer (``total`` leads: ``iocs.count_in`` reads it first)."""
    return {
        "total": total,
        "limit": q.limit,
        "offset": q.offset,
        "generated_at": iso(build.generated_at),
        "feed_version": build.build_id,
        "source": source_name,
        "filters": meta_filters(q.view, q.since, q.until),
    }


def render(build: Build, q: Query, fmt: str, source_name: str) -> tuple[bytes, Selection]:
    """The body of a list answer in ``fmt`` (JSON without its links tail)."""
    sel = select(build, q)
    record = formats.BY_NAME[fmt]
    if not record.json_envelope:
        return record.header + sel.data, sel
    return json_head(list_meta(build, q, sel.total, source_name), sel.data), sel


def stored_default(build: Build, q: Query, fmt: str) -> bytes:
    """What a build stores as the default answer of ``q`` in ``fmt``: a text format's whole
    body; for JSON, the records alone, without the ``meta`` that names the build, its clock and
    the window's total (the worker puts it around them: :func:`default_body`), so the object
    keeps its bytes while the records it holds do not change."""
    sel = select(build, q)
    record = formats.BY_NAME[fmt]
    return record.header + sel.data if not record.json_envelope else sel.data


def default_body(build: Build, q: Query, stored: bytes, source_name: str) -> tuple[bytes, int]:
    """A JSON default answer (without its links tail) from its stored records, and its total
    (counted in the view index, as a text answer's)."""
    total = select_total(build, q)
    return json_head(list_meta(build, q, total, source_name), stored), total
