"""The worker as one ASGI callable: request id → auth → limits → route → read → respond → log.

Every error leaves in the spec's shape with the request id, which also comes back as the
``X-Request-ID`` header. Nothing here renders an indicator: it reads precomputed bytes.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from worker.auth import authenticate
from worker.csrf import check_same_origin
from worker.encoding import Encoder
from worker.errors import (
    TAXII_MEDIA_TYPE,
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
from worker.limits import Decision, Limiter, LimiterUnavailable
from worker.routes import ROUTES
from worker.routing import Ctx, Route, Router
from worker.storage import BuildSource, NoBuild, StorageError
from worker.tiers import TIERS

log = logging.getLogger("socdef.worker")
access_log = logging.getLogger("socdef.access")
REDACT = re.compile(r"(api_key=)[^&\s\"']*", re.IGNORECASE)

SessionAuth = Callable[[Request], str]


def redact(text: str) -> str:
    return REDACT.sub(r"\1[redacted]", text)


class RedactingFilter(logging.Filter):
    """Strip ``api_key=`` values from every log record, whoever wrote it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "api_key=" in message.lower():
            record.msg, record.args = redact(message), None
        return True


@functools.lru_cache(maxsize=64)
def _policy(limit: int, day_limit: int) -> str:
    return f'"minute";q={limit};w=60, "day";q={day_limit};w=86400'


def rate_headers(resp: Response, d: Decision) -> None:
    now = int(time.time())
    if d.binding == "day":
        current = f'"day";r={d.day_remaining};t={max(0, d.day_reset - now)}'
    else:
        current = f'"minute";r={d.remaining};t={max(0, d.reset - now)}'
    resp.headers += (("x-ratelimit-limit", str(d.limit)),
                     ("x-ratelimit-remaining", str(d.remaining)),
                     ("x-ratelimit-reset", str(d.reset)),
                     ("ratelimit-policy", _policy(d.limit, d.day_limit)), ("ratelimit", current))


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
        self.accounts = accounts  # worker.accounts.Accounts
        self.usage = usage  # worker.usage.UsageLog
        self.allowed_origins = allowed_origins
        self.router = Router(ROUTES if routes is None else routes)
        self.encoder = Encoder()  # Content-Encoding negotiation, the last step of every answer
        # a remote bucket may wait on the network: answer such requests on a thread
        self.offload = getattr(getattr(builds, "bucket", None), "blocking", False)

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[dict]],
                       send: Callable[[dict], Awaitable[None]]) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, self._flush_usage)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        req = Request.from_scope(scope)
        request_id = new_request_id()
        body = await _read_body(receive) if req.method in BODY_METHODS else b""
        if body is None:
            resp = self._error(PayloadTooLarge(f"Request bodies are limited to {MAX_BODY} bytes."),
                               request_id)
        else:
            req.body = body
            resp = (await asyncio.to_thread(self.answer, req, request_id) if self.offload
                    else self.answer(req, request_id))
        resp.header("x-request-id", request_id)
        await send({"type": "http.response.start", "status": resp.status,
                    "headers": resp.raw_headers(req.method == "HEAD")})
        body = b"" if req.method == "HEAD" or resp.status == 304 else resp.body
        await send({"type": "http.response.body", "body": body})
        if access_log.isEnabledFor(logging.INFO):
            access_log.info('%s "%s %s" %s %d %.1fms %s', req.client, req.method,
                            redact(scope.get("raw_path", b"").decode("latin-1") + "?"
                                   + scope.get("query_string", b"").decode("latin-1")),
                            resp.status, len(body), (time.perf_counter() - started) * 1000,
                            request_id)

    def answer(self, req: Request, request_id: str) -> Response:
        return self.encoder(req, self.respond(req, request_id))

    def respond(self, req: Request, request_id: str) -> Response:
        if req.path == "/healthz":
            return self._health()
        started = time.perf_counter()
        found = self.router.match(req.path)
        route = found[0] if found else None
        ctx = Ctx(req, self, route, found[1]) if found else None
        try:
            if ctx is None or route is None:
                raise NotFound()
            handler = route.handlers.get("GET" if req.method == "HEAD" else req.method)
            if handler is None:
                allowed = ", ".join(sorted(route.handlers))
                raise MethodNotAllowed(f"Method {req.method} is not allowed here",
                                       headers={"allow": allowed})
            self._admit(ctx)
            resp = handler(ctx)
        except ApiError as exc:
            resp = self._error(exc, request_id, route)
        except StorageError as exc:
            log.error("storage: %s", exc)
            resp = self._error(Unavailable("No feed has been published yet.") if isinstance(
                exc, NoBuild) else Unavailable("The feed store is unreachable; retry shortly.",
                                               headers={"retry-after": "1"}), request_id, route)
        except LimiterUnavailable as exc:  # only without the fail-open fallback
            log.error("rate limiter: %s", exc)
            resp = self._error(Unavailable("Rate limiting is unavailable; retry shortly.",
                                           headers={"retry-after": "1"}), request_id, route)
        except Exception:
            log.exception("unhandled error for %s", redact(req.path))
            resp = self._error(InternalError(), request_id, route)
        if ctx is not None and ctx.decision is not None:
            rate_headers(resp, ctx.decision)
        if ctx is not None and ctx.key is not None and self.usage is not None:
            self.usage.record(ctx.key.id, ctx.route.pattern, resp.status,
                              (time.perf_counter() - started) * 1000, ctx.iocs)
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
            ctx.key.id, int(tier.per_minute * self.limit_scale), int(tier.per_day * self.limit_scale))
        if not decision.allowed:
            raise _limited(decision, tier.name)
        if route.scope and route.scope not in ctx.key.scopes:
            raise InsufficientScope(route.scope, tuple(ctx.key.scopes))

    def _flush_usage(self) -> None:
        if self.usage is not None:
            self.usage.flush()

    def _health(self) -> Response:
        try:
            build = self.builds.current()
        except StorageError as exc:  # a remote bucket's address stays out of the answer
            status = "no_build" if isinstance(exc, NoBuild) else "storage_unreachable"
            return Response(503, json.dumps({"status": status, "detail": str(exc) if isinstance(
                exc, NoBuild) else "the bucket did not answer"}).encode())
        body = {"status": "ok", "build_id": build.build_id,
                "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(build.generated_at))}
        return Response(200, json.dumps(body).encode())

    @staticmethod
    def _error(exc: ApiError, request_id: str, route: Route | None = None) -> Response:
        if route is not None and route.errors == "taxii":
            resp = Response(exc.status, exc.taxii_body(request_id), TAXII_MEDIA_TYPE)
            if exc.status == 401:  # TAXII clients answer a Basic challenge with the key
                resp.header("www-authenticate", 'Basic realm="socdef TAXII"')
        else:
            resp = Response(exc.status, exc.body(request_id))
        for name, value in exc.headers.items():
            resp.header(name, value)
        return resp


USAGE_FLUSH_SECONDS = 1.0
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_BODY = 64 * 1024


async def _read_body(receive: Callable[[], Awaitable[dict]]) -> bytes | None:
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


async def _lifespan(receive: Callable[[], Awaitable[dict]],
                    send: Callable[[dict], Awaitable[None]],
                    flush: Callable[[], None]) -> None:
    """Start the periodic usage flush with the server; flush once more when it stops."""
    task: asyncio.Task | None = None
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
