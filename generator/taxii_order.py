"""TAXII ``date_added``: strictly increasing, stable across builds, later for later ingests.

Every STIX object has *version events*: the ingest times at which a version of it appeared
(``generator/record_history.py``). Events at one ingest time ``T`` form a *group*. A group's
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
