"""Warninglist checks per second: socdef's compiled lists vs ``pymispwarninglists``'s search.

    python bench/lifecycle.py [-n 1000000] [--naive 3000] [--hits 0.05] [--rounds 3]

Makes N indicators of every checked type in the shares of a real feed (IPv4 25 %, IPv6 3 %,
domains 25 %, URLs 20 %, e-mail 4 %, hashes 23 %), ``--hits`` of them drawn from the lists
themselves (resolvers, top sites, cloud ranges, benign hashes) and the rest synthetic, then
times, in this one process:

- the compiled lists, the build's way (``generator.extract.warninglist_batch.BatchChecker.check`` over
  the N as two Arrow columns, as the store keeps them), best of ``--rounds`` (CPU time of this
  process), and one by one (``Warninglists.check_many``; both must agree);
- the naive loop the build would otherwise run: ``WarningLists().search(value)`` of
  ``pymispwarninglists`` (its default, exact-set mode, which already misses CIDR and suffix
  hits) over the first ``--naive`` indicators.

Prints both rates, the ratio, the compile time of the lists and how many indicators each
found on a list (the naive search finds fewer: it does no CIDR or suffix matching).

Then the change feed (``--changes N``, default 100,000; 0 skips it): a synthetic store of N
indicators is built, 1 % of them are sighted again by a new article and the store is built
again into the same folder. Prints what the second build spent on the change feed (its sink
and index, from the build's own stage times) against what it spent rendering and writing the
day partitions of every list variant (``days``) and the whole build; then the worker's cost per
``/api/v1/iocs/changes`` answer (a page of up to 1,000 changes from the first build's cursor,
CPU time, median of ``--rounds`` × 20 answers) against a page of the full list.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyarrow as pa  # noqa: E402

from generator.extract import warninglists  # noqa: E402
from generator.extract.warninglist_batch import BatchChecker  # noqa: E402
from generator.store.synthetic import synthetic_value  # noqa: E402

SHARES = {
    "ipv4": 25,
    "ipv6": 3,
    "domain": 25,
    "url": 20,
    "email": 4,
    "md5": 8,
    "sha1": 5,
    "sha256": 9,
    "sha512": 1,
}
LISTED = {  # list → the indicator type its entries are drawn as
    "public-dns-v4": "ipv4",
    "amazon-aws": "ipv4",
    "tranco10k": "domain",
    "url-shortener": "url",
    "lots-project": "domain",
    "nioc-filehash": "md5",
    "disposable-email": "email",
}


def _listed(rng: random.Random) -> list[tuple[str, str]]:
    """Indicators taken from the lists themselves."""
    out = []
    for name, type_ in LISTED.items():
        data = json.loads((warninglists.misp_lists_dir() / name / "list.json").read_text())
        for entry in rng.sample(data["list"], min(2_000, len(data["list"]))):
            entry = entry.lstrip(".").lower()
            if type_ == "ipv4":
                if ":" in entry:
                    continue
                entry = entry.partition("/")[0]
            elif type_ == "url":
                entry = f"https://{entry}/x{rng.randrange(10**6)}"
            elif type_ == "email":
                entry = f"someone@{entry}"
            elif type_ == "md5" and len(entry) != 32:
                continue
            out.append((type_, entry))
    return out


def indicators(n: int, hits: float, seed: int = 11) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    listed = _listed(rng)
    types = [t for t, share in SHARES.items() for _ in range(share)]
    out = []
    for i in range(n):
        if rng.random() < hits:
            out.append(listed[rng.randrange(len(listed))])
        else:
            type_ = types[i % len(types)]
            out.append((type_, synthetic_value(type_, i)))
    return out


def cpu() -> float:
    return time.process_time()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1_000_000)
    parser.add_argument("--naive", type=int, default=3_000, help="indicators for the naive loop")
    parser.add_argument("--hits", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--changes", type=int, default=100_000, help="change-feed store size")
    args = parser.parse_args()

    values = indicators(args.n, args.hits)
    started = time.perf_counter()
    compiled = warninglists.load()
    batch = BatchChecker(compiled)
    compile_seconds = time.perf_counter() - started
    start = cpu()
    types = pa.array([t for t, _ in values], pa.string())
    column = pa.array([v for _, v in values], pa.string())
    to_columns = len(values) / (cpu() - start)
    best = float("inf")
    found = 0
    for _ in range(args.rounds):
        start = cpu()
        answers = batch.check(types, column)
        best = min(best, cpu() - start)
        found = sum(a is not None for a in answers)
    fast = len(values) / best
    start = cpu()
    one_by_one = compiled.check_many(values)
    single = len(values) / (cpu() - start)
    if one_by_one != answers:
        raise SystemExit("the column check and the one-by-one check disagree")

    from pymispwarninglists import WarningLists

    started = time.perf_counter()
    naive_lists = WarningLists()
    naive_load = time.perf_counter() - started
    sample = values[: args.naive]
    start = cpu()
    naive_found = sum(bool(naive_lists.search(v)) for _, v in sample)
    naive = len(sample) / (cpu() - start)

    print(f"indicators: {len(values)} ({args.hits:.0%} drawn from the lists)")
    print(
        f"compile the lists: {compile_seconds:.2f} s; pymispwarninglists load: {naive_load:.2f} s"
    )
    print(f"compiled lists, columns (BatchChecker.check)  {fast:,.0f} checks/s; on a list: {found}")
    print(f"compiled lists, one by one (check_many)  {single:,.0f} checks/s")
    print(f"Python lists to columns (not in the figures above)  {to_columns:,.0f} values/s")
    print(
        f"naive WarningLists().search  {naive:,.0f} checks/s over {len(sample)}; "
        f"on a list: {naive_found} of {len(sample)} "
        f"(compiled: {sum(a is not None for a in answers[: len(sample)])})"
    )
    print(f"speed-up: {fast / naive:,.0f}×")
    if args.changes:
        change_feed(args.changes, args.rounds)


def _stage(stages: dict[str, float], name: str) -> float:
    """A stage's seconds in whichever build process ran it."""
    return sum(v for k, v in stages.items() if k in (name, f"2:{name}"))


