"""TAXII 2.1 read endpoints under ``/api/taxii2/``: every answer is precomputed bytes, sliced.

Discovery (no key), API root, collections, one collection, objects, one object, object
versions and manifest. The resources were written by the build (``generator/build/taxii.py``);
object and manifest pages are cut from the collection's entries (``worker/taxii/index.py``)
and wrapped in a TAXII envelope, or in a STIX bundle when the ``Accept`` header asks for
``application/stix+json`` (the OpenAPI spec's declared answer). Filters, cursors and content
negotiation: ``worker/taxii/params.py``. Routes use TAXII's error shape and media type.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

from worker.buckets.storage import Build
from worker.contract import layout
from worker.contract import taxii_common as tc
from worker.contract.stix_common import STIX_NAMESPACE
from worker.contract.taxii_epochs import Epochs
from worker.encoding import conditional
from worker.errors import NotFound
from worker.http import Response, query_string, strong_etag
from worker.routing import Ctx
from worker.taxii.index import MAX_SCAN, Page, entry_of, meta, page_bytes, select
from worker.taxii.params import (
    Filters,
    encode_cursor,
    negotiate,
    objects_offers,
    parse_filters,
)

TAXII_ONLY = (tc.TAXII_MEDIA_TYPE,)


def _resource(ctx: Ctx, key: str) -> Response:
    negotiate(ctx.req.headers.get("accept"), TAXII_ONLY)
    body = ctx.build().read(key)
    if body is None:
        raise NotFound("This build has no TAXII resources; rebuild and publish.")
    return Response(200, body, tc.TAXII_MEDIA_TYPE)


def discovery(ctx: Ctx) -> Response:
    resp = _resource(ctx, tc.DISCOVERY_KEY)
    root = json.dumps(ctx.req.base_url(ctx.app.public_url) + tc.API_ROOT).encode()
    resp.body = resp.body[:-1] + b',"default":' + root + b',"api_roots":[' + root + b"]}"
    return resp


def api_root(ctx: Ctx) -> Response:
    return _resource(ctx, tc.ROOT_KEY)


def collections(ctx: Ctx) -> Response:
    return _resource(ctx, tc.COLLECTIONS_KEY)


def _collection(ctx: Ctx) -> str:
    """The collection the path names, by id (or by alias, a convenience)."""
    raw = ctx.params.get("collectionId", "")
    name = tc.COLLECTION_IDS.get(raw.lower()) or (raw if raw in tc.COLLECTIONS else None)
    if name is None:
        raise NotFound(f"No collection {raw}")
    return name


def collection(ctx: Ctx) -> Response:
    return _resource(ctx, tc.collection_key(_collection(ctx), "info.json"))


def _floor(ctx: Ctx, build: Build) -> int:
    """The tier's lookback: objects last modified before it are not served (µs)."""
    assert ctx.tier is not None
    return (build.generated_at - ctx.tier.lookback_days * layout.DAY_SECONDS) * 1_000_000


@dataclass(frozen=True, slots=True)
class View:
    """What a request sees of a build's TAXII objects (worker/contract/taxii_epochs.py): build dates up
    to ``cap`` (None: all), served with the ``date_added`` of their epoch."""

    epochs: Epochs | None
    cap: int | None
    settled: bool  # the view no longer changes with the clock

    def served(self, build_date: int) -> int:
        return build_date if self.epochs is None else self.epochs.served(build_date)

    def lower(self, added_after: int) -> int:
        if self.epochs is None or added_after < 0:
            return added_after
        return self.epochs.lower(added_after)


def view(build: Build, now: float | None = None) -> View:
    epochs = build.cached("taxii-epochs", lambda: Epochs.parse(build.pointer.get("taxii_epochs")))
    if epochs is None:
        return View(None, None, True)
    now_us = int((time.time() if now is None else now) * 1_000_000)
    return View(epochs, epochs.cap(now_us), epochs.settled(now_us))


