"""Tiers and scopes: data, not code. Both the generator and the worker read this table.

A tier's request limits belong to the account: every key of one account spends the same minute
and day windows (docs/rate-limits.md). ``max_keys`` caps the account's live keys and
``key_ops_per_minute`` its key creations and revocations (``KEY_OPS_PER_DAY`` per day).
"""

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
    max_keys: int  # live (not revoked, not expired) keys an account may hold
    key_ops_per_minute: int  # key creations and revocations per account per minute


TIERS: dict[str, Tier] = {
    "free": Tier("free", 10, 1_000, 1, 100, BASE_SCOPES, 2, 5),
    "pro": Tier("pro", 100, 50_000, 30, 1_000, PRO_SCOPES, 10, 20),
    "enterprise": Tier("enterprise", 1_000, 1_000_000, 365, 10_000, ENTERPRISE_SCOPES, 100, 60),
}
TIER_NAMES = tuple(TIERS)
KEY_OPS_PER_DAY = 200  # key creations and revocations per account per UTC day, every tier
