"""TAXII ``date_added``: strictly increasing, stable across builds, later for later ingests.

Every STIX object has *version events*: the ingest times at which a version of it appeared
(``generator/store/history.py``). Events at one ingest time ``T`` form a *group*. A group's
members never change once ``T`` is past: later ingests stamp later times, and superseded
versions stay members (they hold their place even though only the latest version is served).

Inside a group, members are ordered by a 64-bit key (the first 64 bits of the object's UUID);
a group ``T`` takes the microseconds from ``base(T)`` on, one per member, where
``base(T) = max(T · 10⁶, end of the previous group)``. An object's ``date_added`` is the
microsecond of its current (latest) event. So:

- no two objects share a ``date_added`` (one per member; groups never overlap);
- values are a function of the store only, and a past group's values never move;
- everything a new ingest brings (new objects, new versions) lies after every earlier value.

The one leak: two objects of one group whose UUIDs share their first 64 bits (odds about
n²/2⁶⁵ for a group of n) would tie; the build then moves the later one up a microsecond.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

MICRO = 1_000_000


def object_key(uuid_hex: str) -> int:
    """The 64-bit ordering key of an object: the first 16 hex digits of its UUID."""
    return int(uuid_hex[:8] + uuid_hex[9:13] + uuid_hex[14:18], 16)


def relationship_events(main: Sequence[int], joined: int) -> tuple[int, ...]:
    """Events of a relationship that appeared at ``joined`` and follows its source's versions."""
    return (joined, *(t for t in main if t > joined))


class DateAllocator:
    """Collects every version event, then answers the ``date_added`` of any member."""

    def __init__(self) -> None:
        self.groups: dict[int, array] = {}
        self.bases: dict[int, int] = {}

    def add(self, events: Iterable[int], key: int) -> None:
        for t in events:
            group = self.groups.get(t)
            if group is None:
                group = self.groups[t] = array("Q")
            group.append(key)

    def finish(self) -> None:
        end = 0
        for t in sorted(self.groups):
            group = self.groups[t]
            self.groups[t] = array("Q", sorted(group))
            self.bases[t] = base = max(t * MICRO, end)
            end = base + len(group)

    def date_added(self, t: int, key: int) -> int:
        return self.bases[t] + bisect.bisect_left(self.groups[t], key)


def strictly_increasing(values: array) -> int:
    """Raise each value that does not exceed its predecessor (sorted input); how many moved."""
    moved = 0
    for i in range(1, len(values)):
        if values[i] <= values[i - 1]:
            values[i] = values[i - 1] + 1
            moved += 1
    return moved


def dates_added(times: pa.Array, keys: pa.Array) -> pa.Array:
    """``DateAllocator.date_added(t, key)`` of every member (``times[i]``, ``keys[i]``) at once.

    Members sorted by (time, key) fill each group's microseconds in order: the date of the
    member at sorted position ``p`` is ``base(t) + p - start(t)``; equal keys in a group share
    the first one's date (``bisect_left``). Column-wise, for the millions of members of a big
    build: int64 ``times``, uint64 ``keys``; the answer is int64, in member order.
    """
    n = len(times)
    if n == 0:
        return pa.array([], pa.int64())
    order = pc.sort_indices(
        pa.table({"t": times, "k": keys}), sort_keys=[("t", "ascending"), ("k", "ascending")]
    )
    sorted_times = pc.take(times, order)
    sorted_keys = pc.take(keys, order)
    ties = pc.and_(
        pc.equal(sorted_times[1:], sorted_times[:-1]), pc.equal(sorted_keys[1:], sorted_keys[:-1])
    )
    del sorted_keys  # a big build has millions of members: few such columns at once
    runs = pc.run_end_encode(sorted_times, run_end_type=pa.int64())
    del sorted_times
    stops = runs.run_ends.to_pylist()
    shifts = array("q")
    end = start = 0
    for t, stop in zip(runs.values.to_pylist(), stops, strict=True):
        base = max(t * MICRO, end)
        shifts.append(base - start)
        end = base + stop - start
        start = stop
    del runs
    dates = pc.add(
        pc.run_end_decode(
            pa.RunEndEncodedArray.from_arrays(pa.array(stops, pa.int64()), _int64(shifts))
        ),
        _int64(array("q", range(n))),
    )
    if pc.any(ties).as_py():
        fixed = array("q", dates.to_pylist())
        for p in pc.indices_nonzero(ties).to_pylist():
            fixed[p + 1] = fixed[p]
        dates = _int64(fixed)
    del ties
    return pc.take(dates, pc.sort_indices(order))


def _int64(values: array) -> pa.Array:
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])
