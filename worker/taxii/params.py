"""TAXII request parsing: content negotiation, filters and the stateless ``next`` cursor.

Every refusal is an :class:`~worker.errors.ApiError` that the route renders in TAXII's error
shape: 400 for a bad parameter, 406 for an ``Accept`` the endpoint cannot satisfy.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from dataclasses import dataclass
from datetime import UTC, datetime

from worker.contract.taxii_common import MAX_PAGE, SPEC_VERSION, STIX_MEDIA_TYPE, TAXII_MEDIA_TYPE
from worker.endpoints.params import parse_time
from worker.errors import ApiError, InvalidParameter

DEFAULT_LIMIT = 100
VERSION_WORDS = ("first", "last", "all")
TOKEN = re.compile(r"[a-z0-9][a-z0-9-]*")
SPEC = re.compile(r"\d+\.\d+")
CURSOR = struct.Struct(">Q")  # the build date of the last entry a page considered
PINNED = struct.Struct(">Qq")  # … and the last build date visible when the poll began
TIMESTAMP = "a timestamp such as 2026-01-01T00:00:00.000000Z"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class NotAcceptable(ApiError):
    status = 406
    code = "not_acceptable"


@dataclass(frozen=True, slots=True)
class Filters:
    """What a page request asks for; ``None`` means the filter is absent."""

    after: int  # only objects with a build date above this (µs): added_after and next
    limit: int
    types: tuple[str, ...] | None
    ids: tuple[str, ...] | None
    versions: tuple[int, ...] | None  # modified values (µs); None: first/last/all (one version)
    spec_ok: bool  # False when match[spec_version] excludes 2.1: nothing matches
    added_after: int = -1  # as the client sent it (µs), -1 when absent
    cursor: int = -1  # the build date ``next`` points after, -1 without ``next``
    pinned: int | None = None  # the visible end ``next`` carries (worker/taxii_epochs.py)

    def identity(self) -> str:
        return (
            f"{self.after}|{self.limit}|{self.types}|{self.ids}|{self.versions}|{self.spec_ok}"
            f"|{self.added_after}|{self.cursor}|{self.pinned}"
        )


def _media(item: str) -> tuple[str, dict[str, str]]:
    kind, *params = (p.strip() for p in item.split(";"))
    pairs = (p.partition("=") for p in params if "=" in p)
    return kind.lower(), {k.strip().lower(): v.strip().strip('"') for k, _, v in pairs}


def negotiate(accept: str | None, offers: tuple[str, ...]) -> str:
    """The first of ``offers`` (TAXII first) that ``accept`` admits, or a 406."""
    if not accept or not accept.strip():
        return offers[0]
    ranges = [_media(item) for item in accept.split(",") if item.strip()]
    best: tuple[float, int, str] | None = None
    for kind, params in ranges:
        try:
            q = float(params.get("q", "1"))
        except ValueError:
            q = 0.0
        for rank, offer in enumerate(offers):
            if q > 0 and _admits(kind, params, offer) and (best is None or (q, -rank) > best[:2]):
                best = (q, -rank, offer)
    if best is None:
        raise NotAcceptable(
            f"Cannot answer with any media type in Accept: {accept}",
            details={"supported": list(offers)},
        )
    return best[2]


def _admits(kind: str, params: dict[str, str], offer: str) -> bool:
    offer_kind = offer.split(";")[0]
    if kind in ("*/*", "application/*"):
        return True
    if kind != offer_kind:
        return False
    return params.get("version", SPEC_VERSION) == SPEC_VERSION


def objects_offers(strict_taxii: bool) -> tuple[str, ...]:
    """Objects endpoints also speak a STIX bundle (the spec declares one)."""
    return (TAXII_MEDIA_TYPE,) if strict_taxii else (TAXII_MEDIA_TYPE, STIX_MEDIA_TYPE)


def parse_timestamp(name: str, raw: str) -> int:
    """An RFC 3339 timestamp as µs since the epoch; a 400 when it is not one or falls outside
    the years 1-9999 once moved to UTC (:func:`worker.endpoints.params.parse_time`)."""
    delta = parse_time(name, raw, TIMESTAMP) - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def encode_cursor(date_added: int, pinned: int | None = None) -> str:
    packed = CURSOR.pack(date_added) if pinned is None else PINNED.pack(date_added, pinned)
    return base64.urlsafe_b64encode(packed).decode().rstrip("=")


def decode_cursor(raw: str) -> tuple[int, int | None]:
    """(build date, pinned visible end or None) of a ``next`` this server returned."""
    try:
        packed = base64.urlsafe_b64decode(raw.strip() + "=" * (-len(raw.strip()) % 4))
        if len(packed) == PINNED.size:
            date_added, pinned = PINNED.unpack(packed)
            return date_added, pinned
        return CURSOR.unpack(packed)[0], None
    except (binascii.Error, struct.error, ValueError):
        raise InvalidParameter(
            "Invalid next: not a cursor this server returned", details={"parameter": "next"}
        ) from None


def _list(query: dict[str, str], name: str) -> tuple[str, ...] | None:
    raw = query.get(name)
    if raw is None:
        return None
    return tuple(v.strip() for v in raw.split(",") if v.strip())


def _limit(query: dict[str, str], cap: int, default: int = 0) -> int:
    raw = query.get("limit")
    if raw is None:
        return min(default or DEFAULT_LIMIT, cap)
    try:
        value = int(raw.strip())
    except ValueError:
        value = 0
    if value < 1:
        raise InvalidParameter(
            "Invalid limit: must be a positive integer",
            details={"parameter": "limit", "value": raw, "maximum": cap},
        )
    return min(value, cap)


def _types(query: dict[str, str]) -> tuple[str, ...] | None:
    types = _list(query, "match[type]")
    if types is None:
        types = _list(query, "type")  # the spec's name for the same filter
    for t in types or ():
        if not TOKEN.fullmatch(t):
            raise InvalidParameter(
                f"Invalid match[type]: {t}", details={"parameter": "match[type]"}
            )
    return types


def _versions(query: dict[str, str]) -> tuple[int, ...] | None:
    words = _list(query, "match[version]")
    if not words or any(w in VERSION_WORDS for w in words):
        return None  # we hold one version per object: it is first, last and all of them
    return tuple(parse_timestamp("match[version]", w) for w in words)


def _spec_ok(query: dict[str, str]) -> bool:
    specs = _list(query, "match[spec_version]")
    for s in specs or ():
        if not SPEC.fullmatch(s):
            raise InvalidParameter(
                f"Invalid match[spec_version]: {s}", details={"parameter": "match[spec_version]"}
            )
    return specs is None or SPEC_VERSION in specs


def parse_filters(
    query: dict[str, str],
    max_limit: int,
    ids: tuple[str, ...] | None = None,
    page_cap: int = 0,
) -> Filters:
    """The request's filters. ``page_cap``: the page size a whole poll of the tier's lookback
    needs to fit its minute limit (``worker.taxii.endpoints.page_cap``); it is then the default page and
    may exceed ``MAX_PAGE``."""
    added_after = cursor = -1
    pinned = None
    if "added_after" in query:
        added_after = parse_timestamp("added_after", query["added_after"])
    if query.get("next"):
        cursor, pinned = decode_cursor(query["next"])
    if ids is None:
        ids = _list(query, "match[id]")
    cap = max(min(MAX_PAGE, max_limit), page_cap)
    limit = _limit(query, cap, max(DEFAULT_LIMIT, page_cap))
    return Filters(
        max(added_after, cursor),
        limit,
        _types(query),
        ids,
        _versions(query),
        _spec_ok(query),
        added_after,
        cursor,
        pinned,
    )
