"""Device files, whole: ``GET /api/v1/feeds`` lists the files the caller's tier may fetch,
``GET /api/v1/feeds/{name}`` serves one.

The build wrote each tier's device files and their index (``generator/build/devices.py``);
the edge checks the key, picks the key's tier and serves the bytes, each file with its media
type and a ``Content-Disposition`` naming it, so a browser or ``curl -OJ`` saves it under its
name.
"""

from __future__ import annotations

import json
from typing import Any

from worker.contract import device_files
from worker.encoding import conditional, from_object, stored
from worker.endpoints.query import iso
from worker.errors import InsufficientScope, NotFound
from worker.http import Response, strong_etag
from worker.routing import Ctx

FEEDS_SCOPE = "read:iocs"  # the scope of both routes (worker.routes); a file may need more


def index_entries(ctx: Ctx) -> list[dict[str, Any]]:
    """The tier's index, less the files the key's scopes do not cover, with their URLs."""
    assert ctx.tier is not None and ctx.key is not None  # a key route
    raw = ctx.build().read_json(device_files.index_key(ctx.tier.name))
    files = raw.get("files", []) if isinstance(raw, dict) else []
    base = ctx.req.base_url(ctx.app.public_url) + device_files.ROUTE + "/"
    entries = []
    for entry in files:
        if entry.get("scope", FEEDS_SCOPE) in ctx.key.scopes:
            shown = {k: v for k, v in entry.items() if k != "scope"}
            entries.append(shown | {"url": base + entry["name"]})
    return entries


def feeds_index(ctx: Ctx) -> Response:
    build = ctx.build()
    assert ctx.tier is not None and ctx.key is not None
    entries = index_entries(ctx)
    body = {
        "meta": {
            "tier": ctx.tier.name,
            "lookback_days": ctx.tier.lookback_days,
            "generated_at": iso(build.generated_at),
            "build_id": build.build_id,
            "total": len(entries),
        },
        "data": entries,
    }
    identity = f"feeds|{build.build_id}|{ctx.tier.name}|{' '.join(ctx.key.scopes)}|"
    return conditional(
        ctx.req,
        strong_etag(identity + ctx.req.base_url(ctx.app.public_url)),
        "application/json",
        lambda: json.dumps(body, separators=(",", ":")).encode(),
        modified=build.generated_at,
    )


def feed_file(ctx: Ctx) -> Response:
    """One device file of the key's tier, whole."""
    build = ctx.build()
    assert ctx.tier is not None and ctx.key is not None
    name = ctx.params["name"]
    file = device_files.file_of(name)
    key = device_files.key(ctx.tier.name, name)
    ref = build.ref(key) if file is not None else None
    if file is None or ref is None:
        raise NotFound(
            f"There is no device file named {name!r}; GET {device_files.ROUTE} lists them"
        )
    if file.scope not in ctx.key.scopes:
        raise InsufficientScope(file.scope, tuple(ctx.key.scopes))
    resp = conditional(
        ctx.req,
        ref.text_tag,
        file.media_type,
        lambda: build.text(key) or b"",
        modified=build.generated_at,
        stored=stored(build, ref),
    )
    resp.header("content-disposition", f'attachment; filename="{name}"')
    from_object(resp, ref)
    if file.scope == FEEDS_SCOPE:  # the answer depends on the tier and the bytes alone
        resp.shared = build
    return resp
