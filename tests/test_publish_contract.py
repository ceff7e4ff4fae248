"""One contract for every publish destination: the local folder and S3 (moto over HTTP)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from generator.publish.folder import LocalDestination, PointerMoved
from generator.publish.headers import content_type
from generator.publish.s3 import S3Destination
from generator.publish.signing import download_sets
from generator.publish.upload import Destination, publish
from tests.buildseries import build_series, local_answers, manifest_of, object_keys, observe
from tests.s3fixture import moto_s3_fixture  # noqa: F401 - the moto_s3 fixture
from worker.buckets.remote import open_bucket
from worker.buckets.storage import Bucket, LocalBucket
from worker.contract import changes as changes_contract
from worker.contract import layout

N_IOCS = 3000


@dataclass
class Target:
    dest: Destination
    reader: object  # () -> a fresh worker Bucket over the same place

    def bucket(self) -> Bucket:
        return self.reader()  # type: ignore[operator]


@pytest.fixture(params=["local", "s3"])
def target(request, tmp_path) -> Target:
    if request.param == "local":
        return Target(
            LocalDestination(tmp_path / "bucket"), lambda: LocalBucket(tmp_path / "bucket")
        )
    s3 = request.getfixturevalue("moto_s3")
    name = s3.new_bucket()
    dest = S3Destination(name, "feeds/", endpoint_url=s3.endpoint)
    return Target(dest, lambda: open_bucket(f"s3://{name}/feeds", environ=s3.env))


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> tuple[Path, list[str], dict[str, bytes]]:
    """A base build and three variants, each with 1% of sightings changed."""
    tmp = tmp_path_factory.mktemp("series")
    ids = build_series(tmp, tmp / "build", N_IOCS, [None, 1, 2, 3])
    return tmp / "build", ids, local_answers(tmp / "build", ids)


def test_a_second_publish_of_the_same_build_uploads_nothing(target, series):
    out, ids, _ = series
    first = publish(out, target.dest, build_id=ids[0])
    assert first.uploaded == len(object_keys(manifest_of(out, ids[0]))) and first.skipped == 0
    again = publish(out, target.dest, build_id=ids[0])
    assert (again.uploaded, again.uploaded_bytes, again.removed) == (0, 0, 0)
    assert again.skipped == first.uploaded


def test_one_percent_changed_uploads_exactly_the_changed_objects(target, series):
    out, ids, _ = series
    publish(out, target.dest, build_id=ids[0])
    before, after = object_keys(manifest_of(out, ids[0])), object_keys(manifest_of(out, ids[1]))
    result = publish(out, target.dest, build_id=ids[1])
    assert result.uploaded == len(after - before)
    assert result.skipped == len(after & before)
    assert 0 < result.uploaded < len(after) / 2  # only a minority of objects changed


class Faulty:
    """A destination that loses its connection after ``budget`` writes (puts, swaps, deletes)."""

    def __init__(self, inner: Destination, budget: int) -> None:
        self.inner, self.budget, self.encodes = inner, budget, inner.encodes
        self._lock = threading.Lock()

    def _spend(self) -> None:
        with self._lock:
            self.budget -= 1
            if self.budget < 0:
                raise OSError("connection lost")

    def put(self, *args, **kwargs) -> None:
        self._spend()
        self.inner.put(*args, **kwargs)

    def swap(self, *args, **kwargs) -> None:
        self._spend()
        self.inner.swap(*args, **kwargs)

    def delete_many(self, keys) -> int:
        removed = 0
        for key in keys:
            self._spend()
            removed += self.inner.delete_many([key])
        return removed

    def sizes(self, prefix):
        return self.inner.sizes(prefix)

    def get(self, key):
        return self.inner.get(key)

    def get_versioned(self, key):
        return self.inner.get_versioned(key)


FAULTS = {  # where the connection drops, as a number of writes that still succeed: the
    # objects, then the build's SHA256SUMS files and its change state, counted as uploads here
    # (docs/publish.md)
    "first upload": lambda missing: 0,
    "third upload": lambda missing: 2,
    "last upload": lambda missing: missing - 1,
    "manifest": lambda missing: missing,
    "pointer switch": lambda missing: missing + 1,
    "first deletion": lambda missing: missing + 2,
    "third deletion": lambda missing: missing + 4,
}


def test_a_failure_at_any_step_leaves_readers_whole_and_a_rerun_finishes(target, series):
    out, ids, known = series
    publish(out, target.dest, build_id=ids[0], keep=2)
    publish(out, target.dest, build_id=ids[1], keep=2)
    listing = lambda: target.dest.sizes("objects/")  # noqa: E731
    current = ids[1]
    for n, (step, budget_of) in enumerate(FAULTS.items()):
        goal = ids[(n + 2) % len(ids)]  # a third build each time: its objects are missing
        wanted = object_keys(manifest_of(out, goal))
        missing = len(wanted - set(listing()))
        writes = missing + len(download_sets(manifest_of(out, goal)["objects"]))
        writes += 1  # the build's change state, beside it (docs/changes.md)
        budget = budget_of(writes)
        with pytest.raises(OSError):
            publish(out, Faulty(target.dest, budget), build_id=goal, keep=2, jobs=4)
        seen = observe(target.bucket(), listing, known)
        assert (seen.missing, seen.matches) == (0, True), step
        assert seen.build_id == (goal if budget >= writes + 2 else current), step
        resumed = publish(out, target.dest, build_id=goal, keep=2)
        assert resumed.uploaded == missing - min(budget, missing), step  # nothing sent twice
        current = goal
    final = observe(target.bucket(), listing, known)
    assert (final.build_id, final.missing, final.matches) == (current, 0, True)


def test_two_publishes_racing_for_the_pointer_cannot_both_win(target, series):
    out, ids, _ = series
    publish(out, target.dest, build_id=ids[0])
    _, stale = target.dest.get_versioned(layout.POINTER_KEY)
    publish(out, target.dest, build_id=ids[1])
    with pytest.raises(PointerMoved):
        target.dest.swap(
            layout.POINTER_KEY,
            b"{}",
            stale,
            content_type="application/json",
            cache_control="no-cache",
        )
    assert b'"build_id": "%s"' % ids[1].encode() in target.dest.get(layout.POINTER_KEY)


def test_pruning_keeps_the_last_builds_and_only_their_objects(target, series):
    out, ids, known = series
    for build_id in ids:
        publish(out, target.dest, build_id=build_id, keep=2)
    kept = {layout.manifest_key(b) for b in ids[-2:]}  # and each kept build's SHA256SUMS
    kept |= {
        layout.sums_key(b, prefix)
        for b in ids[-2:]
        for prefix in download_sets(manifest_of(out, b)["objects"])
    }
    kept |= {changes_contract.published_state_key(b) for b in ids[-2:]}  # and change state
    assert set(target.dest.sizes("builds/")) == kept  # an older build's files are gone
    live = object_keys(manifest_of(out, ids[-1])) | object_keys(manifest_of(out, ids[-2]))
    assert set(target.dest.sizes("objects/")) == live
    seen = observe(target.bucket(), lambda: target.dest.sizes("objects/"), known)
    assert (seen.build_id, seen.missing, seen.matches) == (ids[-1], 0, True)


def test_keep_never_drops_the_build_readers_may_still_hold(target, series):
    out, ids, _ = series
    publish(out, target.dest, build_id=ids[0], keep=1)
    publish(out, target.dest, build_id=ids[1], keep=1)
    manifests = {k for k in target.dest.sizes("builds/") if k.count("/") == 1}
    assert manifests == {layout.manifest_key(b) for b in ids[:2]}


def test_content_types_follow_the_object_class():
    assert content_type("iocs/view/all.all.all.json") == "application/json"
    assert content_type("iocs/default/pro/all.all.all.csv").startswith("text/csv")
    assert content_type("iocs/default/pro/all.all.all.json") == "application/octet-stream"
    assert content_type("iocs/default/pro/all.all.all.txt").startswith("text/plain")
    # framed partitions (compressed blocks, worker/contract/framing.py) are not text to HTTP
    assert content_type("iocs/day/2026-11-28/csv.dat") == "application/octet-stream"
    assert content_type("iocs/day/2026-11-28/json.dat") == "application/octet-stream"
    assert content_type("iocs/day/2026-11-28/json.idx") == "application/octet-stream"
    assert content_type("iocs/view/ipv4.all.all.bin") == "application/octet-stream"
    assert content_type("feeds/openioc.xml") == "application/xml"
    assert content_type("README") == "application/octet-stream"
