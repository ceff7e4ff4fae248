"""Rate limits in Redis: both windows checked and spent by one Lua script, on Redis's clock.

Any number of worker processes and replicas can share one Redis. A script runs atomically (no
other command runs while it does), reads the time with ``TIME`` (so replica clocks do not
matter), and increments the minute and the day counter only if both have room: a refused request
writes nothing. Each window is a small hash ``{w: window start, n: count}`` that expires one
second after its window ends, so Redis holds at most two keys per recently active account. Key
names carry the id counted under (an account's UUID), never a key or an account name; both
names share the hash tag ``{id}``, so the script also runs on Redis Cluster.

The script is loaded once (``SCRIPT LOAD``) and called by its SHA-1 (``EVALSHA``); when Redis
answers ``NOSCRIPT`` (restarted, or ``SCRIPT FLUSH``) it is loaded again and the call repeated.
Every Redis failure is raised as ``LimiterUnavailable``. redis-py is imported here only, so a
worker that does not use Redis never loads it.

``hit_many`` (fed by ``worker.limits.windows.Coalescer``) decides a batch: the hits of each API key go
to one run of ``BATCH_SCRIPT``, which reads the two counters once, decides the hits in order and
writes once; the runs for all keys of the batch are sent together and their replies read in
order, so a batch costs one round trip. Each run touches one key's hash tag only, so this
also works on Redis Cluster; each run is atomic, so the result is exactly that of one ``hit``
per request. A run that finds its script missing (``NOSCRIPT``) did nothing, and only such runs
are repeated after the script is loaded again.

The per-request call is the worker's hottest line, so it skips redis-py's generic command path
(argument encoding, pool checkout, retry wrapper): the limiter keeps one redis-py connection,
writes the ``EVALSHA`` command's RESP bytes itself and lets redis-py's parser read the reply.
That costs about a third of ``client.evalsha``; the semantics are the same.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from worker.limits.windows import (
    Decision,
    Hit,
    LimiterUnavailable,
    Window,
    admitted,
    check_limits,
    refused,
    standing,
)

DEFAULT_URL = "redis://127.0.0.1:6379/0"
DEFAULT_PREFIX = "socdef:rl:"
TIMEOUT = 0.25  # seconds: connect and per-command; an outage costs at most this much per request


def _prologue(offset_arg: int) -> str:
    """Lua: the store's time (plus the µs offset in ``ARGV[offset_arg]``), the current minute
    and day windows, and the counts ``mc``/``dc`` already spent in them."""
    return f"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2]) + tonumber(ARGV[{offset_arg}])
local sec = math.floor(now / 1000000)
local minute = sec - sec % 60
local day = sec - sec % 86400
local m = redis.call('HMGET', KEYS[1], 'w', 'n')
local d = redis.call('HMGET', KEYS[2], 'w', 'n')
local mc = 0
local dc = 0
if tonumber(m[1]) == minute then mc = tonumber(m[2]) end
if tonumber(d[1]) == day then dc = tonumber(d[2]) end
"""


# KEYS: minute hash, day hash. ARGV: per_minute, per_day, spend (1 or 0), offset in µs (tests).
# Returns {admitted (1/0), minute count, day count, now in µs}; counts include this request.
SCRIPT = (
    _prologue(4)
    + """
if ARGV[3] ~= '1' or mc >= tonumber(ARGV[1]) or dc >= tonumber(ARGV[2]) then
  return {0, mc, dc, now}
end
local ms = math.floor(now / 1000)
redis.call('HSET', KEYS[1], 'w', minute, 'n', mc + 1)
redis.call('PEXPIRE', KEYS[1], (minute + 61) * 1000 - ms)
redis.call('HSET', KEYS[2], 'w', day, 'n', dc + 1)
redis.call('PEXPIRE', KEYS[2], (day + 86401) * 1000 - ms)
return {1, mc + 1, dc + 1, now}
"""
)
SCRIPT_SHA = hashlib.sha1(SCRIPT.encode()).hexdigest()

