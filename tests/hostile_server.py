"""A feed server on 127.0.0.1 that plays the failures a fetcher meets on the internet.

Each path is given a behaviour with :meth:`HostileServer.route`; the server records every
request (path and headers) so tests can assert what was sent, or that nothing was.

Behaviours: ``feed`` (200 with ETag/Last-Modified, 304 on a matching conditional request),
``plain`` (200, no validators), ``gzip`` / ``deflate`` / ``br`` (compressed feed), ``status``
(any status, optional ``Retry-After``), ``throttle`` (``status`` for the first ``times``
requests, then the feed), ``hang`` (never answers), ``drip`` (a byte per second), ``big``
(an endless body), ``big-declared`` (a huge Content-Length), ``bomb`` (a gzip bomb),
``redirect`` (to ``location``), ``loop`` (redirects to itself), ``raw`` (any bytes as a feed).
"""

from __future__ import annotations

import gzip
import hashlib
import threading
import zlib
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LAST_MODIFIED = "Wed, 25 Nov 2026 10:00:00 GMT"
_BOMB_MEMBER: list[bytes] = []


def gzip_bomb_member() -> bytes:
    """One gzip member that inflates to 64 MiB of zeros (about 64 KB compressed)."""
    if not _BOMB_MEMBER:
        _BOMB_MEMBER.append(gzip.compress(b"\0" * (64 << 20), compresslevel=9))
    return _BOMB_MEMBER[0]


@dataclass
class Route:
    behaviour: str
    body: bytes = b""
    status: int = 200
    retry_after: str = ""
    location: str = ""
    times: int = 0  # throttle: refusals left
    headers: dict[str, str] = field(default_factory=dict)


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha1(body).hexdigest()[:16] + '"'  # noqa: S324 - a version tag


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        owner = self.server.owner
        with owner.lock:
            owner.hits[self.path] += 1
            owner.requests.append((self.path, dict(self.headers.items())))
            route = owner.routes.get(self.path)
            if route is not None and route.behaviour == "throttle" and route.times > 0:
                route.times -= 1
                route = Route("status", status=route.status, retry_after=route.retry_after)
        if route is None:
            self._send(404, b"not found")
            return
        try:
            getattr(self, "_" + route.behaviour.replace("-", "_"))(route)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _feed(self, route: Route) -> None:
        tag = _etag(route.body)
        if self.headers.get("If-None-Match") == tag or (
            "If-None-Match" not in self.headers
            and self.headers.get("If-Modified-Since") == LAST_MODIFIED
        ):
            self._send(304, b"", {"ETag": tag})
            return
        self._send(
            200,
            route.body,
            {
                "Content-Type": "application/rss+xml",
                "ETag": tag,
                "Last-Modified": LAST_MODIFIED,
                **route.headers,
            },
        )

    def _plain(self, route: Route) -> None:
        self._send(200, route.body, {"Content-Type": "application/rss+xml", **route.headers})

    _throttle = _feed
    _raw = _plain

    def _gzip(self, route: Route) -> None:
        self._send(200, gzip.compress(route.body), {"Content-Encoding": "gzip"})

    def _deflate(self, route: Route) -> None:
        raw = route.headers.get("raw") == "1"
        data = zlib.compress(route.body)
        self._send(200, data[2:-4] if raw else data, {"Content-Encoding": "deflate"})

    def _br(self, route: Route) -> None:
        import brotli

        self._send(200, brotli.compress(route.body), {"Content-Encoding": "br"})

    def _status(self, route: Route) -> None:
        headers = {"Retry-After": route.retry_after} if route.retry_after else {}
        self._send(route.status, b"<html>error</html>", headers)

    def _redirect(self, route: Route) -> None:
        self._send(
            route.status if route.status in (301, 302, 303, 307, 308) else 302,
            b"",
            {"Location": route.location},
        )

    def _loop(self, route: Route) -> None:
        self._send(302, b"", {"Location": self.path})

    def _hang(self, route: Route) -> None:
        self.server.owner.stopping.wait(60)

    def _drip(self, route: Route) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.end_headers()
        self.wfile.flush()
        for byte in route.body or b"<rss>" + b" " * 120:
            if self.server.owner.stopping.wait(1.0):
                return
            self.wfile.write(bytes([byte]))
            self.wfile.flush()

    def _big(self, route: Route) -> None:
        self.send_response(200)
        self.end_headers()  # no length: the body runs until the connection closes
        chunk = b"<!-- " + b"x" * 65_000 + b" -->\n"
        sent, total = 0, 50 << 20
        while sent < total and not self.server.owner.stopping.is_set():
            self.wfile.write(chunk)
            sent += len(chunk)

    def _big_declared(self, route: Route) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(50 << 20))
        self.end_headers()
        self.wfile.write(b"<rss>")

    def _bomb(self, route: Route) -> None:
        member = gzip_bomb_member()
        count = 160  # 10 GiB once inflated, about 10 MB on the wire
        self.send_response(200)
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(member) * count))
        self.end_headers()
        for _ in range(count):
            if self.server.owner.stopping.is_set():
                return
            self.wfile.write(member)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: HostileServer


class HostileServer:
    """Start with ``with HostileServer() as server:``; routes are set per path."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str, behaviour: str, body: bytes = b"", **options: Any) -> str:
        with self.lock:
            self.routes[path] = Route(behaviour, body, **options)
        return self.url(path)

    def headers_of(self, path: str) -> list[dict[str, str]]:
        with self.lock:
            return [h for p, h in self.requests if p == path]
