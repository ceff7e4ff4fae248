"""The usage log shares a row among requests alike, and every usage figure stays what one row
per request gives."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.limits.usage import DAY, UsageLog, add_count_column, daily, summarise

T0 = 1_795_000_000.0
KEYS = ("key_a", "key_b")

request = st.tuples(
    st.sampled_from(KEYS),
    st.sampled_from(["/api/v1/iocs", "/api/v1/iocs/search", "/api/v1/iocs/stats"]),
    st.sampled_from([200, 304, 400, 401, 429, 500]),
    st.integers(0, 40_000).map(lambda k: k / 4),  # latency ms, exact in binary and to 0.01 ms
    st.integers(0, 10_000),  # indicators returned
    # seconds since the previous request: at once (one row) or after the flush period (the
    # test's is an hour: a row is exact to its flush period, so its requests share a time)
    st.one_of(st.just(0.0), st.floats(3_600, 3 * DAY)),
    st.booleans(),  # a flush (another process reading usage) right after this request
)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@settings(max_examples=150, deadline=None)
@given(st.lists(request, max_size=60), st.integers(1, 8), st.integers(1, 7))
def test_shared_rows_give_the_figures_of_one_row_per_request(
    tmp_path_factory, requests, max_buffer, days
):
    clock = Clock()
    log = UsageLog(
        tmp_path_factory.mktemp("usage") / "usage.sqlite",
        clock=clock,
        flush_every=3_600,
        max_buffer=max_buffer,
    )
    one_each: dict[str, list] = {key: [] for key in KEYS}
    for key, endpoint, status, latency, iocs, gap, flush in requests:
        clock.now += gap
        log.record(key, endpoint, status, latency, iocs)
        one_each[key].append((clock.now, endpoint, status, latency, iocs, 1))
        if flush:
            log.flush()
    now = clock.now
    for key in KEYS:
        since = now - days * DAY
        mine = [r for r in one_each[key] if r[0] >= since]
        rows = log.rows(key, since)
        assert len(rows) <= len(mine)
        assert summarise(rows, days=days, now=now) == summarise(mine, days=days, now=now)
        assert daily(log.rows(key, 0), days=5, now=now) == daily(one_each[key], days=5, now=now)
    totals = log.totals(list(KEYS))
    assert totals == {key: (len(rows), rows[-1][0]) for key, rows in one_each.items() if rows}
    log.close()


def test_a_busy_key_costs_a_row_per_kind_of_request(tmp_path) -> None:
    clock = Clock()
    path = tmp_path / "usage.sqlite"
    log = UsageLog(path, clock=clock)
    for i in range(10_000):
        clock.now = T0 + i / 20_000  # half a second of a busy poller
        log.record("key_a", "/api/v1/iocs", 200, 0.25 if i % 3 else 0.5, 100)
    log.record("key_a", "/api/v1/iocs", 429, 0.25)
    log.flush()
    with sqlite3.connect(path) as conn:
        stored = conn.execute(
            "SELECT status, latency_ms, n, iocs FROM usage ORDER BY status, latency_ms"
        ).fetchall()
    assert stored == [(200, 0.25, 6_666, 666_600), (200, 0.5, 3_334, 333_400), (429, 0.25, 1, 0)]
    log.close()


def test_a_period_or_a_day_ends_a_shared_row(tmp_path) -> None:
    clock = Clock()
    clock.now = 1_795_046_399.6  # 0.4 s before a UTC midnight
    log = UsageLog(tmp_path / "usage.sqlite", clock=clock, flush_every=3_600)
    for step in (0.0, 0.2, 0.4, 0.1):  # the last two after midnight
        clock.now += step
        log.record("key_a", "/api/v1/iocs", 200, 1.0, 10)
    clock.now += 3_600  # a request after the flush period: its own row, even unflushed
    log.record("key_a", "/api/v1/iocs", 200, 1.0, 10)
    rows = log.rows("key_a", 0)
    assert [r[5] for r in rows] == [2, 2, 1]
    assert [r[0] for r in rows] == pytest.approx(
        [1_795_046_399.8, 1_795_046_400.3, 1_795_050_000.3]
    )
    assert [d["requests"] for d in daily(rows, days=2, now=clock.now)] == [2, 3]
    log.close()


def test_a_log_from_before_shared_rows_reads_as_one_request_a_row(tmp_path) -> None:
    path = tmp_path / "usage.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE usage (key_id TEXT NOT NULL, ts REAL NOT NULL, endpoint TEXT NOT NULL,
                status INTEGER NOT NULL, latency_ms REAL NOT NULL,
                iocs INTEGER NOT NULL DEFAULT 0);
            INSERT INTO usage VALUES ('key_a', 1795000000.0, '/api/v1/iocs', 200, 2.5, 100);
            INSERT INTO usage VALUES ('key_a', 1795000001.0, '/api/v1/iocs', 429, 0.5, 0);
        """)
    clock = Clock()
    clock.now = T0 + 2
    log = UsageLog(path, clock=clock)
    log.record("key_a", "/api/v1/iocs", 200, 1.5, 100)
    assert log.totals(["key_a"]) == {"key_a": (3, T0 + 2)}
    stats = summarise(log.rows("key_a", 0), days=1, now=clock.now)["summary"]
    assert stats["totalRequests"] == 3 and stats["failedRequests"] == 1
    assert stats["totalIOCsReturned"] == 200
    log.close()


def test_two_processes_opening_an_old_log_at_once_both_start(tmp_path) -> None:
    path = tmp_path / "usage.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE usage (key_id TEXT NOT NULL, ts REAL NOT NULL, endpoint TEXT "
            "NOT NULL, status INTEGER NOT NULL, latency_ms REAL NOT NULL, "
            "iocs INTEGER NOT NULL DEFAULT 0)"
        )
    first = UsageLog(path)  # adds the column
    # a second process that looked at the columns before the first added it adds it again
    with sqlite3.connect(path) as conn:
        add_count_column(conn)
    with sqlite3.connect(tmp_path / "other.sqlite") as conn:  # any other error still raises
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            add_count_column(conn)
    second = UsageLog(path)
    second.record("key_a", "/api/v1/iocs", 200, 1.0)
    assert second.totals(["key_a"]) == {"key_a": (1, second.rows("key_a", 0)[0][0])}
    first.close()
    second.close()
