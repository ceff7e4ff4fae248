"""The usage log deletes rows past retention, but scans for them at most once an hour."""

from __future__ import annotations

import sqlite3

from worker.limits.usage import DAY, PRUNE_EVERY, UsageLog

T0 = 1_795_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def stored(path) -> list[float]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT ts FROM usage ORDER BY ts")]


def test_old_rows_are_deleted_at_most_once_per_interval(tmp_path) -> None:
    clock, path = Clock(), tmp_path / "usage.sqlite"
    log = UsageLog(path, clock=clock, retention_days=1)

    def write_at(ts: float) -> None:
        clock.now = ts
        log.record("k", "/api/v1/iocs", 200, 1.0)
        log.flush()

    write_at(T0)
    write_at(T0 + DAY - 1_000)  # prunes; nothing has expired yet
    write_at(T0 + DAY + 100)  # the first row has expired, but the last prune was 1,100 s ago
    assert stored(path) == [T0, T0 + DAY - 1_000, T0 + DAY + 100]
    write_at(T0 + DAY - 1_000 + PRUNE_EVERY)
    assert stored(path) == [T0 + DAY - 1_000, T0 + DAY + 100, T0 + DAY - 1_000 + PRUNE_EVERY]
    log.close()
