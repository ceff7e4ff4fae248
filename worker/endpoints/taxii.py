"""TAXII 2.1 read endpoints under ``/api/taxii2/``: every answer is precomputed bytes, sliced.

Discovery (no key), API root, collections, one collection, objects, one object, object
versions and manifest. The resources were written by the build (``generator/build/taxii.py``);
object and manifest pages are cut from the collection's entries (``worker/endpoints/taxii_index.py``)
and wrapped in a TAXII envelope, or in a STIX bundle when the ``Accept`` header asks for
``application/stix+json`` (the OpenAPI spec's declared answer). Filters, cursors and content
negotiation: ``worker/endpoints/taxii_params.py``. Routes use TAXII's error shape and media type.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from worker.buckets.storage import Build
from worker.contract import layout
from worker.contract import taxii_common as tc
from worker.contract.stix_common import STIX_NAMESPACE
from worker.encoding import conditional
from worker.endpoints.taxii_index import Page, entry_of, page_bytes, select
from worker.endpoints.taxii_params import (
    Filters,
    encode_cursor,
    negotiate,
    objects_offers,
    parse_filters,
)
from worker.errors import NotFound
from worker.http import Response, query_string, strong_etag
from worker.routing import Ctx

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


def _filters(ctx: Ctx, ids: tuple[str, ...] | None = None) -> Filters:
    assert ctx.tier is not None
    return parse_filters(ctx.req.query, ctx.tier.max_limit, ids)


def get_objects(ctx: Ctx) -> Response:
    name = _collection(ctx)
    media = negotiate(ctx.req.headers.get("accept"), objects_offers(False))
    build = ctx.build()
    f = _filters(ctx)
    return _page(ctx, build, name, f, select(build, name, f, _floor(ctx, build)), media, "obj")


def get_manifest(ctx: Ctx) -> Response:
    name = _collection(ctx)
    negotiate(ctx.req.headers.get("accept"), TAXII_ONLY)
    build = ctx.build()
    f = _filters(ctx)
    page = select(build, name, f, _floor(ctx, build))
    return _page(ctx, build, name, f, page, tc.TAXII_MEDIA_TYPE, "man")


def _known(ctx: Ctx, build: Build, name: str) -> str:
    """The object id of the path, when the collection holds it within the key's lookback."""
    oid = ctx.params.get("objectId", "")
    e = entry_of(build, name, oid)
    if e is None or e[1] < _floor(ctx, build):
        raise NotFound(f"No object {oid} in this collection")
    return oid


def get_object(ctx: Ctx) -> Response:
    name = _collection(ctx)
    media = negotiate(ctx.req.headers.get("accept"), objects_offers(False))
    build = ctx.build()
    f = _filters(ctx, (_known(ctx, build, name),))
    return _page(ctx, build, name, f, select(build, name, f, _floor(ctx, build)), media, "obj")


def get_versions(ctx: Ctx) -> Response:
    name = _collection(ctx)
    negotiate(ctx.req.headers.get("accept"), TAXII_ONLY)
    build = ctx.build()
    oid = _known(ctx, build, name)
    f = _filters(ctx, (oid,))
    page = select(
        build, name, Filters(f.after, f.limit, None, f.ids, None, f.spec_ok), _floor(ctx, build)
    )
    body: dict[str, Any] = {"more": False}
    if page.entries:
        body["versions"] = [tc.version_string(e[1]) for e in page.entries]
    resp = Response(200, json.dumps(body, separators=(",", ":")).encode(), tc.TAXII_MEDIA_TYPE)
    _date_headers(resp, page)
    return resp


def status(ctx: Ctx) -> Response:
    raise NotFound("No such status: this server is read-only and never creates one")


def _envelope(data: bytes, page: Page) -> bytes:
    parts = [b'"more":true' if page.more else b'"more":false']
    if page.cursor is not None:
        parts.append(b'"next":"' + encode_cursor(page.cursor).encode() + b'"')
    if data:
        parts.append(b'"objects":[' + data[:-1] + b"]")
    return b"{" + b",".join(parts) + b"}"


def _bundle(data: bytes, identity: str) -> bytes:
    bundle_id = f"bundle--{uuid.uuid5(STIX_NAMESPACE, 'taxii-page:' + identity)}"
    head = b'{"type":"bundle","id":"' + bundle_id.encode() + b'"'
    return head + (b',"objects":[' + data[:-1] + b"]}" if data else b"}")


def _date_headers(resp: Response, page: Page) -> None:
    if page.entries:
        resp.header("x-taxii-date-added-first", tc.timestamp_us(page.entries[0][0]))
        resp.header("x-taxii-date-added-last", tc.timestamp_us(page.entries[-1][0]))


def _page_body(build: Build, name: str, page: Page, kind: str, media: str, identity: str) -> bytes:
    data = page_bytes(build, name, page.entries, kind)
    return _envelope(data, page) if media == tc.TAXII_MEDIA_TYPE else _bundle(data, identity)


def _page(
    ctx: Ctx, build: Build, name: str, f: Filters, page: Page, media: str, kind: str
) -> Response:
    identity = f"{build.build_id}|{name}|{kind}|{media}|{f.identity()}|{_floor(ctx, build)}"
    etag = strong_etag(identity)
    ctx.iocs = len(page.entries)
    resp = conditional(
        ctx.req,
        etag,
        media,
        lambda: _page_body(build, name, page, kind, media, identity),
        modified=None,
    )
    _date_headers(resp, page)
    if media != tc.TAXII_MEDIA_TYPE and page.cursor is not None:
        resp.header("link", f'<{_next_url(ctx, page.cursor)}>; rel="next"')
    resp.shared = build  # path, query, Accept, Host and tier decide it: the worker may keep it
    return resp


def _next_url(ctx: Ctx, cursor: int) -> str:
    query = {k: v for k, v in ctx.req.query.items() if k not in ("next", "api_key")}
    query["next"] = encode_cursor(cursor)
    return ctx.req.base_url(ctx.app.public_url) + ctx.req.path + "?" + query_string(query)
