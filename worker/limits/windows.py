"""Rate limits: a per-minute and a per-day fixed window per id, decided together.

The worker counts under an account's id (``ApiKey.limit_id``), so all keys of an account share
the windows; key management counts under a second id per account (docs/rate-limits.md).

A request is admitted only if BOTH windows have room, and then BOTH counters are incremented;
a refused request spends nothing. Windows are aligned to the clock: the minute window starts at
``floor(now / 60) * 60`` and the day window at the start of the UTC day.

Three backends share one contract: ``MemoryLimiter`` (one process, thread-safe),
``SQLiteLimiter`` (one file, safe across processes on one machine) and ``RedisLimiter`` in
``worker/limits/redis_store.py`` (many replicas). ``hit`` decides and spends; ``peek`` reports where a
key stands without spending. A backend whose store cannot be reached raises
``LimiterUnavailable``; ``worker/limits/fallback.py`` turns that into a documented policy.

``hit_many`` decides a list of hits in order as one atomic step of the store (SQLite: one write
transaction; Redis: one script per key, all sent in one round trip), with the same result as
calling ``hit`` for each in turn with nothing else in between. ``Coalescer`` feeds it: every
hit asked for in one turn of the event loop is decided by one ``hit_many`` call, so under load
the store sees one transaction or round trip per batch instead of one per request
(SQLite and Redis; the memory store decides inline, see ``batches``).
"""

from __future__ import annotations

import asyncio
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Protocol

from worker.access.private import private_sqlite

MINUTE = 60
DAY = 86_400
BUSY_TIMEOUT_MS = 5_000
MINUTE_KIND = 0
DAY_KIND = 1


@dataclass(slots=True)  # read-only by convention: a frozen __init__ costs 4x, once per request
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: int
    day_limit: int
    day_remaining: int
    day_reset: int
    retry_after: int
    binding: str


class LimiterUnavailable(Exception):
    """The limiter's store cannot be reached or used right now (never carries a key)."""


Hit = tuple[str, int, int]  # key id, per-minute limit, per-day limit


class Limiter(Protocol):
    def hit(self, key_id: str, per_minute: int, per_day: int) -> Decision: ...

    def peek(self, key_id: str, per_minute: int, per_day: int) -> Decision: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Window:
    """Where ``now`` falls: the current minute and day window starts."""

    now: float
    minute: int
    day: int

    @classmethod
    def at(cls, now: float) -> Window:
        return cls(now, *window_starts(now))


