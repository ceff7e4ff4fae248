"""Content-Encoding negotiation: the last step before a response is sent.

Bodies of at least ``MIN_SIZE`` bytes of a text-like type are compressed with the best coding
the client accepts (brotli when the ``brotli`` package is installed, else gzip). The
representation gets its own strong ETag (``"tag"`` → ``"tag-gzip"``), ``If-None-Match`` is
checked against it, and ``Vary: Accept-Encoding`` goes on every such answer, 304s included.
An ETag names its bytes exactly, so compressed bodies are kept under (ETag, coding): the hourly
poll's answer is compressed once per build, not once per request.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable

from worker.buckets.cache import ByteCache
from worker.http import Request, Response, etag_matches

try:  # optional: a small compiled extension; gzip alone is enough
    import brotli
except ImportError:  # pragma: no cover - depends on the installation
    brotli = None

MIN_SIZE = 1024
LARGE = 256 * 1024  # above this, the fastest levels: the body is rarely asked for twice
TEXTUAL = (
    "text/",
    "application/json",
    "application/xml",
    "application/stix+json",
    "application/taxii+json",
    "image/svg+xml",
)


def _gzip(body: bytes) -> bytes:
    return gzip.compress(body, compresslevel=6 if len(body) <= LARGE else 1, mtime=0)


def _brotli(body: bytes) -> bytes:
    compressed: bytes = brotli.compress(body, quality=5 if len(body) <= LARGE else 1)
    return compressed


CODERS: dict[str, Callable[[bytes], bytes]] = {"gzip": _gzip}
if brotli is not None:
    CODERS["br"] = _brotli
PREFERENCE = ("br", "gzip")  # on equal q-values, the smaller output wins


def accepted(header: str | None) -> dict[str, float]:
    """``Accept-Encoding`` as coding → q-value (a malformed q counts as 0)."""
    weights: dict[str, float] = {}
    for item in (header or "").split(","):
        name, _, params = item.strip().partition(";")
        name = name.strip().lower()
        if not name:
            continue
        q = 1.0
        key, _, value = params.strip().partition("=")
        if key.strip().lower() == "q":
            try:
                q = min(1.0, max(0.0, float(value)))
            except ValueError:
                q = 0.0
        weights[name] = q
    return weights


def choose(header: str | None) -> str | None:
    """The coding to send, or None for identity (ties go to compression, br before gzip)."""
    if not header:  # the common poller: nothing to negotiate
        return None
    weights = accepted(header)
    star = weights.get("*")

    def q(name: str, default: float) -> float:
        return weights.get(name, star if star is not None else default)

    best = max((c for c in PREFERENCE if c in CODERS), key=lambda c: q(c, 0.0), default=None)
    # identity ranks only when named (or by "*"): "gzip;q=0.5" alone still means gzip
    if best is None or q(best, 0.0) <= 0 or q("identity", 0.0) > q(best, 0.0):
        return None
    return best


def _header(resp: Response, name: str) -> str | None:
    return next((v for k, v in resp.headers if k.lower() == name), None)


def _replace(resp: Response, name: str, value: str) -> None:
    resp.headers = [(k, v) for k, v in resp.headers if k.lower() != name]
    resp.header(name, value)


def suffixed(etag: str, coding: str) -> str:
    """The ETag of the ``coding`` representation: ``"abc"`` → ``"abc-gzip"``."""
    return f'{etag[:-1]}-{coding}"' if etag.endswith('"') else f"{etag}-{coding}"


def textual(content_type: str) -> bool:
    return content_type.startswith(TEXTUAL)


class Encoder:
    """Compresses responses for the clients that accept it; caches by ETag and coding."""

    def __init__(self, budget: int = 64 << 20) -> None:
        self.cache = ByteCache(budget)

    def __call__(self, req: Request, resp: Response) -> Response:
        if resp.status not in (200, 304) or not textual(resp.content_type):
            return resp
        vary = _header(resp, "vary")
        if not vary or "accept-encoding" not in vary.lower():
            _replace(resp, "vary", f"{vary}, Accept-Encoding" if vary else "Accept-Encoding")
        if resp.status != 200 or len(resp.body) < MIN_SIZE or _header(resp, "content-encoding"):
            return resp
        coding = choose(req.headers.get("accept-encoding"))
        if coding is None:
            return resp
        etag = _header(resp, "etag")
        if etag is not None:
            etag = suffixed(etag, coding)
            _replace(resp, "etag", etag)
            if etag_matches(req.headers.get("if-none-match"), etag):
                resp.status, resp.body = 304, b""
                return resp
        resp.body = self._encode(resp.body, coding, etag)
        resp.header("content-encoding", coding)
        return resp

    def _encode(self, body: bytes, coding: str, etag: str | None) -> bytes:
        if etag is None:
            return CODERS[coding](body)
        found = self.cache.get(etag)
        if found is None:
            found = CODERS[coding](body)
            self.cache.put(etag, found)
        return found
