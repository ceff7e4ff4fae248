"""The worker over granian's RSGI interface: the hot path directly, everything else through ASGI.

A repeated shared GET by a cached valid key (``worker.app``'s hot path: the kept default poll,
kept TAXII pages, ...) is answered here with one ``response_bytes`` call and ``str`` headers
prepared when the answer was kept; RSGI spares the per-request ASGI messages and their awaits.
Every other request goes to the same ``App`` through a small RSGI -> ASGI adapter (request
body as ``http.request`` messages, one-piece or streamed responses, the client address), so
both interfaces give the same answers.

What RSGI does not hand over: the raw request path (the access log shows the decoded path
percent-encoded again, so ``%2F`` is logged as ``/``) and header values that are not UTF-8
(granian leaves them out of the headers it passes on).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from urllib.parse import quote

from worker.access.auth import authorization_key
from worker.app import (
    HOT_HEADERS_TEXT,
    USAGE_FLUSH_SECONDS,
    App,
    HotInputs,
    Message,
    _every,
    access_log,
    hot_headers,
    log_access,
    text_headers,
)

PATH_SAFE = "/!$&'()*+,;=:@~-._"  # characters a request path carries unencoded


def hot_inputs(scope: Any) -> HotInputs | None:
    """``worker.app.hot_inputs`` of an RSGI GET: the same key and kept-answer key as the ASGI
    scope the adapter builds for the same request (values as the bytes that were received)."""
    query = scope.query_string
    if query and "api_key" in query.lower():
        return None
    found = hot_headers(scope.headers.items(), HOT_HEADERS_TEXT)
    if found is None:
        return None
    auth, host, coding, inm, accept = found
    if auth is None:
        return None
    token = authorization_key(auth.encode())
    if not token:
        return None
    return token, (
        scope.path,
        query.encode(),
        scope.scheme,
        None if host is None else host.encode(),
        None if coding is None else coding.encode(),
        None if inm is None else inm.encode(),
        None if accept is None else accept.encode(),
    )


def _address(text: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) as the ASGI pair."""
    host, _, port = text.rpartition(":")
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        return text, 0


def asgi_scope(scope: Any) -> dict[str, Any]:
    """The ASGI HTTP scope of an RSGI request."""
    path = scope.path
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": scope.http_version,
        "method": scope.method,
        "scheme": scope.scheme,
        "path": path,
        "raw_path": quote(path, safe=PATH_SAFE).encode("ascii"),
        "root_path": "",
        "query_string": scope.query_string.encode(),
        "headers": [
            (name.encode("latin-1"), value.encode()) for name, value in scope.headers.items()
        ],
        "client": _address(scope.client),
        "server": _address(scope.server),
        "state": {},
    }


class _Exchange:
    """One request's ASGI ``receive`` and ``send`` over an RSGI protocol object."""

    __slots__ = ("protocol", "chunks", "ended", "start", "stream")

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        self.chunks: Any = None
        self.ended = False
        self.start: Message | None = None
        self.stream: Any = None

    async def receive(self) -> Message:
        if self.ended:  # the body was read: what a server reports next is the disconnect
            await self.protocol.client_disconnect()
            return {"type": "http.disconnect"}
        if self.chunks is None:
            self.chunks = self.protocol.__aiter__()
        try:
            chunk = await self.chunks.__anext__()
        except StopAsyncIteration:
            self.ended = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": bytes(chunk), "more_body": True}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.start = message
            return
        if kind != "http.response.body" or self.start is None:
            return
        body = message.get("body", b"")
        more = message.get("more_body", False)
        if self.stream is None:
            headers = text_headers(self.start.get("headers", []))
            if not more:
                self.protocol.response_bytes(self.start["status"], headers, bytes(body))
                self.start = None  # answered: a later message has nothing to add to
                return
            self.stream = self.protocol.response_stream(self.start["status"], headers)
        if body:
            await self.stream.send_bytes(bytes(body))


class RSGIApp:
    """``App`` as an RSGI application (``granian --interface rsgi``)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._flusher: asyncio.Task[None] | None = None

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the periodic usage flush with the worker process (ASGI's lifespan startup)."""
        self._flusher = loop.create_task(_every(USAGE_FLUSH_SECONDS, self.app._flush_usage))

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
        self.app._flush_usage()

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        if scope.proto != "http":
            return
        app = self.app
        started = time.perf_counter()
        hot = hot_inputs(scope) if app._cached_key is not None and scope.method == "GET" else None
        if hot is not None:
            found = app._hot_ready(hot)
            answered = await app._hot(*found, started, True) if found is not None else None
            if answered is not None:
                status, headers, body, request_id = answered
                protocol.response_bytes(status, headers, body)
                if access_log.isEnabledFor(logging.INFO):
                    log_access(
                        _address(scope.client)[0],
                        scope.method,
                        quote(scope.path, safe=PATH_SAFE) + "?" + scope.query_string,
                        status,
                        len(body),
                        started,
                        request_id,
                    )
                return
        await self.call_asgi(asgi_scope(scope), protocol, started, hot)

    async def call_asgi(
        self, scope: Message, protocol: Any, started: float, hot: HotInputs | None
    ) -> None:
        """The full path through the ASGI app (which answers every error itself)."""
        exchange = _Exchange(protocol)
        await self.app.full(scope, exchange.receive, exchange.send, started, hot)


def rsgi_from_env() -> RSGIApp:
    """The RSGI app of one server process (granian ``--interface rsgi --factory``)."""
    from worker.config import app_from_env

    return RSGIApp(app_from_env())
