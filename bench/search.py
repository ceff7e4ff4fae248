"""Search lookups through the worker in-process vs SQLite with an index on the same records.

    python bench/search.py [-n 100000] [--million] [--seconds 2] [--rounds 5] [--delta]

Builds a synthetic store of N IOCs with the real build, then, interleaving rounds, measures
lookups per second of: ``GET /api/v1/iocs/search`` through the whole worker chain in-process
(key check, limiter, routing, shard read, stored JSON lines; ``include_related=false`` and the
default ``true``), ``GET /api/v1/iocs/range/{prefix}``, the index lookup alone
(``worker.endpoints.search.search_answer`` without related records: what the SQLite row does), and the
baseline: SQLite (a file on the
same disk, a B-tree index on the normalised value, each record's JSON stored beside it) asked
``SELECT json FROM iocs WHERE value = ?`` for the normalised query, the matches wrapped the same
way. A linear scan of the records in Python is printed for context only. Queries are record
values, half of them defanged and re-cased, plus 10 % misses. Prints medians with each figure's
ratio to the SQLite baseline from the same run, and the shard sizes. Rates count this process's
CPU time (user + system), not the wall clock, so load from other jobs does not land on whichever
variant was being timed (everything here runs in this one process). ``--delta`` adds rows for a
second build into the same folder (1 % of sightings changed, an hour later), which keeps the
first build's search base and answers through its delta.
First it prints what the two sinks cost the build: seconds spent in the search index and the
stats sink against the seconds the build spends producing the same records (fold + day split),
and what writing the shards one object each would cost (``--shard-objects`` of them, timed
through the build's own ``ObjectWriter``) against one packed object.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from array import array
from collections.abc import Callable
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exports.ioc_json import record_dict  # noqa: E402
from exports.model import IOCRecord  # noqa: E402
from generator.build.search_index import SearchIndex  # noqa: E402
from generator.build.sinks import BuildInfo, ObjectWriter  # noqa: E402
from generator.build.stats import Stats  # noqa: E402
from generator.build.tree import build, split_days  # noqa: E402
from generator.store.generations import Store  # noqa: E402
from generator.store.records import aggregate, iter_records  # noqa: E402
from generator.store.synthetic import synthetic_store  # noqa: E402
from worker.access.keys import KeyStore  # noqa: E402
from worker.app import App  # noqa: E402
from worker.buckets.storage import Build, LocalBucket  # noqa: E402
from worker.contract import layout  # noqa: E402
from worker.contract.ioc_norm import normalise, search_hash  # noqa: E402
from worker.endpoints.search import search_answer  # noqa: E402
from worker.http import Request  # noqa: E402
from worker.limits.windows import MemoryLimiter  # noqa: E402

NOW = 1_795_000_000


class OneBuild:
    """The worker's build source, pinned to one build."""

    def __init__(self, build_: Build) -> None:
        self.build = build_

    def current(self) -> Build:
        return self.build


def defang(value: str, rng: random.Random) -> str:
    text = value.replace(".", "[.]").replace("@", "[at]").replace("https://", "hxxps://")
    return text.upper() if "://" not in text and rng.random() < 0.5 else text


def queries(records: list[IOCRecord], count: int, seed: int = 5) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        if i % 10 == 9:
            out.append(f"miss-{rng.randrange(10**9)}.example")
            continue
        value = rng.choice(records).value
        out.append(defang(value, rng) if i % 2 else value)
    return out


def worker_lookup(app: App, key: str, path: Callable[[str], str], extra: dict[str, str]):
    headers = {"authorization": f"Bearer {key}", "host": "bench"}

    def lookup(q: str) -> bytes:
        target, query = path(q)
        resp = app.respond(Request("GET", target, {**query, **extra}, headers, "http", "b"), "r")
        assert resp.status == 200, resp.body
        return resp.body

    return lookup


def scan_lookup(records: list[IOCRecord]):
    values = [r.value for r in records]

    def lookup(q: str) -> bytes:
        want = normalise(q)
        hits = [records[i] for i, v in enumerate(values) if v == want]
        return orjson.dumps({"found": bool(hits), "matches": [record_dict(r) for r in hits]})

    return lookup


