"""Minimal HTTP plumbing over raw ASGI: the request, the response, ETags and their comparison
(``worker.encoding.conditional`` answers conditional GETs with them)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from email.utils import formatdate
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode

# The cache policies, one per kind of answer: a keyed API answer is revalidated on every use (its
# ETag makes that a 304); a public site page may be reused for five minutes.
PRIVATE = "private, max-age=0, must-revalidate"
PUBLIC = "public, max-age=300"
ID_BATCH = 512  # request ids drawn from the OS random source at once
_ids: list[str] = []
NOSNIFF = (b"x-content-type-options", b"nosniff")
os.register_at_fork(after_in_child=_ids.clear)  # a forked process never repeats its parent's


def new_request_id() -> str:
    """``req_`` and 16 hex digits from the OS random source, drawn in batches (one system call
    per ``ID_BATCH`` ids; ``list.pop`` keeps it safe across threads)."""
    try:
        return _ids.pop()
    except IndexError:
        raw = os.urandom(8 * ID_BATCH).hex()
        _ids.extend(["req_" + raw[i : i + 16] for i in range(0, len(raw), 16)])
        return _ids.pop()


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    scheme: str
    client: str
    body: bytes = b""

    @classmethod
    def from_scope(cls, scope: dict[str, Any]) -> Request:
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        raw = scope.get("query_string", b"").decode("latin-1")
        client = scope.get("client") or ("-", 0)
        return cls(
            method=scope["method"],
            path=scope["path"],
            query=dict(parse_qsl(raw, keep_blank_values=True)),
            headers=headers,
            scheme=scope.get("scheme", "http"),
            client=str(client[0]),
        )

    def base_url(self, public_url: str | None) -> str:
        if public_url:
            return public_url.rstrip("/")
        host = self.headers.get("host", "localhost")
        return f"{self.scheme}://{host}"


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    # The Build whose bytes alone, with the path, the query, Host, the scheme, the key's tier,
    # Accept-Encoding and If-None-Match, determine this answer; the worker then keeps it for
    # its hot path (``worker.app``). None (the default): the answer depends on more.
    shared: Any = None
    ready: Any = None  # set by the app on a shared answer: (route, tier name, indicators)

    def header(self, name: str, value: str | int) -> None:
        self.headers.append((name, str(value)))

    def raw_headers(self, head_only: bool) -> list[tuple[bytes, bytes]]:
        out = [(b"content-type", self.content_type.encode())] if self.status != 304 else []
        if self.status != 304:
            out.append((b"content-length", str(len(self.body)).encode()))
        out.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers)
        if not any(k == "x-content-type-options" for k, _ in self.headers):
            out.append(NOSNIFF)  # no answer is ever to be read as another media type
        return out


@lru_cache(maxsize=256)  # called with a build's generated_at on every answer
def http_date(ts: int) -> str:
    return formatdate(ts, usegmt=True)


def strong_etag(identity: str | bytes) -> str:
    """The quoted strong ETag of an answer whose bytes ``identity`` determines."""
    raw = identity.encode() if isinstance(identity, str) else identity
    return '"' + hashlib.blake2b(raw, digest_size=12).hexdigest() + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    tags = (t.strip().removeprefix("W/") for t in if_none_match.split(","))
    return etag in tags


def query_string(params: dict[str, str]) -> str:
    return urlencode(params)
