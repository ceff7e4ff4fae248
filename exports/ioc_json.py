"""JSON list records (the spec's ``IOC`` object), each followed by a comma.

Two variants: with ``context`` (the default) and without (``include_context=false``).
"""

from __future__ import annotations

from typing import Any

import orjson

from exports.model import IOCRecord
from exports.timefmt import iso_z


def record_dict(r: IOCRecord, *, context: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": r.id,
        "type": r.type,
        "value": r.value,
        "confidence": r.confidence,
        "first_seen": iso_z(r.first_seen),
        "last_seen": iso_z(r.last_seen),
        "source": {
            "article_id": r.article_id,
            "article_title": r.article_title,
            "article_url": r.article_url,
            "feed_name": r.feed_name,
            "category": r.category,
        },
    }
    if context:
        out["context"] = r.context
    out["tags"] = list(r.tags)
    out["categories"] = list(r.categories)
    out["mitre_techniques"] = list(r.mitre_techniques)
    out["status"] = r.status
    out["valid_until"] = iso_z(r.valid_until) if r.valid_until else None
    out["warnings"] = list(r.warnings)
    return out


def render_line(r: IOCRecord) -> bytes:
    return orjson.dumps(record_dict(r)) + b","


def render_line_no_context(r: IOCRecord) -> bytes:
    return orjson.dumps(record_dict(r, context=False)) + b","


def render_lines(records: list[IOCRecord]) -> tuple[list[bytes], list[bytes]]:
    """``render_line`` and ``render_line_no_context`` of every record, one dict each."""
    with_context, without = [], []
    for r in records:
        out = record_dict(r)
        with_context.append(orjson.dumps(out) + b",")
        del out["context"]  # the other keys keep their order: record_dict(r, context=False)
        without.append(orjson.dumps(out) + b",")
    return with_context, without
