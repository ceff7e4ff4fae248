"""The suppression report: what the build held back, by which list, from which article.

A build sink. For each tier, the records within its lookback (``last_seen`` at or after
``generated_at`` − lookback) that are ``suppressed`` or ``withdrawn``, newest first, each with
the lists that held it back (``held_by``): for a suppressed record its suppressing warninglists
(for a URL, the lists whose ``url`` action suppresses), for a withdrawn one ``operator-block``
or ``source-retraction``. Counts per list and per state lead the report. Written as the
``data`` member of ``GET /api/v1/iocs/suppressed`` (JSON) and as its CSV answer
(docs/lifecycle.md, "The suppression report").
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from typing import Any

from exports.model import IOCRecord
from exports.timefmt import iso_z
from generator.build.sinks import BuildInfo, ObjectWriter
from generator.extract.warninglists import BLOCK_LIST, SUPPRESS, policies
from generator.store.lifecycle import RETRACTED, SUPPRESSED, WITHDRAWN
from worker.contract import layout
from worker.contract.tiers import TIERS

HELD = (SUPPRESSED, WITHDRAWN)
CSV_COLUMNS = (
    "type",
    "value",
    "status",
    "held_by",
    "warnings",
    "first_seen",
    "last_seen",
    "changed_at",
    "article_id",
    "article_title",
    "article_url",
    "feed_name",
    "category",
)


def held_by(r: IOCRecord) -> tuple[str, ...]:
    """The lists (or operator and source actions) that keep ``r`` out of every list."""
    if r.status == WITHDRAWN:
        return tuple(n for n in r.warnings if n in (BLOCK_LIST, RETRACTED)) or (BLOCK_LIST,)
    table = policies()
    own = (lambda p: p.url) if r.type == "url" else (lambda p: p.action)
    return tuple(n for n in r.warnings if n in table and own(table[n]) == SUPPRESS)


def item(r: IOCRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "type": r.type,
        "value": r.value,
        "status": r.status,
        "held_by": list(held_by(r)),
        "warnings": list(r.warnings),
        "first_seen": iso_z(r.first_seen),
        "last_seen": iso_z(r.last_seen),
        "changed_at": iso_z(r.changed_at or r.last_seen),
        "source": {
            "article_id": r.article_id,
            "article_title": r.article_title,
            "article_url": r.article_url,
            "feed_name": r.feed_name,
            "category": r.category,
        },
    }


def csv_row(entry: dict[str, Any]) -> list[str]:
    source = entry["source"]
    flat = {**entry, **source, "held_by": ",".join(entry["held_by"])}
    flat["warnings"] = ",".join(entry["warnings"])
    return [flat[c] for c in CSV_COLUMNS]


def report(records: list[IOCRecord], since: int) -> tuple[bytes, bytes]:
    """(the JSON ``data`` member, the CSV answer) of the held-back ``records`` seen since
    ``since`` (they arrive newest first and stay so)."""
    entries = [item(r) for r in records if r.last_seen >= since]
    by_list = Counter(name for e in entries for name in e["held_by"])
    data = {
        "total": len(entries),
        "by_list": dict(sorted(by_list.items(), key=lambda kv: (-kv[1], kv[0]))),
        "by_status": {s: sum(e["status"] == s for e in entries) for s in HELD},
        "items": entries,
    }
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(csv_row(e) for e in entries)
    return json.dumps(data, separators=(",", ":")).encode(), buf.getvalue().encode()


class SuppressionReport:
    """Keeps the held-back records as the build streams them; writes one report per tier."""

    def __init__(self) -> None:
        self.held: list[IOCRecord] = []

    def add_day(self, day: str, records: list[IOCRecord]) -> None:
        self.held.extend(r for r in records if r.status in HELD)

    def finish(self, out: ObjectWriter, info: BuildInfo) -> None:
        for name, tier in TIERS.items():
            since = info.generated_at - tier.lookback_days * layout.DAY_SECONDS
            data, table = report(self.held, since)
            out.put(layout.suppressed_key(name, "json"), data)
            out.put(layout.suppressed_key(name, "csv"), table)