def window_starts(now: float) -> tuple[int, int]:
    """The starts of the minute and day windows ``now`` falls in."""
    return int(now // MINUTE) * MINUTE, int(now // DAY) * DAY


def check_limits(per_minute: int, per_day: int) -> None:
    if per_minute < 0 or per_day < 0:
        raise ValueError("rate limits must be zero or positive")


def _seconds_until(end: int, now: float) -> int:
    return max(1, math.ceil(end - now))


def admitted(
    w: Window, minute_count: int, day_count: int, per_minute: int, per_day: int
) -> Decision:
    """The decision for an admitted request; counts already include it."""
    return admitted_in(w.minute, w.day, minute_count, day_count, per_minute, per_day)


def admitted_in(
    minute: int, day: int, minute_count: int, day_count: int, per_minute: int, per_day: int
) -> Decision:
    """``admitted`` from the window starts alone (the memory store's per-request path)."""
    remaining = per_minute - minute_count if per_minute > minute_count else 0
    day_remaining = per_day - day_count if per_day > day_count else 0
    # positional: a dataclass takes keyword arguments at about a quarter of the speed
    return Decision(
        True,
        per_minute,
        remaining,
        minute + MINUTE,
        per_day,
        day_remaining,
        day + DAY,
        0,
        "day" if day_remaining < remaining else "minute",
    )


def refused(
    w: Window, minute_count: int, day_count: int, per_minute: int, per_day: int
) -> Decision:
    """The decision for a refused request; the window that frees up last is the binding one."""
    day_full = day_count >= per_day
    end = w.day + DAY if day_full else w.minute + MINUTE
    return Decision(
        allowed=False,
        limit=per_minute,
        remaining=0,
        reset=w.minute + MINUTE,
        day_limit=per_day,
        day_remaining=max(0, per_day - day_count),
        day_reset=w.day + DAY,
        retry_after=_seconds_until(end, w.now),
        binding="day" if day_full else "minute",
    )


def standing(
    w: Window, minute_count: int, day_count: int, per_minute: int, per_day: int
) -> Decision:
    """Where a key stands with these counts, spending nothing: what ``peek`` returns."""
    if minute_count < per_minute and day_count < per_day:
        return admitted(w, minute_count, day_count, per_minute, per_day)
    decision = refused(w, minute_count, day_count, per_minute, per_day)
    return replace(decision, remaining=max(0, per_minute - minute_count))


class MemoryLimiter:
    """Fixed-window counters in a dict; for one process (thread-safe)."""

    # decisions are dict updates in this process: a batch saves nothing (see ``batches``)
    local = True

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._counters: dict[str, tuple[int, int, int, int]] = {}
        self._day = -1

    def hit(self, key_id: str, per_minute: int, per_day: int) -> Decision:
        check_limits(per_minute, per_day)
        with self._lock:
            now = self._clock()
            minute, day = window_starts(now)  # Window.at's, without the object
            self._sweep(day)
            m_start, m_count, d_start, d_count = self._counters.get(key_id, (0, 0, 0, 0))
            m_count = m_count if m_start == minute else 0
            d_count = d_count if d_start == day else 0
            if m_count >= per_minute or d_count >= per_day:
                return refused(Window(now, minute, day), m_count, d_count, per_minute, per_day)
            self._counters[key_id] = (minute, m_count + 1, day, d_count + 1)
        return admitted_in(minute, day, m_count + 1, d_count + 1, per_minute, per_day)

    def hit_many(self, hits: Sequence[Hit]) -> list[Decision]:
        return [self.hit(*h) for h in hits]

    def peek(self, key_id: str, per_minute: int, per_day: int) -> Decision:
        check_limits(per_minute, per_day)
        with self._lock:
            w = Window.at(self._clock())
            m_start, m_count, d_start, d_count = self._counters.get(key_id, (0, 0, 0, 0))
        m_count = m_count if m_start == w.minute else 0
        d_count = d_count if d_start == w.day else 0
        return standing(w, m_count, d_count, per_minute, per_day)

    def _sweep(self, day: int) -> None:
        """Forget keys whose day window has passed; runs once per UTC day."""
        if day == self._day:
            return
        self._day = day
        stale = [key for key, entry in self._counters.items() if entry[2] < day]
        for key in stale:
            del self._counters[key]

    def close(self) -> None:
        with self._lock:
            self._counters.clear()


_SCHEMA = """
CREATE TABLE IF NOT EXISTS rate_windows (
    key_id TEXT NOT NULL,
    kind INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (key_id, kind, window_start)
) WITHOUT ROWID
"""

# One statement decides and spends. A write statement takes SQLite's write lock before it reads,
# so the two counts it reads cannot change before both upserts land. SQLite also evaluates an
# INSERT's SELECT fully before writing when that SELECT reads the target table, so the second
# row's condition is not affected by the first row's write. Rows come back only when admitted.
_HIT = """
INSERT INTO rate_windows (key_id, kind, window_start, count)
SELECT :key, w.kind, w.start, 1
FROM (SELECT 0 AS kind, :minute AS start UNION ALL SELECT 1, :day) AS w
WHERE coalesce((SELECT count FROM rate_windows
                WHERE key_id = :key AND kind = 0 AND window_start = :minute), 0) < :per_minute
  AND coalesce((SELECT count FROM rate_windows
                WHERE key_id = :key AND kind = 1 AND window_start = :day), 0) < :per_day
ON CONFLICT (key_id, kind, window_start) DO UPDATE SET count = count + 1
RETURNING kind, count
"""
_COUNTS = """
SELECT kind, count FROM rate_windows
WHERE key_id = :key AND ((kind = 0 AND window_start = :minute) OR (kind = 1 AND window_start = :day))
"""
_SET = """
INSERT INTO rate_windows (key_id, kind, window_start, count)
VALUES (:key, 0, :minute, :minute_count), (:key, 1, :day, :day_count)
ON CONFLICT (key_id, kind, window_start) DO UPDATE SET count = excluded.count
"""
_FORGET_KEY = """
DELETE FROM rate_windows WHERE key_id = :key
  AND ((kind = 0 AND window_start < :minute - 60) OR (kind = 1 AND window_start < :day - 86400))
"""
_FORGET_ALL = """
DELETE FROM rate_windows
WHERE (kind = 0 AND window_start < :minute - 60) OR (kind = 1 AND window_start < :day - 86400)
"""


def _params(key_id: str, w: Window, per_minute: int, per_day: int) -> dict[str, object]:
    return {
        "key": key_id,
        "minute": w.minute,
        "day": w.day,
        "per_minute": per_minute,
        "per_day": per_day,
    }


@contextmanager
def _unavailable_on_error(path: str = "") -> Iterator[None]:
    """A locked, unreadable, unwritable or corrupt database (``sqlite3.DatabaseError``: "file is
    not a database", "database disk image is malformed") is an unavailable store, not a crash:
    the fallback policy or the documented 503 applies (docs/rate-limits.md)."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise LimiterUnavailable(f"sqlite {path}: {exc}" if path else f"sqlite: {exc}") from exc


class SQLiteLimiter:
    """Fixed-window counters in one SQLite file; safe across processes on one machine.

    Counters are not precious: WAL with ``synchronous=NORMAL`` may lose the last commits on a
    power cut, never corrupt the file. Old windows are deleted per key when the key starts a new
    minute window, and for all keys when this instance sees a new UTC day; a window is kept one
    period past its end so that a process whose clock lags slightly never re-creates it.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._day = -1
        self._path = os.fspath(path)
        self._conn = sqlite3.connect(
            private_sqlite(path),
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute(_SCHEMA)

    def hit(self, key_id: str, per_minute: int, per_day: int) -> Decision:
        check_limits(per_minute, per_day)
        w = Window.at(self._clock())
        params = _params(key_id, w, per_minute, per_day)
        with self._lock, _unavailable_on_error(self._path):
            counts = dict(self._conn.execute(_HIT, params).fetchall())
            if counts:
                self._housekeep(params, counts[MINUTE_KIND] == 1, w.day)
                return admitted(w, counts[MINUTE_KIND], counts[DAY_KIND], per_minute, per_day)
            counts = dict(self._conn.execute(_COUNTS, params).fetchall())
        return self._refused(w, counts, per_minute, per_day)

    def hit_many(self, hits: Sequence[Hit]) -> list[Decision]:
        """Decide ``hits`` in order in one write transaction (``BEGIN IMMEDIATE``).

        The write lock is taken before anything is read, so the counts read are the latest and
        cannot change until the commit: the result is exactly that of one ``hit`` per request.
        Each key's counts are read once and written once, however many of its hits the batch
        holds; a refused hit writes nothing.
        """
        for _, per_minute, per_day in hits:
            check_limits(per_minute, per_day)
        w = Window.at(self._clock())
        out: list[Decision] = []
        counts: dict[str, list[int]] = {}  # key -> [minute count, day count, admitted here]
        with self._lock, _unavailable_on_error(self._path):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for key_id, per_minute, per_day in hits:
                    c = counts.get(key_id)
                    if c is None:
                        rows = dict(self._conn.execute(_COUNTS, _params(key_id, w, 0, 0)))
                        c = counts[key_id] = [rows.get(MINUTE_KIND, 0), rows.get(DAY_KIND, 0), 0]
                    if c[0] < per_minute and c[1] < per_day:
                        c[0] += 1
                        c[1] += 1
                        c[2] += 1
                        out.append(admitted(w, c[0], c[1], per_minute, per_day))
                    else:
                        out.append(refused(w, c[0], c[1], per_minute, per_day))
                for key_id, (minute_count, day_count, spent) in counts.items():
                    if spent:
                        self._conn.execute(
                            _SET,
                            {
                                "key": key_id,
                                "minute": w.minute,
                                "day": w.day,
                                "minute_count": minute_count,
                                "day_count": day_count,
                            },
                        )
                        # as in hit(): the day sweep, or this key's sweep when the batch
                        # opened its minute window
                        self._housekeep(_params(key_id, w, 0, 0), minute_count == spent, w.day)
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
        return out

    def peek(self, key_id: str, per_minute: int, per_day: int) -> Decision:
        check_limits(per_minute, per_day)
        w = Window.at(self._clock())
        with self._lock, _unavailable_on_error(self._path):
            rows = self._conn.execute(_COUNTS, _params(key_id, w, per_minute, per_day))
            counts = dict(rows.fetchall())
        return standing(w, counts.get(MINUTE_KIND, 0), counts.get(DAY_KIND, 0), per_minute, per_day)

    @staticmethod
    def _refused(w: Window, counts: dict[int, int], per_minute: int, per_day: int) -> Decision:
        minute_count = counts.get(MINUTE_KIND, 0)
        day_count = counts.get(DAY_KIND, 0)
        if minute_count < per_minute and day_count < per_day:
            minute_count = per_minute  # a window was deleted in between: report the minute one
        return refused(w, minute_count, day_count, per_minute, per_day)

    def _housekeep(self, params: dict[str, object], new_minute: bool, day: int) -> None:
        """Delete finished windows; best effort, as the request has already been decided."""
        try:
            if day != self._day:
                self._conn.execute(_FORGET_ALL, params)
                self._day = day
            elif new_minute:
                self._conn.execute(_FORGET_KEY, params)
        except sqlite3.DatabaseError:
            pass

    def prune(self) -> None:
        """Delete every finished window now (all keys)."""
        w = Window.at(self._clock())
        with self._lock:
            self._conn.execute(_FORGET_ALL, {"minute": w.minute, "day": w.day})

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def batches(limiter: Limiter) -> bool:
    """Whether the hot path should decide this limiter's hits in batches (``Coalescer``): its
    store has ``hit_many`` and each decision costs a transaction or a round trip. A ``local``
    store (``MemoryLimiter``) decides inline: a batch saves it nothing, and waiting for one
    suspends every request, which costs the server more than the decision itself."""
    primary = getattr(limiter, "primary", limiter)
    return hasattr(primary, "hit_many") and not getattr(primary, "local", False)


class Coalescer:
    """Decides every hit asked for in one turn of the event loop with one ``hit_many`` call.

    ``await decide(...)`` queues the hit and, for the first hit of a turn, schedules the batch
    with ``call_soon``: it runs once the requests that were ready in that turn have all queued
    theirs, in the order they asked. The store call itself runs on the event loop (the SQLite
    transaction is local; the Redis round trip is one per batch instead of one per request).
    A store error reaches every request of the batch, which then takes the full path.
    """

    def __init__(self, limiter: Limiter) -> None:
        self.limiter = limiter
        self._pending: dict[
            asyncio.AbstractEventLoop, list[tuple[Hit, asyncio.Future[Decision]]]
        ] = {}
        self.batches = 0  # batches decided so far (for tests and benchmarks)

    async def decide(self, key_id: str, per_minute: int, per_day: int) -> Decision:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Decision] = loop.create_future()
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = []
            loop.call_soon(self._run, loop)
        pending.append(((key_id, per_minute, per_day), future))
        return await future

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._pending.pop(loop, [])
        if not batch:
            return
        self.batches += 1
        try:
            # only built for a store with hit_many (``batches``), which Limiter does not declare
            decisions = self.limiter.hit_many([hit for hit, _ in batch])  # type: ignore[attr-defined]
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), decision in zip(batch, decisions, strict=True):
            if not future.done():
                future.set_result(decision)
