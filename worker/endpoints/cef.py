"""``GET /api/v1/iocs/cef``: CEF events, bare (``format=cef``) or as RFC 5424 syslog messages
(``format=syslog``), one per line. Both variants are rendered at build time; the answer is the
selected lines as they are.
"""

from __future__ import annotations

from worker import encoding, http
from worker.contract import formats
from worker.endpoints.exports import parse_export, select
from worker.http import Response
from worker.routing import Ctx

PARAMS = ("format", "since", "limit")
ROUTE = formats.BY_NAME["cef"].path
# The formats of this route, in the table's order: the first is the default.
FORMATS = tuple(f.name for f in formats.FORMATS if f.route == ROUTE)


def cef_events(ctx: Ctx) -> Response:
    build = ctx.build()
    assert ctx.tier is not None  # a key route: App._admit set the key's tier
    p = parse_export(ctx.req.query, ctx.tier, build.generated_at, PARAMS, FORMATS)
    return encoding.conditional(
        ctx.req,
        http.strong_etag(f"cef|{build.build_id}|{p.key}"),
        formats.BY_NAME[p.format].media_type,
        lambda: select(build, p, p.format).data,
        modified=build.generated_at,
    )
