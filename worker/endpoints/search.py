"""``GET /api/v1/iocs/search`` and the k-anonymity range lookup ``GET /api/v1/iocs/range/{prefix}``.

Search normalises the query (:mod:`worker.contract.ioc_norm`), hashes it and reads the one shard that
holds the hash (the base shard merged with its delta: :mod:`worker.buckets.shards`); matches and related indicators come as stored JSON lines from the day
partitions. Both answers cover every record of the build, whatever the tier's lookback: they
say whether one indicator is known, which is not bulk access to the feed (see docs/search.md).
"""

from __future__ import annotations

import json
import re
import time

from worker.buckets.shards import Entry, entries, record_json
from worker.buckets.storage import Build
from worker.contract.ioc_norm import normalise, search_hash
from worker.encoding import conditional
from worker.endpoints.params import FALSE, TRUE
from worker.endpoints.query import iso
from worker.errors import InvalidParameter
from worker.http import Request, Response, strong_etag
from worker.routing import Ctx

MIN_QUERY = 2  # the spec's minLength
MAX_QUERY = 2048
RANGE_PREFIX = re.compile(r"[0-9a-fA-F]{5}")


def _query(query: dict[str, str]) -> str:
    q = query.get("q")
    if q is None or len(q) > MAX_QUERY or len(q.strip()) < MIN_QUERY:
        raise InvalidParameter(
            f"Invalid q: give the indicator to look up, {MIN_QUERY} to {MAX_QUERY} characters",
            details={"parameter": "q", "min_length": MIN_QUERY, "max_length": MAX_QUERY},
        )
    return q


def _include_related(query: dict[str, str]) -> bool:
    raw = query.get("include_related", "true").lower()
    if raw not in TRUE | FALSE:
        raise InvalidParameter(
            "Invalid include_related: must be true or false",
            details={"parameter": "include_related"},
        )
    return raw in TRUE


def _meta(build: Build, source_name: str) -> dict[str, str]:
    return {
        "generated_at": iso(build.generated_at),
        "feed_version": build.build_id,
        "source": source_name,
    }


def _related_refs(matches: list[Entry]) -> list[str]:
    own = {e.ref for e in matches}
    seen: set[str] = set()
    refs = []
    for entry in matches:
        for ref in entry.related:
            if ref not in own and ref not in seen:
                seen.add(ref)
                refs.append(ref)
    return refs


def search_answer(build: Build, query: dict[str, str], source_name: str) -> tuple[bytes, int]:
    """The body of a search answer (the spec's ``SearchResponse``) and the IOCs it holds."""
    q, related_wanted = _query(query), _include_related(query)
    started = time.perf_counter()
    digest = search_hash(normalise(q))
    matches = [e for e in entries(build, digest) if e.hash == digest]
    related = _related_refs(matches) if related_wanted else []
    match_json = [record_json(build, e.ref) for e in matches]
    related_json = [record_json(build, ref) for ref in related]
    elapsed = int((time.perf_counter() - started) * 1000)
    inner = {
        "total_matches": len(match_json),
        "related_count": len(related_json),
        "search_time_ms": elapsed,
    }
    return b"".join(
        (
            b'{"meta":',
            json.dumps(_meta(build, source_name), separators=(",", ":")).encode(),
            b',"data":{"found":',
            b"true" if match_json else b"false",
            b',"query":',
            json.dumps(q).encode(),
            b',"matches":[',
            b",".join(match_json),
            b'],"relatedIOCs":[',
            b",".join(related_json),
            b'],"meta":',
            json.dumps(inner, separators=(",", ":")).encode(),
            b"}}",
        )
    ), len(match_json) + len(related_json)


def search_iocs(ctx: Ctx) -> Response:
    body, ctx.iocs = search_answer(ctx.build(), ctx.req.query, ctx.app.source_name)
    return Response(200, body)


def _range_prefix(raw: str) -> str:
    if not RANGE_PREFIX.fullmatch(raw):
        raise InvalidParameter(
            "Invalid prefix: give the first 5 hex characters of the SHA-256 of the normalised value",
            details={"parameter": "prefix", "pattern": "^[0-9a-fA-F]{5}$"},
        )
    return raw.lower()


def range_answer(build: Build, prefix: str, source_name: str) -> tuple[bytes, int]:
    """Every entry whose hash starts with ``prefix`` (full hash, minimal fields, no value)."""
    found = entries(build, prefix)
    data = [
        {
            "hash": e.hash,
            "type": e.type,
            "confidence": e.confidence,
            "first_seen": iso(e.first_seen),
            "last_seen": iso(e.last_seen),
            "sightings": e.sightings,
        }
        for e in found
    ]
    meta = {**_meta(build, source_name), "prefix": prefix, "count": len(data)}
    return json.dumps({"meta": meta, "data": data}, separators=(",", ":")).encode(), len(data)


def cacheable(req: Request, build: Build, body: bytes, identity: str) -> Response:
    """A 200 with a strong ETag for an answer fixed by the build (304 when it matches)."""
    return conditional(
        req,
        strong_etag(f"{build.build_id}|{identity}"),
        "application/json",
        lambda: body,
        modified=build.generated_at,
    )


def ioc_range(ctx: Ctx) -> Response:
    prefix = _range_prefix(ctx.params.get("prefix", ""))
    build = ctx.build()
    body, ctx.iocs = range_answer(build, prefix, ctx.app.source_name)
    return cacheable(ctx.req, build, body, f"range|{prefix}|{ctx.app.source_name}")
