"""What the worker does when its rate-limit store cannot be reached: fail open, with a cap.

``FallbackLimiter(primary)`` asks the primary (Redis or SQLite) first. When the primary raises
``LimiterUnavailable``, the request is decided by a per-process in-memory limiter whose limits
are ``fraction`` of the tier's (10 % by default, at least 1 request), so data reads stay
available while abuse stays bounded: with N worker processes an account gets at most N × the cap.
While the store is down the primary is tried again at most once per ``probe_every`` seconds
(so an outage adds no store round trip to most requests), and enforcement returns to the store
on the first call that succeeds. Entering and leaving the degraded state are logged as
warnings; while it lasts, one reminder at most every ``log_every`` seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from worker.limits.windows import Decision, Hit, Limiter, LimiterUnavailable, MemoryLimiter

log = logging.getLogger("socdef.limits")

FRACTION = 0.1
PROBE_EVERY = 1.0
LOG_EVERY = 60.0


def capped(limit: int, fraction: float) -> int:
    """The fallback's share of a limit: a fraction, at least 1 (0 stays 0)."""
    return 0 if limit <= 0 else max(1, int(limit * fraction))


class FallbackLimiter:
    """A primary limiter, with a capped per-process limiter while the primary is unavailable."""

    def __init__(
        self,
        primary: Limiter,
        fallback: Limiter | None = None,
        *,
        fraction: float = FRACTION,
        probe_every: float = PROBE_EVERY,
        log_every: float = LOG_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < fraction <= 1:
            raise ValueError("the fallback fraction must be in (0, 1]")
        self.primary = primary
        self.fallback = fallback if fallback is not None else MemoryLimiter()
        self.fraction = fraction
        self._probe_every = probe_every
        self._log_every = log_every
        self._clock = clock
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._next_probe = 0.0
        self._logged = 0.0
        self.degraded = 0  # decisions made by the fallback since the store went down

    @property
    def healthy(self) -> bool:
        return self._down_since is None

    def hit(self, key_id: str, per_minute: int, per_day: int) -> Decision:
        if self._should_try_primary():
            try:
                decision = self.primary.hit(key_id, per_minute, per_day)
            except LimiterUnavailable as exc:
                self._failed(exc)
            else:
                self._succeeded()
                return decision
        self._count_degraded()
        return self.fallback.hit(
            key_id, capped(per_minute, self.fraction), capped(per_day, self.fraction)
        )

    def hit_many(self, hits: Sequence[Hit]) -> list[Decision]:
        """A batch (``worker.limits.windows.Coalescer``): decided by the primary's ``hit_many`` when it
        is up, else hit by hit by the capped fallback, exactly as ``hit`` would."""
        if self._should_try_primary():
            try:
                # called only when the primary has hit_many (``batches``); Limiter does not
                # declare it
                decisions: list[Decision] = self.primary.hit_many(hits)  # type: ignore[attr-defined]
            except LimiterUnavailable as exc:
                self._failed(exc)
            else:
                self._succeeded()
                return decisions
        out = []
        for key_id, per_minute, per_day in hits:
            self._count_degraded()
            out.append(
                self.fallback.hit(
                    key_id, capped(per_minute, self.fraction), capped(per_day, self.fraction)
                )
            )
        return out

    def peek(self, key_id: str, per_minute: int, per_day: int) -> Decision:
        if self._should_try_primary():
            try:
                return self.primary.peek(key_id, per_minute, per_day)
            except LimiterUnavailable as exc:
                self._failed(exc)
        return self.fallback.peek(
            key_id, capped(per_minute, self.fraction), capped(per_day, self.fraction)
        )

    def _should_try_primary(self) -> bool:
        if self._down_since is None:
            return True
        with self._lock:
            now = self._clock()
            if now < self._next_probe:
                return False
            self._next_probe = now + self._probe_every  # one probe per interval
            return True

    def _failed(self, exc: LimiterUnavailable) -> None:
        with self._lock:
            now = self._clock()
            self._next_probe = now + self._probe_every
            if self._down_since is None:
                self._down_since = self._logged = now
                log.warning(
                    "rate-limit store unavailable (%s): failing open with a per-process "
                    "cap of %g %% of each limit",
                    exc,
                    self.fraction * 100,
                )
            elif now - self._logged >= self._log_every:
                self._logged = now
                log.warning(
                    "rate-limit store still unavailable after %.0f s (%s); %d requests "
                    "decided by the fallback cap",
                    now - self._down_since,
                    exc,
                    self.degraded,
                )

    def _succeeded(self) -> None:
        if self._down_since is None:
            return
        with self._lock:
            if self._down_since is None:
                return
            log.warning(
                "rate-limit store available again after %.1f s; %d requests were "
                "decided by the fallback cap",
                self._clock() - self._down_since,
                self.degraded,
            )
            self._down_since, self.degraded = None, 0

    def _count_degraded(self) -> None:
        with self._lock:
            self.degraded += 1

    def close(self) -> None:
        self.primary.close()
        self.fallback.close()
