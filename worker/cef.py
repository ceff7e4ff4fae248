"""``GET /api/v1/iocs/cef``: CEF events, bare (``format=cef``) or as RFC 5424 syslog messages
(``format=syslog``), one per line. Both variants are rendered at build time; the answer is the
selected lines as they are.
"""

from __future__ import annotations

from worker.export_query import conditional, etag, parse_export, select
from worker.http import Response
from worker.routing import Ctx

PARAMS = ("format", "since", "limit")
FORMATS = ("cef", "syslog")
MEDIA_TYPE = "text/plain; charset=utf-8"


def cef_events(ctx: Ctx) -> Response:
    build = ctx.build()
    assert ctx.tier is not None  # a key route: App._admit set the key's tier
    p = parse_export(ctx.req.query, ctx.tier, build.generated_at, PARAMS, FORMATS)
    return conditional(
        ctx.req,
        build,
        etag(f"cef|{build.build_id}|{p.key}"),
        MEDIA_TYPE,
        lambda: select(build, p, p.format).data,
    )
