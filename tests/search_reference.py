"""Straightforward references for search, range and stats: loops over the records and the store.

They share nothing with the search shards, the stats sink or the worker; a difference means the
build or the worker answered wrongly.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from exports.ioc_json import record_dict
from exports.model import IOCRecord

DAY = 86_400
TOP = 10
MAX_RELATED = 20


def iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def value_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def reference_search(records: list[IOCRecord], value: str) -> tuple[list[dict], list[dict]]:
    """(matches, related) for an exact, already normal value; records are in feed order."""
    hits = [i for i, r in enumerate(records) if r.value == value]
    related: list[int] = []
    for i in hits:
        mine = set(records[i].article_ids)
        near = [j for j, r in enumerate(records) if j != i and mine & set(r.article_ids)]
        related += [j for j in near[:MAX_RELATED] if j not in hits and j not in related]
    return [record_dict(records[i]) for i in hits], [record_dict(records[j]) for j in related]


def reference_range(
    records: list[IOCRecord], prefix: str, normal: Callable[[str], str]
) -> list[dict]:
    """Entries of the range; ``normal`` gives a value's normal form (the extractor's values,
    unlike some synthetic ones such as ``2a02:1:0::2``, are normal already)."""
    hashed = [(value_hash(normal(r.value)), r) for r in records]
    found = [
        {
            "hash": h,
            "type": r.type,
            "confidence": r.confidence,
            "first_seen": iso(r.first_seen),
            "last_seen": iso(r.last_seen),
            "sightings": r.sightings,
        }
        for h, r in hashed
        if h.startswith(prefix)
    ]
    return sorted(found, key=lambda e: (e["hash"], e["type"]))


def _between(stamps: list[int], low: int, high: int) -> int:
    return sum(1 for s in stamps if low <= s <= high)


def _trend(now: int, firsts: list[int]) -> str:
    week = _between(firsts, now - 7 * DAY, now)
    before = sum(1 for s in firsts if now - 14 * DAY <= s < now - 7 * DAY)
    if before == 0:
        return "up" if week else "stable"
    return "up" if week > 1.1 * before else "down" if week < 0.9 * before else "stable"


def _top(records: list[IOCRecord], type_: str) -> list[dict[str, Any]]:
    counts = [(r.value, r.sightings) for r in records if r.type == type_]
    counts.sort(key=lambda c: (-c[1], c[0]))
    return [{"id": v, "count": n} for v, n in counts[:TOP]]


def _sources(sources: dict[str, dict], now: int) -> dict[str, Any]:
    active = 0
    for s in sources.values():
        good = s.get("last_success")
        if good is None and s.get("status") in ("ok", "not_modified"):
            good = s.get("last_fetch")
        active += good is not None and good >= now - 7 * DAY
    fetches = [s["last_fetch"] for s in sources.values() if s.get("last_fetch") is not None]
    return {
        "total": len(sources),
        "active": active,
        "last_fetch": iso(max(fetches)) if fetches else None,
    }


def reference_stats(
    records: list[IOCRecord],
    published: list[int],
    sources: dict[str, dict],
    now: int,
    types: tuple[str, ...],
    categories: tuple[str, ...],
    confidences: tuple[str, ...],
) -> dict[str, Any]:
    firsts = [r.first_seen for r in records]
    return {
        "total_iocs": len(records),
        "by_type": {t: sum(r.type == t for r in records) for t in types},
        "by_category": {c: sum(r.category == c for r in records) for c in categories},
        "by_confidence": {c: sum(r.confidence == c for r in records) for c in confidences},
        "last_24h": {
            "new_iocs": _between(firsts, now - DAY, now),
            "new_articles": _between(published, now - DAY, now),
        },
        "last_7d": {
            "new_iocs": _between(firsts, now - 7 * DAY, now),
            "new_articles": _between(published, now - 7 * DAY, now),
            "trend": _trend(now, firsts),
        },
        "sources": _sources(sources, now),
        "top_mitre_techniques": _top(records, "mitre_attack"),
        "top_cves": _top(records, "cve"),
    }
