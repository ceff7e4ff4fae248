"""``GET /api/v1/iocs``: a page of indicators, the precomputed default answer or one composed
from day partitions (``worker.endpoints.query``)."""

from __future__ import annotations

import json
import re

from worker.buckets.storage import Build
from worker.contract import formats, layout
from worker.contract.tiers import Tier
from worker.encoding import conditional, from_object, stored
from worker.endpoints import query
from worker.endpoints.params import ListParams, link_params, parse_list
from worker.errors import Gone, InvalidParameter, Unavailable
from worker.http import Request, Response, query_string, strong_etag
from worker.routing import Ctx

CONTENT_TYPES = {f.name: f.media_type for f in formats.LISTED}
# The lines an answer holds before its records, by Content-Type (CSV's header row).
HEADER_LINES = {f.media_type: f.header.count(b"\n") for f in formats.LISTED if f.header}
MAX_CACHED_RESPONSES = 2048
JSON_HEAD = re.compile(rb'\{"meta":\{"total":(\d+),"limit":(\d+),"offset":(\d+),')


TOTAL_HEADER = "x-total-count"


def _links(
    req: Request, public_url: str | None, p: ListParams, total: int, build_id: str
) -> dict[str, str]:
    base = req.base_url(public_url) + req.path + "?"

    def link(offset: int) -> str:
        return base + query_string(link_params(req.query, p, offset, build_id))

    links = {"self": link(p.offset)}
    if p.offset + p.limit < total:
        links["next"] = link(p.offset + p.limit)
    if p.offset > 0:
        links["prev"] = link(max(0, p.offset - p.limit))
    return links


def link_header(links: dict[str, str]) -> str:
    """RFC 8288 ``Link`` of a text page: its next and previous pages."""
    return ", ".join(f'<{links[rel]}>; rel="{rel}"' for rel in ("next", "prev") if rel in links)


def _etag(identity: str, tail: bytes) -> str:
    return strong_etag(identity.encode() + b"\0" + tail)


def _answer(build: Build, tier: Tier, p: ListParams, source_name: str) -> tuple[bytes, int, str]:
    """(body without links, total, identity of the bytes) for these parameters."""
    key = layout.default_key(tier.name, p.view, p.format)
    ref = build.ref(key) if p.is_default else None
    if ref is not None:
        stored = build.read(key) or b""
        if formats.BY_NAME[p.format].json_envelope:  # its meta names the build: put around it
            body, total = query.default_body(build, _query(p), stored, source_name)
            return body, total, f"{ref.sha256}|{build.build_id}"
        return stored, -1, ref.sha256
    q = _query(p)
    body, sel = query.render(build, q, p.format, source_name)
    return body, sel.total, f"{build.build_id}|{tier.name}|{q}|{p.format}"


Answer = tuple[bytes, str, dict[str, str]]  # body, ETag, headers (text pages: Link, total)


def _full_answer(
    req: Request, build: Build, tier: Tier, p: ListParams, public_url: str | None, source_name: str
) -> Answer:
    body, total, identity = _answer(build, tier, p, source_name)
    if formats.BY_NAME[p.format].json_envelope:
        links = _links(req, public_url, p, total, build.build_id)
        tail = b',"links":' + json.dumps(links, separators=(",", ":")).encode() + b"}"
        return body + tail, _etag(identity, tail), {}
    if total < 0:  # a precomputed text answer: its total from the view index
        total = query.select_total(build, _query(p))
    links = _links(req, public_url, p, total, build.build_id)
    headers = {TOTAL_HEADER: str(total)}
    if link_header(links):
        headers["link"] = link_header(links)
    shown = json.dumps(headers, sort_keys=True).encode()
    return body, _etag(identity, shown), headers


def _query(p: ListParams) -> query.Query:
    return query.Query(p.view, p.variant, p.since, p.until, p.offset, p.limit)


def _cached_default(
    req: Request, build: Build, tier: Tier, p: ListParams, public_url: str | None, source_name: str
) -> Answer:
    """The hourly poll's whole answer, kept per build (bounded: Host headers vary)."""
    memo = build.responses
    key = (tier.name, req.base_url(public_url), req.path, tuple(sorted(req.query.items())))
    found = memo.get(key)
    if found is None:
        if len(memo) >= MAX_CACHED_RESPONSES:
            memo.clear()
        found = memo[key] = _full_answer(req, build, tier, p, public_url, source_name)
    return found


def pinned_build(ctx: Ctx) -> Build:
    """The build a paging client began on (``build``, from ``links.next``), else the current."""
    build_id = ctx.req.query.get("build")
    if build_id is None:
        return ctx.build()
    build = ctx.app.builds.pinned(build_id)
    if build is None:
        raise Gone(
            f"Build {build_id} is no longer served; start the walk again without build",
            details={"parameter": "build", "value": build_id},
        )
    return build


def list_iocs(ctx: Ctx) -> Response:
    assert ctx.tier is not None  # a key route: App._admit set the key's tier
    resp, ctx.iocs = counted_answer(
        ctx.req,
        pinned_build(ctx),
        ctx.tier,
        public_url=ctx.app.public_url,
        source_name=ctx.app.source_name,
    )
    return resp


