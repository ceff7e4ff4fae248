"""Usage log: what each key did, written in batches, summarised per key on demand.

Rows carry the key's id (never the key), the route pattern, the status, the latency and how
many indicators the answers held. Each worker process counts requests in memory and writes
them at most every ``flush_every`` seconds (or once ``max_buffer`` groups are pending), so usage
seen from another process lags by at most that much. Requests of one key, route, status and
latency (kept to ``LATENCY_STEP`` ms) within one such period and UTC day share a row: ``n``
requests, ``ts`` the latest of them, ``iocs`` their total (so a period boundary such as
``since`` is exact to the flush period). A busy key therefore costs a few rows a second, not
one per request, and every figure of the usage statistics is the same as from one row per
request (latency percentiles and averages to the 0.01 ms kept). Rows older than
``retention_days`` are deleted as new ones are written, at most once per ``PRUNE_EVERY``
seconds (the delete scans the table, so not on every flush).

Buffered requests are not lost when a process is killed: each is also appended to the process's
journal (``worker/limits/usage_journal.py``) as it is recorded, and the journal of a process that ended
without flushing is written to the log by the next usage log opened on the same database (a
restarted worker) or by a running one within ``REPLAY_EVERY`` seconds. Each request is written
once: a flush stores how far into its journal it reaches in the same transaction as its rows.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from worker.access.private import private_sqlite
from worker.limits import usage_journal
from worker.limits.usage_journal import Journal

SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    key_id TEXT NOT NULL,
    ts REAL NOT NULL,
    endpoint TEXT NOT NULL,
    status INTEGER NOT NULL,
    latency_ms REAL NOT NULL,
    iocs INTEGER NOT NULL DEFAULT 0,
    n INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS usage_key_ts ON usage (key_id, ts);
"""
DAY = 86_400
PRUNE_EVERY = 3_600
LATENCY_DIGITS = 2  # latency kept to 0.01 ms
LATENCY_STEP = 10**-LATENCY_DIGITS
REPLAY_EVERY = 10.0  # seconds between looks for the journals of ended processes
log = logging.getLogger("socdef.usage")
Row = tuple[float, str, int, float, int, int]  # ts, endpoint, status, latency ms, iocs, n


def add_count_column(conn: sqlite3.Connection) -> None:
    """Give a log written before rows were shared its ``n`` column (1: one request a row).
    Worker processes starting together may all try: the column added by another is fine."""
    try:
        conn.execute("ALTER TABLE usage ADD COLUMN n INTEGER NOT NULL DEFAULT 1")
    except sqlite3.OperationalError as exc:
        if "duplicate column" not in str(exc):
            raise


# (key, endpoint, status, latency, day or second) -> [latest ts, requests, indicators]; the
# counts are a list (float, int, int) so that a request updates them in place.
Group = tuple[str, str, int, float, int]
Groups = dict[Group, list[Any]]


