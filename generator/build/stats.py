"""Statistics: the ``data`` member of ``GET /api/v1/iocs/stats``, computed once per build.

A build sink. Definitions (also in docs/search.md):

- ``total_iocs``, ``by_type``, ``by_category``, ``by_confidence``: every record of the build,
  whatever a tier's lookback; every known type, category and confidence is listed, zeros too.
  A record's category is that of its latest article (as for the list filter).
- ``last_24h`` / ``last_7d``: ``new_iocs`` counts records whose ``first_seen`` lies in
  ``[generated_at − window, generated_at]``; ``new_articles`` counts articles published in it.
- ``trend``: the last 7 days' new IOCs against the 7 days before (``[generated_at − 14 d,
  generated_at − 7 d)``): ``up`` above 110 %, ``down`` below 90 %, else ``stable``; with an
  empty week before, ``up`` when there is anything new.
- ``sources``: ``total`` sources in the store's source state; ``active`` those whose last
  successful fetch is at most 7 days before ``generated_at``; ``last_fetch`` the latest fetch
  attempt of any source (``null`` when none is recorded).
- ``top_mitre_techniques`` / ``top_cves``: the ``TOP`` technique and CVE ids reported by the
  most articles (``count`` = articles that mention it), ties by id.
"""

from __future__ import annotations

import json
from array import array
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from exports.model import IOCRecord
from exports.timefmt import iso_z
from generator.build.sinks import BuildInfo, ObjectWriter
from worker.contract import layout

TOP = 10
DAY = layout.DAY_SECONDS
WEEK = 7 * DAY
ACTIVE_WITHIN = 7 * DAY
TREND_BAND = 0.10


def trend(current: int, previous: int) -> str:
    if previous == 0:
        return "up" if current > 0 else "stable"
    if current > previous * (1 + TREND_BAND):
        return "up"
    if current < previous * (1 - TREND_BAND):
        return "down"
    return "stable"


def count_between(
    sorted_stamps: list[int] | array, low: int, high: int, *, include_high: bool = True
) -> int:
    """How many stamps lie in [low, high] (or [low, high) without ``include_high``)."""
    end = bisect_right(sorted_stamps, high) if include_high else bisect_left(sorted_stamps, high)
    return max(0, end - bisect_left(sorted_stamps, low))


def _last_good(state: Mapping[str, Any]) -> int | None:
    good = state.get("last_success")
    if good is None and state.get("status") in ("ok", "not_modified"):
        good = state.get("last_fetch")
    return good


def source_summary(sources: Mapping[str, Mapping[str, Any]], now: int) -> dict[str, Any]:
    fetches = [s["last_fetch"] for s in sources.values() if s.get("last_fetch") is not None]
    active = [s for s in sources.values() if (_last_good(s) or -1) >= now - ACTIVE_WITHIN]
    return {
        "total": len(sources),
        "active": len(active),
        "last_fetch": iso_z(max(fetches)) if fetches else None,
    }


def top(counts: Mapping[str, int]) -> list[dict[str, Any]]:
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]
    return [{"id": name, "count": n} for name, n in ranked]


class Stats:
    """Counts records as the build streams them; ``finish`` adds articles and sources."""

    def __init__(self) -> None:
        self.by_type = Counter({t: 0 for t in layout.IOC_TYPES})
        self.by_category = Counter({c: 0 for c in layout.CATEGORIES})
        self.by_confidence = Counter({c: 0 for c in layout.CONFIDENCES})
        self.first_seen = array("q")
        self.mentions: dict[str, dict[str, int]] = {"cve": {}, "mitre_attack": {}}

    def add_day(self, day: str, records: list[IOCRecord]) -> None:
        for r in records:
            self.by_type[r.type] += 1
            self.by_category[r.category] += 1
            self.by_confidence[r.confidence] += 1
            self.first_seen.append(r.first_seen)
            if r.type in self.mentions:
                self.mentions[r.type][r.value] = r.sightings

    def finish(self, out: ObjectWriter, info: BuildInfo) -> None:
        published = info.store.articles().column("published").to_pylist()
        data = self.data(info.generated_at, published, info.store.state().get("sources") or {})
        out.put(layout.STATS_KEY, json.dumps(data, separators=(",", ":")).encode())

    def data(
        self, now: int, published: Iterable[int], sources: Mapping[str, Mapping[str, Any]]
    ) -> dict[str, Any]:
        firsts = sorted(self.first_seen)
        articles = sorted(published)
        week = count_between(firsts, now - WEEK, now)
        before = count_between(firsts, now - 2 * WEEK, now - WEEK, include_high=False)
        return {
            "total_iocs": len(firsts),
            "by_type": dict(self.by_type),
            "by_category": dict(self.by_category),
            "by_confidence": dict(self.by_confidence),
            "last_24h": {
                "new_iocs": count_between(firsts, now - DAY, now),
                "new_articles": count_between(articles, now - DAY, now),
            },
            "last_7d": {
                "new_iocs": week,
                "new_articles": count_between(articles, now - WEEK, now),
                "trend": trend(week, before),
            },
            "sources": source_summary(sources, now),
            "top_mitre_techniques": top(self.mentions["mitre_attack"]),
            "top_cves": top(self.mentions["cve"]),
        }
