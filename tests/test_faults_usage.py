"""Usage records survive a worker killed with SIGKILL, and are never counted twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import (
    ROOT,
    Server,
    socdef,
    start_server,
    wait_for_room_in_minute,
)
from tests.support import published
from worker.access.keys import account_limit_id
from worker.contract.tiers import TIERS
from worker.limits import usage_journal
from worker.limits.usage import UsageLog
from worker.limits.usage_journal import SUFFIX
from worker.limits.windows import SQLiteLimiter

COOKIE = "sb-access-token"
PRO = TIERS["pro"]
CHILD = """
import sys, time
from worker.limits import usage_journal
from worker.limits.usage import UsageLog
log = UsageLog(sys.argv[1], flush_every=3600)
for _ in range(5):
    log.record("k1", "/api/v1/iocs", 200, 1.5, 2)
log.flush()
for _ in range(3):
    log.record("k1", "/api/v1/iocs", 429, 0.5)
print("ready", flush=True)
time.sleep(120)
"""


def killed_writer(path: Path) -> None:
    """A process records 5 requests, flushes, records 3 more, and is killed with SIGKILL."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    finally:
        proc.kill()
        proc.wait(timeout=10)


def by_status(log: UsageLog, key_id: str) -> dict[int, tuple[int, int]]:
    out: dict[int, tuple[int, int]] = {}
    for _, _, status, _, iocs, n in log.rows(key_id, 0):
        count, total = out.get(status, (0, 0))
        out[status] = (count + n, total + iocs)
    return out


def test_a_killed_process_loses_no_usage_and_flushed_rows_are_not_repeated(tmp_path):
    path = tmp_path / "usage.sqlite"
    killed_writer(path)
    assert len(list(tmp_path.glob("usage.sqlite" + SUFFIX + "*"))) == 1
    log = UsageLog(path)
    assert log.totals(["k1"])["k1"][0] == 8
    assert by_status(log, "k1") == {200: (5, 10), 429: (3, 0)}
    assert not list(tmp_path.glob("usage.sqlite" + SUFFIX + "*"))  # replayed, then deleted
    log.close()
    again = UsageLog(path)
    assert again.totals(["k1"])["k1"][0] == 8
    again.close()


def test_a_replay_cut_short_after_its_commit_is_not_counted_twice(tmp_path, monkeypatch):
    path = tmp_path / "usage.sqlite"
    killed_writer(path)

    def crash(self, name, *, unlink=False):
        raise KeyboardInterrupt  # killed between the commit and deleting the journal

    with monkeypatch.context() as patch:
        patch.setattr(UsageLog, "_forget", crash)
        with pytest.raises(KeyboardInterrupt):
            UsageLog(path)
    assert len(list(tmp_path.glob("usage.sqlite" + SUFFIX + "*"))) == 1
    log = UsageLog(path)
    assert log.totals(["k1"])["k1"][0] == 8
    log.close()


def test_a_running_log_skips_live_journals_and_takes_dead_ones(tmp_path):
    path = tmp_path / "usage.sqlite"
    live = UsageLog(path, flush_every=3600)
    live.record("live", "/api/v1/iocs", 200, 1.0)
    reader = UsageLog(path)
    assert reader.totals(["live"]) == {}  # another process's buffer: not ours to write
    killed_writer(path)
    assert reader.replay() == 3  # the dead one's three unflushed requests
    assert reader.totals(["k1"])["k1"][0] == 8
    live.close()
    assert reader.totals(["live"])["live"][0] == 1
    reader.close()


def test_a_torn_last_line_is_left_out_and_garbage_is_skipped(tmp_path):
    path = tmp_path / "usage.sqlite"
    UsageLog(path).close()
    journal = Path(f"{path}{SUFFIX}dead")
    journal.write_bytes(
        b"k2\t/api/v1/iocs\t200\t1.0\t4\t1000.5\nnot a line\nk2\t/api/v1/iocs\t200\t1.0\t4\t10"
    )
    log = UsageLog(path)
    assert log.totals(["k2"]) == {"k2": (1, 1000.5)}
    log.close()


