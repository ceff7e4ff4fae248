"""The MISP feed: ``feeds/misp/{manifest.json, hashes.csv, <event uuid>.json}`` in the build tree.

The layout is the one MISP's feed generator writes (``MISPEvent.to_feed(with_meta=True)``):
one file per event, ``{"Event": {...}}``; ``manifest.json`` mapping each event uuid to its
``Orgc``, ``Tag``, ``info``, ``date``, ``analysis``, ``threat_level_id`` and ``timestamp``;
``hashes.csv`` with one ``<md5 of the value>,<event uuid>`` line per attribute.

Events are bounded: one per source article (the article an indicator's latest sighting came
from), split into parts of at most ``MAX_ATTRIBUTES``. The feed covers the enterprise tier's
lookback. Attributes are the ``misp`` lines the build already rendered, read back, so an
indicator is byte-identical in the feed and in ``/api/v1/iocs/misp``.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import repeat

import orjson

from exports.misp import galaxy_tag, render_line
from exports.model import IOCRecord
from generator.build.sinks import BuildInfo, DerivedInfo, ObjectWriter
from worker.buckets import days
from worker.buckets.storage import Build
from worker.contract import layout
from worker.contract.misp_event import (
    EventMeta,
    day_of,
    event_bytes,
    event_uuid,
    manifest_entry,
    one_line,
    strongest_tlp,
)
from worker.contract.tiers import TIERS
from worker.endpoints import query

FEED = "misp"
MAX_ATTRIBUTES = 1_000
LOOKBACK_TIER = "enterprise"
HASH_BLOCK = 65_536  # hashes.csv lines made at a time


@dataclass(slots=True)
class Article:
    """One article's indicators of one day: their JSON records, times and MISP attributes."""

    article_id: str
    records: list[dict] = field(default_factory=list)
    seen: list[int] = field(default_factory=list)
    attributes: list[bytes] = field(default_factory=list)


def day_articles(build: Build, day: str, since: int, count: int) -> list[Article]:
    """The day's ``count`` records seen since ``since``, grouped by source article, newest
    first (read through the day's overlay: ``worker/buckets/days.py``)."""
    logical = days.stamps(build, day)
    stamps = [logical[i] for i in days.list_lines(build, day, count)]
    groups: dict[str, Article] = {}
    json_lines, misp_lines = (days.day_lines(build, day, v, count) for v in ("json", "misp"))
    lines = zip(stamps, json_lines, misp_lines, strict=True)
    for seen, line, attribute in lines:
        if seen < since:
            break  # a day's records are newest first
        record = orjson.loads(line[:-1])  # each JSON line ends with a comma
        article_id = record["source"]["article_id"]
        group = groups.setdefault(article_id, Article(article_id))
        group.records.append(record)
        group.seen.append(seen)
        group.attributes.append(attribute)
    return list(groups.values())


def _galaxy_tags(records: list[dict]) -> list[str]:
    techniques = {t for r in records for t in r["mitre_techniques"]}
    techniques |= {r["value"] for r in records if r["type"] == "mitre_attack"}
    return sorted(t for t in map(galaxy_tag, techniques) if t is not None)


def changed_at(attribute: bytes) -> int:
    """An attribute's ``timestamp`` (``exports.model.state_time``): an event is as new as its
    newest change, so a MISP instance that re-fetches it sees a withdrawal."""
    start = attribute.index(b'"timestamp":"') + 13
    return int(attribute[start : attribute.index(b'"', start)])


def events_of(article: Article, day: str) -> Iterator[tuple[EventMeta, bytes, list[str]]]:
    """(meta, attributes, values) per event of an article: parts of MAX_ATTRIBUTES at most."""
    parts = range(0, len(article.records), MAX_ATTRIBUTES)
    for n, start in enumerate(parts, 1):
        records = article.records[start : start + MAX_ATTRIBUTES]
        attributes = b"".join(article.attributes[start : start + MAX_ATTRIBUTES])
        source = records[0]["source"]
        title = source["article_title"] or f"{source['feed_name']} article {article.article_id}"
        suffix = f" (part {n} of {len(parts)})" if len(parts) > 1 else ""
        info = one_line(title, 256 - len(suffix)) + suffix
        newest = max(map(changed_at, article.attributes[start : start + MAX_ATTRIBUTES]))
        tags = (f"tlp:{strongest_tlp(attributes)}", "type:OSINT", *_galaxy_tags(records))
        meta = EventMeta(
            event_uuid(f"article:{article.article_id}:{day}:{n}"),
            info,
            day_of(newest),
            newest,
            tags,
        )
        yield meta, attributes, [r["value"] for r in records]


