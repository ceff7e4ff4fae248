"""``GET /api/v1/iocs/stix``: a STIX 2.1 bundle (or bare object list) from precomputed lines.

The build renders every record's STIX objects once (variant ``stix``, ``exports/stix21.py``);
this module selects lines exactly like ``/api/v1/iocs`` (view ``<type>.all.all``, window
clamped to the tier's lookback) and wraps them: identity, the TLP marking definitions the
selected objects use, then the objects.

TLP override without rendering: ``tlp=<level>`` is a floor, never a lowering. Each object
keeps the stricter of its record's TLP (its source's, ``sources.toml``) and the requested level:
``tlp=red`` marks everything red, ``tlp=clear`` changes nothing, and a red record is never
served as clear. A rendered object refers to its marking only as
``"object_marking_refs":["<id>"]``, so raising is one ``bytes.replace`` of that exact property
text per level below the requested one. The property name with its quotes can never occur
inside a JSON string (the quotes would be escaped), so text in values or titles is never
touched; all marking ids have the same length, so the swap keeps every byte offset.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from worker import encoding, http
from worker.buckets.storage import Build
from worker.contract import formats, layout
from worker.contract.stix_common import (
    IDENTITY_BYTES,
    MARKING_BYTES,
    STIX_NAMESPACE,
    TLP_LEVELS,
    marking_ref,
)
from worker.contract.tiers import Tier
from worker.endpoints import query
from worker.endpoints.params import choice, flag, integer, window
from worker.errors import InvalidParameter
from worker.http import Response
from worker.routing import Ctx

FORMAT = formats.BY_NAME["stix"]
VARIANT = FORMAT.variants[0].name
MAX_LIMIT = 1_000
FORMATS = ("bundle", "objects")


@dataclass(frozen=True, slots=True)
class StixParams:
    type: str
    since: int
    until: int
    limit: int
    format: str
    include_identity: bool
    include_tlp_markings: bool
    tlp: str | None  # a floor level, or None for each record's own

    @property
    def view(self) -> str:
        return layout.view_name(self.type)

    def identity(self, build_id: str) -> str:
        """Everything the body depends on, normalised: names the bundle and the ETag."""
        return (
            f"{build_id}|{self.view}|{self.since}|{self.until}|{self.limit}|"
            f"{self.format}|{int(self.include_identity)}|{int(self.include_tlp_markings)}|"
            f"{self.tlp or ''}"
        )


def _tlp(raw: str | None) -> str | None:
    if raw is None:
        return None
    level = raw.strip().lower().replace(" ", "+")  # an unencoded "+" arrives as a space
    if level not in TLP_LEVELS:
        raise InvalidParameter(f"Invalid tlp: {raw}", details={"valid_tlps": list(TLP_LEVELS)})
    return level


def parse_stix(q: dict[str, str], tier: Tier, now: int) -> StixParams:
    type_ = choice(q, "type", layout.IOC_TYPES, "IOC type")
    fmt = q.get("format", FORMATS[0])
    if fmt not in FORMATS:
        raise InvalidParameter(f"Invalid format: {fmt}", details={"valid_formats": list(FORMATS)})
    limit = min(integer(q, "limit", 100, 1, MAX_LIMIT), tier.max_limit)
    since, until = window({k: v for k, v in q.items() if k == "since"}, tier, now)
    return StixParams(
        type_,
        since,
        until,
        limit,
        fmt,
        flag(q, "include_identity", True),
        flag(q, "include_tlp_markings", True),
        _tlp(q.get("tlp")),
    )


def swap_markings(data: bytes, level: str) -> bytes:
    """Every marking reference in ``data`` less strict than ``level`` raised to ``level``'s;
    stricter ones stay (no rendering)."""
    target = marking_ref(level)
    for lower in TLP_LEVELS[: TLP_LEVELS.index(level)]:
        data = data.replace(marking_ref(lower), target)
    return data


def objects_array(p: StixParams, data: bytes) -> bytes:
    """``[identity?, markings used?, objects…]`` from comma-terminated object lines."""
    head = [IDENTITY_BYTES] if p.include_identity else []
    if p.include_tlp_markings:
        head += [MARKING_BYTES[lvl] for lvl in TLP_LEVELS if marking_ref(lvl) in data]
    parts = head + ([data[:-1]] if data else [])
    return b"[" + b",".join(parts) + b"]"


def bundle(p: StixParams, build_id: str, data: bytes) -> bytes:
    bundle_id = f"bundle--{uuid.uuid5(STIX_NAMESPACE, 'bundle:' + p.identity(build_id))}"
    objects = objects_array(p, data)
    head = b'{"type":"bundle","id":"' + bundle_id.encode() + b'"'
    return head + (b"}" if objects == b"[]" else b',"objects":' + objects + b"}")


def stix_body(build: Build, p: StixParams) -> bytes:
    sel = query.select(build, query.Query(p.view, VARIANT, p.since, p.until, 0, p.limit))
    data = swap_markings(sel.data, p.tlp) if p.tlp else sel.data
    return bundle(p, build.build_id, data) if p.format == "bundle" else objects_array(p, data)


def export_stix(ctx: Ctx) -> Response:
    build = ctx.build()
    assert ctx.tier is not None  # a key route: App._admit set the key's tier
    p = parse_stix(ctx.req.query, ctx.tier, build.generated_at)
    tag = http.strong_etag("stix|" + p.identity(build.build_id))
    return encoding.conditional(
        ctx.req, tag, FORMAT.media_type, lambda: stix_body(build, p), modified=build.generated_at
    )
