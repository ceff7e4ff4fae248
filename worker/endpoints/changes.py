"""``GET /api/v1/iocs/changes``: what was added, updated and removed since a cursor.

Each build precomputes its delta per tier (``generator/build/changes.py``); the build's
``changes/index.json`` lists every delta still reachable, oldest first
(``worker/contract/changes.py``). An answer reads the index (once per build) and, for each
delta it walks, the offsets of the lines it returns and those lines: its cost grows with the
page, never with the list. The cursor is stateless: a position (build, offset) in the chain,
checked strictly (a garbled cursor is a 400) and against the tier's lookback (an older one is
a 410 telling the client to read the full list again).
"""

from __future__ import annotations

import json
from array import array
from dataclasses import dataclass

from worker.buckets.storage import Build
from worker.contract import changes as contract
from worker.contract import layout
from worker.contract.tiers import Tier
from worker.encoding import conditional
from worker.endpoints.params import integer
from worker.endpoints.query import iso
from worker.errors import Gone, InvalidParameter, Unavailable
from worker.http import Request, Response, query_string, strong_etag
from worker.routing import Ctx

FORMATS = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
}
DEFAULT_LIMIT = 1_000
NEXT_HEADER = "x-next-cursor"
MORE_HEADER = "x-more-changes"
RESYNC = "/api/v1/iocs"
NOW = "now"


class CursorExpired(Gone):
    code = "cursor_expired"


@dataclass(frozen=True, slots=True)
class Entry:
    build_id: str
    generated_at: int
    counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class Index:
    entries: tuple[Entry, ...]
    position: dict[str, int]  # build id → its place in entries


@dataclass(frozen=True, slots=True)
class Page:
    lines: list[bytes]
    start: contract.Cursor
    next: contract.Cursor
    more: bool
    oldest: int  # generated_at of the oldest build the tier's lookback reaches


def read_index(build: Build) -> Index:
    def make() -> Index:
        raw = build.read_json(contract.INDEX_KEY)
        if not isinstance(raw, dict):
            raise Unavailable("The published build has no change feed; rebuild and publish.")
        entries = tuple(Entry(str(b), int(t), dict(c)) for b, t, c in raw["builds"])
        return Index(entries, {e.build_id: i for i, e in enumerate(entries)})

    return build.cached("changes:index", make)


def _invalid(message: str, value: str) -> InvalidParameter:
    return InvalidParameter(message, details={"parameter": "since", "value": value})


def _gone(value: str, oldest: int) -> CursorExpired:
    return CursorExpired(
        "The cursor is older than this feed keeps for your tier; read the full list at "
        f"{RESYNC} again, then follow the next cursor of a fresh /api/v1/iocs/changes answer",
        details={"parameter": "since", "value": value, "resync": RESYNC, "oldest": iso(oldest)},
    )


def start_of(build: Build, index: Index, tier: Tier, since: str | None) -> tuple[int, int, int]:
    """(entry, offset) the answer starts at, and the oldest reachable build time; 400 for a
    cursor this feed did not write, 410 for one older than the tier's lookback."""
    floor = build.generated_at - tier.lookback_days * layout.DAY_SECONDS
    reachable = [i for i, e in enumerate(index.entries) if e.generated_at >= floor]
    last = len(index.entries) - 1
    first = reachable[0] if reachable else last
    oldest = index.entries[first].generated_at
    if since is None:
        return first, 0, oldest
    if since == NOW:  # the newest position: what a client that just read the list holds
        return last, index.entries[last].counts.get(tier.name, 0), oldest
    cursor = contract.decode(since)
    if cursor is None:
        raise _invalid("Invalid since: not a cursor of this feed (damaged or edited)", since)
    if cursor.tier != tier.name:
        raise _invalid(
            f"Invalid since: a cursor of the {cursor.tier} tier; this key is {tier.name}", since
        )
    place = index.position.get(cursor.build_id)
    if place is None:
        when = contract.build_time(cursor.build_id)
        if when is None:
            raise _invalid("Invalid since: not a cursor of this feed", since)
        if when >= build.generated_at and cursor.offset == 0:
            return last + 1, 0, oldest  # a build this server has not loaded yet: nothing new
        if when < index.entries[0].generated_at or when < floor:
            raise _gone(since, oldest)
        raise _invalid("Invalid since: it names no build of this feed", since)
    if index.entries[place].generated_at < floor:
        raise _gone(since, oldest)
    if cursor.offset > index.entries[place].counts.get(tier.name, 0):
        raise _invalid("Invalid since: its offset is past the end of its build's changes", since)
    return place, cursor.offset, oldest


