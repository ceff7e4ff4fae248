"""Limits belong to the account: its keys share one minute and day window, its live keys are
capped per tier, and key creation and revocation are rate-limited (docs/rate-limits.md)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.conftest import running_server, socdef, wait_for_room_in_minute
from tests.redis_server import running_redis
from tests.support import fresh_user, new_key, published, serving
from worker.access.keys import KeyLimitReached, KeyStore, account_limit_id
from worker.contract.tiers import TIERS
from worker.limits.windows import MemoryLimiter

COOKIE = "sb-access-token"
PATH = "/api/v1/iocs?limit=1"
FREE = TIERS["free"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return published(tmp_path_factory.mktemp("accounts"), iocs=200, days=5)


@pytest.fixture(scope="module")
def server(data_dir, tmp_path_factory):
    yield from serving(data_dir, tmp_path_factory, "--workers", "2", "--limiter", "sqlite")


def cli_key(data_dir: Path, user: str, tier: str = "free") -> str:
    return new_key(data_dir, tier, user)


# what the keys page's fetch sends: cookie-authenticated writes need it
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


def session(data_dir: Path, user: str) -> dict[str, str]:
    return {COOKIE: socdef("session", "create", "--user", user, data_dir=data_dir).stdout.strip()}


async def _fire(url: str, keys: list[str], each: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(keys) * each)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        calls = [client.get(url, headers={"X-API-Key": key}) for key in keys for _ in range(each)]
        return await asyncio.gather(*calls)


def burst(urls: list[str], keys: list[str], each: int) -> list[httpx.Response]:
    """``each`` concurrent requests per key, key i sent to ``urls[i % len(urls)]``, inside one
    minute window (repeated by the caller's fresh account if it straddled one)."""
    wait_for_room_in_minute(20)

    async def run() -> list[httpx.Response]:
        parts = await asyncio.gather(
            *(_fire(urls[i % len(urls)] + PATH, [key], each) for i, key in enumerate(keys))
        )
        return [r for part in parts for r in part]

    return asyncio.run(run())


def assert_account_window(responses: list[httpx.Response], per_minute: int) -> None:
    assert len({r.headers["x-ratelimit-reset"] for r in responses}) == 1, "straddled a minute"
    assert Counter(r.status_code for r in responses) == {
        200: per_minute,
        429: len(responses) - per_minute,
    }
    admitted = sorted(
        int(r.headers["x-ratelimit-remaining"]) for r in responses if r.status_code == 200
    )
    assert admitted == list(range(per_minute))  # one window counted down, whichever key
    assert all(r.headers["x-ratelimit-limit"] == str(per_minute) for r in responses)


def test_keys_of_one_account_share_the_window_across_worker_processes(server, data_dir):
    """The report: 20 free keys x 11 requests admitted 200 in a minute (tier: 10)."""
    user = fresh_user("many")
    keys = [cli_key(data_dir, user) for _ in range(5)]
    responses = burst([server.url], keys, 11)
    assert_account_window(responses, FREE.per_minute)


def test_keys_of_one_account_share_the_window_across_redis_replicas(data_dir, tmp_path):
    with running_redis(tmp_path) as redis_server:
        args = ("--workers", "2", "--limiter", "redis", "--redis-url", redis_server.url)
        with (
            running_server(data_dir, tmp_path / "a.log", *args) as one,
            running_server(data_dir, tmp_path / "b.log", *args) as two,
        ):
            user = fresh_user("replicas")
            keys = [cli_key(data_dir, user) for _ in range(4)]
            responses = burst([one.url, two.url], keys, 8)
    assert_account_window(responses, FREE.per_minute)


def test_other_accounts_keep_their_own_window(server, data_dir):
    wait_for_room_in_minute(15)
    spent, other = cli_key(data_dir, fresh_user("spent")), cli_key(data_dir, fresh_user("other"))
    for _ in range(FREE.per_minute):
        httpx.get(server.url + PATH, headers={"X-API-Key": spent}, timeout=30)
    assert httpx.get(server.url + PATH, headers={"X-API-Key": spent}, timeout=30).status_code == 429
    fresh = httpx.get(server.url + PATH, headers={"X-API-Key": other}, timeout=30)
    assert fresh.status_code == 200 and fresh.headers["x-ratelimit-remaining"] == "9"


def test_usage_stays_per_key_while_the_limits_report_the_account(server, data_dir):
    user = fresh_user("usage")
    socdef("users", "set-tier", user, "pro", data_dir=data_dir)
    cookies = session(data_dir, user)
    with httpx.Client(
        base_url=server.url, cookies=cookies, headers=SAME_ORIGIN, timeout=30
    ) as client:
        made = [
            client.post("/api/v1/keys", json={"name": f"k{i}"}).json()["data"] for i in range(2)
        ]
        wait_for_room_in_minute(15)
        last = None
        for info, count in zip(made, (3, 2), strict=True):
            for _ in range(count):
                last = client.get(PATH, headers={"X-API-Key": info["key"]})
        assert last is not None and last.headers["x-ratelimit-remaining"] == str(100 - 5)
        for info, count in zip(made, (3, 2), strict=True):
            usage = usage_when(client, info["id"], count)
            assert usage["summary"]["totalRequests"] == count  # the key's own requests
            assert usage["rateLimits"]["perMinute"]["current"] == 5  # the account's window
            assert usage["rateLimits"]["perDay"]["current"] == 5


def usage_when(client: httpx.Client, key_id: str, total: int) -> dict:
    """The key's usage once it shows ``total`` requests: another worker process may hold some
    for up to its flush period (1 s)."""
    deadline = time.monotonic() + 10
    while True:
        usage = client.get(f"/api/v1/keys/{key_id}/usage").json()["data"]
        if usage["summary"]["totalRequests"] >= total or time.monotonic() > deadline:
            return usage
        time.sleep(0.1)


def test_live_keys_are_capped_per_tier_and_revoked_keys_free_a_slot(server, data_dir):
    user = fresh_user("cap")
    cookies = session(data_dir, user)
    wait_for_room_in_minute(15)  # five key operations: the free tier's per-minute five
    with httpx.Client(
        base_url=server.url, cookies=cookies, headers=SAME_ORIGIN, timeout=30
    ) as client:
        made = [client.post("/api/v1/keys", json={"name": f"k{i}"}) for i in range(FREE.max_keys)]
        assert [r.status_code for r in made] == [201] * FREE.max_keys
        refused = client.post("/api/v1/keys", json={"name": "one too many"})
        assert refused.status_code == 400
        error = refused.json()["error"]
        assert error["code"] == "key_limit_reached" and error["request_id"]
        assert error["details"] == {"max_keys": FREE.max_keys, "tier": "free"}
        assert client.get("/api/v1/keys").json()["meta"]["total"] == FREE.max_keys
        first = made[0].json()["data"]["id"]
        assert client.request("DELETE", f"/api/v1/keys/{first}").status_code == 200
        assert client.post("/api/v1/keys", json={"name": "replacement"}).status_code == 201


def test_key_operations_are_rate_limited_per_account(server, data_dir):
    user = fresh_user("ops")
    cookies = session(data_dir, user)
    wait_for_room_in_minute(20)
    with httpx.Client(
        base_url=server.url, cookies=cookies, headers=SAME_ORIGIN, timeout=30
    ) as client:
        answers = []
        for i in range(FREE.key_ops_per_minute):  # create, revoke, create, revoke, create
            if i % 2 == 0:
                answers.append(client.post("/api/v1/keys", json={"name": f"k{i}"}))
            else:
                key_id = answers[-1].json()["data"]["id"]
                answers.append(client.request("DELETE", f"/api/v1/keys/{key_id}"))
        assert [r.status_code for r in answers] == [201, 200] * (len(answers) // 2) + [201]
        for refused in (
            client.post("/api/v1/keys", json={"name": "more"}),
            client.request("DELETE", f"/api/v1/keys/{answers[-1].json()['data']['id']}"),
        ):
            assert refused.status_code == 429
            error = refused.json()["error"]
            assert error["code"] == "rate_limit_exceeded" and error["request_id"]
            assert error["details"]["scope"] == "key_operations"
            assert 1 <= int(refused.headers["retry-after"]) <= 60
        # the data API is a separate budget: the account's keys still read
        key = answers[-1].json()["data"]["key"]
        assert client.get(PATH, headers={"X-API-Key": key}).status_code == 200


def test_the_cap_holds_when_two_stores_create_at_once(tmp_path):
    """Two processes' stores (two connections) racing: the count and the insert are atomic."""
    secret = b"s" * 32
    stores = [KeyStore(tmp_path / "keys.sqlite", secret) for _ in range(2)]
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def create(store: KeyStore) -> None:
        start.wait()
        for _ in range(5):
            try:
                store.create("race@example.org", "free", max_live=2)
                outcomes.append("made")
            except KeyLimitReached:
                outcomes.append("refused")

    threads = [threading.Thread(target=create, args=(stores[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Counter(outcomes) == {"made": 2, "refused": 38}
    assert len(stores[0].list("race@example.org")) == 2
    for store in stores:
        store.close()


def test_expired_keys_do_not_count_and_the_account_id_names_no_user(tmp_path):
    now = [1_000_000.0]
    store = KeyStore(tmp_path / "keys.sqlite", b"s" * 32, clock=lambda: now[0])
    store.create("Exp@Example.org", "free", max_live=1, expires_in_days=1)
    with pytest.raises(KeyLimitReached):
        store.create("exp@example.org", "free", max_live=1)
    now[0] += 86_400
    _, record = store.create("exp@example.org", "free", max_live=1)
    assert record.limit_id == account_limit_id("EXP@example.org ") != record.id
    assert "example" not in record.limit_id
    limiter = MemoryLimiter(clock=lambda: now[0])
    other = store.create("exp@example.org", "pro")[1]
    assert limiter.hit(record.limit_id, 2, 10).remaining == 1
    assert limiter.hit(other.limit_id, 2, 10).remaining == 0  # the same account's window
    store.close()
