"""From sightings to indicators: one record per (type, normalised value).

Rules (documented in docs/architecture.md):

- ``first_seen``/``last_seen`` are the earliest and latest publication times of the articles that
  mention the indicator; ``sightings`` counts those articles.
- The *primary* sighting is the latest one (ties: smallest article id). It gives the record its
  ``source``, ``category`` and ``context``: the category filter therefore matches the category of
  the latest article that reported the indicator.
- ``confidence`` is the best confidence among sightings, raised one level (low → medium → high)
  when two or more distinct sources reported it.
- ``tags``, ``categories`` and ``mitre_techniques`` are the sorted union over all its articles;
  ``tlp`` is the most restrictive TLP 2.0 level among its articles' sources.
- ``article_ids`` lists every article that mentions it, sorted (search's related indicators).
- ``id`` is a UUIDv5 of ``type:value``, stable across builds and installations.
- Records are ordered newest first: ``last_seen`` descending, then type, then value.
- ``ingested_at``, ``version_times`` and ``technique_times`` say when the store first saw the
  record, each of its versions and each technique (``generator/store/history.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace

import pyarrow as pa
import pyarrow.compute as pc

from exports.model import IOCRecord
from exports.stix21 import uuid5
from generator.extract.warninglists import Hit
from generator.store.history import Seen, TechniqueTimes, joined, technique_times_of, version_times
from generator.store.lifecycle import ACTIVE, Lifecycle
from worker.contract.stix_common import TLP_LEVELS

IOC_NAMESPACE = uuid.UUID("6f1c5a3e-2d4b-5c8e-9a7f-0b1d2e3f4a5b")
RANK = {"low": 1, "medium": 2, "high": 3}
LEVEL = {1: "low", 2: "medium", 3: "high"}


_NAMESPACE = IOC_NAMESPACE.bytes


def ioc_id(type_: str, value: str) -> str:
    """``str(uuid.uuid5(IOC_NAMESPACE, f"{type_}:{value}"))``, without ``uuid.UUID`` objects."""
    return uuid5(_NAMESPACE, f"{type_}:{value}")


def _article_index(articles: pa.Table) -> dict[str, tuple]:
    cols = [
        articles[name].to_pylist()
        for name in (
            "article_id",
            "published",
            "feed_name",
            "category",
            "title",
            "url",
            "source_id",
            "tags",
            "techniques",
            "categories",
            "tlp",
        )
    ]
    return {row[0]: row[1:] for row in zip(*cols, strict=True)}


class _Acc:
    """The running fold of one indicator's sightings (kept small: there may be millions)."""

    __slots__ = ("first", "last", "primary", "context", "rank", "others", "ingested", "seen")

    def __init__(
        self, published: int, article_id: str, context: str, rank: int, ingested: int = 0
    ) -> None:
        self.first = self.last = published
        self.primary = article_id
        self.context = context
        self.rank = rank
        self.others: list[str] | None = None
        self.ingested = ingested
        self.seen: list[Seen] | None = None  # every sighting, once there are two

    def history(self) -> list[Seen]:
        return self.seen or [(self.ingested, self.first, self.primary)]

    def add(
        self, published: int, article_id: str, context: str, rank: int, ingested: int = 0
    ) -> None:
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


BATCH = 4_096  # records made per read of the columns


