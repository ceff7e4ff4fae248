"""A build reads the build it follows once, a part at a time: through a bucket that maps no
object (the pages it touched do not stay in its memory) and a cache it drops after each day."""

from __future__ import annotations

from generator.build import days
from generator.build.tree import build
from generator.store.synthetic import synthetic_store
from worker.buckets.storage import LocalBucket

NOW = 1_795_000_000


def test_an_unmapped_bucket_reads_the_same_bytes_and_keeps_no_map(tmp_path):
    (tmp_path / "objects").mkdir()
    data = bytes(range(256)) * 40
    (tmp_path / "objects" / "a").write_bytes(data)
    (tmp_path / "objects" / "empty").write_bytes(b"")
    mapped, unmapped = LocalBucket(tmp_path), LocalBucket(tmp_path, mapped=False)
    for start, end in ((0, 10), (255, 9000), (10_000, 10_240), (10_230, 20_000), (5, 5)):
        got = unmapped.get_range("objects/a", start, end)
        assert got == mapped.get_range("objects/a", start, end) == data[start:end]
    assert unmapped.get_range("objects/empty", 0, 0) == b""
    assert unmapped._maps == {} and mapped._maps


def test_the_day_overlays_read_the_previous_build_unmapped_and_forget_each_day(tmp_path):
    store = synthetic_store(str(tmp_path / "store"), 300, now=NOW, days=6)
    build(store, tmp_path / "out", now=NOW, processes=1)
    previous = days.Previous.of(tmp_path / "out")
    assert previous is not None
    assert previous.build.bucket.mapped is False
    day = sorted(previous.counts)[0]
    assert previous.live(day)  # reads the day through the cache
    assert previous.build._cache
    previous.build.forget()
    assert not previous.build._cache
    # a following build gives what a build of the same store in an empty folder gives
    again = build(store, tmp_path / "out", now=NOW + 3600, processes=1)
    fresh = build(store, tmp_path / "fresh", now=NOW + 3600, processes=1)
    assert again.build_id == fresh.build_id
