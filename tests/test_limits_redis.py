"""The Redis limiter against a real redis-server: same contract as the other backends.

Redis's clock cannot be faked (the script reads ``TIME``), so these tests shift it: the
limiter's ``time_offset`` moves the script's "now" to the instant a case needs, and every
decision is compared with the reference model at the time the store actually used
(``last_now``), so a few microseconds of real time passing never matter.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.redis_server import RedisServer, running_redis
from tests.test_limits import CASES, DAY_START, PER_MINUTE, Reference, steps
from worker.limits.windows import LimiterUnavailable


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


def new_limiter(server: RedisServer, **kwargs):
    """A limiter on its own prefix. These tests check what the limiter decides, not how fast
    Redis answers: the per-command timeout is generous (the product's 0.25 s is for a
    request path that must fail over quickly; its own tests use a silent socket), so a busy
    machine delays a decision instead of failing it."""
    from worker.limits.redis_store import RedisLimiter

    kwargs.setdefault("timeout", 5.0)
    return RedisLimiter(server.url, prefix=f"test:{uuid.uuid4().hex}:", **kwargs)


@pytest.fixture
def limiter(redis_server: RedisServer):
    instance = new_limiter(redis_server)
    yield instance
    instance.close()


def move_to(limiter, target: float) -> None:
    """Shift the limiter's view of Redis's clock so that "now" is about ``target``."""
    seconds, micros = limiter._client.time()
    limiter.time_offset = target - (seconds + micros / 1e6)


def start_of_window(limiter, need: float = 10) -> None:
    """Wait for the next minute if fewer than ``need`` seconds are left in this one."""
    seconds, micros = limiter._client.time()
    left = 60 - (seconds % 60 + micros / 1e6)
    if left < need:
        time.sleep(left + 0.5)


def check(limiter, reference: Reference, key: str, per_minute: int, per_day: int) -> None:
    decision = limiter.hit(key, per_minute, per_day)
    assert decision == reference.hit(key, limiter.last_now, per_minute, per_day)


@pytest.mark.parametrize("case", CASES)
def test_table_cases_match_the_reference(limiter, case: str) -> None:
    per_minute, per_day, case_steps = CASES[case]
    reference = Reference()
    for now, _ in case_steps:
        move_to(limiter, now)
        check(limiter, reference, "key-1", per_minute, per_day)


@settings(max_examples=60, deadline=None)
@given(
    per_minute=st.integers(0, 4),
    per_day=st.integers(0, 9),
    start=st.floats(0, 86_400 * 3, allow_nan=False),
    arrivals=steps,
)
def test_matches_reference(
    redis_server: RedisServer, per_minute: int, per_day: int, start: float, arrivals: list
) -> None:
    limiter = new_limiter(redis_server)
    reference = Reference()
    target = DAY_START + start
    try:
        for delta, key in arrivals:
            target += delta
            move_to(limiter, target)
            check(limiter, reference, key, per_minute, per_day)
    finally:
        limiter.close()


def window_state(limiter, key: str) -> tuple[dict, dict]:
    minute, day = limiter.keys_for(key)
    return limiter._client.hgetall(minute), limiter._client.hgetall(day)


def test_refused_requests_write_nothing(limiter) -> None:
    assert limiter.hit("k", 2, 100).allowed and limiter.hit("k", 2, 100).allowed
    before = window_state(limiter, "k")
    for _ in range(20):
        assert not limiter.hit("k", 2, 100).allowed
    assert window_state(limiter, "k") == before
    assert before[1][b"n"] == b"2"


def test_keys_expire_with_their_window(limiter) -> None:
    limiter.hit("k", 5, 100)
    now = limiter.last_now
    minute_key, day_key = limiter.keys_for("k")
    minute_ttl = limiter._client.pttl(minute_key) / 1000
    day_ttl = limiter._client.pttl(day_key) / 1000
    assert (now // 60 + 1) * 60 + 1 - now - 0.5 <= minute_ttl <= 61
    assert (now // 86_400 + 1) * 86_400 + 1 - now - 0.5 <= day_ttl <= 86_401


def test_keys_name_the_key_id_only(limiter) -> None:
    minute_key, day_key = limiter.keys_for("0b6f2d8e-9c1e-4b7a-8f00-000000000001")
    assert minute_key.endswith("{0b6f2d8e-9c1e-4b7a-8f00-000000000001}:m")
    assert day_key.endswith("{0b6f2d8e-9c1e-4b7a-8f00-000000000001}:d")


def test_peek_spends_nothing(limiter) -> None:
    fresh = limiter.peek("k", 3, 10)
    assert (fresh.allowed, fresh.remaining, fresh.day_remaining) == (True, 3, 10)
    limiter.hit("k", 3, 10)
    for _ in range(5):
        seen = limiter.peek("k", 3, 10)
        assert (seen.remaining, seen.day_remaining) == (2, 9)
    limiter.hit("k", 3, 10)
    limiter.hit("k", 3, 10)
    full = limiter.peek("k", 3, 10)
    assert (full.allowed, full.remaining, full.binding) == (False, 0, "minute")
    assert window_state(limiter, "k")[1][b"n"] == b"3"


def test_script_reloaded_after_flush(limiter) -> None:
    from worker.limits.redis_store import SCRIPT_SHA

    assert limiter._client.script_exists(SCRIPT_SHA) == [True]
    limiter._client.script_flush()
    assert limiter.hit("k", 5, 10).remaining == 4
    assert limiter._client.script_exists(SCRIPT_SHA) == [True]


def test_time_comes_from_redis_not_the_client(limiter, monkeypatch) -> None:
    seconds, _ = limiter._client.time()
    for skew in (-86_400 * 3, 5, -5, 10**6):
        monkeypatch.setattr(time, "time", lambda skew=skew: seconds + skew)
        decision = limiter.hit("k", 10, 100)
        assert seconds <= limiter.last_now <= seconds + 5
        assert decision.reset == (int(limiter.last_now) // 60 + 1) * 60


def test_skewed_clients_share_one_window(redis_server: RedisServer, monkeypatch) -> None:
    """Two replicas whose clocks differ by ten seconds still admit exactly the limit."""
    from worker.limits.redis_store import RedisLimiter

    prefix = f"test:{uuid.uuid4().hex}:"
    first, second = (
        RedisLimiter(redis_server.url, prefix=prefix),
        RedisLimiter(redis_server.url, prefix=prefix),
    )
    real = time.time
    start_of_window(first)
    admitted = 0
    for index in range(40):
        monkeypatch.setattr(time, "time", lambda shift=(5 if index % 2 else -5): real() + shift)
        admitted += (first if index % 2 else second).hit("k", 10, 1000).allowed
    assert admitted == 10
    first.close()
    second.close()


def test_exact_across_threads(redis_server: RedisServer) -> None:
    limiter = new_limiter(redis_server)
    admitted: list[int] = []

    def run() -> None:
        admitted.append(sum(limiter.hit("shared", PER_MINUTE, 10**6).allowed for _ in range(150)))

    start_of_window(limiter)
    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(admitted) == PER_MINUTE
    limiter.close()


def test_unreachable_store_raises_quickly(tmp_path) -> None:
    from tests.conftest import free_port
    from worker.limits.redis_store import RedisLimiter

    limiter = RedisLimiter(f"redis://127.0.0.1:{free_port()}/0")
    started = time.monotonic()
    with pytest.raises(LimiterUnavailable):
        limiter.hit("k", 10, 100)
    with pytest.raises(LimiterUnavailable):
        limiter.peek("k", 10, 100)
    assert time.monotonic() - started < 2


def test_negative_limits_are_refused(limiter) -> None:
    with pytest.raises(ValueError):
        limiter.hit("k", -1, 10)


def test_a_restart_is_invisible_to_the_next_call(tmp_path) -> None:
    """The dropped connection is reopened and the command sent once more."""
    with running_redis(tmp_path) as server:
        limiter = new_limiter(server)
        assert limiter.hit("k", 5, 10).allowed
        server.stop()
        server.start()
        assert limiter.hit("k", 5, 10).remaining == 4  # counts were not persisted
        limiter.close()


def test_a_timed_out_command_is_not_repeated() -> None:
    """A store that never answers EVALSHA: it is sent once, then LimiterUnavailable."""
    import socket

    import redis

    from worker.limits.redis_store import RedisLimiter

    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def answer(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            try:
                while chunk := conn.recv(65536):
                    received.append(chunk)
                    if b"EVALSHA" not in chunk:  # handshake and SCRIPT LOAD: +OK each
                        conn.sendall(b"+OK\r\n" * (chunk.startswith(b"*") + chunk.count(b"\r\n*")))
            except OSError:
                pass

    def serve() -> None:
        with listener:
            listener.settimeout(3)
            try:
                while True:
                    threading.Thread(
                        target=answer, args=(listener.accept()[0],), daemon=True
                    ).start()
            except OSError:
                return

    threading.Thread(target=serve, daemon=True).start()
    client = redis.Redis(port=listener.getsockname()[1], protocol=2, socket_timeout=0.2)
    limiter = RedisLimiter(client=client)
    started = time.monotonic()
    with pytest.raises(LimiterUnavailable):
        limiter.hit("k", 10, 100)
    assert time.monotonic() - started < 1.5
    time.sleep(0.3)
    assert b"".join(received).count(b"EVALSHA") == 1
    limiter.close()


# --- batches (hit_many, as the worker's coalescer sends them) ------------------------------


@settings(max_examples=40, deadline=None)
@given(
    per_minute=st.integers(0, 4),
    per_day=st.integers(0, 9),
    start=st.floats(0, 86_400 * 3, allow_nan=False),
    batches=st.lists(
        st.tuples(
            st.sampled_from([0, 1, 60, 86_400, 200_000]),
            st.lists(st.sampled_from(["a", "b", "c"]), max_size=10),
        ),
        max_size=8,
    ),
)
def test_batches_match_the_reference(
    redis_server: RedisServer, per_minute: int, per_day: int, start: float, batches: list
) -> None:
    """One batch gives exactly what one ``hit`` per request, in order, would give."""
    limiter = new_limiter(redis_server)
    reference = Reference()
    target = DAY_START + start + 0.5
    try:
        for delta, keys in batches:
            target += delta
            move_to(limiter, target)
            decisions = limiter.hit_many([(k, per_minute, per_day) for k in keys])
            if keys:  # every run of a batch reads Redis's clock; they agree to the second here
                assert decisions == [
                    reference.hit(k, limiter.last_now, per_minute, per_day) for k in keys
                ]
    finally:
        limiter.close()


def test_batch_refusals_write_nothing(limiter) -> None:
    decisions = limiter.hit_many([("k", 2, 100)] * 6 + [("other", 0, 5)])
    assert [d.allowed for d in decisions] == [True, True] + [False] * 5
    assert window_state(limiter, "k")[0][b"n"] == b"2"
    assert window_state(limiter, "other") == ({}, {})
    before = window_state(limiter, "k")
    assert not any(d.allowed for d in limiter.hit_many([("k", 2, 100)] * 4))
    assert window_state(limiter, "k") == before


def test_batch_script_reloaded_after_flush(limiter) -> None:
    from worker.limits.redis_store import BATCH_SHA

    limiter._client.script_flush()
    decisions = limiter.hit_many([("k", 5, 10), ("j", 5, 10), ("k", 5, 10)])
    assert [d.remaining for d in decisions] == [4, 4, 3]
    assert limiter._client.script_exists(BATCH_SHA) == [True]
    assert window_state(limiter, "k")[0][b"n"] == b"2"  # the runs were not repeated


def test_batches_exact_across_threads(redis_server: RedisServer) -> None:
    limiter, other = new_limiter(redis_server), new_limiter(redis_server)
    other._prefix = limiter._prefix  # a second connection, as another process would have
    admitted: list[int] = []

    def run(instance) -> None:
        admitted.append(
            sum(
                d.allowed
                for _ in range(30)
                for d in instance.hit_many([("shared", PER_MINUTE, 10**6)] * 5)
            )
        )

    start_of_window(limiter)
    threads = [threading.Thread(target=run, args=(lim,)) for lim in (limiter, other) * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(admitted) == PER_MINUTE
    limiter.close()
    other.close()


def test_batch_on_unreachable_store_raises(tmp_path) -> None:
    from worker.limits.redis_store import RedisLimiter

    limiter = RedisLimiter("redis://127.0.0.1:1/0", timeout=0.05)
    with pytest.raises(LimiterUnavailable):
        limiter.hit_many([("k", 1, 1)])
