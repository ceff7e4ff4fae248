"""Usage log: one row per keyed request, written in batches, summarised per key on demand.

Rows carry the key's id (never the key), the route pattern, the status, the latency and how
many indicators the answer held. Each worker process buffers rows and writes them at most every
``flush_every`` seconds (or every ``max_buffer`` rows), so usage seen from another process lags
by at most that much. Rows older than ``retention_days`` are deleted as new ones are written, at
most once per ``PRUNE_EVERY`` seconds (the delete scans the table, so not on every flush).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    key_id TEXT NOT NULL,
    ts REAL NOT NULL,
    endpoint TEXT NOT NULL,
    status INTEGER NOT NULL,
    latency_ms REAL NOT NULL,
    iocs INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS usage_key_ts ON usage (key_id, ts);
"""
DAY = 86_400
PRUNE_EVERY = 3_600


class UsageLog:
    def __init__(self, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time,
                 flush_every: float = 1.0, max_buffer: int = 512,
                 retention_days: int = 90) -> None:
        self._conn = sqlite3.connect(os.fspath(path), timeout=5, isolation_level=None,
                                     check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.executescript(SCHEMA)
        self._clock = clock
        self._flush_every = flush_every
        self._max_buffer = max_buffer
        self._retention = retention_days * DAY
        self._buffer: list[tuple] = []
        self._flushed = clock()
        self._pruned = float("-inf")
        self._lock = threading.Lock()

    def record(self, key_id: str, endpoint: str, status: int, latency_ms: float,
               iocs: int = 0) -> None:
        now = self._clock()
        self._buffer.append((key_id, now, endpoint, status, latency_ms, iocs))
        if len(self._buffer) >= self._max_buffer or now - self._flushed >= self._flush_every:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            rows, self._buffer = self._buffer, []
            self._flushed = self._clock()
            if not rows:
                return
            with self._conn:
                self._conn.execute("BEGIN")
                self._conn.executemany("INSERT INTO usage VALUES (?, ?, ?, ?, ?, ?)", rows)
                if self._flushed - self._pruned >= PRUNE_EVERY:
                    self._pruned = self._flushed
                    self._conn.execute("DELETE FROM usage WHERE ts < ?",
                                       (self._flushed - self._retention,))

    def totals(self, key_ids: list[str]) -> dict[str, tuple[int, float | None]]:
        """Per key: (total requests ever kept, last request time)."""
        self.flush()
        if not key_ids:
            return {}
        marks = ",".join("?" * len(key_ids))
        rows = self._conn.execute(
            f"SELECT key_id, count(*), max(ts) FROM usage WHERE key_id IN ({marks}) "
            "GROUP BY key_id", key_ids).fetchall()
        return {k: (n, last) for k, n, last in rows}

    def rows(self, key_id: str, since: float) -> list[tuple[float, str, int, float, int]]:
        self.flush()
        return self._conn.execute(
            "SELECT ts, endpoint, status, latency_ms, iocs FROM usage "
            "WHERE key_id = ? AND ts >= ? ORDER BY ts", (key_id, since)).fetchall()

    def close(self) -> None:
        self.flush()
        self._conn.close()


def _percentile(sorted_values: list[float], pct: float) -> int:
    if not sorted_values:
        return 0
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values)) - 1))
    return round(sorted_values[index])


def _day(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def summarise(rows: list[tuple[float, str, int, float, int]], *, days: int,
              now: float) -> dict[str, Any]:
    """The parts of ``APIKeyUsageStats`` that come from the log."""
    ok = [r for r in rows if r[2] < 400]
    latencies = sorted(r[3] for r in rows)
    by_endpoint: dict[str, list[tuple]] = {}
    for r in rows:
        by_endpoint.setdefault(r[1], []).append(r)
    statuses: dict[int, int] = {}
    for r in rows:
        statuses[r[2]] = statuses.get(r[2], 0) + 1
    limited: dict[str, int] = {}
    for r in rows:
        if r[2] == 429:
            limited[r[1]] = limited.get(r[1], 0) + 1
    total = len(rows)
    return {
        "summary": {
            "totalRequests": total,
            "successfulRequests": len(ok),
            "failedRequests": total - len(ok),
            "successRate": round(100 * len(ok) / total, 2) if total else 100.0,
            "avgResponseTime": round(sum(latencies) / total) if total else 0,
            "totalIOCsReturned": sum(r[4] for r in rows),
        },
        "latencyPercentiles": {f"p{p}": _percentile(latencies, p) for p in (50, 95, 99)},
        "rateLimitHits": {
            "total": sum(limited.values()),
            "byEndpoint": [{"endpoint": e, "count": n} for e, n in sorted(limited.items())],
        },
        "breakdown": {
            "byEndpoint": [_endpoint_row(e, rs) for e, rs in sorted(by_endpoint.items())],
            "byStatusCode": [
                {"statusCode": code, "count": n, "percentage": round(100 * n / total, 2)}
                for code, n in sorted(statuses.items())
            ],
        },
        "timeSeries": daily(rows, days=days, now=now),
    }


def _endpoint_row(endpoint: str, rows: list[tuple]) -> dict[str, Any]:
    errors = sum(1 for r in rows if r[2] >= 400)
    return {
        "endpoint": endpoint,
        "count": len(rows),
        "avgTime": round(sum(r[3] for r in rows) / len(rows)),
        "errors": errors,
        "errorRate": round(100 * errors / len(rows), 2),
    }


def daily(rows: list[tuple], *, days: int, now: float) -> list[dict[str, Any]]:
    """One entry per UTC day of the period, oldest first, zero-filled."""
    series = {_day(now - i * DAY): [0, 0] for i in range(days - 1, -1, -1)}
    for r in rows:
        slot = series.get(_day(r[0]))
        if slot is not None:
            slot[0] += 1
            slot[1] += r[2] >= 400
    return [{"date": d, "requests": n, "errors": e} for d, (n, e) in series.items()]
