"""The download links of the formats page (tier × format × type) and what this worker serves.

A link is drawn only where it can work: the tier holds the format's scope, the worker has a
route for the endpoint, and the endpoint filters by type (per the spec) or the row is "all
types". ``limit`` is the tier's largest page, capped by the spec's maximum for the endpoint.
Links carry ``api_key=YOUR_KEY``; the page's script swaps in the key the reader types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from worker.contract import formats, layout
from worker.contract.formats import Format
from worker.contract.tiers import TIERS
from worker.routes import ROUTES

KEY_PLACEHOLDER = "YOUR_KEY"
FORMATS: tuple[Format, ...] = formats.FORMATS  # label, path, params, scope of each column
TYPES = (layout.ALL, *layout.IOC_TYPES)


def served_operations() -> set[tuple[str, str]]:
    """(method, path) pairs the worker answers, paths without a trailing slash."""
    return {
        (method, route.pattern.rstrip("/") or "/") for route in ROUTES for method in route.handlers
    }


def is_served(method: str, path: str, served: set[tuple[str, str]]) -> bool:
    return (method.upper(), path.rstrip("/") or "/") in served


def _query_param(spec: dict[str, Any], path: str, name: str) -> dict[str, Any] | None:
    for p in spec["paths"].get(path, {}).get("get", {}).get("parameters", []):
        if p.get("name") == name and p.get("in") == "query":
            return p
    return None


def download_url(fmt: Format, type_: str, limit: int | None) -> str:
    params: list[tuple[str, str]] = [] if type_ == layout.ALL else [("type", type_)]
    params += list(fmt.params)
    if limit is not None:
        params.append(("limit", str(limit)))
    params.append(("api_key", KEY_PLACEHOLDER))
    return f"{fmt.path}?{urlencode(params)}"


@dataclass(frozen=True, slots=True)
class Column:
    fmt: Format
    served: bool
    typed: bool  # the spec lets this endpoint filter by type
    limit: int | None


def tier_columns(
    spec: dict[str, Any], tier: str, served: set[tuple[str, str]]
) -> tuple[list[Column], list[Format]]:
    """The formats a tier may download (as columns) and those it may not."""
    columns, locked = [], []
    for fmt in FORMATS:
        if fmt.scope not in TIERS[tier].scopes:
            locked.append(fmt)
            continue
        limit_param = _query_param(spec, fmt.path, "limit")
        limit = None
        if limit_param is not None:
            cap = limit_param.get("schema", {}).get("maximum")
            limit = min(TIERS[tier].max_limit, cap) if cap else TIERS[tier].max_limit
        typed = _query_param(spec, fmt.path, "type") is not None
        columns.append(Column(fmt, is_served("GET", fmt.path, served), typed, limit))
    return columns, locked


def cell_url(column: Column, type_: str) -> str | None:
    """The link for one cell, or None where no request could answer it."""
    if not column.served or (type_ != layout.ALL and not column.typed):
        return None
    return download_url(column.fmt, type_, column.limit)