def _lines(build: Build, entry: Entry, tier: str, fmt: str, start: int, stop: int) -> list[bytes]:
    """Lines ``start``..``stop`` of one delta in rendering ``fmt``: two range reads."""
    count = entry.counts[tier]
    base = contract.RENDERINGS.index(fmt) * (count + 1)
    idx_key = contract.delta_key(entry.build_id, tier, "idx")
    raw = build.read_range(idx_key, (base + start) * 8, (base + stop + 1) * 8)
    offsets = array("Q")
    offsets.frombytes(raw)
    data = build.read_range(
        contract.delta_key(entry.build_id, tier, "dat"), offsets[0], offsets[-1]
    )
    first = offsets[0]
    return [data[a - first : b - first] for a, b in zip(offsets, offsets[1:], strict=False)]


def page(build: Build, tier: Tier, since: str | None, limit: int, fmt: str) -> Page:
    """The changes after ``since`` (a cursor; ``now``: the newest position; None: the oldest
    the tier's lookback reaches), at most ``limit``, oldest first, and the cursor that follows
    them."""
    index = read_index(build)
    place, offset, oldest = start_of(build, index, tier, since)
    entries = index.entries
    if place >= len(entries):  # a cursor ahead of this server's build
        assert since is not None
        cursor = contract.decode(since)
        assert cursor is not None
        return Page([], cursor, cursor, False, oldest)
    start = contract.Cursor(tier.name, entries[place].build_id, offset)
    lines: list[bytes] = []
    while True:
        count = entries[place].counts.get(tier.name, 0)
        take = min(count - offset, limit - len(lines))
        if take > 0:
            lines += _lines(build, entries[place], tier.name, fmt, offset, offset + take)
            offset += take
        if offset < count or place == len(entries) - 1:
            break  # the page is full inside this delta, or this is the newest build
        place, offset = place + 1, 0
    more = offset < entries[place].counts.get(tier.name, 0) or any(
        e.counts.get(tier.name, 0) for e in entries[place + 1 :]
    )
    following = contract.Cursor(tier.name, entries[place].build_id, offset)
    return Page(lines, start, following, more, oldest)


def _link(req: Request, public_url: str | None, cursor: str, limit: int, fmt: str) -> str:
    params = {"since": cursor, "limit": str(limit)}
    if fmt != "json":
        params["format"] = fmt
    return req.base_url(public_url) + req.path + "?" + query_string(params)


def answer(req: Request, build: Build, tier: Tier, public_url: str | None) -> tuple[Response, int]:
    """The response and how many changes it holds."""
    fmt = req.query.get("format", "json")
    if fmt not in FORMATS:
        raise InvalidParameter(f"Invalid format: {fmt}", details={"valid_formats": list(FORMATS)})
    limit = min(integer(req.query, "limit", DEFAULT_LIMIT, 1, 10_000), tier.max_limit)
    since = req.query.get("since")
    p = page(build, tier, since, limit, fmt)
    following = contract.encode(p.next)
    links = {"self": _link(req, public_url, contract.encode(p.start), limit, fmt)}
    links["next"] = _link(req, public_url, following, limit, fmt)
    identity = f"changes|{build.build_id}|{contract.encode(p.start)}|{limit}|{fmt}|{links}"
    headers = {NEXT_HEADER: following, MORE_HEADER: "true" if p.more else "false"}
    if fmt == "json":
        meta = {
            "count": len(p.lines),
            "limit": limit,
            "since": since,
            "next": following,
            "more": p.more,
            "build_id": build.build_id,
            "generated_at": iso(build.generated_at),
            "oldest": iso(p.oldest),
            "tier": tier.name,
        }
        body = (
            b'{"meta":'
            + json.dumps(meta, separators=(",", ":")).encode()
            + b',"data":['
            + b",".join(line.rstrip(b"\n") for line in p.lines)
            + b'],"links":'
            + json.dumps(links, separators=(",", ":")).encode()
            + b"}"
        )
    else:
        head = contract.CSV_HEADER if fmt == "csv" else b""
        body = head + b"".join(p.lines)
        headers["link"] = f'<{links["next"]}>; rel="next"'
    resp = conditional(
        req, strong_etag(identity.encode()), FORMATS[fmt], lambda: body, modified=build.generated_at
    )
    for name, value in headers.items():
        resp.header(name, value)
    return resp, len(p.lines)


def list_changes(ctx: Ctx) -> Response:
    assert ctx.tier is not None  # a key route: App._admit set the key's tier
    resp, ctx.iocs = answer(ctx.req, ctx.build(), ctx.tier, ctx.app.public_url)
    return resp