def since_of(generated_at: int) -> int:
    """The oldest ``last_seen`` the feed covers."""
    return generated_at - TIERS[LOOKBACK_TIER].lookback_days * layout.DAY_SECONDS


class FeedWriter:
    """Writes events day by day (newest day first); ``finish`` writes the manifest and hashes.

    What it keeps until then is compact (a million indicators make tens of thousands of
    events): each manifest entry as its JSON bytes, each value's MD5 digest with the number
    of its event.
    """

    def __init__(self, source_name: str) -> None:
        self.source_name = source_name
        self.manifest: dict[str, bytes] = {}  # event uuid → its entry, JSON
        self.digests = bytearray()  # 16 bytes per attribute: the MD5 of its value
        self.events = array("I")  # per attribute: its event's number in ``manifest``
        self.numbers: dict[str, int] = {}  # event uuid → its number

    def add(self, out: ObjectWriter, day: str, articles: list[Article]) -> None:
        for article in articles:
            for meta, attributes, values in events_of(article, day):
                body = event_bytes(meta, self.source_name, attributes)
                out.put(layout.feed_key(FEED, f"{meta.uuid}.json"), body)
                entry = orjson.dumps(manifest_entry(meta, self.source_name))
                # an exact-size copy: the bytes orjson answers keep a buffer of several KB
                self.manifest[meta.uuid] = bytes(memoryview(entry))
                number = self.numbers.setdefault(meta.uuid, len(self.numbers))
                for value in values:
                    self.digests += hashlib.md5(value.encode(), usedforsecurity=False).digest()
                self.events.extend(repeat(number, len(values)))

    def finish(self, out: ObjectWriter) -> None:
        # orjson.dumps of the dict of entries, to the byte
        out.put(
            layout.feed_key(FEED, "manifest.json"),
            b"{"
            + b",".join(orjson.dumps(uuid) + b":" + entry for uuid, entry in self.manifest.items())
            + b"}",
        )
        tails = [f",{uuid}\n".encode() for uuid in self.numbers]
        digests, events = self.digests, self.events
        with out.stream(layout.feed_key(FEED, "hashes.csv")) as hashes:
            for start in range(0, len(events), HASH_BLOCK):
                hashes.write(
                    b"".join(
                        digests[16 * i : 16 * i + 16].hex().encode() + tails[events[i]]
                        for i in range(start, min(start + HASH_BLOCK, len(events)))
                    )
                )


def write_misp_feed(out: ObjectWriter, info: DerivedInfo) -> None:
    build = info.build
    since = since_of(build.generated_at)
    feed = FeedWriter(info.source_name)
    for day, count, _start in query.view_days(build, layout.ALL_VIEW):
        if query.day_start(day) + layout.DAY_SECONDS <= since:
            break
        feed.add(out, day, day_articles(build, day, since, count))
    feed.finish(out)


def record_of(r: IOCRecord) -> dict:
    """The fields of a record's JSON line that events read."""
    return {
        "type": r.type,
        "value": r.value,
        "mitre_techniques": r.mitre_techniques,
        "source": {"article_title": r.article_title, "feed_name": r.feed_name},
    }


class MispFeed:
    """The feed as a build sink: events are written while the days stream by.

    Its objects go to ``derived`` (an :class:`ObjectWriter` whose keys the build adds once the
    build id is known), so the feed does not change the id, as when it is a derived stage.
    """

    def __init__(self, info: BuildInfo, derived: ObjectWriter) -> None:
        self.since = since_of(info.generated_at)
        self.derived = derived
        self.feed = FeedWriter(info.source_name)
        self.done = False

    def add_day(self, day: str, records: list[IOCRecord]) -> None:
        self.add_rendered(day, records, {"misp": [render_line(r) for r in records]})

    def add_rendered(
        self, day: str, records: list[IOCRecord], rendered: Mapping[str, list[bytes]]
    ) -> None:
        if self.done or query.day_start(day) + layout.DAY_SECONDS <= self.since:
            self.done = True  # days come newest first: every later one is older
            return
        groups: dict[str, Article] = {}
        since = self.since
        attributes = rendered.get("misp")
        if attributes is None:  # rendered by another process
            attributes = [render_line(r) for r in records]
        for r, attribute in zip(records, attributes, strict=True):
            if r.last_seen < since:
                break  # a day's records are newest first
            group = groups.get(r.article_id)
            if group is None:
                group = groups[r.article_id] = Article(r.article_id)
            group.records.append(record_of(r))
            group.seen.append(r.last_seen)
            group.attributes.append(attribute)
        self.feed.add(self.derived, day, list(groups.values()))

    def finish(self, out: ObjectWriter, info: BuildInfo) -> None:
        self.feed.finish(self.derived)