def sqlite_lookup(records: list[IOCRecord], path: str):
    """The indexed baseline: one table of (normalised value, record JSON), a B-tree on value."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE iocs (value TEXT NOT NULL, json BLOB NOT NULL)")
    db.executemany(
        "INSERT INTO iocs VALUES (?, ?)", ((r.value, orjson.dumps(record_dict(r))) for r in records)
    )
    db.execute("CREATE INDEX iocs_value ON iocs (value)")
    db.commit()
    select = "SELECT json FROM iocs WHERE value = ?"

    def lookup(q: str) -> bytes:
        hits = [row[0] for row in db.execute(select, (normalise(q),))]
        return b'{"found":%s,"matches":[%s]}' % (b"true" if hits else b"false", b",".join(hits))

    return lookup


def shard_write_cost(out_dir: str, objects: int, size: int = 4_422) -> str:
    """ms per object of writing ``objects`` shards of ``size`` bytes one object each, against
    the same bytes as one packed object, both through the build's ``ObjectWriter``."""
    data = random.Random(3).randbytes(size * objects)
    out = ObjectWriter(Path(out_dir, "one-each"))
    started = time.perf_counter()
    for i in range(objects):
        out.put(f"search/shard-{i:05x}.jsonl", data[i * size : (i + 1) * size])
    each = time.perf_counter() - started
    started = time.perf_counter()
    ObjectWriter(Path(out_dir, "packed")).put("search/packed.bin", data)
    packed = time.perf_counter() - started
    return (
        f"{objects:,} shards of {size:,} bytes: one object each {each * 1e3 / objects:.3f} ms "
        f"per object ({each:.2f} s), packed into one object {packed * 1e3:.1f} ms"
    )


def rate(lookup: Callable[[str], bytes], qs: list[str], seconds: float) -> float:
    """Lookups per second of this process's CPU time (user + system), for about ``seconds``
    of it: other jobs on the machine slow the wall clock, not this count."""
    done, started = 0, time.process_time()
    while time.process_time() - started < seconds:
        lookup(qs[done % len(qs)])
        done += 1
    return done / (time.process_time() - started)


def shard_sizes(build_: Build) -> str:
    meta = build_.read_json(layout.SEARCH_META_KEY)
    offsets = array("Q")
    offsets.frombytes(build_.read(layout.SEARCH_OFFSETS_KEY) or b"")
    sizes = sorted(b - a for a, b in zip(offsets, offsets[1:], strict=False))
    return (
        f"search shards: {len(sizes):,} (prefix of {meta['prefix_hex']} hex), "
        f"{meta['entries']:,} entries, {sum(sizes) / 1e6:.1f} MB; shard bytes "
        f"mean {statistics.mean(sizes):,.0f}, median {sizes[len(sizes) // 2]:,}, "
        f"max {sizes[-1]:,}; index {len(offsets) * 8 / 1e3:,.0f} KB"
    )


def sink_costs(store: Store, out_dir: str) -> str:
    """Seconds in each sink vs seconds to produce the records they see, one pass."""
    started = time.perf_counter()
    _, records = iter_records(store.articles(), store.sightings())
    sinks = {"search index": SearchIndex(), "stats": Stats()}
    spent = dict.fromkeys(sinks, 0.0)
    for day, batch in split_days(records):
        for name, sink in sinks.items():
            t = time.perf_counter()
            sink.add_day(day, batch)
            spent[name] += time.perf_counter() - t
    produce = time.perf_counter() - started - sum(spent.values())
    out = ObjectWriter(Path(out_dir))
    for name, sink in sinks.items():
        t = time.perf_counter()
        sink.finish(out, BuildInfo(NOW, "socdef", store))
        spent[name] += time.perf_counter() - t
    return "; ".join(
        [f"producing the records {produce:.1f}s"]
        + [f"{name} {seconds:.1f}s ({seconds / produce:.2f}×)" for name, seconds in spent.items()]
    )