# One key's hits of a batch. KEYS: minute hash, day hash. ARGV: offset in µs, then per hit its
# per_minute and per_day. Returns {now in µs, then per hit: admitted (1/0), minute count, day
# count}; an admitted hit's counts include it.
BATCH_SCRIPT = (
    _prologue(1)
    + """
local out = {now}
local spent = 0
for i = 2, #ARGV, 2 do
  if mc < tonumber(ARGV[i]) and dc < tonumber(ARGV[i + 1]) then
    mc = mc + 1
    dc = dc + 1
    spent = spent + 1
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
  out[#out + 1] = mc
  out[#out + 1] = dc
end
if spent > 0 then
  local ms = math.floor(now / 1000)
  redis.call('HSET', KEYS[1], 'w', minute, 'n', mc)
  redis.call('PEXPIRE', KEYS[1], (minute + 61) * 1000 - ms)
  redis.call('HSET', KEYS[2], 'w', day, 'n', dc)
  redis.call('PEXPIRE', KEYS[2], (day + 86401) * 1000 - ms)
end
return out
"""
)
BATCH_SHA = hashlib.sha1(BATCH_SCRIPT.encode()).hexdigest()


def batch_command(
    minute_key: str, day_key: str, offset_us: int, limits: list[tuple[int, int]]
) -> bytes:
    """The RESP bytes of ``EVALSHA <batch sha> 2 minute-key day-key offset limits…``."""
    args = [
        b"EVALSHA",
        BATCH_SHA.encode(),
        b"2",
        minute_key.encode(),
        day_key.encode(),
        str(offset_us).encode(),
    ]
    for per_minute, per_day in limits:
        args += (str(per_minute).encode(), str(per_day).encode())
    return b"*%d\r\n" % len(args) + b"".join(_bulk(arg) for arg in args)


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


_EVALSHA = b"*9\r\n" + _bulk(b"EVALSHA") + _bulk(SCRIPT_SHA.encode()) + _bulk(b"2")


def evalsha_command(*args: str | int) -> bytes:
    """The RESP bytes of ``EVALSHA <sha> 2 minute-key day-key ARGV…`` (six arguments)."""
    return _EVALSHA + b"".join(_bulk(str(arg).encode()) for arg in args)


def connect(url: str, *, timeout: float = TIMEOUT) -> Any:
    """A client with short timeouts and one immediate retry on a dropped connection only.

    A command that timed out is not repeated, so a slow Redis never counts a request twice.
    """
    retry = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=retry,
        health_check_interval=0,
    )


