"""TAXII's data chunks are an append-only log: a rebuild leaves every published chunk but the
last byte for byte as it was, and serves what a build from scratch of the same store serves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generator.build.tree import build
from generator.store.generations import Store
from generator.store.synthetic import synthetic_store
from tests.buildseries import changed
from worker.buckets.storage import Build, LocalBucket
from worker.contract import layout
from worker.contract import taxii_common as tc
from worker.taxii import index

NOW = 1_795_000_000


def _build(root: Path, build_id: str) -> Build:
    return Build(LocalBucket(root), json.loads((root / layout.manifest_key(build_id)).read_bytes()))


def served(root: Path, build_id: str, name: str = tc.ALL_COLLECTION) -> dict[str, tuple]:
    """Every object a collection serves: id → (build date, object, manifest record)."""
    b = _build(root, build_id)
    seq = index.sequences(b, name, None)[0]
    gone = index.dead(b)
    entries = [e for e in index.entries(b, seq, 0, seq.count) if e[0] not in gone]
    objects = json.loads(b"[" + index.page_bytes(b, name, entries, "obj")[:-1] + b"]")
    records = json.loads(b"[" + index.page_bytes(b, name, entries, "man")[:-1] + b"]")
    dates = [e[0] for e in entries]
    assert dates == sorted(set(dates))  # strictly increasing
    out = {}
    for e, obj, record in zip(entries, objects, records, strict=True):
        assert record["id"] == obj["id"] and record["date_added"] == tc.timestamp_us(e[0])
        out[obj["id"]] = (e[0], obj, record)
    return out


def chunks(root: Path, build_id: str, prefix: str = "taxii/c/all/obj/") -> dict[str, str]:
    manifest = json.loads((root / layout.manifest_key(build_id)).read_bytes())
    return {k: sha for k, (sha, _) in manifest["objects"].items() if k.startswith(prefix)}


def log_meta(root: Path, build_id: str) -> dict:
    return _build(root, build_id).read_json(tc.collection_key(tc.ALL_COLLECTION, "meta.json"))[
        "log"
    ]


@pytest.fixture(scope="module", autouse=True)
def small_partitions():
    """Entry files in partitions of 2,000 entries, so that a small store has several."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tc, "PART", 2 * tc.CHUNK)
        yield


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("log")
    store = synthetic_store(str(tmp / "store"), 4000, now=NOW, days=20)
    sightings, count = changed(store.sightings(), 0.01, seed=7)
    later = Store(tmp / "later")
    later.commit(store.articles(), sightings, {"as_of": NOW + 3600, "sources": {}})
    first = build(store, tmp / "build", now=NOW).build_id
    second = build(later, tmp / "build", now=NOW + 3600).build_id
    again = build(later, tmp / "build", now=NOW + 3600).build_id
    scratch = build(later, tmp / "scratch", now=NOW + 3600).build_id
    return tmp, first, second, again, scratch, count


def test_a_rebuild_changes_only_the_last_chunk_and_adds_new_ones(series):
    tmp, first, second, _, _, count = series
    before, after = chunks(tmp / "build", first), chunks(tmp / "build", second)
    assert count > 10 and len(before) >= 8
    last = f"taxii/c/all/obj/{len(before) - 1}.dat"
    for key, sha in before.items():
        if key != last:
            assert after[key] == sha, key
    assert set(after) >= set(before)
    meta = log_meta(tmp / "build", second)
    assert meta["chunks"] == len(after) and 1 <= meta["tail"] <= meta["per"]


def test_the_log_serves_what_a_build_from_scratch_serves(series):
    tmp, first, second, _, scratch, _ = series
    old, new = served(tmp / "build", first), served(tmp / "build", second)
    fresh = served(tmp / "scratch", scratch)
    assert {k: v[1] for k, v in new.items()} == {k: v[1] for k, v in fresh.items()}
    last = max(d for d, _, _ in old.values())
    moved = 0
    for oid, (date, obj, _) in new.items():
        if oid in old and old[oid][1] == obj:
            assert date == old[oid][0]  # unchanged: its place and build date kept
        else:
            assert date > last  # changed in place or new: after everything published
            moved += 1
    assert moved
    # the per-type collections partition "all" with the same dates and bytes
    union: dict[str, tuple] = {}
    for name in tc.COLLECTIONS[1:]:
        union.update(served(tmp / "build", second, name))
    assert union == new


def test_building_the_same_store_again_changes_nothing(series):
    tmp, _, second, again, _, _ = series
    assert chunks(tmp / "build", again) == chunks(tmp / "build", second)
    assert served(tmp / "build", again) == served(tmp / "build", second)


