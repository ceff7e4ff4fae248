"""The store-down policy: fail open with a per-process cap, log, probe, recover by itself."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redis_server import RedisServer, running_redis
from tests.test_limits import FakeClock, M
from worker.limits.fallback import FallbackLimiter, capped
from worker.limits.windows import Decision, LimiterUnavailable, MemoryLimiter, SQLiteLimiter


class FlakyStore:
    """A primary whose store can be switched off; counts the calls that reach it."""

    def __init__(self, clock: FakeClock) -> None:
        self.inner = MemoryLimiter(clock=clock)
        self.down = False
        self.calls = 0

    def hit(self, key_id: str, per_minute: int, per_day: int) -> Decision:
        return self._call(self.inner.hit, key_id, per_minute, per_day)

    def peek(self, key_id: str, per_minute: int, per_day: int) -> Decision:
        return self._call(self.inner.peek, key_id, per_minute, per_day)

    def hit_many(self, hits: list) -> list[Decision]:
        return self._call(self.inner.hit_many, hits)

    def _call(self, method, *args) -> Decision:
        self.calls += 1
        if self.down:
            raise LimiterUnavailable("store switched off")
        return method(*args)

    def close(self) -> None:
        self.inner.close()


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def parts() -> tuple[FallbackLimiter, FlakyStore, FakeClock, Monotonic]:
    wall, mono = FakeClock(M + 1), Monotonic()
    primary = FlakyStore(wall)
    limiter = FallbackLimiter(
        primary,
        MemoryLimiter(clock=wall),
        fraction=0.1,
        probe_every=1.0,
        log_every=60.0,
        clock=mono,
    )
    return limiter, primary, wall, mono


@pytest.mark.parametrize(
    ("limit", "fraction", "expected"),
    [
        (100, 0.1, 10),
        (10, 0.1, 1),
        (1, 0.1, 1),
        (0, 0.1, 0),
        (50_000, 0.1, 5_000),
        (7, 0.5, 3),
        (7, 1.0, 7),
    ],
)
def test_cap(limit: int, fraction: float, expected: int) -> None:
    assert capped(limit, fraction) == expected


def test_fraction_must_be_a_share() -> None:
    for fraction in (0, -0.1, 1.5):
        with pytest.raises(ValueError):
            FallbackLimiter(MemoryLimiter(), fraction=fraction)


def test_healthy_store_decides_everything(parts) -> None:
    limiter, primary, _, _ = parts
    decisions = [limiter.hit("k", 100, 1000) for _ in range(5)]
    assert [d.remaining for d in decisions] == [99, 98, 97, 96, 95]
    assert primary.calls == 5 and limiter.healthy and limiter.degraded == 0


def test_store_down_fails_open_within_the_cap(parts, caplog) -> None:
    limiter, primary, _, mono = parts
    primary.down = True
    with caplog.at_level(logging.WARNING, logger="socdef.limits"):
        decisions = [limiter.hit("k", 100, 50_000) for _ in range(30)]
    assert sum(d.allowed for d in decisions) == 10  # 10 % of 100 per minute
    assert all(d.limit == 10 and d.day_limit == 5_000 for d in decisions)
    assert decisions[-1].retry_after >= 1 and not limiter.healthy
    assert primary.calls == 1  # no probe before probe_every has passed
    assert limiter.degraded == 30
    assert [r.getMessage() for r in caplog.records if "unavailable" in r.getMessage()] == [
        "rate-limit store unavailable (store switched off): failing open with a per-process "
        "cap of 10 % of each limit"
    ]


def test_probes_once_per_interval_and_logs_sparingly(parts, caplog) -> None:
    limiter, primary, _, mono = parts
    primary.down = True
    with caplog.at_level(logging.WARNING, logger="socdef.limits"):
        for _ in range(120):  # two minutes, 10 requests a second
            for _ in range(10):
                limiter.hit("k", 1000, 10**6)
            mono.now += 1.0
    assert 119 <= primary.calls <= 121
    assert len(caplog.records) == 2  # the first failure, then one reminder after 60 s
    assert "still unavailable" in caplog.records[1].getMessage()


def test_recovers_on_the_first_successful_probe(parts, caplog) -> None:
    limiter, primary, _, mono = parts
    primary.down = True
    limiter.hit("k", 100, 1000)
    primary.down = False
    assert limiter.hit("k", 100, 1000).limit == 10  # still inside the probe interval
    mono.now += 1.0
    with caplog.at_level(logging.WARNING, logger="socdef.limits"):
        back = limiter.hit("k", 100, 1000)
    assert back.limit == 100 and back.remaining == 99 and limiter.healthy
    assert "available again" in caplog.records[-1].getMessage()
    assert limiter.degraded == 0


def test_batches_follow_the_same_policy(parts) -> None:
    limiter, primary, _, mono = parts
    assert [d.remaining for d in limiter.hit_many([("k", 100, 1000)] * 3)] == [99, 98, 97]
    assert primary.calls == 1  # one store call for the whole batch
    primary.down = True
    capped_batch = limiter.hit_many([("j", 20, 1000)] * 4)
    assert [d.allowed for d in capped_batch] == [True, True, False, False]  # 10 % of 20
    assert not limiter.healthy and limiter.degraded == 4
    primary.down = False
    mono.now += 1.0
    assert limiter.hit_many([("k", 100, 1000)])[0].remaining == 96 and limiter.healthy


def test_peek_follows_the_same_policy(parts) -> None:
    limiter, primary, _, mono = parts
    limiter.hit("k", 100, 1000)
    assert limiter.peek("k", 100, 1000).remaining == 99
    primary.down = True
    mono.now += 5
    degraded = limiter.peek("k", 100, 1000)
    assert (degraded.limit, degraded.remaining) == (10, 10)
    assert limiter.degraded == 0  # peeking decides nothing


# --- real stores ----------------------------------------------------------------------------


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with running_redis(tmp_path) as server:
        yield server


def wait_until(condition, timeout: float = 5.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_redis_stopped_mid_run_then_restarted(redis_server: RedisServer) -> None:
    from worker.limits.redis_store import RedisLimiter

    seconds, _ = redis_server.client().time()
    if seconds % 60 > 45:  # the fallback counts per minute too: stay inside one window
        time.sleep(61 - seconds % 60)
    limiter = FallbackLimiter(RedisLimiter(redis_server.url), probe_every=0.2)
    assert [limiter.hit("k", 100, 1000).remaining for _ in range(3)] == [99, 98, 97]
    redis_server.stop()
    started = time.monotonic()
    during = [limiter.hit("k", 100, 1000) for _ in range(40)]
    assert time.monotonic() - started < 2  # refused connections fail fast
    assert sum(d.allowed for d in during) == 10 and not limiter.healthy
    redis_server.start()
    wait_until(lambda: limiter.hit("k", 100, 1000).limit == 100)
    assert limiter.healthy and limiter.hit("k", 100, 1000).limit == 100
    limiter.close()


def test_sqlite_locked_then_released(tmp_path: Path) -> None:
    path = tmp_path / "limits.sqlite"
    primary = SQLiteLimiter(path)
    primary._conn.execute("PRAGMA busy_timeout = 20")  # do not wait 5 s for the lock
    limiter = FallbackLimiter(primary, probe_every=0.0)
    assert limiter.hit("k", 100, 1000).remaining == 99
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    during = [limiter.hit("k", 100, 1000) for _ in range(15)]
    assert sum(d.allowed for d in during) == 10 and not limiter.healthy
    blocker.execute("COMMIT")
    blocker.close()
    back = limiter.hit("k", 100, 1000)
    assert (back.limit, back.remaining, limiter.healthy) == (100, 98, True)
    limiter.close()