def delta_build(store: Store, tmp: str) -> Build:
    """The store with 1 % of its sightings changed, built an hour later into the folder of the
    first build: a build that keeps the first one's search base and adds a delta."""
    from tests.buildseries import changed

    sightings, _ = changed(store.sightings(), 0.01, seed=1)
    later = Store(f"{tmp}/later")
    later.commit(store.articles(), sightings, {"as_of": NOW + 3600, "sources": {}})
    result = build(later, f"{tmp}/build", now=NOW + 3600)
    manifest = json.loads(Path(tmp, "build", layout.manifest_key(result.build_id)).read_bytes())
    return Build(LocalBucket(f"{tmp}/build"), manifest)


def delta_sizes(build_: Build) -> str:
    delta = build_.read(layout.SEARCH_DELTA_KEY) or b""
    meta = build_.read_json(layout.SEARCH_META_KEY)
    entries = meta["entries"] if isinstance(meta, dict) else 0
    lines = delta.count(b"\n")
    return (
        f"{lines:,} delta lines over a base of {entries:,} entries,"
        f" {len(delta):,} bytes of delta text"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100_000)
    parser.add_argument("--million", action="store_true")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--shard-objects",
        type=int,
        default=4_096,
        help="shards written one object each for the write-cost line",
    )
    parser.add_argument(
        "--delta",
        action="store_true",
        help="also time lookups in a build with a search delta (the store with 1 %% of sightings"
        " changed, built an hour later into the same build folder)",
    )
    args = parser.parse_args()
    n = 1_000_000 if args.million else args.n
    with tempfile.TemporaryDirectory() as tmp:
        store = synthetic_store(f"{tmp}/store", n, now=NOW, days=365)
        print("build cost:", sink_costs(store, f"{tmp}/sinks"))
        print("shard writes:", shard_write_cost(f"{tmp}/shards", args.shard_objects))
        result = build(store, f"{tmp}/build")
        manifest = json.loads(Path(tmp, "build", layout.manifest_key(result.build_id)).read_bytes())
        build_ = Build(LocalBucket(f"{tmp}/build"), manifest)
        records = aggregate(store.articles(), store.sightings())
        keys = KeyStore(f"{tmp}/keys.sqlite", b"k" * 32)
        key, _ = keys.create("bench@example.org", "enterprise")
        app = App(keys=keys, limiter=MemoryLimiter(), builds=OneBuild(build_), limit_scale=1e6)
        qs = queries(records, 5_000)
        search = lambda q: ("/api/v1/iocs/search", {"q": q})  # noqa: E731
        ranged = lambda q: (f"/api/v1/iocs/range/{search_hash(normalise(q))[:5]}", {})  # noqa: E731
        variants = {
            "index lookup alone (search_answer)": lambda q: search_answer(
                build_, {"q": q, "include_related": "false"}, "socdef"
            )[0],
            "worker search, include_related=false": worker_lookup(
                app, key, search, {"include_related": "false"}
            ),
            "worker search (20 related)": worker_lookup(app, key, search, {}),
            "worker range/{prefix}": worker_lookup(app, key, ranged, {}),
            "SQLite, indexed (baseline)": sqlite_lookup(records, f"{tmp}/baseline.sqlite"),
            "linear scan in Python (context)": scan_lookup(records),
        }
        if args.delta:
            later_build = delta_build(store, tmp)
            later_app = App(
                keys=keys, limiter=MemoryLimiter(), builds=OneBuild(later_build), limit_scale=1e6
            )
            print(f"base + delta: {delta_sizes(later_build)}")
            variants["index lookup alone, base + delta"] = lambda q: search_answer(
                later_build, {"q": q, "include_related": "false"}, "socdef"
            )[0]
            variants["worker range/{prefix}, base + delta"] = worker_lookup(
                later_app, key, ranged, {}
            )
        figures: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, lookup in variants.items():
                figures[name].append(rate(lookup, qs, args.seconds))
        print(f"{len(records):,} distinct IOCs; {shard_sizes(build_)}")
    base = statistics.median(figures["SQLite, indexed (baseline)"])
    for name, values in figures.items():
        median = statistics.median(values)
        print(
            f"{name:<40} {median:>10,.0f} lookups/s  [{min(values):,.0f}–{max(values):,.0f}]"
            f"  {median / base:>8,.2f}× SQLite"
        )


if __name__ == "__main__":
    main()
