"""From sightings to indicators: one record per (type, normalised value).

Rules (documented in docs/architecture.md):

- ``first_seen``/``last_seen`` are the earliest and latest publication times of the articles that
  mention the indicator; ``sightings`` counts those articles.
- The *primary* sighting is the latest one (ties: smallest article id). It gives the record its
  ``source``, ``category`` and ``context``: the category filter therefore matches the category of
  the latest article that reported the indicator.
- ``confidence`` is the best confidence among sightings, raised one level (low → medium → high)
  when two or more distinct sources reported it.
- ``tags`` and ``mitre_techniques`` are the sorted union over all its articles.
- ``id`` is a UUIDv5 of ``type:value``, stable across builds and installations.
- Records are ordered newest first: ``last_seen`` descending, then type, then value.
"""

from __future__ import annotations

import uuid

import pyarrow as pa

from exports.model import IOCRecord

IOC_NAMESPACE = uuid.UUID("6f1c5a3e-2d4b-5c8e-9a7f-0b1d2e3f4a5b")
RANK = {"low": 1, "medium": 2, "high": 3}
LEVEL = {1: "low", 2: "medium", 3: "high"}


def ioc_id(type_: str, value: str) -> str:
    return str(uuid.uuid5(IOC_NAMESPACE, f"{type_}:{value}"))


def _article_index(articles: pa.Table) -> dict[str, tuple]:
    cols = [articles[name].to_pylist() for name in (
        "article_id", "published", "feed_name", "category", "title", "url", "source_id",
        "tags", "techniques",
    )]
    return {row[0]: row[1:] for row in zip(*cols, strict=True)}


class _Acc:
    __slots__ = (
        "first", "last", "primary", "context", "rank", "sources", "count", "tags", "techniques",
    )

    def __init__(self, published: int, article_id: str, context: str, rank: int) -> None:
        self.first = self.last = published
        self.primary = article_id
        self.context = context
        self.rank = rank
        self.sources: set[str] = set()
        self.count = 0
        self.tags: set[str] = set()
        self.techniques: set[str] = set()

    def add(self, art: tuple, article_id: str, context: str, rank: int) -> None:
        published = art[0]
        self.first = min(self.first, published)
        if published > self.last or (published == self.last and article_id < self.primary):
            self.last, self.primary, self.context = published, article_id, context
        self.rank = max(self.rank, rank)
        self.sources.add(art[5])
        self.count += 1
        self.tags.update(art[6])
        self.techniques.update(art[7])


def aggregate(articles: pa.Table, sightings: pa.Table) -> list[IOCRecord]:
    """Fold the store into indicator records, newest first."""
    index = _article_index(articles)
    accs: dict[tuple[str, str], _Acc] = {}
    cols = [sightings[n].to_pylist() for n in ("article_id", "type", "value", "context", "confidence")]
    for article_id, type_, value, context, confidence in zip(*cols, strict=True):
        art = index.get(article_id)
        if art is None:
            continue
        rank = RANK.get(confidence, 1)
        acc = accs.get((type_, value))
        if acc is None:
            acc = accs[(type_, value)] = _Acc(art[0], article_id, context, rank)
        acc.add(art, article_id, context, rank)
    records = [_record(key, acc, index[acc.primary]) for key, acc in accs.items()]
    records.sort(key=lambda r: (-r.last_seen, r.type, r.value))
    return records


def _record(key: tuple[str, str], acc: _Acc, art: tuple) -> IOCRecord:
    rank = min(3, acc.rank + 1) if len(acc.sources) >= 2 else acc.rank
    return IOCRecord(
        id=ioc_id(*key),
        type=key[0],
        value=key[1],
        confidence=LEVEL[rank],
        first_seen=acc.first,
        last_seen=acc.last,
        sightings=acc.count,
        article_id=acc.primary,
        article_title=art[3],
        article_url=art[4],
        feed_name=art[1],
        category=art[2],
        context=acc.context,
        tags=tuple(sorted(acc.tags)),
        mitre_techniques=tuple(sorted(acc.techniques)),
    )
