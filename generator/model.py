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
- ``article_ids`` lists every article that mentions it, sorted (search's related indicators).
- ``id`` is a UUIDv5 of ``type:value``, stable across builds and installations.
- Records are ordered newest first: ``last_seen`` descending, then type, then value.
- ``ingested_at``, ``version_times`` and ``technique_times`` say when the store first saw the
  record, each of its versions and each technique (``generator/record_history.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pyarrow as pa

from exports.model import IOCRecord
from exports.stix21 import uuid5
from generator.record_history import Seen, TechniqueTimes, joined, technique_times_of, version_times

IOC_NAMESPACE = uuid.UUID("6f1c5a3e-2d4b-5c8e-9a7f-0b1d2e3f4a5b")
RANK = {"low": 1, "medium": 2, "high": 3}
LEVEL = {1: "low", 2: "medium", 3: "high"}


_NAMESPACE = IOC_NAMESPACE.bytes


def ioc_id(type_: str, value: str) -> str:
    """``str(uuid.uuid5(IOC_NAMESPACE, f"{type_}:{value}"))``, without ``uuid.UUID`` objects."""
    return uuid5(_NAMESPACE, f"{type_}:{value}")


def _article_index(articles: pa.Table) -> dict[str, tuple]:
    cols = [articles[name].to_pylist() for name in (
        "article_id", "published", "feed_name", "category", "title", "url", "source_id",
        "tags", "techniques",
    )]
    return {row[0]: row[1:] for row in zip(*cols, strict=True)}


class _Acc:
    """The running fold of one indicator's sightings (kept small: there may be millions)."""

    __slots__ = ("first", "last", "primary", "context", "rank", "others", "ingested", "seen")

    def __init__(self, published: int, article_id: str, context: str, rank: int,
                 ingested: int = 0) -> None:
        self.first = self.last = published
        self.primary = article_id
        self.context = context
        self.rank = rank
        self.others: list[str] | None = None
        self.ingested = ingested
        self.seen: list[Seen] | None = None  # every sighting, once there are two

    def history(self) -> list[Seen]:
        return self.seen or [(self.ingested, self.first, self.primary)]

    def add(self, published: int, article_id: str, context: str, rank: int,
            ingested: int = 0) -> None:
        if self.seen is None:
            self.seen = self.history()
        self.seen.append((ingested, published, article_id))
        self.first = min(self.first, published)
        if published > self.last or (published == self.last and article_id < self.primary):
            if self.others is None:
                self.others = []
            self.others.append(self.primary)
            self.last, self.primary, self.context = published, article_id, context
        elif article_id != self.primary:
            if self.others is None:
                self.others = []
            self.others.append(article_id)
        self.rank = max(self.rank, rank)


def fold(articles: pa.Table, sightings: pa.Table) -> tuple[dict[str, tuple], dict]:
    """One accumulator per (type, value), reading the sightings a batch at a time."""
    index = _article_index(articles)
    accs: dict[tuple[str, str], _Acc] = {}
    names = ("article_id", "type", "value", "context", "confidence", "ingested_at")
    if "ingested_at" not in sightings.column_names:  # a bare table: ingested when published
        sightings = sightings.append_column("ingested_at", pa.nulls(sightings.num_rows, pa.int64()))
    for batch in sightings.select(list(names)).to_batches(max_chunksize=65_536):
        cols = [batch.column(i).to_pylist() for i in range(len(names))]
        for article_id, type_, value, context, confidence, ingested in zip(*cols, strict=True):
            art = index.get(article_id)
            if art is None:
                continue
            rank = RANK.get(confidence, 1)
            ingested = art[0] if ingested is None else ingested
            acc = accs.get((type_, value))
            if acc is None:
                accs[(type_, value)] = _Acc(art[0], article_id, context, rank, ingested)
            else:
                acc.add(art[0], article_id, context, rank, ingested)
    return index, accs


def iter_records(articles: pa.Table, sightings: pa.Table) -> tuple[int, Iterator[IOCRecord]]:
    """(count, records newest first), made lazily so that few are alive at once."""
    index, accs = fold(articles, sightings)
    order = sorted(accs, key=lambda k: (-accs[k].last, k[0], k[1]))
    times = technique_times_of(sightings)
    shared: dict[tuple[str, int], tuple] = {}

    def records() -> Iterator[IOCRecord]:
        order.reverse()
        while order:
            key = order.pop()  # nothing keeps a record's key or fold once it is made
            acc = accs.pop(key)
            if acc.seen is None:
                yield _single(key, acc, index, times, shared)
            else:
                yield _record(key, acc, index, times)

    return len(order), records()


def aggregate(articles: pa.Table, sightings: pa.Table) -> list[IOCRecord]:
    """Fold the store into indicator records, newest first."""
    return list(iter_records(articles, sightings)[1])


def _single(key: tuple[str, str], acc: _Acc, index: dict[str, tuple], times: TechniqueTimes,
            shared: dict[tuple[str, int], tuple]) -> IOCRecord:
    """``_record`` of an indicator seen once (most are): the fields that depend on its article
    and ingest time alone are worked out once per (article, ingest) and shared."""
    article, ingested = acc.primary, acc.ingested
    parts = shared.get((article, ingested))
    if parts is None:
        art = index[article]
        ordered = tuple(sorted(art[7]))
        parts = shared[(article, ingested)] = (
            art, tuple(sorted(art[6])), ordered, (article,), (ingested,),
            joined([(ingested, acc.first, article)], ordered, {article: art[7]}, times))
    art, tags, techniques, ids, versions, technique_times = parts
    return IOCRecord(
        id=ioc_id(*key),
        type=key[0],
        value=key[1],
        confidence=LEVEL[acc.rank],
        first_seen=acc.first,
        last_seen=acc.last,
        sightings=1,
        article_id=article,
        article_title=art[3],
        article_url=art[4],
        feed_name=art[1],
        category=art[2],
        context=acc.context,
        tags=tags,
        mitre_techniques=techniques,
        article_ids=ids,
        ingested_at=ingested,
        version_times=versions,
        technique_times=technique_times,
    )


def _record(key: tuple[str, str], acc: _Acc, index: dict[str, tuple],
            times: TechniqueTimes | None = None) -> IOCRecord:
    art = index[acc.primary]
    ids = [acc.primary, *(acc.others or ())]
    arts = [index[a] for a in ids]
    sources = {a[5] for a in arts}
    rank = min(3, acc.rank + 1) if len(sources) >= 2 else acc.rank
    tags = set(art[6]).union(*(a[6] for a in arts)) if acc.others else art[6]
    techniques = set(art[7]).union(*(a[7] for a in arts)) if acc.others else art[7]
    seen = acc.history()
    ordered = tuple(sorted(techniques))
    per_article = {a: index[a][7] for _, _, a in seen}
    return IOCRecord(
        id=ioc_id(*key),
        type=key[0],
        value=key[1],
        confidence=LEVEL[rank],
        first_seen=acc.first,
        last_seen=acc.last,
        sightings=len(ids),
        article_id=acc.primary,
        article_title=art[3],
        article_url=art[4],
        feed_name=art[1],
        category=art[2],
        context=acc.context,
        tags=tuple(sorted(tags)),
        mitre_techniques=ordered,
        article_ids=tuple(sorted(ids)),
        ingested_at=min(s[0] for s in seen),
        version_times=version_times(seen),
        technique_times=joined(seen, ordered, per_article, times or {}),
    )
