"""``GET /api/v1/iocs``: pick the precomputed default answer or compose one from partitions."""

from __future__ import annotations

import json
import re

from worker.buckets.storage import Build
from worker.contract import formats, layout
from worker.contract.tiers import Tier
from worker.encoding import conditional
from worker.endpoints import query
from worker.endpoints.params import ListParams, link_params, parse_list
from worker.http import Request, Response, query_string, strong_etag
from worker.routing import Ctx

CONTENT_TYPES = {f.name: f.media_type for f in formats.LISTED}
# The lines an answer holds before its records, by Content-Type (CSV's header row).
HEADER_LINES = {f.media_type: f.header.count(b"\n") for f in formats.LISTED if f.header}
MAX_CACHED_RESPONSES = 2048
JSON_HEAD = re.compile(rb'\{"meta":\{"total":(\d+),"limit":(\d+),"offset":(\d+),')


def _links(req: Request, public_url: str | None, p: ListParams, total: int) -> dict[str, str]:
    base = req.base_url(public_url) + req.path + "?"
    links = {"self": base + query_string(link_params(req.query, p, p.offset))}
    if p.offset + p.limit < total:
        links["next"] = base + query_string(link_params(req.query, p, p.offset + p.limit))
    if p.offset > 0:
        links["prev"] = base + query_string(link_params(req.query, p, max(0, p.offset - p.limit)))
    return links


def _etag(identity: str, tail: bytes) -> str:
    return strong_etag(identity.encode() + b"\0" + tail)


def _answer(build: Build, tier: Tier, p: ListParams, source_name: str) -> tuple[bytes, int, str]:
    """(body without links, total, identity of the bytes) for these parameters."""
    key = layout.default_key(tier.name, p.view, p.format)
    ref = build.ref(key) if p.is_default else None
    if ref is not None:
        body = build.read(key) or b""
        total = _total_of(body, p) if formats.BY_NAME[p.format].json_envelope else -1
        return body, total, ref.sha256
    q = query.Query(p.view, p.variant, p.since, p.until, p.offset, p.limit)
    body, sel = query.render(build, q, p.format, source_name)
    return body, sel.total, f"{build.build_id}|{tier.name}|{q}|{p.format}"


def _total_of(body: bytes, p: ListParams) -> int:
    """``meta.total`` of a precomputed JSON answer: it is the first member of ``meta``."""
    start = body.index(b'"total":') + 8
    return int(body[start : body.index(b",", start)])


def _full_answer(
    req: Request, build: Build, tier: Tier, p: ListParams, public_url: str | None, source_name: str
) -> tuple[bytes, str]:
    body, total, identity = _answer(build, tier, p, source_name)
    tail = b""
    if formats.BY_NAME[p.format].json_envelope:
        links = _links(req, public_url, p, total)
        tail = b',"links":' + json.dumps(links, separators=(",", ":")).encode() + b"}"
    return body + tail, _etag(identity, tail)


def _cached_default(
    req: Request, build: Build, tier: Tier, p: ListParams, public_url: str | None, source_name: str
) -> tuple[bytes, str]:
    """The hourly poll's whole answer, kept per build (bounded: Host headers vary)."""
    memo = build.responses
    key = (tier.name, req.base_url(public_url), req.path, tuple(sorted(req.query.items())))
    found = memo.get(key)
    if found is None:
        if len(memo) >= MAX_CACHED_RESPONSES:
            memo.clear()
        found = memo[key] = _full_answer(req, build, tier, p, public_url, source_name)
    return found


def list_iocs(ctx: Ctx) -> Response:
    assert ctx.tier is not None  # a key route: App._admit set the key's tier
    resp = list_answer(
        ctx.req,
        ctx.build(),
        ctx.tier,
        public_url=ctx.app.public_url,
        source_name=ctx.app.source_name,
    )
    ctx.iocs = count_records(resp)
    return resp


def count_records(resp: Response) -> int:
    """How many indicators an answer holds (for the usage log), without parsing it."""
    if resp.content_type == CONTENT_TYPES["json"]:
        head = JSON_HEAD.match(resp.body)  # meta leads with total, limit, offset: O(1)
        if head is None:
            return resp.body.count(b'{"id":')
        total, limit, offset = map(int, head.groups())
        return max(0, min(limit, total - offset))
    return max(0, resp.body.count(b"\n") - HEADER_LINES.get(resp.content_type, 0))


def list_answer(
    req: Request, build: Build, tier: Tier, *, public_url: str | None, source_name: str
) -> Response:
    p = parse_list(req.query, tier, build.generated_at, layout.LIST_FORMATS)
    shared = p.is_default and "api_key" not in req.query
    if shared:
        body, etag = _cached_default(req, build, tier, p, public_url, source_name)
    else:
        body, etag = _full_answer(req, build, tier, p, public_url, source_name)
    resp = conditional(
        req, etag, CONTENT_TYPES[p.format], lambda: body, modified=build.generated_at
    )
    resp.shared = build if shared else None
    return resp