class _Grouped:
    """The sightings of known articles as columns, grouped by indicator in record order.

    The store's rows stay in Arrow columns (their strings are not Python objects) and only the
    records being made are read out, a batch at a time: a fold of Python objects per indicator
    would keep hundreds of MB alive for a million of them, scattered over the heap.
    """

    def __init__(self, index: dict[str, tuple], sightings: pa.Table) -> None:
        self.ids = list(index)  # an article's number is its place here
        where = pc.index_in(sightings["article_id"], value_set=pa.array(self.ids, pa.string()))
        known = pc.is_valid(where)
        if not pc.all(known).as_py():  # sightings of unknown articles count for nothing
            sightings = sightings.filter(known)
            where = pc.drop_null(where)
        self.article = _array(where)
        published = pa.array([index[a][0] for a in self.ids], pa.int64())
        self.published = pc.take(published, self.article)
        if "ingested_at" in sightings.column_names:  # else: ingested when published
            self.ingested = _array(pc.coalesce(sightings["ingested_at"], self.published))
        else:
            self.ingested = self.published
        levels = pa.array(list(RANK), pa.string())
        self.rank = _array(
            pc.coalesce(
                pc.take(
                    pa.array(list(RANK.values()), pa.int8()),
                    pc.index_in(sightings["confidence"], value_set=levels),
                ),
                pa.scalar(RANK["low"], pa.int8()),
            )
        )
        self.types = _array(sightings["type"])
        self.values = _array(sightings["value"])
        self.contexts = _array(sightings["context"])
        self.rows, self.sizes = self._order()
        self.count = len(self.sizes)

    def _order(self) -> tuple[pa.Array, pa.Array]:
        """(the rows, one group of rows per indicator, indicators in record order;
        how many rows each indicator has)."""
        n = len(self.values)
        if n == 0:
            return pa.array([], pa.int64()), pa.array([], pa.int64())
        by_key = pc.sort_indices(
            pa.table({"t": self.types, "v": self.values, "p": self.published}),
            sort_keys=[("t", "ascending"), ("v", "ascending"), ("p", "descending")],
        )
        types, values = pc.take(self.types, by_key), pc.take(self.values, by_key)
        change = pc.or_(pc.not_equal(types[1:], types[:-1]), pc.not_equal(values[1:], values[:-1]))
        del types, values
        starts = pa.concat_arrays(
            [pa.array([0], pa.int64()), pc.add(pc.indices_nonzero(change), 1).cast(pa.int64())]
        )
        ends = pa.concat_arrays([starts[1:], pa.array([n], pa.int64())])
        groups = len(starts)
        number = _arange(groups)
        # an indicator's last_seen is its group's first (latest) publication time
        last = pc.take(pc.take(self.published, by_key), starts)
        # record order: last_seen descending, then type and value (the groups' order)
        ranked = pc.sort_indices(
            pa.table({"l": last, "g": number}), sort_keys=[("l", "descending"), ("g", "ascending")]
        )
        place = pc.sort_indices(ranked)  # each group's place in record order
        # every sorted row's group, then the rows by their group's place (stable)
        group_of = pc.run_end_decode(pa.RunEndEncodedArray.from_arrays(ends, place))
        rows = pc.take(by_key, pc.sort_indices(group_of))
        sizes = pc.take(pc.subtract(ends, starts), ranked)
        return _array(rows), _array(sizes)

    def hits(self, lifecycle: Lifecycle) -> list[Hit | None]:
        """The warninglist hit of each record, in record order (one column check)."""
        if not self.count:
            return []
        starts = pa.concat_arrays(
            [pa.array([0], pa.int64()), pc.cumulative_sum(self.sizes)[:-1].cast(pa.int64())]
        )
        first = pc.take(self.rows, starts)
        return lifecycle.hits(pc.take(self.types, first), pc.take(self.values, first))

    def batches(self) -> Iterator[tuple[list[int], list[list]]]:
        """(each record's number of rows, the columns of their rows), BATCH records a time."""
        row = 0
        for first in range(0, self.count, BATCH):
            sizes = self.sizes.slice(first, BATCH).to_pylist()
            rows = self.rows.slice(row, sum(sizes))
            row += len(rows)
            yield (
                sizes,
                [
                    pc.take(column, rows).to_pylist()
                    for column in (
                        self.types,
                        self.values,
                        self.article,
                        self.published,
                        self.contexts,
                        self.rank,
                        self.ingested,
                    )
                ]
                + [rows.to_pylist()],
            )


