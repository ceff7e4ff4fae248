"""Fetch a feed over HTTP(S) from an untrusted internet, bounded in every dimension.

One call of :meth:`HttpFetcher.fetch` makes at most ``attempts`` attempts, each following
at most ``max_redirects`` redirects, all within one total ``deadline``:

- conditional GET: the stored ``ETag`` / ``Last-Modified`` go out exactly as received, as
  ``If-None-Match`` / ``If-Modified-Since``; a ``304`` returns no body (nothing to parse);
- every connection, redirects included, goes through :mod:`generator.sources.netguard` (public
  addresses only unless allowed explicitly, checked after resolving, connected to as
  checked) and every read ends by the deadline, so a slow drip cannot outlive it;
- the body is capped after decompression (:mod:`generator.sources.httpbody`);
- connection failures, timeouts, ``429`` and ``5xx`` are retried with full-jitter
  exponential backoff; a ``Retry-After`` is honoured when it fits the bounds, otherwise the
  error carries it so the caller can wait that long before the next run.
"""

from __future__ import annotations

import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import httpcore

from generator.errors import SocdefError
from generator.sources.httpbody import ACCEPT_ENCODING, BodyError, read_body
from generator.sources.netguard import (
    AddressPolicy,
    GuardedBackend,
    Resolver,
    TargetRefused,
    system_resolve,
)

__all__ = ["USER_AGENT", "FetchError", "FetchPolicy", "FetchResult", "HttpFetcher", "Validators"]