def test_an_unrelated_store_compacts_the_log_and_comes_after_it(tmp_path):
    root = tmp_path / "build"
    build(synthetic_store(str(tmp_path / "a"), 3000, now=NOW, days=20), root, now=NOW)
    a = (root / "LATEST").read_text().strip()
    b = build(synthetic_store(str(tmp_path / "b"), 1500, now=NOW, days=10, seed=99), root, now=NOW)
    before, after = served(root, a), served(root, b.build_id)
    last = max(d for d, _, _ in before.values())
    for oid, (date, obj, _) in after.items():
        assert date > last or (oid in before and before[oid][1] == obj)
    # fewer than half of the log's objects are still served: laid out again from chunk 0
    assert log_meta(root, b.build_id)["chunks"] == len(chunks(root, b.build_id))
    assert (
        chunks(root, b.build_id)["taxii/c/all/obj/0.dat"]
        != chunks(root, a)["taxii/c/all/obj/0.dat"]
    )


def test_the_id_index_keeps_its_base_and_finds_every_served_object(series):
    tmp, first, second, _, _, _ = series
    root = tmp / "build"
    objects = [
        json.loads((root / layout.manifest_key(b)).read_bytes())["objects"] for b in (first, second)
    ]
    assert objects[1][tc.ID_INDEX_KEY] == objects[0][tc.ID_INDEX_KEY]  # the base, as it was
    assert objects[0][tc.ID_NEW_KEY][1] == 0 < objects[1][tc.ID_NEW_KEY][1]
    b = _build(root, second)
    old = served(root, first)
    new = served(root, second)
    for oid, (date, _, _) in new.items():
        assert index.entry_of(b, tc.ALL_COLLECTION, oid)[0] == date
    # an object the first build served that the second serves at another date: found there
    moved = [oid for oid in new if oid in old and old[oid][0] != new[oid][0]]
    assert moved and all(index.entry_of(b, "all", oid)[0] == new[oid][0] for oid in moved)
    for name in tc.COLLECTIONS[1:]:
        for oid, (date, _, _) in served(root, second, name).items():
            assert index.entry_of(b, name, oid)[0] == date
    assert index.entry_of(b, "all", "indicator--" + "0" * 8 + "-0000-4000-8000-" + "0" * 12) is None


def test_entry_files_keep_their_partitions_and_list_the_dead(series):
    tmp, first, second, _, scratch, _ = series
    root = tmp / "build"
    for name in tc.COLLECTIONS:
        prefix = tc.collection_key(name, "index/")
        before, after = chunks(root, first, prefix), chunks(root, second, prefix)
        assert len(before) >= 2 or name != tc.ALL_COLLECTION
        last = tc.part_key(tc.collection_key(name, "index"), len(before) - 1)
        assert all(after[k] == sha for k, sha in before.items() if k != last), name
    b = _build(root, second)
    gone = index.dead(b)
    old, new = served(root, first), served(root, second)
    # the dead: the build dates of what the first build served and the second does not
    assert gone == {d for oid, (d, _, _) in old.items() if new.get(oid, (None,))[0] != d}
    meta = b.read_json(tc.collection_key(tc.ALL_COLLECTION, "meta.json"))
    assert meta["served"] == len(new) and meta["count"] == len(new) + len(gone)
    fresh = _build(tmp / "scratch", scratch)
    assert not index.dead(fresh)
    for oid in list(old)[:200]:
        e = index.entry_of(b, tc.ALL_COLLECTION, oid)
        assert (e is None) == (oid not in new) and (e is None or e[0] == new[oid][0])


def test_a_new_machine_continues_the_published_log(series, tmp_path):
    """A build folder lost: the change-feed restore brings the published build's TAXII objects,
    some stored compressed (``all``'s meta.json), and the next build continues its log as the
    old machine's build did: the same chunks, the same dates."""
    from generator.build import changes
    from generator.publish.folder import LocalDestination
    from generator.publish.upload import publish

    tmp, first, second, _, _, _ = series
    manifest = json.loads((tmp / "build" / layout.manifest_key(first)).read_bytes())
    assert tc.collection_key(tc.ALL_COLLECTION, "meta.json") in manifest["coded"]
    bucket = LocalDestination(str(tmp_path / "bucket"))
    publish(tmp / "build", bucket, build_id=first)
    fresh = tmp_path / "build"
    assert changes.restore(fresh, bucket) == first
    later = Store(tmp / "later")
    again = build(later, fresh, now=NOW + 3600).build_id
    assert again == second
    assert chunks(fresh, again) == chunks(tmp / "build", second)
    assert served(fresh, again) == served(tmp / "build", second)