class RedisLimiter:
    """Fixed-window minute and day counters in Redis, decided atomically by one script.

    ``time_offset`` (seconds) shifts Redis's clock as the script sees it; tests use it to reach
    window boundaries. ``last_now`` is the (shifted) Redis time of the last decision.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = TIMEOUT,
        time_offset: float = 0.0,
        client: Any = None,
    ) -> None:
        self._client = client if client is not None else connect(url, timeout=timeout)
        self._conn = self._client.connection_pool.make_connection()
        self._lock = threading.Lock()
        self._prefix = prefix
        self.time_offset = time_offset
        self.last_now = 0.0
        try:
            self._load_scripts()
        except RedisError:
            pass  # Redis may be down at start-up; the first call loads the script

    def hit(self, key_id: str, per_minute: int, per_day: int) -> Decision:
        check_limits(per_minute, per_day)
        allowed, minute_count, day_count, w = self._run(key_id, per_minute, per_day, 1)
        if allowed:
            return admitted(w, minute_count, day_count, per_minute, per_day)
        return refused(w, minute_count, day_count, per_minute, per_day)

    def hit_many(self, hits: Sequence[Hit]) -> list[Decision]:
        """Decide ``hits`` in order: one script run per key, all in one round trip."""
        by_key: dict[str, list[int]] = {}
        for index, (key_id, per_minute, per_day) in enumerate(hits):
            check_limits(per_minute, per_day)
            by_key.setdefault(key_id, []).append(index)
        offset = round(self.time_offset * 1e6)
        commands = [
            batch_command(
                *self.keys_for(key_id), offset, [(hits[i][1], hits[i][2]) for i in indexes]
            )
            for key_id, indexes in by_key.items()
        ]
        try:
            replies = self._batch(commands)
        except RedisError as exc:
            raise LimiterUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc
        out: list[Decision | None] = [None] * len(hits)
        for indexes, reply in zip(by_key.values(), replies, strict=True):
            self.last_now = reply[0] / 1_000_000
            w = Window.at(self.last_now)
            for n, i in enumerate(indexes):
                allowed, minute_count, day_count = reply[1 + 3 * n : 4 + 3 * n]
                _, per_minute, per_day = hits[i]
                out[i] = (admitted if allowed else refused)(
                    w, minute_count, day_count, per_minute, per_day
                )
        return out  # type: ignore[return-value]  # every index was filled in the loop above

    def _batch(self, commands: list[bytes]) -> list[list[int]]:
        """Send every command, read every reply; repeat only the runs that found no script."""
        with self._lock:
            replies = self._pipeline(commands)
            missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
            if missing:
                self._load_scripts()
                again = self._pipeline([commands[i] for i in missing])
                for i, reply in zip(missing, again, strict=True):
                    replies[i] = reply
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
            return replies

    def _pipeline(self, commands: list[bytes]) -> list[Any]:
        """One write of all commands, then their replies in order (an error reply is returned,
        not raised). A connection dropped before any reply arrived is reopened once and the
        whole batch sent again, as ``_call`` does for one command; a timeout is never repeated.
        """
        for attempt in (0, 1):
            replies: list[Any] = []
            try:
                self._conn.send_packed_command(commands, check_health=False)
                for _ in commands:
                    try:
                        replies.append(self._conn.read_response())
                    except ResponseError as exc:
                        replies.append(exc)
                return replies
            except (RedisConnectionError, RedisTimeoutError) as exc:
                self._conn.disconnect()  # late replies must not be read as the next batch's
                if isinstance(exc, RedisTimeoutError) or replies or attempt:
                    raise
        raise AssertionError("unreachable")

    def _load_scripts(self) -> None:
        self._client.script_load(SCRIPT)
        self._client.script_load(BATCH_SCRIPT)

    def peek(self, key_id: str, per_minute: int, per_day: int) -> Decision:
        check_limits(per_minute, per_day)
        _, minute_count, day_count, w = self._run(key_id, per_minute, per_day, 0)
        return standing(w, minute_count, day_count, per_minute, per_day)

    def keys_for(self, key_id: str) -> tuple[str, str]:
        """The Redis keys of a key's minute and day windows."""
        base = f"{self._prefix}{{{key_id}}}:"
        return base + "m", base + "d"

    def _run(
        self, key_id: str, per_minute: int, per_day: int, spend: int
    ) -> tuple[int, int, int, Window]:
        args = (*self.keys_for(key_id), per_minute, per_day, spend, round(self.time_offset * 1e6))
        try:
            allowed, minute_count, day_count, now_us = self._evalsha(args)
        except RedisError as exc:
            raise LimiterUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc
        self.last_now = now_us / 1_000_000
        return allowed, minute_count, day_count, Window.at(self.last_now)

    def _evalsha(self, args: tuple[str | int, ...]) -> list[int]:
        command = [evalsha_command(*args)]
        with self._lock:
            try:
                return self._call(command)
            except NoScriptError:
                self._load_scripts()
                return self._call(command)

    def _call(self, command: list[bytes]) -> list[int]:
        """Send and read once; a dropped connection is reopened and tried once more."""
        try:
            return self._send_and_read(command)
        except RedisTimeoutError:
            raise  # the command may have run: never repeat it
        except RedisConnectionError:
            return self._send_and_read(command)

    def _send_and_read(self, command: list[bytes]) -> list[int]:
        try:
            self._conn.send_packed_command(command, check_health=False)
            reply: list[int] = self._conn.read_response()  # the scripts answer integer lists
            return reply
        except (RedisConnectionError, RedisTimeoutError):
            self._conn.disconnect()  # a late reply must not be read as the next one's
            raise

    def close(self) -> None:
        self._conn.disconnect()
        self._client.close()