def page_cap(tier_per_minute: int, count: int) -> int:
    """The page size that lets one poll of ``count`` objects (a collection, a bound on the
    tier's lookback) fit in half the tier's minute limit: a poller that never retries a 429
    (OpenCTI) then gets the whole poll; the other half is left for its discovery, API root and
    collections requests and for whatever else the account does that minute."""
    pages = max(1, tier_per_minute // 2)
    return min(MAX_SCAN, math.ceil(count / pages))


def _filters(ctx: Ctx, v: View, ids: tuple[str, ...] | None = None, count: int = 0) -> Filters:
    assert ctx.tier is not None
    per_minute = int(ctx.tier.per_minute * ctx.app.limit_scale)
    f = parse_filters(ctx.req.query, ctx.tier.max_limit, ids, page_cap(per_minute, count))
    return dataclasses.replace(f, after=max(v.lower(f.added_after), f.cursor))


def _cap(v: View, f: Filters) -> int | None:
    """The visible end of this page: a poll that follows ``next`` without ``added_after`` (as
    OpenCTI does) stays on what it saw at its first page, so an epoch that turns visible mid-poll
    is left whole to the next poll rather than served now and again then."""
    if f.pinned is not None and f.added_after < 0:
        return f.pinned if v.cap is None else min(v.cap, f.pinned)
    return v.cap


def _list(ctx: Ctx, kind: str, media: str) -> Response:
    name = _collection(ctx)
    build = ctx.build()
    v = view(build)
    m = meta(build, name)
    f = _filters(ctx, v, count=m.get("served", m["count"]))
    cap = _cap(v, f)
    page = select(build, name, f, _floor(ctx, build), cap)
    return _page(ctx, build, name, f, page, media, kind, v, cap)


def get_objects(ctx: Ctx) -> Response:
    return _list(ctx, "obj", negotiate(ctx.req.headers.get("accept"), objects_offers(False)))


def get_manifest(ctx: Ctx) -> Response:
    return _list(ctx, "man", negotiate(ctx.req.headers.get("accept"), TAXII_ONLY))


def _known(ctx: Ctx, build: Build, name: str, v: View) -> str:
    """The object id of the path, when the collection holds it within the key's lookback and
    it is visible."""
    oid = ctx.params.get("objectId", "")
    e = entry_of(build, name, oid)
    if (
        e is None
        or (e[1] < _floor(ctx, build) and e[7] not in tc.TIMELESS)
        or (v.cap is not None and e[0] > v.cap)
    ):
        raise NotFound(f"No object {oid} in this collection")
    return oid


def get_object(ctx: Ctx) -> Response:
    name = _collection(ctx)
    media = negotiate(ctx.req.headers.get("accept"), objects_offers(False))
    build = ctx.build()
    v = view(build)
    f = _filters(ctx, v, (_known(ctx, build, name, v),))
    page = select(build, name, f, _floor(ctx, build), v.cap)
    return _page(ctx, build, name, f, page, media, "obj", v, v.cap)


def get_versions(ctx: Ctx) -> Response:
    name = _collection(ctx)
    negotiate(ctx.req.headers.get("accept"), TAXII_ONLY)
    build = ctx.build()
    v = view(build)
    oid = _known(ctx, build, name, v)
    f = _filters(ctx, v, (oid,))
    page = select(
        build,
        name,
        Filters(f.after, f.limit, None, f.ids, None, f.spec_ok),
        _floor(ctx, build),
        v.cap,
    )
    body: dict[str, Any] = {"more": False}
    if page.entries:
        body["versions"] = [tc.version_string(e[1]) for e in page.entries]
    resp = Response(200, json.dumps(body, separators=(",", ":")).encode(), tc.TAXII_MEDIA_TYPE)
    _date_headers(resp, page, v)
    return resp


def status(ctx: Ctx) -> Response:
    raise NotFound("No such status: this server is read-only and never creates one")


def _envelope(data: bytes, page: Page, cap: int | None) -> bytes:
    parts = [b'"more":true' if page.more else b'"more":false']
    if page.cursor is not None:
        parts.append(b'"next":"' + encode_cursor(page.cursor, cap).encode() + b'"')
    if data:
        parts.append(b'"objects":[' + data[:-1] + b"]")
    return b"{" + b",".join(parts) + b"}"


def _bundle(data: bytes, identity: str) -> bytes:
    bundle_id = f"bundle--{uuid.uuid5(STIX_NAMESPACE, 'taxii-page:' + identity)}"
    head = b'{"type":"bundle","id":"' + bundle_id.encode() + b'"'
    return head + (b',"objects":[' + data[:-1] + b"]}" if data else b"}")


def _date_headers(resp: Response, page: Page, v: View) -> None:
    if page.entries:
        resp.header("x-taxii-date-added-first", tc.timestamp_us(v.served(page.entries[0][0])))
        resp.header("x-taxii-date-added-last", tc.timestamp_us(v.served(page.entries[-1][0])))


DATE_ADDED = b'"date_added":"'
STAMP = len("2026-01-01T00:00:00.000000Z")


def served_manifest(data: bytes, page: Page, v: View) -> bytes:
    """Manifest records with the ``date_added`` clients see in place of the build date (each
    record holds the property once, and record ``k`` is entry ``k``'s)."""
    if v.epochs is None or not data:
        return data
    parts = data.split(DATE_ADDED)
    for k, e in enumerate(page.entries, 1):
        parts[k] = tc.timestamp_us(v.served(e[0])).encode() + parts[k][STAMP:]
    return DATE_ADDED.join(parts)


def _page_body(
    build: Build,
    name: str,
    page: Page,
    kind: str,
    media: str,
    identity: str,
    v: View,
    cap: int | None,
) -> bytes:
    data = page_bytes(build, name, page.entries, kind)
    if kind == "man":
        data = served_manifest(data, page, v)
    return _envelope(data, page, cap) if media == tc.TAXII_MEDIA_TYPE else _bundle(data, identity)


def _page(
    ctx: Ctx,
    build: Build,
    name: str,
    f: Filters,
    page: Page,
    media: str,
    kind: str,
    v: View,
    cap: int | None,
) -> Response:
    identity = f"{build.build_id}|{name}|{kind}|{media}|{f.identity()}|{_floor(ctx, build)}|{cap}"
    etag = strong_etag(identity)
    ctx.iocs = len(page.entries)
    resp = conditional(
        ctx.req,
        etag,
        media,
        lambda: _page_body(build, name, page, kind, media, identity, v, cap),
        modified=None,
    )
    _date_headers(resp, page, v)
    if media != tc.TAXII_MEDIA_TYPE and page.cursor is not None:
        resp.header("link", f'<{_next_url(ctx, page.cursor, cap)}>; rel="next"')
    if v.settled:  # path, query, Accept, Host and tier decide it: the worker may keep it
        resp.shared = build
    return resp


def _next_url(ctx: Ctx, cursor: int, cap: int | None) -> str:
    query = {k: v for k, v in ctx.req.query.items() if k not in ("next", "api_key")}
    query["next"] = encode_cursor(cursor, cap)
    return ctx.req.base_url(ctx.app.public_url) + ctx.req.path + "?" + query_string(query)
