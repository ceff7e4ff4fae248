"""Query-parameter parsing for list endpoints; every refusal is a 400 in the spec's shape."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime

from worker.contract import layout
from worker.contract.formats import BY_NAME
from worker.contract.tiers import Tier
from worker.errors import InvalidParameter

TRUE = {"true", "1", "yes", "on"}
FALSE = {"false", "0", "no", "off"}
MAX_LIMIT = 10_000
DATE_TIME = "an ISO 8601 date-time such as 2024-12-01T00:00:00Z"
LINK_ORDER = (
    "type",
    "category",
    "confidence",
    "since",
    "until",
    "limit",
    "offset",
    "format",
    "include_context",
    "build",
)


@dataclass(frozen=True, slots=True)
class ListParams:
    type: str
    category: str
    confidence: str
    since: int
    until: int
    limit: int
    offset: int
    format: str
    include_context: bool
    is_default: bool  # the hourly poll: no window, offset or limit given

    @property
    def view(self) -> str:
        return layout.view_name(self.type, self.category, self.confidence)

    @property
    def variant(self) -> str:
        """The stored variant that answers (the format's record says which)."""
        return BY_NAME[self.format].variant(self.include_context)


def choice(query: dict[str, str], name: str, allowed: tuple[str, ...], label: str) -> str:
    """``query[name]`` when it is ``all`` (the default) or one of ``allowed``; else a 400 that
    lists the valid values as ``valid_<name>s``."""
    value = query.get(name, layout.ALL)
    if value == layout.ALL or value in allowed:
        return value
    raise InvalidParameter(f"Invalid {label}: {value}", details={f"valid_{name}s": list(allowed)})


def parse_time(name: str, raw: str, expected: str = DATE_TIME) -> datetime:
    """``raw`` as an aware UTC date-time (no zone: UTC), the worker's one timestamp parser; a
    400 naming ``expected`` when it is not one or falls outside the years 1-9999 once moved to
    UTC (``0001-01-01T00:00:00+01:00``)."""
    try:
        parsed = datetime.fromisoformat(raw.strip().replace("z", "Z"))
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidParameter(
            f"Invalid {name}: expected {expected}",
            details={"parameter": name, "value": raw},
        ) from None


def _seconds(moment: datetime, *, up: bool) -> int:
    whole = calendar.timegm(moment.utctimetuple())
    return whole + 1 if up and moment.microsecond else whole


def integer(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    """``query[name]`` as an integer in ``[low, high]`` (``default`` when absent); else a 400."""
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value: int | None = int(raw.strip())
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise InvalidParameter(
            f"Invalid {name}: must be an integer from {low} to {high}",
            details={"parameter": name, "value": raw, "minimum": low, "maximum": high},
        )
    return value


def flag(query: dict[str, str], name: str, default: bool) -> bool:
    """``query[name]`` as a boolean (true/false and their usual spellings); else a 400."""
    raw = query.get(name)
    if raw is None:
        return default
    if raw.lower() in TRUE:
        return True
    if raw.lower() in FALSE:
        return False
    raise InvalidParameter(f"Invalid {name}: must be true or false", details={"parameter": name})


def window(query: dict[str, str], tier: Tier, now: int) -> tuple[int, int]:
    """The effective inclusive [since, until] window, clamped to the tier's lookback."""
    floor = now - tier.lookback_days * layout.DAY_SECONDS
    since = _seconds(parse_time("since", query["since"]), up=True) if "since" in query else floor
    until = _seconds(parse_time("until", query["until"]), up=False) if "until" in query else now
    if since > until and "since" in query and "until" in query:
        raise InvalidParameter(
            "Invalid window: since is after until",
            details={"since": query["since"], "until": query["until"]},
        )
    return max(since, floor), until


def ioc_type(query: dict[str, str]) -> str:
    """``type``: ``all``, one IOC type, or a comma-separated list naming a ``TYPE_GROUPS``
    group's members (``ipv4,ipv6``, in any order), answered by the group's view; else a 400."""
    raw = query.get("type", layout.ALL)
    members = tuple(sorted({t.strip() for t in raw.split(",")}))
    if len(members) == 1 and members[0] in (layout.ALL, *layout.IOC_TYPES):
        return members[0]
    for group, group_members in layout.TYPE_GROUPS.items():
        if members == tuple(sorted(group_members)):
            return group
    raise InvalidParameter(
        f"Invalid IOC type: {raw}",
        details={
            "valid_types": list(layout.IOC_TYPES),
            "valid_type_lists": [",".join(m) for m in layout.TYPE_GROUPS.values()],
        },
    )


def parse_list(query: dict[str, str], tier: Tier, now: int, formats: tuple[str, ...]) -> ListParams:
    type_ = ioc_type(query)
    category = choice(query, "category", layout.CATEGORIES, "category")
    confidence = choice(query, "confidence", layout.CONFIDENCES, "confidence")
    fmt = query.get("format", formats[0])
    if fmt not in formats:
        raise InvalidParameter(f"Invalid format: {fmt}", details={"valid_formats": list(formats)})
    limit = min(integer(query, "limit", 100, 1, MAX_LIMIT), tier.max_limit)
    offset = integer(query, "offset", 0, 0, 2**31 - 1)
    include_context = flag(query, "include_context", True)
    since, until = window(query, tier, now)
    is_default = not ({"since", "until", "offset"} & query.keys()) and limit == 100
    return ListParams(
        type_,
        category,
        confidence,
        since,
        until,
        limit,
        offset,
        fmt,
        include_context,
        is_default and include_context,
    )


def link_params(
    query: dict[str, str], params: ListParams, offset: int, build_id: str
) -> dict[str, str]:
    """The query of a self/next/prev link: what the caller sent, never a credential, pinned to
    the build that answered (``build``), so the pages of one walk never overlap or skip."""
    out = {k: query[k] for k in LINK_ORDER if k in query}
    out["limit"] = str(params.limit)
    out["offset"] = str(offset)
    out["build"] = build_id
    return {k: out[k] for k in LINK_ORDER if k in out}
