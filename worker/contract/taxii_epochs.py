"""When TAXII objects became visible: the ``date_added`` a client sees.

A build orders its objects by a *build date* (``generator/build/taxii_order.py``): strictly
increasing, stable across builds, later for later ingests, and a pure function of the store. It
says nothing about when a client could first see an object. Publishing does: each publish that
brings objects records an *epoch* in the pointer, ``[last, visible_at]``: the build date of the
last object it brings, and the moment (µs, a whole second) from which readers serve them
(``generator/publish/upload.py``). ``visible_at`` lies a grace period after the pointer is written, so
every worker has read the pointer by then.

The served ``date_added`` of an object is the ``visible_at`` of the first epoch whose ``last``
is at or after its build date: every object of one publish shares it (TAXII allows equal
dates). Until its ``visible_at`` an epoch's objects are not served at all. So a poller whose
``added_after`` is its own clock reading at the start of its previous poll, or the last
``X-TAXII-Date-Added-Last`` it saw, gets each object once: an object is served from the moment
its ``date_added`` names, never before, and dates never move (docs/taxii.md).

Standard library only: the worker imports it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

MAX_EPOCHS = 2_000  # kept in the pointer; older ones fold into the oldest kept (docs/taxii.md)


@dataclass(frozen=True, slots=True)
class Epochs:
    lasts: tuple[int, ...]  # build date of the last object of each epoch, ascending
    times: tuple[int, ...]  # when each epoch became visible (µs), ascending

    @classmethod
    def parse(cls, raw: Any) -> Epochs | None:
        """The pointer's ``taxii_epochs``; None when absent or not a list of ascending pairs."""
        if not isinstance(raw, list) or not raw:
            return None
        try:
            lasts = tuple(int(p[0]) for p in raw)
            times = tuple(int(p[1]) for p in raw)
        except (TypeError, ValueError, IndexError, KeyError):
            return None
        rising = all(a < b for a, b in zip(lasts, lasts[1:], strict=False))
        if not rising or any(a >= b for a, b in zip(times, times[1:], strict=False)):
            return None
        return cls(lasts, times)

    def cap(self, now_us: int) -> int:
        """The build date of the last object visible at ``now_us`` (-1: none yet)."""
        j = bisect.bisect_right(self.times, now_us) - 1
        return self.lasts[j] if j >= 0 else -1

    def settled(self, now_us: int) -> bool:
        """Every epoch is visible: answers no longer change with the clock."""
        return now_us >= self.times[-1]

    def served(self, build_date: int) -> int:
        """The ``date_added`` clients see for an object of this build date."""
        j = min(bisect.bisect_left(self.lasts, build_date), len(self.lasts) - 1)
        return self.times[j]

    def lower(self, added_after: int) -> int:
        """The build date above which objects are served with a ``date_added`` after
        ``added_after`` (µs)."""
        j = bisect.bisect_right(self.times, added_after) - 1
        return self.lasts[j] if j >= 0 else -1


def appended(raw: Any, last: int, visible_at: int) -> list[list[int]]:
    """The epochs of a pointer (``raw``) after a publish whose build's last object has build
    date ``last``, visible from ``visible_at`` (µs): a new epoch when the build brings objects,
    at least a second after the previous one; the oldest folded away beyond ``MAX_EPOCHS``."""
    old = Epochs.parse(raw)
    pairs = [[a, b] for a, b in zip(old.lasts, old.times, strict=True)] if old else []
    if pairs and last <= pairs[-1][0]:
        return pairs
    if pairs:
        visible_at = max(visible_at, pairs[-1][1] + 1_000_000)
    pairs.append([last, visible_at])
    return pairs[-MAX_EPOCHS:]
