"""Reading a day partition through its overlay: the one reader of ``iocs/day/<day>/``.

A day's records have *logical lines*. A build with nothing to follow writes the day's base
(``ts.bin``, ``<v>.dat``, ``<v>.idx``) with lines 0..n-1 in list order. A later build keeps a
day's base objects byte for byte and writes beside them, per stream (``ts`` or a variant), an
overlay ``over/<stream>.*``: the lines it holds (``over/<stream>.lines.bin``, ascending) replace
base lines whose record changed in place, or append lines n.. for records new to the day. A
base line whose record left the day is dead: no view names it. ``order.bin`` lists the logical
lines in list order when that is not 0..count-1 (docs/architecture.md).

Line i of a stream is its overlay's line when the overlay holds i, else the base's line i.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable

from worker.buckets.storage import Build
from worker.contract import layout


def _array(build: Build, key: str, code: str) -> array[int]:
    def load() -> array[int]:
        values = array(code)
        values.frombytes(build.read(key) or b"")
        return values

    return build.cached(key, load)


def overlay(build: Build, day: str, stream: str) -> array[int] | None:
    """The ascending logical lines the overlay of ``stream`` holds (None: it has none)."""
    key = layout.overlay_lines_key(day, stream)
    if build.ref(key) is None:
        return None
    return _array(build, key, "I")


def order(build: Build, day: str) -> array[int] | None:
    """The day's logical lines in list order; None when they are 0..count-1."""
    key = layout.day_order_key(day)
    if build.ref(key) is None:
        return None
    return _array(build, key, "I")


def stamps(build: Build, day: str) -> array[int]:
    """``last_seen`` of each logical line (base stamps with the overlay's applied)."""

    def load() -> array[int]:
        base = _array(build, layout.day_ts_key(day), "q")
        lines = overlay(build, day, layout.TS_STREAM)
        if lines is None:
            return base
        merged = array("q", base)
        values = _array(build, layout.overlay_ts_key(day), "q")
        top = max(len(base), lines[-1] + 1 if lines else 0)
        merged.extend([0] * (top - len(base)))
        for line, value in zip(lines, values, strict=True):
            merged[line] = value
        return merged

    return build.cached(f"stamps:{day}", load)


def offsets(build: Build, day: str, variant: str) -> array[int]:
    """The base's byte offsets of ``variant`` (n + 1 of them)."""
    return _array(build, layout.day_index_key(day, variant), "Q")


def runs(lines: Iterable[int]) -> list[tuple[int, int]]:
    """Coalesce line numbers into [first, last] runs of consecutive ones, in their order."""
    found: list[tuple[int, int]] = []
    for line in lines:
        if found and found[-1][1] == line - 1:
            found[-1] = (found[-1][0], line)
        else:
            found.append((line, line))
    return found


def read_lines(build: Build, day: str, variant: str, lines: Iterable[int]) -> list[bytes]:
    """The bytes of ``lines`` (logical lines of ``day``) of ``variant``, in their order, as
    chunks (consecutive lines of one object read as one range)."""
    data_key = layout.day_data_key(day, variant)
    base = offsets(build, day, variant)
    over = overlay(build, day, variant)
    if over is None:
        return [build.read_range(data_key, base[a], base[b + 1]) for a, b in runs(lines)]
    over_key = layout.overlay_data_key(day, variant)
    over_offsets = _array(build, layout.overlay_index_key(day, variant), "Q")
    chunks: list[bytes] = []
    for a, b in runs(lines):
        at = a
        i = bisect.bisect_left(over, a)
        while at <= b:
            if i < len(over) and over[i] == at:
                j = i
                while j + 1 < len(over) and over[j + 1] == over[j] + 1 and over[j + 1] <= b:
                    j += 1
                chunks.append(build.read_range(over_key, over_offsets[i], over_offsets[j + 1]))
                at, i = over[j] + 1, j + 1
            else:
                stop = min(b, over[i] - 1) if i < len(over) else b
                chunks.append(build.read_range(data_key, base[at], base[stop + 1]))
                at = stop + 1
    return chunks


def line(build: Build, day: str, variant: str, number: int) -> bytes:
    """The bytes of logical line ``number`` of ``variant``."""
    return b"".join(read_lines(build, day, variant, (number,)))


def list_lines(build: Build, day: str, count: int) -> array[int] | range:
    """The logical lines of the day's ``count`` records in list order."""
    found = order(build, day)
    return range(count) if found is None else found


def day_lines(build: Build, day: str, variant: str, count: int) -> list[bytes]:
    """Every record's line of ``variant``, one per record, in list order (for the generator's
    readers of a whole day)."""
    listed = list_lines(build, day, count)
    over = overlay(build, day, variant)
    base = offsets(build, day, variant)
    data = build.read(layout.day_data_key(day, variant)) or b""
    if over is None:
        return [data[base[i] : base[i + 1]] for i in listed]
    over_offsets = _array(build, layout.overlay_index_key(day, variant), "Q")
    over_data = build.read(layout.overlay_data_key(day, variant)) or b""
    where = {n: k for k, n in enumerate(over)}
    out = []
    for i in listed:
        k = where.get(i)
        if k is None:
            out.append(data[base[i] : base[i + 1]])
        else:
            out.append(over_data[over_offsets[k] : over_offsets[k + 1]])
    return out