USER_AGENT = "socdef/0.1 (+https://github.com/socdef/socdef; threat-intel feed reader)"
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class FetchError(SocdefError, OSError):
    """The feed could not be fetched; ``retry_after`` is the server's wish, in seconds."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        retry_after: float | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class Validators:
    """What the last good response said about its version, stored exactly as received."""

    etag: str = ""
    last_modified: str = ""


@dataclass(frozen=True, slots=True)
class FetchResult:
    body: bytes | None  # None: 304, the stored copy is current
    status: int
    url: str  # after redirects
    validators: Validators = Validators()
    attempts: int = 1

    @property
    def not_modified(self) -> bool:
        return self.body is None


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    deadline: float = 30.0  # seconds per source: attempts, redirects and reads included
    connect_timeout: float = 10.0
    read_timeout: float = 15.0  # per read; the deadline bounds the sum
    max_bytes: int = 10 * 1024 * 1024  # decoded body
    max_redirects: int = 5
    attempts: int = 3
    backoff_base: float = 1.0
    backoff_cap: float = 8.0
    max_retry_after: float = 30.0  # a longer Retry-After ends this run's attempts
    allow: AddressPolicy = field(default_factory=AddressPolicy)
    user_agent: str = USER_AGENT


def parse_retry_after(value: str, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP-date)."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now) if when.tzinfo else None


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return ""


class HttpFetcher:
    """Fetch feeds with the bounds of a :class:`FetchPolicy`; safe to share between threads."""

    def __init__(
        self,
        policy: FetchPolicy | None = None,
        *,
        resolve: Resolver = system_resolve,
        inner_backend: httpcore.NetworkBackend | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy or FetchPolicy()
        self._resolve = resolve
        self._inner = inner_backend
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._ssl = ssl.create_default_context()

    def fetch(self, url: str, validators: Validators | None = None) -> FetchResult:
        validators = validators or Validators()
        deadline = time.monotonic() + self.policy.deadline
        attempt = 1
        while True:
            try:
                return self._attempt(url, validators, deadline, attempt)
            except FetchError as exc:
                wait = self._retry_wait(exc, attempt, deadline)
                if wait is None:
                    raise
            self._sleep(wait)
            attempt += 1

    def _retry_wait(self, exc: FetchError, attempt: int, deadline: float) -> float | None:
        p = self.policy
        if not exc.retryable or attempt >= p.attempts:
            return None
        if exc.retry_after is not None:
            wait = exc.retry_after
            if wait > p.max_retry_after:
                return None
        else:
            wait = self._rng.uniform(0, min(p.backoff_cap, p.backoff_base * 2 ** (attempt - 1)))
        return wait if time.monotonic() + wait < deadline - 0.05 else None

    def _attempt(
        self, url: str, validators: Validators, deadline: float, attempt: int
    ) -> FetchResult:
        backend = GuardedBackend(
            self.policy.allow, deadline, resolve=self._resolve, inner=self._inner
        )
        try:
            with httpcore.ConnectionPool(
                ssl_context=self._ssl, network_backend=backend, max_connections=2, retries=0
            ) as pool:
                return self._follow(pool, url, validators, deadline, attempt)
        except TargetRefused as exc:
            raise FetchError(str(exc)) from None
        except httpcore.TimeoutException as exc:
            over = time.monotonic() >= deadline - 0.01
            what = f"total deadline of {self.policy.deadline:g}s exceeded" if over else "timed out"
            raise FetchError(f"{what} ({exc or type(exc).__name__})", retryable=not over) from None
        except (httpcore.UnsupportedProtocol, httpcore.LocalProtocolError, ssl.SSLError) as exc:
            raise FetchError(f"cannot fetch: {exc}") from None
        except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
            raise FetchError(
                f"network error: {exc or type(exc).__name__}", retryable=True
            ) from None

    def _follow(
        self,
        pool: httpcore.ConnectionPool,
        url: str,
        validators: Validators,
        deadline: float,
        attempt: int,
    ) -> FetchResult:
        for _ in range(self.policy.max_redirects + 1):
            _check_scheme(url)
            with pool.stream(
                "GET",
                url,
                headers=self._headers(validators),
                extensions={"timeout": self._timeouts(deadline)},
            ) as resp:
                location = _header(resp.headers, b"location")
                if resp.status in _REDIRECTS and location:
                    url = urljoin(url, location)
                    continue
                return self._result(resp, url, attempt)
        raise FetchError(f"too many redirects (more than {self.policy.max_redirects})")

    def _result(self, resp: httpcore.Response, url: str, attempt: int) -> FetchResult:
        headers = resp.headers
        found = Validators(_header(headers, b"etag"), _header(headers, b"last-modified"))
        if resp.status == 304:
            return FetchResult(None, 304, url, found, attempt)
        if resp.status != 200:
            retry_after = parse_retry_after(_header(headers, b"retry-after"), time.time())
            raise FetchError(
                f"HTTP {resp.status}",
                status=resp.status,
                retry_after=retry_after,
                retryable=resp.status in _RETRY_STATUSES,
            )
        length = _header(headers, b"content-length")
        if length.isdigit() and int(length) > self.policy.max_bytes:
            raise FetchError(f"body of {length} bytes is larger than {self.policy.max_bytes}")
        try:
            body = read_body(
                resp.iter_stream(), _header(headers, b"content-encoding"), self.policy.max_bytes
            )
        except BodyError as exc:
            raise FetchError(str(exc)) from None
        return FetchResult(body, 200, url, found, attempt)

    def _headers(self, validators: Validators) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"User-Agent", self.policy.user_agent.encode()),
            (b"Accept", ACCEPT.encode()),
            (b"Accept-Encoding", ACCEPT_ENCODING.encode()),
        ]
        if validators.etag:
            headers.append((b"If-None-Match", validators.etag.encode("latin-1")))
        if validators.last_modified:
            headers.append((b"If-Modified-Since", validators.last_modified.encode("latin-1")))
        return headers

    def _timeouts(self, deadline: float) -> dict[str, float]:
        left = max(deadline - time.monotonic(), 0.001)
        p = self.policy
        return {
            "connect": min(p.connect_timeout, left),
            "read": min(p.read_timeout, left),
            "write": min(p.read_timeout, left),
            "pool": left,
        }


def _check_scheme(url: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError:
        raise FetchError(f"invalid URL: {url[:200]}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(f"refused: only http(s) URLs are fetched, not {url[:200]}")
