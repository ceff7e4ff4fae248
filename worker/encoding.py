"""Content-Encoding negotiation, and conditional GET against the representation it selects.

Bodies of at least ``MIN_SIZE`` bytes of a text-like type are compressed with the best coding
the client accepts (brotli when the ``brotli`` package is installed, else gzip); ``Encoder`` does
that as the last step before a response is sent. The representation gets its own strong ETag
(``"tag"`` → ``"tag-gzip"``), and ``Vary: Accept-Encoding`` goes on every such answer, 304s
included. Every route answers ``If-None-Match`` through ``conditional``, which compares it with
the tag of the representation a 200 would carry and names that tag in the 304 (RFC 9110
§ 13.1.2, § 15.4.5). An ETag names its bytes exactly, so compressed bodies are kept under
(ETag, coding): an answer composed at request time is compressed once per build, not once per
request.

An answer that is one stored object, stored compressed (``worker/contract/coded.py``), is sent
as stored to a client that accepts its coding: ``conditional`` with ``stored`` negotiates that
coding first on equal q-values and sends the bucket's bytes with ``Content-Encoding``, so
nothing is compressed in the request path. A client that refuses it gets the text, inflated.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from worker.buckets.cache import ByteCache
from worker.http import PRIVATE, Request, Response, etag_matches, http_date

if TYPE_CHECKING:
    from worker.buckets.storage import Build, ObjectRef

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


def choose(header: str | None, prefer: str | None = None) -> str | None:
    """The coding to send, or None for identity (ties go to compression: ``prefer``, the
    coding an answer is stored in, first, then br before gzip)."""
    if not header:  # the common poller: nothing to negotiate
        return None
    weights = accepted(header)
    star = weights.get("*")

    def q(name: str, default: float) -> float:
        return weights.get(name, star if star is not None else default)

    order = ((prefer,) if prefer in CODERS else ()) + PREFERENCE
    best = max((c for c in order if c in CODERS), key=lambda c: q(c, 0.0), default=None)
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


def coding_for(req: Request, content_type: str, prefer: str | None = None) -> str | None:
    """The coding a 200 of ``content_type`` is sent in when its body has ``MIN_SIZE`` bytes or
    more (``prefer``: the coding it is stored in); None: identity whatever its size."""
    if not textual(content_type):
        return None
    return choose(req.headers.get("accept-encoding"), prefer)


@dataclass(frozen=True, slots=True)
class Stored:
    """An answer that is one object stored compressed: its coding and its stored bytes (a text
    of at least ``MIN_SIZE`` bytes, so its coded representation is always the coded one)."""

    coding: str
    packed: Callable[[], bytes]


def stored(build: Build, ref: ObjectRef | None) -> Stored | None:
    """The stored form of object ``ref`` of ``build`` when it is stored compressed."""
    if ref is None or ref.coding is None:
        return None
    coding = ref.coding
    return Stored(coding, lambda: build.packed(ref))


def selected_tag(
    req: Request,
    etag: str,
    content_type: str,
    body: Callable[[], bytes],
    prefer: str | None = None,
) -> tuple[str, bytes | None]:
    """(the ETag a 200 would carry, the body if it had to be computed to know that).

    ``etag`` is the identity tag. The body is computed only when the answer depends on its size:
    the client accepts a coding and ``If-None-Match`` matches by ``*`` or by the identity tag.
    A listed coded tag needs no body: it is only ever sent beside a coded body of the bytes the
    tag names, so a 200 of those bytes would be coded again."""
    inm = req.headers.get("if-none-match") or ""
    coding = coding_for(req, content_type, prefer) if inm else None
    if coding is None:
        return etag, None
    coded = suffixed(etag, coding)
    if inm.strip() != "*" and etag_matches(inm, coded):
        return coded, None
    if not etag_matches(inm, etag):  # no tag can match: a 200, its body computed by the caller
        return etag, None
    content = body()
    return (coded if len(content) >= MIN_SIZE else etag), content


def conditional(
    req: Request,
    etag: str,
    content_type: str,
    body: Callable[[], bytes],
    *,
    modified: int | None,
    cache: str = PRIVATE,
    stored: Stored | None = None,
) -> Response:
    """Conditional GET for every route: a 200 with ``body()``, or a 304 when ``If-None-Match``
    matches the tag of the representation the 200 would be (``etag``, the identity tag, or its
    coded form: ``selected_tag``); the 304 names that tag and is computed without the body where
    the tag alone decides. Headers in this order: ``etag`` (on a 200 the identity tag, which
    ``Encoder`` suffixes when it compresses), ``last-modified`` (``modified``, a Unix time; None
    leaves it out), ``cache-control`` (``cache``). With ``stored``, a client that accepts its
    coding gets the stored bytes, their coded tag and ``Content-Encoding`` (``body`` is not
    called); any other gets ``body()``, the text."""
    prefer = stored.coding if stored is not None else None
    if stored is not None and coding_for(req, content_type, prefer) == prefer:
        tag, content = suffixed(etag, stored.coding), None
    else:
        stored = None
        tag, content = selected_tag(req, etag, content_type, body, prefer)
    if etag_matches(req.headers.get("if-none-match"), tag):
        resp = Response(304, b"", content_type)
        resp.header("etag", tag)
    elif stored is not None:
        resp = Response(200, stored.packed(), content_type)
        resp.header("etag", tag)
        resp.header("content-encoding", stored.coding)
    else:
        resp = Response(200, body() if content is None else content, content_type)
        resp.header("etag", etag)
    if modified is not None:
        resp.header("last-modified", http_date(modified))
    resp.header("cache-control", cache)
    return resp


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
        etag = _header(resp, "etag")  # a 304 was decided on this tag already (``conditional``)
        if etag is not None:
            etag = suffixed(etag, coding)
            _replace(resp, "etag", etag)
        resp.body = self._encode(resp.body, coding, etag)
        resp.source = None  # the body is no longer the stored object's bytes
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


def from_object(resp: Response, ref: ObjectRef | None) -> Response:
    """Name ``ref`` the source of ``resp`` (an edge may send the object itself) when the body
    is the object byte for byte: a text stored as text, or the stored bytes of a coded one."""
    if ref is not None and (ref.coding is None or _header(resp, "content-encoding") == ref.coding):
        resp.source = ref
    return resp
