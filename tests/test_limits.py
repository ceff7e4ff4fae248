"""Rate limits: one contract for both backends, a reference model, and a concurrency check."""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.limits.windows import (
    Coalescer,
    Decision,
    Limiter,
    LimiterUnavailable,
    MemoryLimiter,
    SQLiteLimiter,
)

DAY_START = 1_749_945_600  # a UTC midnight
M = DAY_START + 3_600  # a minute boundary one hour into that day
BACKENDS = ("memory", "sqlite")


class FakeClock:
    def __init__(self, now: float = M) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_limiter(backend: str, path: Path, clock: Callable[[], float]) -> Limiter:
    if backend == "memory":
        return MemoryLimiter(clock=clock)
    return SQLiteLimiter(path, clock=clock)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limiter(backend: str, tmp_path: Path, clock: FakeClock) -> Iterator[Limiter]:
    instance = make_limiter(backend, tmp_path / "limits.db", clock)
    yield instance
    instance.close()


# --- table-driven cases -------------------------------------------------------------------
# Each step: (time, expected fields). Limits are per case.

Step = tuple[float, dict]
# fmt: off
CASES: dict[str, tuple[int, int, list[Step]]] = {
    "minute limit": (3, 100, [
        (M + 10, {"allowed": True, "remaining": 2, "day_remaining": 99, "reset": M + 60}),
        (M + 11, {"allowed": True, "remaining": 1}),
        (M + 12, {"allowed": True, "remaining": 0, "binding": "minute"}),
        (M + 13, {"allowed": False, "remaining": 0, "retry_after": 47, "binding": "minute",
                  "day_remaining": 97, "reset": M + 60}),
        (M + 59.5, {"allowed": False, "retry_after": 1}),
    ]),
    "minute rollover": (2, 100, [
        (M + 58, {"allowed": True, "remaining": 1, "reset": M + 60}),
        (M + 59, {"allowed": True, "remaining": 0}),
        (M + 59.999, {"allowed": False, "retry_after": 1}),
        (M + 60, {"allowed": True, "remaining": 1, "reset": M + 120, "day_remaining": 97}),
    ]),
    "day limit": (10, 3, [
        (M, {"allowed": True, "day_remaining": 2, "binding": "day", "day_reset": DAY_START + 86_400}),
        (M + 60, {"allowed": True, "day_remaining": 1}),
        (M + 120, {"allowed": True, "day_remaining": 0, "remaining": 9, "binding": "day"}),
        (M + 121, {"allowed": False, "binding": "day", "retry_after": DAY_START + 86_400 - M - 121,
                   "remaining": 0, "day_remaining": 0}),
        (M + 7_200, {"allowed": False, "binding": "day"}),
        (DAY_START + 86_399.25, {"allowed": False, "retry_after": 1}),
        (DAY_START + 86_400, {"allowed": True, "day_remaining": 2,
                              "day_reset": DAY_START + 2 * 86_400}),
    ]),
    "refused requests spend nothing": (2, 3, [
        (M, {"allowed": True}),
        (M + 1, {"allowed": True}),
        (M + 2, {"allowed": False, "binding": "minute", "day_remaining": 1}),
        (M + 3, {"allowed": False, "binding": "minute", "day_remaining": 1}),
        (M + 60, {"allowed": True, "remaining": 1, "day_remaining": 0}),
        (M + 61, {"allowed": False, "binding": "day", "day_remaining": 0}),
        (M + 120, {"allowed": False, "binding": "day"}),
    ]),
    "day refusal does not spend the minute": (5, 1, [
        (M, {"allowed": True}),
        (M + 1, {"allowed": False, "binding": "day"}),
        (DAY_START + 86_400, {"allowed": True, "remaining": 4}),
    ]),
    "both full: the day binds": (1, 1, [
        (M, {"allowed": True, "binding": "minute"}),
        (M + 0.25, {"allowed": False, "binding": "day", "retry_after": 86_400 - 3_600}),
    ]),
    "fractional retry": (1, 100, [
        (M + 0.25, {"allowed": True}),
        (M + 0.5, {"allowed": False, "retry_after": 60}),
    ]),
    "zero minute limit": (0, 10, [
        (M + 30, {"allowed": False, "binding": "minute", "retry_after": 30, "limit": 0}),
    ]),
    "zero day limit": (10, 0, [
        (M, {"allowed": False, "binding": "day", "retry_after": 82_800, "day_limit": 0}),
    ]),
    "tie prefers the minute": (3, 3, [
        (M, {"allowed": True, "remaining": 2, "day_remaining": 2, "binding": "minute"}),
    ]),
}
# fmt: on


@pytest.mark.parametrize("case", CASES)
def test_table(limiter: Limiter, clock: FakeClock, case: str) -> None:
    per_minute, per_day, steps = CASES[case]
    for index, (now, expected) in enumerate(steps):
        clock.now = now
        decision = limiter.hit("key-1", per_minute, per_day)
        actual = {field: getattr(decision, field) for field in expected}
        assert actual == expected, f"{case}: step {index} at {now}"
        assert decision.limit == per_minute and decision.day_limit == per_day


