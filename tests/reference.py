"""A straightforward reference for list queries: filter, sort, slice and render the records.

It shares nothing with the build tree or the worker's query engine; it only reuses the
record renderers, so that a difference means the partitions or indexes answered wrongly.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

from exports.ioc_json import record_dict
from exports.model import IOCRecord
from exports.registry import VARIANT_RENDERERS
from worker import formats
from worker.params import LINK_ORDER
from worker.tiers import Tier


def iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def reference(records: list[IOCRecord], *, tier: Tier, generated_at: int, build_id: str,
              params: dict[str, str], since: int, until: int, base: str) -> tuple[str, object]:
    """(format, expected): parsed JSON document for json, bytes for the other list formats."""
    t, c, f = (params.get(k, "all") for k in ("type", "category", "confidence"))
    limit = min(int(params.get("limit", 100)), tier.max_limit)
    offset = int(params.get("offset", 0))
    fmt = params.get("format", "json")
    context = params.get("include_context", "true") in ("true", "1")
    matching = [
        r for r in records
        if (t == "all" or r.type == t) and (c == "all" or r.category == c)
        and (f == "all" or r.confidence == f) and since <= r.last_seen <= until
    ]
    matching.sort(key=lambda r: (-r.last_seen, r.type, r.value))
    page = matching[offset : offset + limit]
    if not formats.BY_NAME[fmt].json_envelope:  # CSV's header or nothing, then the lines
        return fmt, formats.BY_NAME[fmt].header + b"".join(VARIANT_RENDERERS[fmt](r) for r in page)

    def link(off: int) -> str:
        q = {k: params[k] for k in LINK_ORDER if k in params}
        q["limit"], q["offset"] = str(limit), str(off)
        return f"{base}/api/v1/iocs?" + urlencode({k: q[k] for k in LINK_ORDER if k in q})

    links = {"self": link(offset)}
    if offset + limit < len(matching):
        links["next"] = link(offset + limit)
    if offset > 0:
        links["prev"] = link(max(0, offset - limit))
    return fmt, {
        "meta": {
            "total": len(matching), "limit": limit, "offset": offset,
            "generated_at": iso(generated_at), "feed_version": build_id, "source": "socdef",
            "filters": {"type": t, "category": c, "confidence": f, "since": iso(since),
                        "until": iso(until)},
        },
        "data": [record_dict(r, context=context) for r in page],
        "links": links,
    }
