"""The worker as one ASGI callable: request id → auth → limits → route → read → respond → log.

Every error leaves in the spec's shape with the request id, which also comes back as the
``X-Request-ID`` header. Nothing here renders an indicator: it reads precomputed bytes.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from worker import iocs
from worker.auth import authenticate
from worker.errors import (
    ApiError,
    InsufficientScope,
    InternalError,
    MethodNotAllowed,
    NotFound,
    RateLimited,
    Unavailable,
)
from worker.http import Request, Response, new_request_id
from worker.limits import Decision, Limiter
from worker.storage import BuildSource, StorageError
from worker.tiers import TIERS

log = logging.getLogger("socdef.worker")
access_log = logging.getLogger("socdef.access")
REDACT = re.compile(r"(api_key=)[^&\s\"']*", re.IGNORECASE)

Handler = Callable[..., Response]
ROUTES: dict[str, tuple[str, Handler]] = {
    "/api/v1/iocs": ("read:iocs", iocs.list_iocs),
}


def redact(text: str) -> str:
    return REDACT.sub(r"\1[redacted]", text)


class RedactingFilter(logging.Filter):
    """Strip ``api_key=`` values from every log record, whoever wrote it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "api_key=" in message.lower():
            record.msg, record.args = redact(message), None
        return True


def rate_headers(resp: Response, d: Decision) -> None:
    resp.header("x-ratelimit-limit", d.limit)
    resp.header("x-ratelimit-remaining", d.remaining)
    resp.header("x-ratelimit-reset", d.reset)
    resp.header(
        "ratelimit-policy", f'"minute";q={d.limit};w=60, "day";q={d.day_limit};w=86400'
    )
    if d.binding == "day":
        resp.header("ratelimit", f'"day";r={d.day_remaining};t={max(0, d.day_reset - int(time.time()))}')
    else:
        resp.header("ratelimit", f'"minute";r={d.remaining};t={max(0, d.reset - int(time.time()))}')


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
    ) -> None:
        self.keys = keys
        self.limiter = limiter
        self.builds = builds
        self.public_url = public_url
        self.source_name = source_name
        self.limit_scale = limit_scale

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[dict]],
                       send: Callable[[dict], Awaitable[None]]) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        req = Request.from_scope(scope)
        request_id = new_request_id()
        resp = self.respond(req, request_id)
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

    def respond(self, req: Request, request_id: str) -> Response:
        decision: Decision | None = None
        if req.path == "/healthz":
            return self._health()
        try:
            route = ROUTES.get(req.path.rstrip("/") or "/")
            if route is None:
                raise NotFound()
            if req.method not in ("GET", "HEAD"):
                raise MethodNotAllowed(f"Method {req.method} is not allowed here",
                                       headers={"allow": "GET, HEAD"})
            scope_needed, handler = route
            key = authenticate(req, self.keys)
            tier = TIERS[key.tier]
            decision = self.limiter.hit(key.id, int(tier.per_minute * self.limit_scale),
                                        int(tier.per_day * self.limit_scale))
            if not decision.allowed:
                raise _limited(decision, tier.name)
            if scope_needed not in key.scopes:
                raise InsufficientScope(scope_needed, tuple(key.scopes))
            resp = handler(req, self.builds.current(), tier, public_url=self.public_url,
                           source_name=self.source_name)
        except ApiError as exc:
            resp = self._error(exc, request_id)
        except StorageError as exc:
            log.error("storage: %s", exc)
            resp = self._error(Unavailable("No feed has been published yet."), request_id)
        except Exception:
            log.exception("unhandled error for %s", redact(req.path))
            resp = self._error(InternalError(), request_id)
        if decision is not None:
            rate_headers(resp, decision)
        return resp

    def _health(self) -> Response:
        try:
            build = self.builds.current()
        except StorageError as exc:
            return Response(503, json.dumps({"status": "no_build", "detail": str(exc)}).encode())
        body = {"status": "ok", "build_id": build.build_id,
                "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(build.generated_at))}
        return Response(200, json.dumps(body).encode())

    @staticmethod
    def _error(exc: ApiError, request_id: str) -> Response:
        resp = Response(exc.status, exc.body(request_id))
        for name, value in exc.headers.items():
            resp.header(name, value)
        return resp


async def _lifespan(receive: Callable[[], Awaitable[dict]],
                    send: Callable[[dict], Awaitable[None]]) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