def test_a_replaced_journal_keeps_every_request_once(tmp_path, monkeypatch):
    """A journal wholly in the log is replaced; the next one is replayed from its start."""
    monkeypatch.setattr(usage_journal, "ROTATE_BYTES", 1)
    path = tmp_path / "usage.sqlite"
    log = UsageLog(path, flush_every=3600)
    for _ in range(3):
        log.record("k3", "/api/v1/iocs", 200, 1.0)
    first = log._journal.name
    log.flush()
    assert not Path(first).exists()
    for _ in range(2):
        log.record("k3", "/api/v1/iocs", 200, 1.0)
    assert log._journal.name != first
    os.close(log._journal._fd)  # the process ends without a flush: its lock is released
    reader = UsageLog(path)
    assert reader.totals(["k3"])["k3"][0] == 5
    assert reader._conn.execute("SELECT count(*) FROM usage_journal").fetchone()[0] == 0
    reader.close()


def test_an_unwritable_journal_costs_durability_not_requests(tmp_path, monkeypatch, caplog):
    log = UsageLog(tmp_path / "usage.sqlite", flush_every=3600)

    def full_disk(fd, data):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(usage_journal.os, "write", full_disk)
        for _ in range(3):
            log.record("k4", "/api/v1/iocs", 200, 1.0)
    assert [r.message for r in caplog.records if r.name == "socdef.usage"] == [
        f"usage journal {log._journal.name} cannot be written: usage since the last flush is "
        "lost if this process is killed"
    ]
    log.record("k4", "/api/v1/iocs", 200, 1.0)  # the disk has room again
    assert log.totals(["k4"])["k4"][0] == 4
    log.close()


def serve(data_dir: Path, log_path: Path) -> Server:
    """``socdef serve`` with two worker processes, in a process group of its own."""
    return start_server(
        data_dir, log_path, "--workers", "2", "--limiter", "sqlite", new_session=True
    )


def kill_group(server: Server) -> None:
    os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait(timeout=10)


def test_usage_after_two_kills_equals_what_was_sent_and_admitted(tmp_path):
    """The report: 200 requests, two kills, the usage API showed 110 against 100 admitted."""
    data = published(tmp_path / "data", iocs=200, days=5)
    user = f"crash-{uuid.uuid4().hex[:12]}@example.org"
    socdef("users", "set-tier", user, "pro", data_dir=data)
    cookies = {COOKIE: socdef("session", "create", "--user", user, data_dir=data).stdout.strip()}
    log_path = tmp_path / "server.log"
    server = serve(data, log_path)
    try:
        made = httpx.post(
            server.url + "/api/v1/keys",
            json={"name": "crash"},
            cookies=cookies,
            headers={"Sec-Fetch-Site": "same-origin"},
            timeout=30,
        ).json()["data"]
        wait_for_room_in_minute(45)
        statuses = []
        for _ in range(2):
            with httpx.Client(base_url=server.url, timeout=30) as client:
                statuses += [
                    client.get(
                        "/api/v1/iocs?limit=1", headers={"X-API-Key": made["key"]}
                    ).status_code
                    for _ in range(70)
                ]
            kill_group(server)  # at once: the last requests are still in the worker's buffer
            server = serve(data, log_path)
        assert statuses.count(200) == PRO.per_minute or statuses.count(429) == 0
        usage = httpx.get(
            f"{server.url}/api/v1/keys/{made['id']}/usage",
            params={"days": 1},
            cookies=cookies,
            timeout=30,
        ).json()["data"]
    finally:
        kill_group(server)
    summary = usage["summary"]
    assert summary["totalRequests"] == len(statuses) == 140
    assert summary["successfulRequests"] == statuses.count(200)
    peek = SQLiteLimiter(data / "limits.sqlite").peek(
        account_limit_id(user), PRO.per_minute, PRO.per_day
    )
    assert PRO.per_day - peek.day_remaining == statuses.count(200)  # the limiter's admitted
