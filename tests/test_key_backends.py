"""One contract for both backends of keys, accounts and the usage log: SQLite files in the data
folder and a PostgreSQL database (a real server on 127.0.0.1), opened the way the worker opens
them (``worker.access.stores``)."""

from __future__ import annotations

import hmac
import subprocess
import sys

import pytest

from tests.conftest import ROOT, free_port
from tests.postgres_server import running_postgres
from worker.access.keys import KeyLimitReached, KeyStoreError
from worker.access.stores import open_accounts, open_keys, open_usage

SECRET = b"s" * 32


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def postgres():
    with running_postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path) -> str:
    """The ``--db`` value of each backend: empty (SQLite in ``tmp_path``) or a fresh database."""
    if request.param == "sqlite":
        return ""
    return request.getfixturevalue("postgres").new_database()


def test_keys_authenticate_list_and_revoke_alike(db, tmp_path):
    clock = Clock()
    store = open_keys(db, tmp_path, SECRET, clock=clock, cache_ttl=0)
    key, record = store.create("Ana@Example.org", "pro", name="SIEM", expires_in_days=1)
    _, second = store.create("ana@example.org", "free")
    assert store.authenticate(key).key == record
    assert store.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B")).error == "malformed"
    assert [k.id for k in store.list("ana@example.org")] == [second.id, record.id]  # newest first
    assert store.get(record.id, user="eve@example.org") is None
    revoked = store.revoke(record.id, reason="rotated")
    assert revoked is not None and revoked.revoke_reason == "rotated"
    clock.now += 10
    again = store.revoke(record.id, reason="other")
    assert again is not None and (again.revoked_at, again.revoke_reason) == (
        revoked.revoked_at,
        "rotated",
    )
    assert store.authenticate(key).error == "revoked"
    expiring, _ = store.create("bob@example.org", "free", expires_in_days=1)
    assert store.authenticate(expiring).key is not None
    clock.now += 86_400
    assert store.authenticate(expiring).error == "expired"
    store.close()


def test_keys_are_stored_only_as_keyed_hashes(db, tmp_path):
    store = open_keys(db, tmp_path, SECRET)
    key, _ = store.create("ana@example.org", "free")
    rows = store._conn.execute("SELECT * FROM api_keys").fetchall()
    assert key not in repr(rows) and key[8:20] not in repr(rows)
    digest = store._conn.execute("SELECT digest FROM api_keys").fetchone()[0]
    assert bytes(digest) == hmac.digest(SECRET, key.encode(), "sha256")
    store.close()


def test_the_live_key_cap_counts_revoked_and_expired_keys_out(db, tmp_path):
    clock = Clock()
    store = open_keys(db, tmp_path, SECRET, clock=clock)
    _, first = store.create("cap@example.org", "free", max_live=2)
    store.create("cap@example.org", "free", max_live=2, expires_in_days=1)
    with pytest.raises(KeyLimitReached):
        store.create("cap@example.org", "free", max_live=2)
    store.revoke(first.id)
    store.create("cap@example.org", "free", max_live=2)
    clock.now += 2 * 86_400  # the expiring key no longer counts
    store.create("cap@example.org", "free", max_live=2)
    with pytest.raises(KeyLimitReached):
        store.create("cap@example.org", "free", max_live=2)
    store.close()


def test_accounts_keep_tiers_alike(db, tmp_path):
    accounts = open_accounts(db, tmp_path)
    assert accounts.tier_of("new@example.org") == "free"
    accounts.set_tier("New@Example.org", "enterprise")
    accounts.set_tier("new@example.org", "pro")
    assert accounts.tier_of(" NEW@example.org ") == "pro"
    accounts.close()


CHILD = """
import sys, time
from pathlib import Path
from worker.access.stores import open_usage
log = open_usage(sys.argv[1], Path(sys.argv[2]), flush_every=3600)
for _ in range(5):
    log.record("k1", "/api/v1/iocs", 200, 1.5, 2)
log.flush()
for _ in range(3):
    log.record("k1", "/api/v1/iocs", 429, 0.5)
print("ready", flush=True)
time.sleep(120)
"""


def test_usage_of_a_killed_process_is_replayed_once(db, tmp_path):
    """5 requests flushed, 3 only journaled, then SIGKILL: the next log holds all 8, once."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, db, str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    finally:
        proc.kill()
        proc.wait(timeout=10)
    log = open_usage(db, tmp_path)
    statuses: dict[int, int] = {}
    for _, _, status, _, _, n in log.rows("k1", 0):
        statuses[status] = statuses.get(status, 0) + n
    assert statuses == {200: 5, 429: 3}
    assert log.totals(["k1"])["k1"][0] == 8
    log.close()
    again = open_usage(db, tmp_path)
    assert again.totals(["k1"])["k1"][0] == 8  # replayed once, not on every start
    again.close()


def test_a_database_setting_that_is_no_url_is_refused(tmp_path):
    with pytest.raises(KeyStoreError, match="postgresql://"):
        open_keys("mysql://db/keys", tmp_path, SECRET)


def test_an_unreachable_database_is_one_message_without_its_password(postgres, tmp_path):
    url = f"postgresql://socdef:hunter2@127.0.0.1:{free_port()}/nothing"  # nothing listens
    with pytest.raises(KeyStoreError) as refused:
        open_keys(url, tmp_path, SECRET)
    assert "hunter2" not in str(refused.value) and "127.0.0.1" in str(refused.value)


def test_a_restarted_database_is_used_again_without_a_restarted_worker(postgres, tmp_path):
    """While PostgreSQL is down a lookup fails with one message; once it is back, the same store
    connects again. Keys checked before stay accepted from the cache meanwhile."""
    store = open_keys(postgres.new_database(), tmp_path, SECRET, cache_ttl=60)
    known, _ = store.create("ana@example.org", "free")
    fresh, _ = store.create("bob@example.org", "free")
    assert store.authenticate(known).key is not None  # now cached
    postgres.stop()
    try:
        with pytest.raises(KeyStoreError, match="cannot use postgresql://127.0.0.1"):
            store.authenticate(fresh)
        assert store.authenticate(known).key is not None
    finally:
        postgres.restart()
    assert store.authenticate(fresh).key is not None
    store.close()