def change_feed(n: int, rounds: int) -> None:
    """The change feed's build cost for 1 % changes, and its cost per answer."""
    import statistics
    import tempfile

    from generator.build.tree import build
    from generator.store.synthetic import synthetic_store
    from worker.buckets.storage import Build, LocalBucket
    from worker.contract import changes as contract
    from worker.contract import layout
    from worker.contract.tiers import TIERS
    from worker.endpoints import changes, query

    now = 1_795_000_000
    with tempfile.TemporaryDirectory(prefix="socdef-changes-") as tmp:
        root = Path(tmp)
        store = synthetic_store(str(root / "store"), n, now=now, days=30)
        first = build(store, root / "build", now=now)

        def served(build_id: str) -> Build:
            manifest = json.loads((root / "build" / layout.manifest_key(build_id)).read_bytes())
            return Build(LocalBucket(root / "build"), manifest)

        tier = TIERS["enterprise"]
        cursor, more = None, True
        while more:  # the head cursor of the first build
            p = changes.page(served(first.build_id), tier, cursor, tier.max_limit, "json")
            cursor, more = contract.encode(p.next), p.more
        # a new article sights 1 % of the indicators again, an hour later
        articles, sightings = store.articles(), store.sightings()
        rng = random.Random(5)
        picked = sorted(rng.sample(range(sightings.num_rows), max(1, sightings.num_rows // 100)))
        new_id = "f" * 16
        article = articles.slice(0, 1).to_pylist()[0] | {"article_id": new_id}
        article["published"] = now + 3600
        again = sightings.take(picked).to_pylist()
        for row in again:
            row["article_id"] = new_id
        articles = pa.concat_tables([articles, pa.Table.from_pylist([article], articles.schema)])
        sightings = pa.concat_tables([sightings, pa.Table.from_pylist(again, sightings.schema)])
        store.commit(articles, sightings, {"as_of": now + 3600, "sources": {}})
        second = build(store, root / "build", now=now + 3600)
        feed = (
            _stage(second.stages, "ChangeFeed.add_day")
            + _stage(second.stages, "ChangeFeed.finish")
            + _stage(second.stages, "write_index")
        )
        days = _stage(second.stages, "days")
        current = served(second.build_id)
        index = changes.read_index(current)
        counts = index.entries[-1].counts
        times, list_times = [], []
        for _ in range(rounds):
            for _ in range(20):
                start = cpu()
                p = changes.page(current, tier, cursor, 1_000, "json")
                times.append(cpu() - start)
                low = current.generated_at - tier.lookback_days * layout.DAY_SECONDS
                q = query.Query(layout.ACTIVE_VIEW, "json", low, current.generated_at, 0, 1_000)
                start = cpu()
                query.render(current, q, "json", "socdef")
                list_times.append(cpu() - start)
        sizes = sum(
            current.objects[contract.delta_key(second.build_id, t, part)].size
            for t in counts
            for part in contract.PARTS
        )
    print(
        f"change feed, {n} indicators, 1 % sighted again: {counts.get('enterprise', 0)} changes "
        f"(enterprise), deltas {sizes:,} bytes for {len(counts)} tiers"
    )
    print(
        f"change feed build cost  {feed:.3f} s; day partitions of every variant {days:.3f} s; "
        f"whole build {second.seconds:.2f} s ({feed / max(days, 1e-9):.1%} of the partitions)"
    )
    print(
        f"/changes answer ({len(p.lines)} changes)  {statistics.median(times) * 1e6:,.0f} µs CPU; "
        f"a 1,000-record page of the full list {statistics.median(list_times) * 1e6:,.0f} µs CPU"
    )


if __name__ == "__main__":
    main()
