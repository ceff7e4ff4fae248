"""Per-source fetch state kept in the store (``state.json`` → ``sources``), and its report.

One record per source: the outcome of its last fetch, what the last good fetch held, the
validators for the next conditional GET, and when it may be tried again after failures.

- ``ok``: fetched and parsed; ``items`` / ``iocs`` count what that fetch held.
- ``not_modified``: the server answered ``304``: nothing parsed, the counts and the store's
  articles from the last good fetch stand.
- ``error``: the fetch or the parse failed; ``error`` says why. Counts, validators and the
  store's articles from the last good fetch stand. After each consecutive failure the next
  attempt waits a full-jitter backoff (``uniform(0, min(cap, base · 2^(failures-1)))``), and
  at least the server's ``Retry-After``.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

from generator.sources.catalog import Source

__all__ = ["Backoff", "SourceRow", "SourceState", "source_rows"]

MAX_RETRY_AFTER = 7 * 86400  # honour a server's wish for at most a week


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay between ingest runs for a failing source (full jitter)."""

    base: float = 600.0
    cap: float = 6 * 3600.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, failures: int) -> float:
        return self.rng.uniform(0, min(self.cap, self.base * 2 ** max(failures - 1, 0)))


@dataclass(frozen=True, slots=True)
class SourceState:
    status: str = "never"
    last_fetch: int | None = None  # last attempt
    last_success: int | None = None  # last 200 or 304
    http_status: int = 0
    items: int = 0
    iocs: int = 0
    error: str = ""
    etag: str = ""
    last_modified: str = ""
    url: str = ""  # where the last good fetch ended after redirects
    consecutive_failures: int = 0
    next_attempt_at: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SourceState:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def deferred(self, now: int) -> bool:
        return self.next_attempt_at is not None and self.next_attempt_at > now

    def fetched(
        self,
        now: int,
        *,
        status: int,
        url: str,
        etag: str,
        last_modified: str,
        items: int,
        iocs: int,
    ) -> SourceState:
        return replace(
            self,
            status="ok",
            last_fetch=now,
            last_success=now,
            http_status=status,
            items=items,
            iocs=iocs,
            error="",
            etag=etag,
            last_modified=last_modified,
            url=url,
            consecutive_failures=0,
            next_attempt_at=None,
        )

    def not_modified(self, now: int, *, url: str) -> SourceState:
        return replace(
            self,
            status="not_modified",
            last_fetch=now,
            last_success=now,
            http_status=304,
            error="",
            url=url,
            consecutive_failures=0,
            next_attempt_at=None,
        )

    def failed(
        self,
        now: int,
        error: str,
        *,
        http_status: int = 0,
        retry_after: float | None = None,
        backoff: Backoff | None = None,
    ) -> SourceState:
        failures = self.consecutive_failures + 1
        wait = backoff.delay(failures) if backoff else 0.0
        if retry_after is not None:
            wait = max(wait, min(retry_after, MAX_RETRY_AFTER))
        return replace(
            self,
            status="error",
            last_fetch=now,
            http_status=http_status,
            error=error[:300],
            consecutive_failures=failures,
            next_attempt_at=now + int(wait + 0.999) if wait > 0 else None,
        )


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One line of ``socdef sources``."""

    id: str
    name: str
    status: str
    last_fetch: str  # ISO 8601 UTC, or "never"
    items: int
    iocs: int
    error: str
    failures: int
    next_attempt: str  # ISO 8601 UTC, or ""


def _iso(ts: int | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def source_rows(sources: list[Source], state: dict[str, Any]) -> list[SourceRow]:
    """The configured sources with their stored state (``state`` is ``Store.state()``)."""
    stored = state.get("sources", {})
    rows = []
    for source in sources:
        s = SourceState.from_dict(stored.get(source.id))
        rows.append(
            SourceRow(
                source.id,
                source.name,
                s.status,
                _iso(s.last_fetch) or "never",
                s.items,
                s.iocs,
                s.error,
                s.consecutive_failures,
                _iso(s.next_attempt_at),
            )
        )
    return rows
