"""Rate limits over real HTTP: 1,000 concurrent requests from one pro key (100/min) against
``socdef serve --workers 2`` admit exactly 100, with Redis and with SQLite. A naive
read-pause-write limiter under the same load over-admits, which shows the test can fail (and,
since one event loop alone would serialise the naive limiter, that two processes really race).
The store-down policy is checked end to end by stopping and restarting Redis.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import in_one_minute, poll_until, wait_for_room_in_minute
from tests.redis_server import RedisServer, running_redis
from tests.support import fresh_user, new_key, published
from worker.access.keys import account_limit_id
from worker.limits.windows import SQLiteLimiter

BURST = 1_000
PRO_PER_MINUTE = 100
PRO_PER_DAY = 50_000
PATH = "/api/v1/iocs"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return published(tmp_path_factory.mktemp("rate"), iocs=300, days=10)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


def new_pro_key(data_dir: Path) -> tuple[str, str]:
    """A pro key of a fresh account, and the id the limiter counts that account under."""
    user = fresh_user("burst")
    return new_key(data_dir, "pro", user), account_limit_id(user)


async def _fire(url: str, key: str, count: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        headers = {"Authorization": f"Bearer {key}"}
        return await asyncio.gather(*(client.get(url, headers=headers) for _ in range(count)))


def burst(server_url: str, data_dir: Path) -> tuple[list[httpx.Response], str]:
    """1,000 concurrent requests with a fresh pro key, all inside one minute window.

    The burst starts with at least 20 s left in the minute; if it still straddled a boundary
    (every response names its window's reset), it is repeated with another fresh key after
    waiting for room twice as long as the straddling burst took (a busy machine bursts
    slower), up to 55 s.
    """
    room = 20.0
    for _ in range(3):
        key, limit_id = new_pro_key(data_dir)
        wait_for_room_in_minute(room)
        started = time.monotonic()
        responses = asyncio.run(_fire(server_url + PATH, key, BURST))
        if len({r.headers.get("x-ratelimit-reset") for r in responses}) == 1:
            return responses, limit_id
        room = min(55.0, max(room, 2 * (time.monotonic() - started) + 5))
    pytest.fail("three bursts in a row straddled a minute boundary")


def assert_exactly_the_limit(responses: list[httpx.Response]) -> None:
    assert Counter(r.status_code for r in responses) == {
        200: PRO_PER_MINUTE,
        429: BURST - PRO_PER_MINUTE,
    }
    admitted = [r for r in responses if r.status_code == 200]
    assert sorted(int(r.headers["x-ratelimit-remaining"]) for r in admitted) == list(range(100))
    for r in responses:
        if r.status_code == 429:
            assert 1 <= int(r.headers["retry-after"]) <= 60
            assert r.headers["x-ratelimit-remaining"] == "0"
            assert r.headers["x-ratelimit-limit"] == str(PRO_PER_MINUTE)
            details = r.json()["error"]["details"]
            assert (details["limit"], details["tier"]) == (PRO_PER_MINUTE, "pro")
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", details["reset_at"])


def test_redis_admits_exactly_the_limit(serve_process, data_dir, redis_server) -> None:
    from worker.limits.redis_store import RedisLimiter

    server = serve_process(
        data_dir, "--workers", "2", "--limiter", "redis", "--redis-url", redis_server.url
    )
    responses, limit_id = burst(server.url, data_dir)
    assert_exactly_the_limit(responses)
    counts = RedisLimiter(redis_server.url).peek(limit_id, PRO_PER_MINUTE, PRO_PER_DAY)
    assert counts.day_remaining == PRO_PER_DAY - PRO_PER_MINUTE  # refusals spent nothing


def test_sqlite_admits_exactly_the_limit(serve_process, data_dir) -> None:
    server = serve_process(data_dir, "--workers", "2", "--limiter", "sqlite")
    responses, limit_id = burst(server.url, data_dir)
    assert_exactly_the_limit(responses)
    counts = SQLiteLimiter(data_dir / "limits.sqlite").peek(limit_id, PRO_PER_MINUTE, PRO_PER_DAY)
    assert counts.day_remaining == PRO_PER_DAY - PRO_PER_MINUTE


def test_naive_limiter_over_admits(serve_process, data_dir, redis_server) -> None:
    """Negative control: the same load and checks catch a read-then-write limiter."""
    server = serve_process(
        data_dir,
        "--workers",
        "2",
        "--limiter-factory",
        "tests.naive_limiter:make",
        "--redis-url",
        redis_server.url,
    )
    responses, _ = burst(server.url, data_dir)
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) == {200, 429}
    assert statuses[200] > PRO_PER_MINUTE
    with pytest.raises(AssertionError):
        assert_exactly_the_limit(responses)


# --- the store-down policy, end to end -------------------------------------------------------


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    with running_redis(tmp_path) as server:
        yield server


def get(url: str, key: str) -> httpx.Response:
    return httpx.get(url + PATH, headers={"X-API-Key": key}, timeout=30)


def test_redis_down_fails_open_with_a_cap_then_recovers(serve_process, data_dir, own_redis) -> None:
    server = serve_process(data_dir, "--limiter", "redis", "--redis-url", own_redis.url)

    def sequence() -> tuple[str, list[httpx.Response], list[httpx.Response]]:
        if own_redis.proc is None:  # a run that crossed a minute: Redis back first
            own_redis.start()
            poll_until(
                lambda: get(server.url, probe).headers["x-ratelimit-limit"] == "100",
                timeout=5,
                what="enforcement back on Redis",
            )
        key, _ = new_pro_key(data_dir)  # a fresh key: its minute starts empty everywhere
        before = [get(server.url, key) for _ in range(3)]
        own_redis.stop()
        return key, before, [get(server.url, key) for _ in range(15)]

    probe, _ = new_pro_key(data_dir)
    # the fallback counts per minute too: the whole sequence inside one window
    key, before, during = in_one_minute(sequence, need=30)
    assert [r.headers["x-ratelimit-remaining"] for r in before] == ["99", "98", "97"]
    assert [r.status_code for r in during] == [200] * 10 + [429] * 5  # 10 % of 100 per process
    assert {r.headers["x-ratelimit-limit"] for r in during} == {"10"}
    own_redis.start()
    poll_until(
        lambda: get(server.url, key).headers["x-ratelimit-limit"] == "100",
        timeout=5,
        what="enforcement back on Redis within 5 s",
    )
    log = server.log()
    assert "rate-limit store unavailable" in log and "available again" in log
    assert key not in log


def test_redis_down_without_fallback_answers_503(serve_process, data_dir, own_redis) -> None:
    server = serve_process(
        data_dir, "--limiter", "redis", "--redis-url", own_redis.url, "--limiter-fallback", "0"
    )
    key, _ = new_pro_key(data_dir)
    assert get(server.url, key).status_code == 200
    own_redis.stop()
    refused = get(server.url, key)
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["code"] == "service_unavailable"
