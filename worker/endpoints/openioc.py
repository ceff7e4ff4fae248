"""``GET /api/v1/iocs/openioc``: one OpenIOC 1.1 document.

The build renders, per record, an ``<IndicatorItem>`` (variant ``openioc``) and its ``<param>``
entries (variant ``openiocp``); the edge selects the same records in both and splices them
into a fixed head, middle and tail. Ids are UUIDv5 of the build and the normalised query.
"""

from __future__ import annotations

import uuid

from worker import encoding, http
from worker.contract import formats
from worker.endpoints.exports import ExportParams, parse_export, select
from worker.endpoints.query import iso
from worker.http import Response
from worker.routing import Ctx

PARAMS = ("since", "limit")
FORMAT = formats.BY_NAME["openioc"]
# The two variants the build renders per record: the items, then their parameters.
ITEMS, PARAMETERS = (v.name for v in FORMAT.variants)
NAMESPACE = "http://openioc.org/schemas/OpenIOC_1.1"
OPENIOC_NAMESPACE = uuid.UUID("5b0f0a4e-1c55-4a53-8f0a-7d1c2b8e6a90")
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})


def _esc(text: str) -> str:
    return text.translate(_ESCAPES)


def _id(name: str) -> str:
    return str(uuid.uuid5(OPENIOC_NAMESPACE, name))


def head(build_id: str, generated_at: int, p: ExportParams, source: str) -> bytes:
    name = f"{build_id}|{p.key}"
    when = iso(generated_at)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<OpenIOC xmlns="{NAMESPACE}" id="{_id("document:" + name)}" last-modified="{when}" '
        f'published-date="{when}">\n<metadata>'
        f"<short_description>{_esc(source)} indicators</short_description>"
        f"<description>Indicators of compromise extracted from public security articles, "
        f"last seen {iso(p.since)} to {iso(p.until)}. Each item's confidence, source article "
        f"and context are in the parameters.</description>"
        f"<keywords>{_esc(source)} ioc</keywords><authored_by>{_esc(source)}</authored_by>"
        f"<authored_date>{when}</authored_date>"
        f'<links><link rel="feed_version">{_esc(build_id)}</link></links></metadata>\n'
        f'<criteria><Indicator operator="OR" id="{_id("indicator:" + name)}">\n'
    ).encode()


MIDDLE = b"</Indicator></criteria>\n<parameters>\n"
TAIL = b"</parameters>\n</OpenIOC>\n"


def document(
    build_id: str, generated_at: int, p: ExportParams, source: str, items: bytes, params: bytes
) -> bytes:
    """The document answering ``p`` on build ``build_id``, around its precomputed fragments."""
    return head(build_id, generated_at, p, source) + items + MIDDLE + params + TAIL


def openioc_document(ctx: Ctx) -> Response:
    build = ctx.build()
    assert ctx.tier is not None  # a key route: App._admit set the key's tier
    p = parse_export(ctx.req.query, ctx.tier, build.generated_at, PARAMS)
    return encoding.conditional(
        ctx.req,
        http.strong_etag(f"{FORMAT.name}|{build.build_id}|{p.key}"),
        FORMAT.media_type,
        lambda: document(
            build.build_id,
            build.generated_at,
            p,
            ctx.app.source_name,
            select(build, p, ITEMS).data,
            select(build, p, PARAMETERS).data,
        ),
        modified=build.generated_at,
    )
