"""When the store first saw a record, and when each of its versions appeared.

Every sighting carries ``ingested_at``, the time of the ingest that first stored it
(``generator/store/generations.py``). From a record's sightings alone this module derives, without any
state kept between builds:

- ``ingested_at``: the earliest ``ingested_at`` of its sightings (the store first saw it then);
- ``version_times``: the ingest times at which its ``last_seen`` grew, ascending. Replaying the
  sightings in ingest order, ``last_seen`` after ingest ``T`` is the latest publication time among
  sightings stored by ``T``; every ``T`` where it rose made a new version (STIX ``modified`` is
  ``last_seen``). The last one is when the current version appeared;
- ``technique_times``: for each ATT&CK technique of the record (its articles' techniques), when
  the pair first existed: the earliest, over the record's sightings, of the later of the
  sighting's ``ingested_at`` and the article's own ``mitre_attack`` sighting of the technique.

Past ingests never gain sightings (a merge stamps new ones later than everything stored), so
these values are the same in every later build: ``generator/build/taxii_order.py`` builds stable,
strictly increasing TAXII ``date_added`` values on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

# (ingested_at, published, article_id) of one sighting
Seen = tuple[int, int, str]
TechniqueTimes = dict[tuple[str, str], int]


def technique_times_of(sightings: pa.Table) -> TechniqueTimes:
    """(article id, technique) → ``ingested_at`` of the article's ``mitre_attack`` sighting."""
    if "ingested_at" not in sightings.column_names:
        return {}
    rows = sightings.filter(pc.equal(sightings["type"], "mitre_attack"))
    keys = zip(rows["article_id"].to_pylist(), rows["value"].to_pylist(), strict=True)
    return dict(zip(keys, rows["ingested_at"].to_pylist(), strict=True))


def version_times(seen: Iterable[Seen]) -> tuple[int, ...]:
    """The ingest times at which the latest publication time rose, ascending."""
    best: int | None = None
    out: list[int] = []
    for ingested, published, _ in sorted(seen):
        if best is None or published > best:
            if not out or out[-1] != ingested:
                out.append(ingested)
            best = published
    return tuple(out)


def joined(
    seen: Iterable[Seen],
    techniques: Sequence[str],
    article_techniques: dict[str, Sequence[str]],
    times: TechniqueTimes,
) -> tuple[int, ...]:
    """For each of ``techniques`` (sorted), when it first belonged to the record."""
    first: dict[str, int] = {}
    for ingested, _, article in seen:
        for technique in article_techniques.get(article, ()):
            at = max(ingested, times.get((article, technique), ingested))
            if at < first.get(technique, at + 1):
                first[technique] = at
    return tuple(first.get(t, 0) for t in techniques)
