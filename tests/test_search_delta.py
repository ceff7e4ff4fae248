"""The search index as a kept base plus a per-build delta: a series of builds into one build
folder keeps the base byte for byte while the changes are small, writes a new base when they
are not, and answers every search and range lookup exactly as a build from scratch of the same
store at the same time does."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pytest

from generator.build import search_index
from generator.build.tree import build
from generator.store.generations import Store
from generator.store.synthetic import synthetic_store
from tests.buildseries import changed
from worker.buckets import shards
from worker.buckets.storage import Build, LocalBucket
from worker.contract import layout
from worker.contract.ioc_norm import normalise, search_hash
from worker.endpoints.search import range_answer, search_answer

NOW = 1_795_000_000
HOUR = 3600
DAY = 86_400
BASE = search_index.BASE_KEYS
DELTA = (layout.SEARCH_DELTA_KEY, layout.SEARCH_DELTA_OFFSETS_KEY)


def _build(root: Path, build_id: str) -> Build:
    return Build(LocalBucket(root), json.loads((root / layout.manifest_key(build_id)).read_bytes()))


def search_objects(root: Path, build_id: str) -> dict[str, str]:
    manifest = json.loads((root / layout.manifest_key(build_id)).read_bytes())
    return {k: sha for k, (sha, _) in manifest["objects"].items() if k.startswith("iocs/search/")}


def _commit(root: Path, articles: pa.Table, sightings: pa.Table, as_of: int) -> Store:
    store = Store(root)
    store.commit(articles, sightings, {"as_of": as_of, "sources": {}})
    return store


def _replace(sightings: pa.Table, rng: random.Random, step: int) -> tuple[pa.Table, list[str]]:
    """Drop every sighting of 30 values and add 30 new values (sighted in existing articles)."""
    rows = sightings.to_pylist()
    values = sorted({r["value"] for r in rows})
    dropped = set(rng.sample(values, 30))
    kept = [r for r in rows if r["value"] not in dropped]
    added = []
    for i in range(30):
        row = dict(rng.choice(kept))
        row.update(
            type="domain",
            value=f"fresh-{step}-{i}.example.org",
            context=f"new in step {step}",
            ingested_at=NOW + step * HOUR - 60,
        )
        added.append(row)
    return pa.Table.from_pylist(kept + added, schema=sightings.schema), sorted(dropped)


def answers(root: Path, build_id: str, queries: list[str], prefixes: list[str]) -> dict:
    """Every search answer (with related records) and range answer, less what names the build
    and the time the lookup took."""
    b = _build(root, build_id)
    out: dict[tuple[str, str], dict] = {}
    for q in queries:
        body = json.loads(search_answer(b, {"q": q}, "socdef")[0])
        del body["meta"]["feed_version"], body["data"]["meta"]["search_time_ms"]
        out["search", q] = body
    for prefix in prefixes:
        body = json.loads(range_answer(b, prefix, "socdef")[0])
        del body["meta"]["feed_version"]
        out["range", prefix] = body
    return out


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """Stores in order, each built at its time into one kept folder and into a scratch folder:
    (name, store, now, kept build id, scratch build id, values any step had)."""
    tmp = tmp_path_factory.mktemp("delta")
    rng = random.Random(11)
    first = synthetic_store(str(tmp / "s0"), 1500, now=NOW, days=20)
    articles = first.articles()
    # (name, store, time, the delta's bound): removing and adding records renumbers the day
    # partitions' lines, so most entries' refs change; a bound of twice the base keeps those
    # steps on the delta path (tombstones, a delta over most of the base)
    steps: list[tuple[str, Store, int, float]] = [("first", first, NOW, 8)]
    edited, _ = changed(first.sightings(), 0.02, seed=3)
    steps.append(("edits", _commit(tmp / "s1", articles, edited, NOW + HOUR), NOW + HOUR, 8))
    replaced, dropped = _replace(edited, rng, 2)
    at = NOW + 2 * HOUR
    steps.append(("new and gone", _commit(tmp / "s2", articles, replaced, at), at, 0.5))
    steps.append(("expiry", steps[-1][1], NOW + 12 * DAY, 0.5))
    many, _ = changed(replaced, 0.4, seed=4)
    at = NOW + 13 * DAY
    steps.append(("compaction", _commit(tmp / "s4", articles, many, at), at, 8))
    after, _ = changed(many, 0.01, seed=5)
    at = NOW + 14 * DAY
    steps.append(("after compaction", _commit(tmp / "s5", articles, after, at), at, 8))
    values = sorted(
        {v for t in (first.sightings(), replaced) for v in t.column("value").to_pylist()}
    )
    out = []
    for i, (name, store, now, compact_at) in enumerate(steps):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(search_index, "COMPACT_AT", compact_at)
            kept = build(store, tmp / "kept", now=now).build_id
        scratch = build(store, tmp / f"scratch{i}", now=now).build_id
        out.append((name, tmp / f"scratch{i}", now, kept, scratch))
    return tmp, out, values, dropped


def test_small_changes_keep_the_base_and_write_a_delta(series):
    tmp, steps, _, _ = series
    kept = tmp / "kept"
    objects = {name: search_objects(kept, build_id) for name, _, _, build_id, _ in steps}
    first = objects["first"]
    assert set(first) == set(BASE)  # no delta after a build from scratch
    for name in ("edits", "new and gone", "expiry"):
        assert {k: objects[name][k] for k in BASE} == {k: first[k] for k in BASE}, name
        assert set(DELTA) <= set(objects[name]), name
    # 40 % of the sightings changed: more than 1/8 of the entries, a new base and no delta
    assert all(objects["compaction"][k] != first[k] for k in BASE[1:])
    assert set(objects["compaction"]) == set(BASE)
    assert {k: objects["after compaction"][k] for k in BASE} == {
        k: objects["compaction"][k] for k in BASE
    }
    assert set(DELTA) <= set(objects["after compaction"])


def test_the_delta_holds_the_changed_entries_and_tombstones(series):
    tmp, steps, _, dropped = series
    name, scratch, _, kept_id, scratch_id = steps[2]
    assert name == "new and gone"
    b = _build(tmp / "kept", kept_id)
    delta = (b.read(layout.SEARCH_DELTA_KEY) or b"").decode().splitlines()
    tombstones = {line.split("\t")[0] for line in delta if line.count("\t") == 1}
    assert {search_hash(normalise(v)) for v in dropped} <= tombstones
    fresh = {line.split("\t")[0] for line in delta if line.count("\t") > 1}
    assert search_hash("fresh-2-0.example.org") in fresh
    # new records and removals renumber the day partitions' lines: most entries' refs move
    assert len(fresh) > 10 * 30 and len(tombstones) == 30


def test_every_answer_equals_a_build_from_scratch(series):
    tmp, steps, values, _ = series
    rng = random.Random(2)
    queries = values + [f"missing-{i}.example.net" for i in range(20)] + ["8.8.8.8"]
    hashes = [search_hash(normalise(v)) for v in values]
    prefixes = sorted({h[:5] for h in hashes}) + [f"{rng.getrandbits(20):05x}" for _ in range(30)]
    for name, scratch, _, kept_id, scratch_id in steps:
        got = answers(tmp / "kept", kept_id, queries, prefixes)
        want = answers(scratch, scratch_id, queries, prefixes)
        differ = [k for k in want if got[k] != want[k]]
        assert not differ, f"{name}: {len(differ)} answers differ, first {differ[:3]}"
        assert any(a["data"]["found"] for k, a in want.items() if k[0] == "search")


def test_a_merge_applies_replacements_and_tombstones():
    h = ["0" * 63 + c for c in "123"]
    base = [f"{h[0]}\tdomain\thigh\t1\t2\t1\t1.0\t", f"{h[1]}\tdomain\tlow\t1\t2\t1\t1.1\t"]
    delta = [
        f"{h[0]}\tdomain",
        f"{h[1]}\tdomain\thigh\t1\t3\t2\t1.1\t",
        f"{h[2]}\tipv4\tlow\t5\t5\t1\t2.0\t",
    ]
    assert shards.merged(base, delta) == delta[1:]
    assert shards.merged(base, []) == base


def test_a_new_machine_continues_the_delta(series, tmp_path):
    """A build folder lost: the change-feed restore brings the published build's search base,
    and the next build writes the same base and delta the old machine's build wrote."""
    from generator.build import changes
    from generator.publish.folder import LocalDestination
    from generator.publish.upload import publish

    tmp, steps, _, _ = series
    _, _, _, previous, _ = steps[0]
    _, _, now, following, _ = steps[1]
    bucket = LocalDestination(str(tmp_path / "bucket"))
    publish(tmp / "kept", bucket, build_id=previous)
    fresh = tmp_path / "build"
    assert changes.restore(fresh, bucket) == previous
    store = Store(tmp / "s1")
    again = build(store, fresh, now=now).build_id
    assert search_objects(fresh, again) == search_objects(tmp / "kept", following)
    assert set(DELTA) <= set(search_objects(fresh, again))
