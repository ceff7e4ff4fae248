"""Two worker replicas, each with a data folder of its own, sharing one PostgreSQL database
(keys, accounts, usage), one Redis (limits) and one S3 bucket (moto): what a key does through one
is what it does through the other. docs/deploy.md describes the deployment."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import in_one_minute, poll_until, socdef, start_server, stop_server
from tests.postgres_server import running_postgres
from tests.redis_server import running_redis
from tests.s3fixture import moto_s3_fixture  # noqa: F401 - the moto_s3 fixture
from tests.support import bearer, fresh_user, published
from worker.access.session import mint

COOKIE = "sb-access-token"
JWT_SECRET = "replicas-share-this-session-secret-0123456789"
KEY_CACHE_TTL = 1.0  # --key-cache-ttl: the documented bound on a revocation made elsewhere


@pytest.fixture(scope="module")
def postgres():
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="module")
def shared(tmp_path_factory, moto_s3, postgres):
    """The environment both replicas get: the bucket, the database, the shared secrets."""
    data = published(tmp_path_factory.mktemp("publisher"), iocs=100, days=3)
    bucket = moto_s3.new_bucket()
    socdef("publish", "--to", f"s3://{bucket}/feeds", data_dir=data, env=moto_s3.env)
    secret = tmp_path_factory.mktemp("secrets") / "key-secret"
    secret.write_bytes(b"k" * 32)
    secret.chmod(0o600)
    return {
        **moto_s3.env,
        "SOCDEF_BUCKET": f"s3://{bucket}/feeds",
        "SOCDEF_DB": postgres.new_database(),
        "SOCDEF_KEY_SECRET_FILE": str(secret),
        "SOCDEF_JWT_SECRET": JWT_SECRET,
    }


@pytest.fixture(scope="module")
def replicas(tmp_path_factory, shared):
    logs = tmp_path_factory.mktemp("logs")
    with running_redis(tmp_path_factory.mktemp("redis")) as redis:
        options = ("--limiter", "redis", "--redis-url", redis.url)
        options += ("--key-cache-ttl", str(KEY_CACHE_TTL))
        folders = [tmp_path_factory.mktemp(f"replica-{name}") for name in "ab"]
        with ThreadPoolExecutor(2) as pool:  # started together, as a deployment rolls out
            starting = [
                pool.submit(start_server, folder, logs / f"{folder.name}.log", *options, env=shared)
                for folder in folders
            ]
        started = [future.result() for future in starting if future.exception() is None]
        try:
            assert len(started) == 2, [future.exception() for future in starting]
            yield started
        finally:
            for server in started:
                stop_server(server)


def session(user: str) -> dict[str, str]:
    return {COOKIE: mint(user, JWT_SECRET.encode(), now=time.time())}


def keys_api(server, method: str, path: str, user: str, **kw) -> httpx.Response:
    headers = {"Sec-Fetch-Site": "same-origin"} if method != "GET" else {}
    with httpx.Client(base_url=server.url, cookies=session(user), timeout=30) as client:
        return client.request(method, path, headers=headers, **kw)


def poll(server, key: str) -> int:
    return httpx.get(
        server.url + "/api/v1/iocs?limit=1", headers=bearer(key), timeout=30
    ).status_code


def test_a_key_created_through_one_replica_works_on_the_other_at_once(replicas):
    a, b = replicas
    created = keys_api(a, "POST", "/api/v1/keys", fresh_user("made-on-a"), json={"name": "x"})
    assert created.status_code == 201, created.text
    assert poll(b, created.json()["data"]["key"]) == 200  # the first request, no waiting


def test_a_revocation_takes_effect_on_both_within_the_key_cache_ttl(replicas):
    a, b = replicas
    user = fresh_user("revoked")
    made = keys_api(b, "POST", "/api/v1/keys", user, json={"name": "to revoke"}).json()["data"]
    assert poll(a, made["key"]) == poll(b, made["key"]) == 200  # both replicas now cache it
    revoked = keys_api(a, "DELETE", f"/api/v1/keys/{made['id']}", user, json={"reason": "leak"})
    assert revoked.status_code == 200, revoked.text
    started = time.monotonic()
    assert poll(a, made["key"]) == 401  # the replica that revoked it: at once
    poll_until(lambda: poll(b, made["key"]) == 401, timeout=10, what="revoked on the other")
    assert time.monotonic() - started <= KEY_CACHE_TTL + 0.5  # the bound docs/deploy.md gives


def test_account_limits_hold_exactly_across_both_replicas(replicas):
    a, b = replicas
    user = fresh_user("limited")

    def burst() -> list[int]:
        # a fresh account per attempt: its minute window starts empty
        owner = f"{time.monotonic_ns()}-{user}"
        first = keys_api(a, "POST", "/api/v1/keys", owner, json={"name": "one"}).json()["data"]
        second = keys_api(b, "POST", "/api/v1/keys", owner, json={"name": "two"}).json()["data"]
        targets = [(a, first["key"]), (b, second["key"])] * 12  # 24 requests, free tier: 10/min
        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(lambda t: poll(*t), targets))

    statuses = in_one_minute(burst, need=8)  # the burst takes a few seconds
    assert statuses.count(200) == 10 and statuses.count(429) == 14, statuses


def test_the_live_key_cap_holds_when_both_replicas_create_at_once(replicas):
    a, b = replicas
    user = fresh_user("capped")  # free tier: at most 2 live keys
    with ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(
                lambda server: keys_api(server, "POST", "/api/v1/keys", user, json={"name": "k"}),
                [a, b, a, b],
            )
        )
    codes = sorted(r.status_code for r in answers)
    assert codes == [201, 201, 400, 400], [r.text for r in answers]
    refused = [r.json()["error"]["code"] for r in answers if r.status_code == 400]
    assert refused == ["key_limit_reached"] * 2
    listed = keys_api(b, "GET", "/api/v1/keys", user).json()["data"]
    assert len(listed) == 2


def test_usage_made_on_one_replica_is_reported_by_the_other(replicas):
    a, b = replicas
    user = fresh_user("usage")
    made = keys_api(a, "POST", "/api/v1/keys", user, json={"name": "u"}).json()["data"]
    assert [poll(b, made["key"]) for _ in range(3)] == [200] * 3

    def total_on_a() -> int:
        usage = keys_api(a, "GET", f"/api/v1/keys/{made['id']}/usage", user).json()["data"]
        return int(usage["summary"]["totalRequests"])

    assert poll_until(lambda: total_on_a() == 3, timeout=10, what="usage of b seen through a")


def test_a_replica_with_another_key_secret_refuses_to_start(replicas, shared, tmp_path):
    other = tmp_path / "other-secret"
    other.write_bytes(b"o" * 32)
    refused = socdef(
        "serve", "--port", "0", data_dir=tmp_path / "c", check=False, timeout=60,
        env={**shared, "SOCDEF_KEY_SECRET_FILE": str(other)},
    )  # fmt: skip
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "key secret is not the one the database" in refused.stderr
    assert shared["SOCDEF_DB"].rsplit("/", 1)[1] in refused.stderr  # the database it names
