"""Tiers and scopes: data, not code. Both the generator and the worker read this table."""

from __future__ import annotations

from dataclasses import dataclass

BASE_SCOPES = ("read:iocs", "read:search")
PRO_SCOPES = BASE_SCOPES + ("read:stats", "read:stix", "read:taxii")
ENTERPRISE_SCOPES = PRO_SCOPES + ("read:cef", "read:misp", "read:openioc")


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    per_minute: int
    per_day: int
    lookback_days: int
    max_limit: int
    scopes: tuple[str, ...]


TIERS: dict[str, Tier] = {
    "free": Tier("free", 10, 1_000, 1, 100, BASE_SCOPES),
    "pro": Tier("pro", 100, 50_000, 30, 1_000, PRO_SCOPES),
    "enterprise": Tier("enterprise", 1_000, 1_000_000, 365, 10_000, ENTERPRISE_SCOPES),
}
TIER_NAMES = tuple(TIERS)
