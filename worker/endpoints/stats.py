"""``GET /api/v1/iocs/stats``: the build's precomputed statistics wrapped in ``meta``.

The build writes the ``data`` member once (``generator/build/stats.py``); the worker prefixes the
meta of the build it serves and keeps the finished answer per build.
"""

from __future__ import annotations

from worker.buckets.storage import Build
from worker.contract import layout
from worker.endpoints.query import iso, json_envelope
from worker.endpoints.search import cacheable
from worker.errors import Unavailable
from worker.http import Response
from worker.routing import Ctx


def stats_answer(build: Build, source_name: str) -> bytes:
    def make() -> bytes:
        data = build.read(layout.STATS_KEY)
        if data is None:
            raise Unavailable("The published build has no statistics; rebuild and publish.")
        meta = {
            "generated_at": iso(build.generated_at),
            "feed_version": build.build_id,
            "source": source_name,
        }
        return json_envelope(meta, data)

    return build.cached(f"stats:{source_name}", make)


def get_stats(ctx: Ctx) -> Response:
    build = ctx.build()
    return cacheable(
        ctx.req, build, stats_answer(build, ctx.app.source_name), f"stats|{ctx.app.source_name}"
    )
