"""The worker as one ASGI callable: request id → auth → limits → route → read → respond → log.

Every error leaves in the spec's shape with the request id, which also comes back as the
``X-Request-ID`` header. Nothing here renders an indicator: it reads precomputed bytes.

Hot path: an answer a handler marks ``shared`` is kept per build without its per-request
headers; a repeated GET with the same inputs by a key the key cache holds as valid is answered
from it after one batched limiter decision (``Coalescer``), skipping request parsing, routing
and the handler. Anything unusual falls back to the full path before anything is spent. See
docs/rate-limits.md, "Batched decisions (the hot path)".
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from worker.access.auth import authenticate, authorization_key
from worker.access.csrf import check_same_origin
from worker.buckets.storage import BadPointer, Build, BuildSource, NoBuild, StorageError
from worker.contract import formats
from worker.contract.tiers import TIERS
from worker.encoding import Encoder
from worker.errors import (
    TAXII_MEDIA_TYPE,
    TEXT_MEDIA_TYPE,
    ApiError,
    InsufficientScope,
    InternalError,
    InvalidApiKey,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unavailable,
)
from worker.http import Request, Response, new_request_id
from worker.limits.windows import Coalescer, Decision, Limiter, LimiterUnavailable, batches
from worker.routes import ROUTES
from worker.routing import Ctx, Route, Router

log = logging.getLogger("socdef.worker")
access_log = logging.getLogger("socdef.access")
# ``name=value`` in free text; a name is a credential when it decodes to ``api_key``
# (``api%5Fkey``, ``%61pi_key``: the worker decodes query names before it looks for the key)
PAIR = re.compile(r"([^&?\s\"'=;]+)=([^&\s\"']*)")
CREDENTIAL = "api_key"
REDACTED = "[redacted]"

SessionAuth = Callable[[Request], str]
# a 401 for a missing or bad API key: the key goes as Basic's password or a Bearer token; one
# comma-joined header (no header twice), Basic first for clients that read only the first
CHALLENGE = ("www-authenticate", 'Basic realm="socdef", Bearer')
TAXII_CHALLENGE = ("www-authenticate", 'Basic realm="socdef TAXII", Bearer')
# formats answered as text: their routes' errors are text too (``error_style``)
TEXT_FORMATS = frozenset(f.name for f in formats.FORMATS if f.media_type.startswith("text/"))


def error_style(route: Route | None, query: dict[str, str], accept: str | None) -> str:
    """How an error on ``route`` is written for this client: ``taxii`` on TAXII routes;
    ``text`` (one line) on a route answering text (``route.errors`` "text", or "format" with a
    text ``format``) unless the client asks for JSON (``Accept`` naming JSON, not text/plain);
    else ``spec`` (the spec's JSON error)."""
    if route is None or route.errors not in ("taxii", "text", "format"):
        return "spec"
    if route.errors == "taxii":
        return "taxii"
    if accept and "json" in accept and "text/plain" not in accept:
        return "spec"
    if route.errors == "text" or query.get("format") in TEXT_FORMATS:
        return "text"
    return "spec"


def is_credential(name: str) -> bool:
    """Whether a query parameter's raw name carries the key once decoded (any case)."""
    return CREDENTIAL in unquote_plus(name).lower()


def redact_query(query: str) -> str:
    """``query`` with the value of every credential parameter replaced, split exactly as the
    worker's parser splits it (on ``&``), so no part of a value survives."""
    if "=" not in query:
        return query
    parts = query.split("&")
    for i, part in enumerate(parts):
        name, eq, _ = part.partition("=")
        if eq and is_credential(name):
            parts[i] = f"{name}={REDACTED}"
    return "&".join(parts)


def redact_target(target: str) -> str:
    """A request target (path ``?`` query) with its credential values redacted."""
    path, mark, query = target.partition("?")
    return path + mark + redact_query(query)


def redact(text: str) -> str:
    """Credential values in free text (a log message): every ``name=value`` whose name
    decodes to ``api_key``."""
    if "=" not in text:
        return text
    return PAIR.sub(lambda m: f"{m[1]}={REDACTED}" if is_credential(m[1]) else m[0], text)


class RedactingFilter(logging.Filter):
    """Strip credential values (``api_key=``, however encoded) from every log record, whoever
    wrote it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def rate_headers(resp: Response, d: Decision) -> None:
    resp.headers += rate_text(d)


@functools.lru_cache(maxsize=64)
def _fixed_text(limit: int, day_limit: int) -> tuple[tuple[str, str], tuple[str, str]]:
    return ("x-ratelimit-limit", str(limit)), (
        "ratelimit-policy",
        f'"minute";q={limit};w=60, "day";q={day_limit};w=86400',
    )


@functools.lru_cache(maxsize=64)
def _reset_text(reset: int) -> tuple[str, str]:
    return "x-ratelimit-reset", str(reset)


def rate_text(d: Decision) -> list[tuple[str, str]]:
    """The rate-limit headers of a decision as ``str`` pairs, the one place they are written
    (``rate_headers``, the RSGI hot path's; ``rate_raw`` encodes them)."""
    now = int(time.time())
    if d.binding == "day":
        current = f'"day";r={d.day_remaining};t={max(0, d.day_reset - now)}'
    else:
        current = f'"minute";r={d.remaining};t={max(0, d.reset - now)}'
    limit, policy = _fixed_text(d.limit, d.day_limit)
    return [
        limit,
        ("x-ratelimit-remaining", str(d.remaining)),
        _reset_text(d.reset),
        policy,
        ("ratelimit", current),
    ]


def rate_raw(d: Decision) -> list[tuple[bytes, bytes]]:
    """``rate_text`` as raw ASGI headers (the ASGI hot path's); the values are ASCII."""
    return [(name.encode(), value.encode()) for name, value in rate_text(d)]


def text_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """Raw headers as the ``str`` pairs RSGI takes; granian sends a value's UTF-8 bytes, so a
    value is decoded as UTF-8 (the same bytes go out), as Latin-1 only when it is not UTF-8."""
    out = []
    for name, value in headers:
        try:
            text = value.decode()
        except UnicodeDecodeError:
            text = value.decode("latin-1")
        out.append((name.decode("latin-1"), text))
    return out


# Headers that change per request: left out of a kept answer, added on every reply.
PER_REQUEST = frozenset(
    {
        b"x-ratelimit-limit",
        b"x-ratelimit-remaining",
        b"x-ratelimit-reset",
        b"ratelimit-policy",
        b"ratelimit",
        b"x-request-id",
    }
)
READY = "ready-answers"  # the per-build dict of kept answers (Build.cached)
READY_MAX = 1024  # kept answers per build; emptied when full (Host values and queries vary)
READY_BYTES = 64 << 20  # body bytes kept per build; emptied when full
READY_LARGEST = 4 << 20  # a larger body is not kept: its transfer dwarfs the work saved


class Kept(dict[tuple[Any, ...], "Ready"]):
    """A build's kept answers, with the size of their bodies."""

    size = 0


@dataclass(frozen=True, slots=True)
class Ready:
    """A whole answer to a shared GET (``Response.shared``), kept per build for the hot path:
    everything but the per-request headers, and what the usage log needs."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    route: Route
    iocs: int
    text: list[tuple[str, str]]  # ``headers`` as str pairs, for the RSGI interface
    errors: str = "spec"  # how an error to the same request is written (``error_style``)


# The headers a kept answer may depend on, Authorization first, with their places in
# ``hot_headers``'s answer: raw (ASGI) names and text (RSGI) names.
HOT_HEADERS = {
    b"authorization": 0,
    b"host": 1,
    b"accept-encoding": 2,
    b"if-none-match": 3,
    b"accept": 4,
}
HOT_HEADERS_TEXT = {name.decode(): place for name, place in HOT_HEADERS.items()}

# ``hot_inputs``'s answer: (presented key, request part of the kept-answer key); the request
# part holds raw (ASGI) or text (RSGI) values.
HotInputs = tuple[bytes, tuple[Any, ...]]
# One ASGI message or scope.
Message = dict[str, Any]


def hot_headers(pairs: Iterable[tuple[Any, Any]], names: dict[Any, int]) -> list[Any] | None:
    """The values of the ``names`` headers in their places (None where absent); None when one
    of them is repeated (the full path joins repeats)."""
    found: list[Any] = [None] * len(names)
    for name, value in pairs:
        place = names.get(name)
        if place is not None:
            if found[place] is not None:
                return None
            found[place] = value
    return found


def hot_inputs(scope: Message) -> HotInputs | None:
    """(presented key, request part of the kept-answer key) of a GET that the hot path may
    answer: one ``Authorization`` header (Bearer, Token or Basic), no ``api_key`` in the query,
    and at most one each of the headers a shared answer may depend on. None: the full path."""
    if scope["method"] != "GET":
        return None
    query = scope.get("query_string", b"")
    if query and b"api_key" in query.lower():
        return None
    found = hot_headers(scope["headers"], HOT_HEADERS)
    if found is None:
        return None
    auth, host, coding, inm, accept = found
    if auth is None:
        return None
    token = authorization_key(auth)
    if not token:
        return None
    return token, (scope["path"], query, scope.get("scheme", "http"), host, coding, inm, accept)


def log_access(
    client: str, method: str, target: str, status: int, size: int, started: float, request_id: str
) -> None:
    """One access-log line; credential values in the target's query are redacted, and no
    header is logged (``Authorization``, ``X-API-Key``)."""
    access_log.info(
        '%s "%s %s" %s %d %.1fms %s',
        client,
        method,
        redact_target(target),
        status,
        size,
        (time.perf_counter() - started) * 1000,
        request_id,
    )


def _limited(d: Decision, tier: str) -> RateLimited:
    reset = d.day_reset if d.binding == "day" else d.reset
    limit = d.day_limit if d.binding == "day" else d.limit
    return RateLimited(
        "Rate limit exceeded. Please wait before making more requests.",
        details={
            "limit": limit,
            "window": d.binding,
            "reset_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(reset)),
            "tier": tier,
            "upgrade_url": "/docs/#pricing",
        },
        headers={"retry-after": str(max(1, d.retry_after))},
    )


class App:
    def __init__(
        self,
        *,
        keys: Any,
        limiter: Limiter,
        builds: BuildSource,
        public_url: str | None = None,
        source_name: str = "socdef",
        limit_scale: float = 1.0,
        session_auth: SessionAuth | None = None,
        routes: list[Route] | None = None,
        accounts: Any = None,
        usage: Any = None,
        allowed_origins: tuple[str, ...] = (),
    ) -> None:
        self.keys = keys
        self.limiter = limiter
        self.builds = builds
        self.public_url = public_url
        self.source_name = source_name
        self.limit_scale = limit_scale
        self.session_auth = session_auth
        self.accounts = accounts  # worker.access.accounts.Accounts
        self.usage = usage  # worker.limits.usage.UsageLog
        self.allowed_origins = allowed_origins
        self.router = Router(ROUTES if routes is None else routes)
        self.encoder = Encoder()  # Content-Encoding negotiation, the last step of every answer
        # a remote bucket may wait on the network: answer such requests on a thread
        self.offload = getattr(getattr(builds, "bucket", None), "blocking", False)
        # the hot path needs a key cache that answers without the database, and in-memory builds
        self._cached_key: Callable[[bytes], Any] | None = (
            None if self.offload else getattr(keys, "cached", None)
        )
        # a shared store's hot-path hits are decided in batches, one per event-loop turn: one
        # transaction or round trip per batch; the memory store decides inline, so a request
        # never waits (docs/rate-limits.md)
        self.coalescer = Coalescer(limiter) if batches(limiter) else None
        self._scaled: dict[str, tuple[int, int]] = {}  # tier -> limits with limit_scale

    async def __call__(
        self,
        scope: Message,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, self._flush_usage)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        hot = hot_inputs(scope) if self._cached_key is not None else None
        found = self._hot_ready(hot) if hot is not None else None
        answered = await self._hot(*found, started) if found is not None else None
        if answered is not None:
            status, headers, body, request_id = answered
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            if access_log.isEnabledFor(logging.INFO):
                self._log_access(scope, status, len(body), started, request_id)
            return
        await self.full(scope, receive, send, started, hot)

    async def full(
        self,
        scope: Message,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
        started: float,
        hot: HotInputs | None,
    ) -> None:
        """The full path of an HTTP request; ``hot`` is its ``hot_inputs`` (None: keep nothing)."""
        req = Request.from_scope(scope)
        request_id = new_request_id()
        body = await _read_body(receive) if req.method in BODY_METHODS else b""
        if body is None:
            resp = self._error(
                PayloadTooLarge(f"Request bodies are limited to {MAX_BODY} bytes."), request_id
            )
        else:
            req.body = body
            resp = (
                await asyncio.to_thread(self.answer, req, request_id)
                if self.offload
                else self.answer(req, request_id)
            )
        resp.header("x-request-id", request_id)
        headers = resp.raw_headers(req.method == "HEAD")
        if hot is not None and isinstance(resp.shared, Build) and resp.status in (200, 304):
            style = error_style(resp.ready[0], req.query, req.headers.get("accept"))
            self._keep(resp, headers, hot[1], style)
        await send({"type": "http.response.start", "status": resp.status, "headers": headers})
        body = b"" if req.method == "HEAD" or resp.status == 304 else resp.body
        await send({"type": "http.response.body", "body": body})
        if access_log.isEnabledFor(logging.INFO):
            self._log_access(scope, resp.status, len(body), started, request_id)

    @staticmethod
    def _log_access(
        scope: Message, status: int, size: int, started: float, request_id: str
    ) -> None:
        client = scope.get("client") or ("-", 0)
        log_access(
            str(client[0]),
            scope["method"],
            scope.get("raw_path", b"").decode("latin-1")
            + "?"
            + scope.get("query_string", b"").decode("latin-1"),
            status,
            size,
            started,
            request_id,
        )

    def _keep(
        self,
        resp: Response,
        headers: list[tuple[bytes, bytes]],
        request: tuple[Any, ...],
        errors: str = "spec",
    ) -> None:
        """Keep a shared answer for the hot path, under the build that produced it."""
        route, tier, iocs = resp.ready
        body = b"" if resp.status == 304 else resp.body
        if len(body) > READY_LARGEST:
            return
        memo = resp.shared.cached(READY, Kept)
        if len(memo) >= READY_MAX or memo.size + len(body) > READY_BYTES:
            memo.clear()
            memo.size = 0
        memo.size += len(body)
        kept = [h for h in headers if h[0] not in PER_REQUEST]
        memo[(tier, *request)] = Ready(
            resp.status, kept, body, route, iocs, text_headers(kept), errors
        )

    def _hot_ready(self, hot: HotInputs) -> tuple[Any, Ready] | None:
        """(key, kept answer) for a repeated shared GET by a cached valid key, else None."""
        cached_key = self._cached_key
        key = cached_key(hot[0]) if cached_key is not None else None
        if key is None:
            return None
        try:
            build = self.builds.current()
        except StorageError:
            return None
        ready = build.cached(READY, Kept).get((key.tier, *hot[1]))
        if ready is None or (ready.route.scope and ready.route.scope not in key.scopes):
            return None
        return key, ready

    def _limits(self, tier_name: str) -> tuple[int, int]:
        """(per minute, per day) of a tier with ``limit_scale`` applied; computed once."""
        found = self._scaled.get(tier_name)
        if found is None:
            tier = TIERS[tier_name]
            found = self._scaled[tier_name] = (
                int(tier.per_minute * self.limit_scale),
                int(tier.per_day * self.limit_scale),
            )
        return found

    async def _hot(
        self, key: Any, ready: Ready, started: float, text: bool = False
    ) -> tuple[int, list[Any], bytes, str] | None:
        """Answer a repeated shared GET from a kept answer, or None for the full path.

        Nothing is spent before every check that could send the request to the full path has
        passed, so a request is never counted twice; the answer is the full path's, byte for
        byte, apart from the per-request headers (see docs/rate-limits.md, "Hot path").
        The headers come as raw ASGI pairs, or as ``str`` pairs with ``text`` (RSGI).
        """
        per_minute, per_day = self._limits(key.tier)
        try:
            decision = (
                await self.coalescer.decide(key.limit_id, per_minute, per_day)
                if self.coalescer is not None
                else self.limiter.hit(key.limit_id, per_minute, per_day)
            )
        except LimiterUnavailable:
            return None  # nothing was spent: the full path answers (503 without a fallback)
        request_id = new_request_id()
        headers: list[Any]
        if decision.allowed:
            status, body, iocs = ready.status, ready.body, ready.iocs
            if text:
                headers = ready.text + rate_text(decision)
                headers.append(("x-request-id", request_id))
            else:
                headers = ready.headers + rate_raw(decision)
                headers.append((b"x-request-id", request_id.encode()))
        else:
            resp = self._error(_limited(decision, key.tier), request_id, ready.route, ready.errors)
            rate_headers(resp, decision)
            resp.header("x-request-id", request_id)
            status, body, iocs, headers = resp.status, resp.body, 0, resp.raw_headers(False)
            if text:
                headers = text_headers(headers)
        if self.usage is not None:
            self.usage.record(
                key.id, ready.route.pattern, status, (time.perf_counter() - started) * 1000, iocs
            )
        return status, headers, body, request_id

    def answer(self, req: Request, request_id: str) -> Response:
        return self.encoder(req, self.respond(req, request_id))

    def respond(self, req: Request, request_id: str) -> Response:
        if req.path == "/healthz":
            return self._health()
        started = time.perf_counter()
        found = self.router.match(req.path)
        route = found[0] if found else None
        ctx = Ctx(req, self, found[0], found[1]) if found else None
        style = error_style(route, req.query, req.headers.get("accept"))
        try:
            if ctx is None or route is None:
                raise NotFound()
            handler = route.handlers.get("GET" if req.method == "HEAD" else req.method)
            if handler is None:
                allowed = ", ".join(sorted(route.handlers))
                raise MethodNotAllowed(
                    f"Method {req.method} is not allowed here", headers={"allow": allowed}
                )
            self._admit(ctx)
            resp = handler(ctx)
        except ApiError as exc:
            resp = self._error(exc, request_id, route, style)
        except StorageError as exc:
            log.error("storage: %s", exc)
            resp = self._error(
                Unavailable("No feed has been published yet.")
                if isinstance(exc, NoBuild)
                else Unavailable(
                    "The published feed cannot be read; retry shortly."
                    if isinstance(exc, BadPointer)
                    else "The feed store is unreachable; retry shortly.",
                    headers={"retry-after": "1"},
                ),
                request_id,
                route,
                style,
            )
        except LimiterUnavailable as exc:  # only without the fail-open fallback
            log.error("rate limiter: %s", exc)
            resp = self._error(
                Unavailable(
                    "Rate limiting is unavailable; retry shortly.", headers={"retry-after": "1"}
                ),
                request_id,
                route,
                style,
            )
        except Exception:
            log.exception("unhandled error for %s", redact(req.path))
            resp = self._error(InternalError(), request_id, route, style)
        if resp.shared is not None and ctx is not None and ctx.tier is not None:
            resp.ready = (ctx.route, ctx.tier.name, ctx.iocs)
        if ctx is not None and ctx.decision is not None:
            rate_headers(resp, ctx.decision)
        if ctx is not None and ctx.key is not None and self.usage is not None:
            self.usage.record(
                ctx.key.id,
                ctx.route.pattern,
                resp.status,
                (time.perf_counter() - started) * 1000,
                ctx.iocs,
            )
        return resp

    def _admit(self, ctx: Ctx) -> None:
        """Authenticate the caller and apply its limits; the decision feeds the headers."""
        route = ctx.route
        if route.auth == "none":
            return
        if route.auth == "session":
            if self.session_auth is None:
                raise InvalidApiKey("Session authentication is not configured.")
            ctx.user = self.session_auth(ctx.req)
            if ctx.req.method not in ("GET", "HEAD"):
                check_same_origin(ctx.req, self.allowed_origins, self.public_url)
            return
        ctx.key = authenticate(ctx.req, self.keys)
        ctx.tier = tier = TIERS[ctx.key.tier]
        ctx.decision = decision = self.limiter.hit(
            ctx.key.limit_id,
            int(tier.per_minute * self.limit_scale),
            int(tier.per_day * self.limit_scale),
        )
        if not decision.allowed:
            raise _limited(decision, tier.name)
        if route.scope and route.scope not in ctx.key.scopes:
            raise InsufficientScope(route.scope, tuple(ctx.key.scopes))

    def _flush_usage(self) -> None:
        if self.usage is not None:
            self.usage.flush()

    def _health(self) -> Response:
        """200 while a build is served ("degraded", with the reason, when the pointer or the
        manifest it names is unreadable and the last good build is kept), 503 without one."""
        try:
            build = self.builds.current()
        except StorageError as exc:  # a remote bucket's address stays out of the answer
            status = (
                "no_build"
                if isinstance(exc, NoBuild)
                else "build_unreadable"
                if isinstance(exc, BadPointer)
                else "storage_unreachable"
            )
            detail = (
                str(exc) if isinstance(exc, NoBuild | BadPointer) else "the bucket did not answer"
            )
            return Response(503, json.dumps({"status": status, "detail": detail}).encode())
        problem = getattr(self.builds, "problem", None)
        body = {
            "status": "degraded" if problem else "ok",
            "build_id": build.build_id,
            "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(build.generated_at)),
        }
        if problem:
            body["detail"] = f"{problem}; serving the last good build"
        return Response(200, json.dumps(body).encode())

    @staticmethod
    def _error(
        exc: ApiError, request_id: str, route: Route | None = None, style: str = "spec"
    ) -> Response:
        """``exc`` as an answer in ``style`` (``error_style``); a 401 on a key route carries
        the Basic and Bearer challenges (clients that wait for one, wget, send the key)."""
        if style == "taxii":
            resp = Response(exc.status, exc.taxii_body(request_id), TAXII_MEDIA_TYPE)
        elif style == "text":
            resp = Response(exc.status, exc.text_body(request_id), TEXT_MEDIA_TYPE)
        else:
            resp = Response(exc.status, exc.body(request_id))
        if exc.status == 401 and route is not None and route.auth == "key":
            resp.headers.append(TAXII_CHALLENGE if style == "taxii" else CHALLENGE)
        for name, value in exc.headers.items():
            resp.header(name, value)
        return resp


USAGE_FLUSH_SECONDS = 1.0
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_BODY = 64 * 1024


async def _read_body(receive: Callable[[], Awaitable[Message]]) -> bytes | None:
    """The request body, or None when it is larger than ``MAX_BODY``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= MAX_BODY:
            chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks) if size <= MAX_BODY else None


async def _lifespan(
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
    flush: Callable[[], None],
) -> None:
    """Start the periodic usage flush with the server; flush once more when it stops."""
    task: asyncio.Task[None] | None = None
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            task = asyncio.create_task(_every(USAGE_FLUSH_SECONDS, flush))
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if task is not None:
                task.cancel()
            flush()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _every(seconds: float, job: Callable[[], None]) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            job()
        except Exception:  # a failed flush is retried on the next tick
            log.exception("periodic job failed")
