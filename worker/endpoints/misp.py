"""``GET /api/v1/iocs/misp`` (one MISP event) and ``GET /feeds/misp/{name}`` (the MISP feed).

The event wraps the selected attributes, rendered at build time, in the envelope of
``worker.contract.misp_event``; its uuid is a function of the build and the normalised query, so the
same question about the same build is the same event. The feed's files were written whole by
the build (``generator/build/misp_feed.py``); the edge only checks the key and serves them.
"""

from __future__ import annotations

from worker import encoding, http
from worker.contract import formats, layout
from worker.contract.misp_event import (
    EventMeta,
    day_of,
    event_bytes,
    event_uuid,
    one_line,
    strongest_tlp,
)
from worker.endpoints.exports import ExportParams, parse_export, select
from worker.endpoints.query import iso
from worker.errors import NotFound
from worker.http import Response
from worker.routing import Ctx

PARAMS = ("type", "since", "limit")
FORMAT = formats.BY_NAME["misp"]
VARIANT = FORMAT.variants[0].name
FEED = "misp"
FEED_TYPES = {".json": "application/json", ".csv": "text/csv; charset=utf-8"}


def event_document(
    build_id: str, generated_at: int, p: ExportParams, source: str, attributes: bytes
) -> bytes:
    """The event answering ``p`` on build ``build_id``, around its precomputed attributes."""
    type_ = p.view.split(".")[0]
    info = one_line(
        f"{source} indicators ({'all types' if type_ == 'all' else type_}), "
        f"last seen {iso(p.since)} to {iso(p.until)}"
    )
    tags = (f"tlp:{strongest_tlp(attributes)}", "type:OSINT")
    meta = EventMeta(
        event_uuid(f"{build_id}|{p.key}"), info, day_of(generated_at), generated_at, tags
    )
    return event_bytes(meta, source, attributes)


def misp_event(ctx: Ctx) -> Response:
    build = ctx.build()
    assert ctx.tier is not None  # a key route: App._admit set the key's tier
    p = parse_export(ctx.req.query, ctx.tier, build.generated_at, PARAMS)
    return encoding.conditional(
        ctx.req,
        http.strong_etag(f"{FORMAT.name}|{build.build_id}|{p.key}"),
        FORMAT.media_type,
        lambda: event_document(
            build.build_id,
            build.generated_at,
            p,
            ctx.app.source_name,
            select(build, p, VARIANT).data,
        ),
        modified=build.generated_at,
    )


def feed_file(ctx: Ctx) -> Response:
    """``manifest.json``, ``hashes.csv`` or ``<event uuid>.json`` of the current build's feed."""
    build = ctx.build()
    name = ctx.params["name"]
    key = layout.feed_key(FEED, name)
    ref = build.ref(key)
    content_type = FEED_TYPES.get(name[name.rfind(".") :]) if "." in name else None
    if ref is None or content_type is None:
        raise NotFound(f"The MISP feed has no file named {name!r}")
    resp = encoding.conditional(
        ctx.req,
        ref.text_tag,
        content_type,
        lambda: build.text(key) or b"",
        modified=build.generated_at,
        stored=encoding.stored(build, ref),
    )
    encoding.from_object(resp, ref)
    resp.shared = build  # the build, the path and the headers decide it: kept for the hot path
    return resp
