"""A straightforward reference for list queries: filter, sort, slice and render the records.

It shares nothing with the build tree or the worker's query engine; it only reuses the
record renderers, so that a difference means the partitions or indexes answered wrongly.
"""

from __future__ import annotations

import time
import uuid
from urllib.parse import urlencode

from exports.ioc_json import record_dict
from exports.model import IOCRecord
from exports.registry import VARIANT_RENDERERS
from generator.extract import warninglists
from generator.store.generations import Store
from generator.store.lifecycle import Lifecycle, expiry
from generator.store.records import iter_records
from worker.contract import formats
from worker.contract.stix_common import TLP_LEVELS
from worker.contract.tiers import Tier
from worker.endpoints.params import LINK_ORDER


def iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def stated_records(store: Store, generated_at: int) -> list[IOCRecord]:
    """The store's records in their states as a default build at ``generated_at`` decides them
    (the states come from generator/store/lifecycle.py: the reference checks the indexes, not them)."""
    check = Lifecycle(warninglists.bundled(), expiry(), generated_at)
    return list(iter_records(store.articles(), store.sightings(), check)[1])


def reference(
    records: list[IOCRecord],
    *,
    tier: Tier,
    generated_at: int,
    build_id: str,
    params: dict[str, str],
    since: int,
    until: int,
    base: str,
) -> tuple[str, object]:
    """(format, expected): parsed JSON document for json, bytes for the other list formats."""
    t, c, f = (params.get(k, "all") for k in ("type", "category", "confidence"))
    status = params.get("status", "active")
    limit = min(int(params.get("limit", 100)), tier.max_limit)
    offset = int(params.get("offset", 0))
    fmt = params.get("format", "json")
    context = params.get("include_context", "true") in ("true", "1")
    matching = [
        r
        for r in records
        if (t == "all" or r.type == t)
        and (c == "all" or r.category == c)
        and (f == "all" or r.confidence == f)
        and (status == "all" or r.status == status)
        and since <= r.last_seen <= until
    ]
    matching.sort(key=lambda r: (-r.last_seen, r.type, r.value))
    page = matching[offset : offset + limit]
    if not formats.BY_NAME[fmt].json_envelope:  # CSV's header or nothing, then the lines
        return fmt, formats.BY_NAME[fmt].header + b"".join(VARIANT_RENDERERS[fmt](r) for r in page)

    def link(off: int) -> str:
        q = {k: params[k] for k in LINK_ORDER if k in params}
        q["limit"], q["offset"], q["build"] = str(limit), str(off), build_id
        return f"{base}/api/v1/iocs?" + urlencode({k: q[k] for k in LINK_ORDER if k in q})

    links = {"self": link(offset)}
    if offset + limit < len(matching):
        links["next"] = link(offset + limit)
    if offset > 0:
        links["prev"] = link(max(0, offset - limit))
    return fmt, {
        "meta": {
            "total": len(matching),
            "limit": limit,
            "offset": offset,
            "generated_at": iso(generated_at),
            "feed_version": build_id,
            "source": "socdef",
            "filters": {
                "type": t,
                "category": c,
                "confidence": f,
                "status": status,
                "since": iso(since),
                "until": iso(until),
            },
        },
        "data": [record_dict(r, context=context) for r in page],
        "links": links,
    }


# --- the fold of the store into records, from the rules in docs/architecture.md ---------------
# Written from the documented rules (docs/architecture.md "From sightings to records", the
# docstrings of generator/store/records.py and generator/store/history.py), row by row in plain Python;
# it imports nothing of generator/ so that a wrong rule there is not copied here.

IOC_NAMESPACE = uuid.UUID("6f1c5a3e-2d4b-5c8e-9a7f-0b1d2e3f4a5b")  # ids stable across installs
LEVELS = ("low", "medium", "high")


def fold_records(articles, sightings) -> list[IOCRecord]:
    """One record per (type, value) of the sightings of known articles, newest first."""
    arts = {a["article_id"]: a for a in articles.to_pylist()}
    rows = sightings.to_pylist()
    has_ingest = "ingested_at" in sightings.column_names
    # a sighting without an ingest time was ingested when its article was published
    for row in rows:
        if row["article_id"] in arts and row.get("ingested_at") is None:
            row["ingested_at"] = arts[row["article_id"]]["published"]
    # (article, technique) -> when the article's own mitre_attack sighting of it was stored
    technique_seen: dict[tuple[str, str], int] = {}
    if has_ingest:
        for row in rows:
            if row["type"] == "mitre_attack" and row["article_id"] in arts:
                pair = (row["article_id"], row["value"])
                technique_seen[pair] = min(
                    technique_seen.get(pair, row["ingested_at"]), row["ingested_at"]
                )
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        if row["article_id"] in arts:  # sightings of unknown articles count for nothing
            groups.setdefault((row["type"], row["value"]), []).append(row)
    records = [_fold_one(key, group, arts, technique_seen) for key, group in groups.items()]
    records.sort(key=lambda r: (-r.last_seen, r.type, r.value))
    return records


def _fold_one(
    key: tuple[str, str],
    group: list[dict],
    arts: dict[str, dict],
    technique_seen: dict[tuple[str, str], int],
) -> IOCRecord:
    type_, value = key
    article_ids = sorted({row["article_id"] for row in group})
    published = {a: arts[a]["published"] for a in article_ids}
    # the primary article: the latest; ties go to the smallest article id
    primary = min(article_ids, key=lambda a: (-published[a], a))
    context = next(row["context"] for row in group if row["article_id"] == primary)
    best = max(
        LEVELS.index(row["confidence"]) if row["confidence"] in LEVELS else 0 for row in group
    )
    if len({arts[a]["source_id"] for a in article_ids}) >= 2:  # two sources raise it a level
        best = min(best + 1, len(LEVELS) - 1)
    techniques = sorted({t for a in article_ids for t in arts[a]["techniques"]})
    ingests = sorted({row["ingested_at"] for row in group})
    versions, latest = [], None
    for at in ingests:  # replay in ingest order: a version whenever last_seen rose
        now_latest = max(published[row["article_id"]] for row in group if row["ingested_at"] <= at)
        if latest is None or now_latest > latest:
            versions.append(at)
            latest = now_latest
    joined = tuple(
        min(
            max(row["ingested_at"], technique_seen.get((row["article_id"], t), 0))
            for row in group
            if t in arts[row["article_id"]]["techniques"]
        )
        for t in techniques
    )
    art = arts[primary]
    return IOCRecord(
        id=str(uuid.uuid5(IOC_NAMESPACE, f"{type_}:{value}")),
        type=type_,
        value=value,
        confidence=LEVELS[best],
        first_seen=min(published.values()),
        last_seen=max(published.values()),
        sightings=len(article_ids),
        article_id=primary,
        article_title=art["title"],
        article_url=art["url"],
        feed_name=art["feed_name"],
        category=art["category"],
        context=context,
        tags=tuple(sorted({t for a in article_ids for t in arts[a]["tags"]})),
        mitre_techniques=tuple(techniques),
        article_ids=tuple(article_ids),
        ingested_at=ingests[0],
        version_times=tuple(versions),
        technique_times=joined,
        categories=tuple(sorted({c for a in article_ids for c in arts[a]["categories"]})),
        tlp=max((arts[a]["tlp"] for a in article_ids), key=TLP_LEVELS.index),
    )
