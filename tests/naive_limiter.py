"""A deliberately wrong limiter for the negative control of the concurrency tests. Test only.

It reads the count, pauses (standing in for a network round trip), then writes count + 1: two
processes that read the same count both admit. The real limiters decide and spend in one atomic
step. Loaded by ``socdef serve --limiter-factory tests.naive_limiter:make``.
"""

from __future__ import annotations

import time

from worker.limits.windows import Decision, Window, admitted, refused, standing

PAUSE = 0.002


class NaiveRedisLimiter:
    """GET, sleep, SET on a per-minute counter (the day window is not tracked)."""

    def __init__(self, url: str, pause: float = PAUSE) -> None:
        import redis

        self._client = redis.Redis.from_url(url)
        self._pause = pause

    def hit(self, key_id: str, per_minute: int, per_day: int) -> Decision:
        w = Window.at(time.time())
        name = f"naive:{key_id}:{w.minute}"
        count = int(self._client.get(name) or 0)
        if count >= per_minute:
            return refused(w, count, 0, per_minute, per_day)
        time.sleep(self._pause)
        self._client.set(name, count + 1, ex=120)
        return admitted(w, count + 1, 1, per_minute, per_day)

    def peek(self, key_id: str, per_minute: int, per_day: int) -> Decision:
        w = Window.at(time.time())
        count = int(self._client.get(f"naive:{key_id}:{w.minute}") or 0)
        return standing(w, count, 0, per_minute, per_day)

    def close(self) -> None:
        self._client.close()


def make(config) -> NaiveRedisLimiter:
    return NaiveRedisLimiter(config.redis_url)