class UsageLog:
    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        flush_every: float = 1.0,
        max_buffer: int = 512,
        retention_days: int = 90,
    ) -> None:
        self._conn: Any = self._open(path)
        self._path = os.fspath(path)
        self._clock = clock
        self._flush_every = flush_every
        self._max_buffer = max_buffer
        self._retention = retention_days * DAY
        self._groups: Groups = {}
        self._flushed = clock()
        self._pruned = float("-inf")
        self._lock = threading.Lock()
        self._journal = Journal(self._path)
        self._unjournaled = False  # the last append failed (logged once per failing run)
        self._replayed = float("-inf")
        self.replay()

    def _open(self, path: str | os.PathLike[str]) -> Any:
        """The log's database: SQLite at ``path`` (``PostgresUsageLog`` opens PostgreSQL)."""
        conn = sqlite3.connect(
            private_sqlite(path), timeout=5, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.executescript(SCHEMA)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(usage)")}
        if "n" not in columns:  # a log written before rows were shared: one request a row
            add_count_column(conn)
        conn.execute(usage_journal.SCHEMA)
        return conn

    def record(
        self, key_id: str, endpoint: str, status: int, latency_ms: float, iocs: int = 0
    ) -> None:
        now = self._clock()
        if now - self._flushed >= self._flush_every:  # a row never spans more than a period
            self.flush()
        # the UTC day too: a row's requests all fall on the day its time names
        latency = round(latency_ms, LATENCY_DIGITS)
        with self._lock:
            journaled = self._journal.append(
                usage_journal.line(key_id, endpoint, status, latency, iocs, now)
            )
            if not journaled and not self._unjournaled:
                log.warning(
                    "usage journal %s cannot be written: usage since the last flush "
                    "is lost if this process is killed",
                    self._journal.name or self._path,
                )
            self._unjournaled = not journaled
            full = (
                _add(self._groups, (key_id, endpoint, status, latency, int(now // DAY)), now, iocs)
                and len(self._groups) >= self._max_buffer
            )
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            groups, self._groups = self._groups, {}
            self._flushed = self._clock()
            if groups:
                self._write(groups)
        if self._flushed - self._replayed >= REPLAY_EVERY:
            self.replay()

    def _write(self, groups: Groups) -> None:
        """Insert the rows of ``groups`` and, in the same transaction, how far this process's
        journal is now in the log; a large journal wholly in the log is then replaced."""
        journal = self._journal
        with self._conn:
            self._conn.execute("BEGIN")
            self._conn.executemany(_INSERT, _rows(groups))
            if journal.owned:
                self._conn.execute(_CHECKPOINT, (journal.name, journal.size))
            if self._flushed - self._pruned >= PRUNE_EVERY:
                self._pruned = self._flushed
                self._conn.execute(
                    "DELETE FROM usage WHERE ts < ?", (self._flushed - self._retention,)
                )
        if journal.owned and journal.size >= usage_journal.ROTATE_BYTES:
            self._forget(journal.discard())

    def replay(self) -> int:
        """Write to the log the requests in the journals of processes that ended before
        flushing them; returns how many. Each journal is deleted once it is in the log."""
        self._replayed = self._clock()
        written = 0
        for name, fd in usage_journal.dead_journals(self._path):
            try:
                written += self._replay_one(name, fd)
            finally:
                os.close(fd)
        return written

    def _replay_one(self, name: str, fd: int) -> int:
        with self._lock:
            row = self._conn.execute(
                'SELECT "offset" FROM usage_journal WHERE name = ?', (name,)
            ).fetchone()
            offset = row[0] if row else 0
            entries, used = usage_journal.parse(usage_journal.unread(fd, offset))
            groups: Groups = {}
            for key_id, endpoint, status, latency, iocs, ts in entries:
                # one row per key, route, status, latency and second: ``ts`` stays exact to 1 s
                _add(groups, (key_id, endpoint, status, latency, int(ts)), ts, iocs)
            with self._conn:
                self._conn.execute("BEGIN")
                self._conn.executemany(_INSERT, _rows(groups))
                self._conn.execute(_CHECKPOINT, (name, offset + used))
            self._forget(name, unlink=True)
        return sum(n for _, n, _ in groups.values())

    def _forget(self, name: str, *, unlink: bool = False) -> None:
        """Delete a journal that is wholly in the log, then its stored offset (a crash in
        between leaves an offset without a file, which nothing reads)."""
        if unlink:
            try:
                os.unlink(name)
            except FileNotFoundError:
                pass
        self._conn.execute("DELETE FROM usage_journal WHERE name = ?", (name,))

    def totals(self, key_ids: list[str]) -> dict[str, tuple[int, float | None]]:
        """Per key: (total requests ever kept, last request time)."""
        self.flush()
        if not key_ids:
            return {}
        marks = ",".join("?" * len(key_ids))
        rows = self._conn.execute(
            f"SELECT key_id, sum(n), max(ts) FROM usage WHERE key_id IN ({marks}) GROUP BY key_id",
            key_ids,
        ).fetchall()
        return {k: (n, last) for k, n, last in rows}

    def rows(self, key_id: str, since: float) -> list[Row]:
        """(ts, endpoint, status, latency ms, indicators, requests) of a key since ``since``."""
        self.flush()
        rows: list[Row] = self._conn.execute(
            "SELECT ts, endpoint, status, latency_ms, iocs, n FROM usage "
            "WHERE key_id = ? AND ts >= ? ORDER BY ts",
            (key_id, since),
        ).fetchall()
        return rows

    def close(self) -> None:
        self.flush()
        if self._journal.owned:
            self._forget(self._journal.discard())
        self._conn.close()


class PostgresUsageLog(UsageLog):
    """The usage log in PostgreSQL at ``url``, shared by replicas; each process's journal stays
    beside ``journal_base`` in its own data folder (a restarted replica replays its own)."""

    def __init__(self, url: str, journal_base: str | os.PathLike[str], **options: Any) -> None:
        self._url = url
        super().__init__(journal_base, **options)

    def _open(self, path: str | os.PathLike[str]) -> Any:
        from worker.access.postgres import open_database  # psycopg only when it is used

        return open_database(self._url)


_INSERT = (
    "INSERT INTO usage (key_id, ts, endpoint, status, latency_ms, iocs, n) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_CHECKPOINT = (
    'INSERT INTO usage_journal (name, "offset") VALUES (?, ?) '
    'ON CONFLICT (name) DO UPDATE SET "offset" = excluded."offset"'
)


def _rows(groups: Groups) -> list[tuple[str, float, str, int, float, int, int]]:
    return [
        (key_id, ts, endpoint, status, latency, iocs, n)
        for (key_id, endpoint, status, latency, _), (ts, n, iocs) in groups.items()
    ]


def _add(groups: Groups, group: Group, ts: float, iocs: int) -> bool:
    """Count one request into ``groups``; True when it opened a new group."""
    counts = groups.get(group)
    if counts is None:
        groups[group] = [ts, 1, iocs]
        return True
    counts[0] = ts
    counts[1] += 1
    counts[2] += iocs
    return False


def _percentile(latencies: list[tuple[float, int]], total: int, pct: float) -> int:
    """The ``pct`` percentile of ``total`` requests, given as sorted (latency, requests)."""
    if not total:
        return 0
    index = min(total - 1, max(0, round(pct / 100 * total) - 1))
    seen = 0
    for latency, n in latencies:
        seen += n
        if seen > index:
            return round(latency)
    return round(latencies[-1][0])


def _day(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def summarise(rows: list[Row], *, days: int, now: float) -> dict[str, Any]:
    """The parts of ``APIKeyUsageStats`` that come from the log."""
    total = sum(r[5] for r in rows)
    ok = sum(r[5] for r in rows if r[2] < 400)
    latencies = sorted((r[3], r[5]) for r in rows)
    by_endpoint: dict[str, list[Row]] = {}
    for r in rows:
        by_endpoint.setdefault(r[1], []).append(r)
    statuses: dict[int, int] = {}
    for r in rows:
        statuses[r[2]] = statuses.get(r[2], 0) + r[5]
    limited: dict[str, int] = {}
    for r in rows:
        if r[2] == 429:
            limited[r[1]] = limited.get(r[1], 0) + r[5]
    return {
        "summary": {
            "totalRequests": total,
            "successfulRequests": ok,
            "failedRequests": total - ok,
            "successRate": round(100 * ok / total, 2) if total else 100.0,
            "avgResponseTime": round(sum(r[3] * r[5] for r in rows) / total) if total else 0,
            "totalIOCsReturned": sum(r[4] for r in rows),
        },
        "latencyPercentiles": {f"p{p}": _percentile(latencies, total, p) for p in (50, 95, 99)},
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


def _endpoint_row(endpoint: str, rows: list[Row]) -> dict[str, Any]:
    count = sum(r[5] for r in rows)
    errors = sum(r[5] for r in rows if r[2] >= 400)
    return {
        "endpoint": endpoint,
        "count": count,
        "avgTime": round(sum(r[3] * r[5] for r in rows) / count),
        "errors": errors,
        "errorRate": round(100 * errors / count, 2),
    }


def daily(rows: list[Row], *, days: int, now: float) -> list[dict[str, Any]]:
    """One entry per UTC day of the period, oldest first, zero-filled."""
    series = {_day(now - i * DAY): [0, 0] for i in range(days - 1, -1, -1)}
    for r in rows:
        slot = series.get(_day(r[0]))
        if slot is not None:
            slot[0] += r[5]
            slot[1] += r[5] if r[2] >= 400 else 0
    return [{"date": d, "requests": n, "errors": e} for d, (n, e) in series.items()]