def test_keys_are_independent(limiter: Limiter) -> None:
    assert limiter.hit("a", 1, 10).allowed
    assert not limiter.hit("a", 1, 10).allowed
    assert limiter.hit("b", 1, 10).allowed


def test_negative_limits_are_refused(limiter: Limiter) -> None:
    with pytest.raises(ValueError):
        limiter.hit("a", -1, 10)


# --- reference model ----------------------------------------------------------------------


class Reference:
    """Counts admitted timestamps per window; as plain as it gets."""

    def __init__(self) -> None:
        self.admitted: dict[str, list[float]] = {}

    def hit(self, key: str, now: float, per_minute: int, per_day: int) -> Decision:
        times = self.admitted.setdefault(key, [])
        minute = sum(1 for t in times if t // 60 == now // 60)
        day = sum(1 for t in times if t // 86_400 == now // 86_400)
        minute_end = (now // 60 + 1) * 60
        day_end = (now // 86_400 + 1) * 86_400
        if minute < per_minute and day < per_day:
            times.append(now)
            remaining, day_remaining = per_minute - minute - 1, per_day - day - 1
            binding = "day" if day_remaining < remaining else "minute"
            return Decision(
                True,
                per_minute,
                remaining,
                int(minute_end),
                per_day,
                day_remaining,
                int(day_end),
                0,
                binding,
            )
        end, binding = (day_end, "day") if day >= per_day else (minute_end, "minute")
        return Decision(
            False,
            per_minute,
            0,
            int(minute_end),
            per_day,
            per_day - day,
            int(day_end),
            math.ceil(end - now),
            binding,
        )


steps = st.lists(
    st.tuples(
        st.one_of(
            st.integers(0, 70),
            st.floats(0, 5, allow_nan=False),
            st.sampled_from([60, 86_400, 86_399.5, 200_000]),
        ),
        st.sampled_from(["a", "b"]),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(
    backend=st.sampled_from(BACKENDS),
    per_minute=st.integers(0, 4),
    per_day=st.integers(0, 9),
    start=st.floats(0, 86_400 * 3, allow_nan=False),
    arrivals=steps,
)
def test_matches_reference(
    backend: str, per_minute: int, per_day: int, start: float, arrivals: list
) -> None:
    clock = FakeClock(DAY_START + start)
    reference = Reference()
    with tempfile.TemporaryDirectory() as folder:
        limiter = make_limiter(backend, Path(folder) / "limits.db", clock)
        try:
            for delta, key in arrivals:
                clock.now += delta
                expected = reference.hit(key, clock.now, per_minute, per_day)
                assert limiter.hit(key, per_minute, per_day) == expected
        finally:
            limiter.close()


@settings(max_examples=100, deadline=None)
@given(
    backend=st.sampled_from(BACKENDS),
    per_minute=st.integers(0, 4),
    per_day=st.integers(0, 9),
    start=st.floats(0, 86_400 * 3, allow_nan=False),
    batches=st.lists(
        st.tuples(
            st.one_of(
                st.integers(0, 70),
                st.floats(0, 5, allow_nan=False),
                st.sampled_from([60, 86_400, 86_399.5, 200_000]),
            ),
            st.lists(st.sampled_from(["a", "b", "c"]), max_size=12),
        ),
        max_size=12,
    ),
)
def test_batches_match_the_reference(
    backend: str, per_minute: int, per_day: int, start: float, batches: list
) -> None:
    """``hit_many`` gives exactly what one ``hit`` per request, in order, would give."""
    clock = FakeClock(DAY_START + start)
    reference = Reference()
    with tempfile.TemporaryDirectory() as folder:
        limiter = make_limiter(backend, Path(folder) / "limits.db", clock)
        try:
            for delta, keys in batches:
                clock.now += delta
                expected = [reference.hit(k, clock.now, per_minute, per_day) for k in keys]
                assert limiter.hit_many([(k, per_minute, per_day) for k in keys]) == expected
        finally:
            limiter.close()


def test_sqlite_batch_refusals_write_nothing(tmp_path: Path, clock: FakeClock) -> None:
    limiter = SQLiteLimiter(tmp_path / "limits.db", clock=clock)
    decisions = limiter.hit_many([("k", 2, 100)] * 5 + [("other", 0, 100)])
    assert [d.allowed for d in decisions] == [True, True, False, False, False, False]
    assert sorted(_rows(tmp_path / "limits.db")) == [(0, M, 2), (1, DAY_START, 2)]
    assert limiter.peek("k", 2, 100).remaining == 0
    limiter.close()


def test_coalescer_decides_one_turn_in_one_batch(tmp_path: Path, clock: FakeClock) -> None:
    limiter = SQLiteLimiter(tmp_path / "limits.db", clock=clock)
    coalescer = Coalescer(limiter)

    async def burst() -> list[Decision]:
        return await asyncio.gather(*(coalescer.decide("k", 10, 1_000) for _ in range(50)))

    decisions = asyncio.run(burst())
    assert coalescer.batches == 1
    assert [d.allowed for d in decisions] == [True] * 10 + [False] * 40
    assert [d.remaining for d in decisions[:10]] == list(range(9, -1, -1))
    assert limiter.peek("k", 10, 1_000).day_remaining == 990
    limiter.close()


def test_coalescer_passes_store_errors_to_every_request() -> None:
    class Down:
        def hit_many(self, hits: list) -> list[Decision]:
            raise LimiterUnavailable("store down")

    coalescer = Coalescer(Down())  # type: ignore[arg-type]

    async def burst() -> list:
        return await asyncio.gather(
            *(coalescer.decide("k", 1, 1) for _ in range(3)), return_exceptions=True
        )

    assert all(isinstance(r, LimiterUnavailable) for r in asyncio.run(burst()))


# --- sqlite specifics ---------------------------------------------------------------------


def _rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT kind, window_start, count FROM rate_windows").fetchall()


def test_sqlite_instances_share_counts(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "limits.db"
    first, second = SQLiteLimiter(path, clock=clock), SQLiteLimiter(path, clock=clock)
    assert first.hit("k", 2, 10).allowed
    assert second.hit("k", 2, 10).allowed
    assert not first.hit("k", 2, 10).allowed
    assert second.hit("k", 2, 10).day_remaining == 8
    first.close()
    second.close()


def test_sqlite_forgets_old_windows(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "limits.db"
    limiter = SQLiteLimiter(path, clock=clock)
    for minute in range(4):
        clock.now = M + 60 * minute
        limiter.hit("k", 5, 100)
    assert sorted(_rows(path)) == [(0, M + 120, 1), (0, M + 180, 1), (1, DAY_START, 4)]
    clock.now = DAY_START + 2 * 86_400
    limiter.hit("other", 5, 100)
    assert {row[1] for row in _rows(path)} == {clock.now}
    limiter.close()


def test_sqlite_pragmas(tmp_path: Path) -> None:
    limiter = SQLiteLimiter(tmp_path / "limits.db")
    assert limiter._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert limiter._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert limiter._conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 5_000
    limiter.close()


# --- concurrency --------------------------------------------------------------------------

PROCESSES = 4
HITS = 300
PER_MINUTE = 100
FIXED_NOW = M + 30.0


class NaiveLimiter:
    """Read, pause, then write: the race the real limiter's single statement avoids."""

    def __init__(self, path: str | Path, *, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS naive (key_id TEXT, window_start INTEGER, count INTEGER,"
            " PRIMARY KEY (key_id, window_start))"
        )

    def hit(self, key_id: str, per_minute: int, per_day: int) -> bool:
        start = int(self._clock() // 60) * 60
        row = self._conn.execute(
            "SELECT count FROM naive WHERE key_id = ? AND window_start = ?", (key_id, start)
        ).fetchone()
        seen = row[0] if row else 0
        if seen >= per_minute:
            return False
        time.sleep(0.001)
        self._conn.execute(
            "INSERT OR REPLACE INTO naive VALUES (?, ?, ?)", (key_id, start, seen + 1)
        )
        return True

    def close(self) -> None:
        self._conn.close()


def _hammer(kind: str, path: str, now: float, barrier, results) -> None:  # runs in a child
    def clock() -> float:
        return now

    limiter = (
        NaiveLimiter(path, clock=clock) if kind == "naive" else SQLiteLimiter(path, clock=clock)
    )
    barrier.wait()
    admitted = 0
    if kind == "batch":  # batches of 7, as the worker's coalescer sends them
        for _ in range(HITS // 7):
            admitted += sum(
                d.allowed for d in limiter.hit_many([("shared", PER_MINUTE, 10**6)] * 7)
            )
    for _ in range(HITS if kind != "batch" else 0):
        outcome = limiter.hit("shared", PER_MINUTE, 1_000_000)
        admitted += outcome if isinstance(outcome, bool) else outcome.allowed
    limiter.close()
    results.put(admitted)


def _run_processes(kind: str, path: Path) -> int:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(PROCESSES), ctx.Queue()
    args = (kind, str(path), FIXED_NOW, barrier, results)
    workers = [ctx.Process(target=_hammer, args=args) for _ in range(PROCESSES)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0, "a child process failed or hung"
    return sum(results.get(timeout=5) for _ in workers)


def test_sqlite_limiter_is_exact_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "limits.db"
    SQLiteLimiter(path).close()  # create the schema before the race
    assert _run_processes("sqlite", path) == PER_MINUTE


def test_sqlite_batches_are_exact_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "limits.db"
    SQLiteLimiter(path).close()
    assert _run_processes("batch", path) == PER_MINUTE


def test_naive_limiter_over_admits(tmp_path: Path) -> None:
    """Negative control: the same load does catch a read-then-write race."""
    path = tmp_path / "naive.db"
    NaiveLimiter(path, clock=time.time).close()
    assert _run_processes("naive", path) > PER_MINUTE


def test_memory_limiter_is_exact_across_threads() -> None:
    limiter = MemoryLimiter(clock=lambda: FIXED_NOW)
    admitted: list[int] = []

    def run() -> None:
        admitted.append(sum(limiter.hit("shared", PER_MINUTE, 10**6).allowed for _ in range(HITS)))

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(admitted) == PER_MINUTE