def _with_state(record: IOCRecord, lifecycle: Lifecycle, hit: Hit | None) -> IOCRecord:
    """The record in its state; leaving ``active`` is one more version (its time joins
    ``version_times``, so TAXII dates the new version)."""
    versions = record.version_times
    last_version = versions[-1] if versions else record.ingested_at
    state = lifecycle.state(
        record.type, record.confidence, record.last_seen, hit, last_version, record.article_ids
    )
    state = lifecycle.dated(record.type, record.value, state, last_version)
    if state.status != ACTIVE and state.changed_at > last_version:
        versions = (*versions, state.changed_at)
    return replace(
        record,
        status=state.status,
        valid_until=state.valid_until,
        warnings=state.warnings,
        changed_at=state.changed_at,
        version_times=versions,
    )


def _array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _arange(n: int) -> pa.Array:
    return pa.array(range(n), pa.int64())


def iter_records(
    articles: pa.Table, sightings: pa.Table, lifecycle: Lifecycle | None = None
) -> tuple[int, Iterator[IOCRecord]]:
    """(count, records newest first), made lazily so that few are alive at once. With a
    ``lifecycle``, each record carries its state (``generator/store/lifecycle.py``)."""
    index = _article_index(articles)
    grouped = _Grouped(index, sightings)
    times = technique_times_of(sightings)
    shared: dict[tuple[str, int], tuple] = {}
    ids = grouped.ids
    hits = grouped.hits(lifecycle) if lifecycle is not None else None

    def records() -> Iterator[IOCRecord]:
        made = 0  # records made so far: the place of the next one's hit
        for sizes, (
            types,
            values,
            article,
            published,
            contexts,
            rank,
            ingested,
            rows,
        ) in grouped.batches():
            k = 0
            for size in sizes:
                key = (types[k], values[k])
                if size == 1:
                    acc = _Acc(published[k], ids[article[k]], contexts[k], rank[k], ingested[k])
                    record = _single(key, acc, index, times, shared)
                else:
                    # the sightings of one indicator, folded in store order
                    mine = sorted(range(k, k + size), key=rows.__getitem__)
                    j = mine[0]
                    acc = _Acc(published[j], ids[article[j]], contexts[j], rank[j], ingested[j])
                    for j in mine[1:]:
                        acc.add(published[j], ids[article[j]], contexts[j], rank[j], ingested[j])
                    record = _record(key, acc, index, times)
                if lifecycle is not None and hits is not None:
                    record = _with_state(record, lifecycle, hits[made])
                made += 1
                yield record
                k += size

    return grouped.count, records()


def aggregate(articles: pa.Table, sightings: pa.Table) -> list[IOCRecord]:
    """Fold the store into indicator records, newest first."""
    return list(iter_records(articles, sightings)[1])


def _single(
    key: tuple[str, str],
    acc: _Acc,
    index: dict[str, tuple],
    times: TechniqueTimes,
    shared: dict[tuple[str, int], tuple],
) -> IOCRecord:
    """``_record`` of an indicator seen once (most are): the fields that depend on its article
    and ingest time alone are worked out once per (article, ingest) and shared."""
    article, ingested = acc.primary, acc.ingested
    parts = shared.get((article, ingested))
    if parts is None:
        art = index[article]
        ordered = tuple(sorted(art[7]))
        parts = shared[(article, ingested)] = (
            art,
            tuple(sorted(art[6])),
            ordered,
            (article,),
            (ingested,),
            joined([(ingested, acc.first, article)], ordered, {article: art[7]}, times),
        )
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
        categories=tuple(sorted(art[8])),
        tlp=art[9],
    )


def _record(
    key: tuple[str, str], acc: _Acc, index: dict[str, tuple], times: TechniqueTimes | None = None
) -> IOCRecord:
    art = index[acc.primary]
    ids = list(dict.fromkeys((acc.primary, *(acc.others or ()))))  # an article counts once
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
        categories=tuple(sorted(set().union(*(a[8] for a in arts)))),
        tlp=max((a[9] for a in arts), key=TLP_LEVELS.index),
    )