def count_records(resp: Response) -> int:
    """How many indicators an answer holds (for the usage log), without parsing it."""
    return count_in(resp.content_type, resp.body)


def count_in(content_type: str, body: bytes) -> int:
    """How many indicators the text ``body`` of an answer of ``content_type`` holds."""
    if content_type == CONTENT_TYPES["json"]:
        head = JSON_HEAD.match(body)  # meta leads with total, limit, offset: O(1)
        if head is None:
            return body.count(b'{"id":')
        total, limit, offset = map(int, head.groups())
        return max(0, min(limit, total - offset))
    return max(0, body.count(b"\n") - HEADER_LINES.get(content_type, 0))


def list_answer(
    req: Request, build: Build, tier: Tier, *, public_url: str | None, source_name: str
) -> Response:
    return counted_answer(req, build, tier, public_url=public_url, source_name=source_name)[0]


def counted_answer(
    req: Request, build: Build, tier: Tier, *, public_url: str | None, source_name: str
) -> tuple[Response, int]:
    """The answer and how many indicators it holds (counted on its text: a precomputed text
    answer may be sent as its stored, compressed bytes)."""
    p = parse_list(req.query, tier, build.generated_at, layout.LIST_FORMATS)
    shared = p.is_default and "api_key" not in req.query
    if shared:
        body, etag, headers = _cached_default(req, build, tier, p, public_url, source_name)
    else:
        body, etag, headers = _full_answer(req, build, tier, p, public_url, source_name)
    # a precomputed text answer is its stored object, byte for byte (compressed or not)
    whole = p.is_default and not formats.BY_NAME[p.format].json_envelope
    ref = build.ref(layout.default_key(tier.name, p.view, p.format)) if whole else None
    content_type = CONTENT_TYPES[p.format]
    resp = conditional(
        req,
        etag,
        content_type,
        lambda: body,
        modified=build.generated_at,
        stored=stored(build, ref),
    )
    for name, value in headers.items():
        resp.header(name, value)
    resp.shared = build if shared else None
    from_object(resp, ref)
    return resp, count_in(content_type, body) if resp.status == 200 else count_records(resp)


SUPPRESSED_FORMATS = {"json": "application/json", "csv": "text/csv; charset=utf-8"}
SUPPRESSED_PARAMS = frozenset({"format", "api_key"})
NO_REPORT = "The published build has no suppression report; rebuild and publish."


def suppressed_answer(build: Build, tier: Tier, source_name: str) -> bytes:
    """The tier's suppression report as JSON (``generator/build/suppressed.py``): its stored
    ``data`` member in an envelope with the build's ``meta``."""

    def make() -> bytes:
        data = build.read(layout.suppressed_key(tier.name, "json"))
        if data is None:
            raise Unavailable(NO_REPORT)
        meta = {
            "generated_at": query.iso(build.generated_at),
            "feed_version": build.build_id,
            "source": source_name,
            "tier": tier.name,
            "lookback_days": tier.lookback_days,
        }
        return query.json_envelope(meta, data)

    return build.cached(f"suppressed:{tier.name}:json:{source_name}", make)


def suppressed_csv(ctx: Ctx, build: Build, tier: Tier) -> Response:
    """The CSV report is its object byte for byte: a client that accepts its stored coding
    (``worker/contract/coded.py``) gets the stored bytes, any other the text, inflated once per
    build; the ETag is the text's hash, as for every object served whole."""
    key = layout.suppressed_key(tier.name, "csv")
    ref = build.ref(key)
    if ref is None:
        raise Unavailable(NO_REPORT)

    def rows() -> int:
        return max(0, (build.text(key) or b"").count(b"\n") - 1)

    ctx.iocs = build.cached(f"suppressed:{tier.name}:csv-rows", rows)
    resp = conditional(
        ctx.req,
        ref.text_tag,
        SUPPRESSED_FORMATS["csv"],
        lambda: build.text(key) or b"",
        modified=build.generated_at,
        stored=stored(build, ref),
    )
    return from_object(resp, ref)


def suppressed_report(ctx: Ctx) -> Response:
    """``GET /api/v1/iocs/suppressed``: what the build held back (suppressed or withdrawn),
    within the key's lookback, by which list and from which article."""
    assert ctx.tier is not None  # a key route: App._admit set the key's tier
    unknown = sorted(set(ctx.req.query) - SUPPRESSED_PARAMS)
    if unknown:
        raise InvalidParameter(
            f"Unknown parameter: {unknown[0]}", details={"valid_parameters": ["format"]}
        )
    fmt = ctx.req.query.get("format", "json")
    if fmt not in SUPPRESSED_FORMATS:
        raise InvalidParameter(
            f"Invalid format: {fmt}", details={"valid_formats": list(SUPPRESSED_FORMATS)}
        )
    build = ctx.build()
    if fmt == "csv":
        return suppressed_csv(ctx, build, ctx.tier)
    body = suppressed_answer(build, ctx.tier, ctx.app.source_name)
    ctx.iocs = body.count(b'"held_by":')
    identity = f"{build.build_id}|suppressed|{ctx.tier.name}|{fmt}|{ctx.app.source_name}"
    return conditional(
        ctx.req,
        strong_etag(identity),
        SUPPRESSED_FORMATS[fmt],
        lambda: body,
        modified=build.generated_at,
    )
