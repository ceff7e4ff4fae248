"""What the site's statistics page shows, counted from the records as the build streams them.

Per UTC day (of ``last_seen``, as the day partitions): indicators by type and by category. Over
the whole build: totals by type, and the technique and CVE ids reported by the most articles
(``sightings``: the articles that mention it; ties by id), the same ranking as the stats API.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from markupsafe import Markup

from exports.model import IOCRecord
from generator.site.charts import Series, horizontal_bars, stacked_bars
from worker.contract import layout

WINDOW_DAYS = 30
TOP = 10


@dataclass(slots=True)
class SiteStats:
    """Counters small enough to keep for every day of the build (11 + 5 numbers a day)."""

    by_type: dict[str, Counter] = field(default_factory=dict)
    by_category: dict[str, Counter] = field(default_factory=dict)
    mentions: dict[str, dict[str, int]] = field(
        default_factory=lambda: {"cve": {}, "mitre_attack": {}}
    )

    def add_day(self, day: str, records: list[IOCRecord]) -> None:
        types: Counter = Counter()
        categories: Counter = Counter()
        for r in records:
            types[r.type] += 1
            categories[r.category] += 1
            if r.type in self.mentions:
                self.mentions[r.type][r.value] = r.sightings
        self.by_type[day] = types
        self.by_category[day] = categories

    def total(self) -> int:
        return sum(sum(c.values()) for c in self.by_type.values())

    def totals_by_type(self) -> list[tuple[str, int]]:
        overall: Counter = Counter()
        for counts in self.by_type.values():
            overall.update(counts)
        return [(t, overall.get(t, 0)) for t in layout.IOC_TYPES]

    def top(self, type_: str) -> list[tuple[str, int]]:
        ranked = sorted(self.mentions[type_].items(), key=lambda kv: (-kv[1], kv[0]))
        return ranked[:TOP]

    def charts(self, generated_at: int) -> dict[str, Markup | list]:
        days = window(generated_at)
        types = [Series(t, f"c{i}") for i, t in enumerate(layout.IOC_TYPES)]
        cats = [Series(c, f"c{i}") for i, c in enumerate(layout.CATEGORIES)]
        return {
            "days": days,
            "type_series": types,
            "category_series": cats,
            "by_type": stacked_bars(
                days, types, self.by_type, "Indicators per day by type, last 30 days"
            ),
            "by_category": stacked_bars(
                days, cats, self.by_category, "Indicators per day by source category, last 30 days"
            ),
            "techniques": horizontal_bars(
                self.top("mitre_attack"), "Top ATT&CK techniques by articles", "c3"
            ),
            "cves": horizontal_bars(self.top("cve"), "Top CVEs by articles", "c9"),
            "table": [
                (d, self.by_type.get(d, Counter()), self.by_category.get(d, Counter()))
                for d in reversed(days)
            ],
        }


def window(generated_at: int, days: int = WINDOW_DAYS) -> list[str]:
    """The ``days`` UTC days ending on the day of ``generated_at``, oldest first."""
    last = generated_at - generated_at % layout.DAY_SECONDS
    return [
        time.strftime("%Y-%m-%d", time.gmtime(last - i * layout.DAY_SECONDS))
        for i in range(days - 1, -1, -1)
    ]
