"""Day partitions are immutable bases with per-build overlays: a sequence of builds into one
folder answers every list, page, window, search and feed exactly as a build of the same store
at the same time in an empty folder, and an unchanged day keeps its objects' bytes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from generator.build import days as writer
from generator.build.tree import build
from generator.store.generations import Store
from generator.store.lifecycle import Retraction
from generator.store.synthetic import synthetic_store
from tests.buildseries import changed
from worker.buckets.storage import Build, LocalBucket
from worker.contract import formats, layout
from worker.endpoints import query
from worker.endpoints.search import search_answer

NOW = 1_795_000_000
HOUR, DAY = 3600, 86_400
VIEWS = (
    layout.ALL_VIEW,
    layout.ACTIVE_VIEW,
    "ipv4.all.all",
    "domain.all.high",
    "url.threat-intel.all",
    "expired.all.all.all",
    "withdrawn.all.all.all",
    "all.ip.all.all",
)
PAGES = ((0, 50), (37, 100), (0, 100_000))
TIMING = re.compile(rb'"search_time_ms":\d+')


def _build(root: Path, build_id: str) -> Build:
    return Build(LocalBucket(root), json.loads((root / layout.manifest_key(build_id)).read_bytes()))


def answers(b: Build, values: list[str]) -> dict[str, bytes]:
    """Every answer compared, keyed by what asked for it, with the build id taken out."""
    at = b.generated_at
    windows = ((at - 30 * DAY, at), (at - 5 * DAY + 4000, at - 2 * DAY + 500), (at - DAY, at))
    found: dict[str, bytes] = {}
    every = [(w, p) for w in windows for p in PAGES]
    some = [(windows[1], PAGES[2]), (windows[0], PAGES[1])]  # a boundary day, a page
    for view in VIEWS:
        for fmt in layout.LIST_FORMATS:
            variant = formats.BY_NAME[fmt].variant(True)
            for (since, until), (offset, limit) in every if fmt in ("json", "csv") else some:
                q = query.Query(view, variant, since, until, offset, limit)
                found[f"{view} {fmt} {since} {until} {offset} {limit}"] = query.render(
                    b, q, fmt, "socdef"
                )[0]
    for value in values:
        found[f"search {value}"] = search_answer(b, {"q": value}, "socdef")[0]
    for key in b.objects:
        if key.startswith((layout.DEFAULT_PREFIX, "feeds/")):
            found[key] = b.read(key) or b""
    return {k: TIMING.sub(b"", v.replace(b.build_id.encode(), b"ID")) for k, v in found.items()}


def _values(b: Build) -> list[str]:
    q = query.Query(layout.ALL_VIEW, "json", 0, b.generated_at, 0, 100_000)
    records = json.loads(b"[" + query.select(b, q).data.rstrip(b",") + b"]")
    return [r["value"] for r in records[::9]]


def _store(root: Path, articles: pa.Table, sightings: pa.Table, as_of: int) -> Store:
    store = Store(root)
    store.commit(articles, sightings, {"as_of": as_of, "sources": {}})
    return store


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """(folder, [(build id in the folder, build id from scratch, scratch folder), ...])."""
    tmp = tmp_path_factory.mktemp("days")
    base = synthetic_store(str(tmp / "store"), 1500, now=NOW, days=20)
    articles = base.articles()
    edited, _ = changed(base.sightings(), 0.01, seed=1)
    # new sightings: 3 % of rows seen again in the newest article (their records move days)
    newest = articles.sort_by([("published", "descending")])["article_id"][0].as_py()
    again = edited.slice(0, len(edited) // 33)
    again = again.set_column(
        again.schema.get_field_index("article_id"),
        "article_id",
        pa.array([newest] * len(again), pa.string()),
    )
    moved = pa.concat_tables([edited, again])
    # one article's sightings gone from the store (its records that had no other leave)
    gone = articles["article_id"][3].as_py()
    fewer = moved.filter(pc.not_equal(moved["article_id"], gone))
    retracted = [Retraction(articles["article_id"][5].as_py(), NOW)]
    churned, _ = changed(fewer, 0.4, seed=5)  # enough to pass the compaction threshold
    steps = [
        (base, NOW, ()),
        (_store(tmp / "s1", articles, edited, NOW + HOUR), NOW + HOUR, ()),
        (_store(tmp / "s2", articles, moved, NOW + 2 * HOUR), NOW + 2 * HOUR, ()),
        (_store(tmp / "s3", articles, fewer, NOW + 3 * HOUR), NOW + 3 * HOUR, retracted),
        (_store(tmp / "s4", articles, fewer, NOW + 3 * HOUR), NOW + 20 * DAY, retracted),
        (_store(tmp / "s5", articles, churned, NOW + 20 * DAY), NOW + 20 * DAY + HOUR, ()),
    ]
    folder = tmp / "build"
    out = []
    for i, (store, now, retractions) in enumerate(steps):
        here = build(store, folder, now=now, retractions=retractions).build_id
        if i == 0:  # nothing to follow: the folder's first build is a build from scratch
            out.append((here, here, folder))
            continue
        scratch = tmp / f"scratch-{i}"
        fresh = build(store, scratch, now=now, retractions=retractions).build_id
        out.append((here, fresh, scratch))
    return folder, out


def _overlaid_days(b: Build) -> set[str]:
    return {k.split("/")[2] for k in b.objects if "/over/" in k or k.endswith("/order.bin")}


def test_every_answer_of_an_overlaid_build_is_the_answer_of_a_fresh_build(series):
    folder, steps = series
    for i, (here, fresh, scratch) in enumerate(steps):
        mine, theirs = _build(folder, here), _build(scratch, fresh)
        assert not _overlaid_days(theirs)
        values = _values(theirs)
        expected, got = answers(theirs, values), answers(mine, values)
        assert got.keys() == expected.keys()
        wrong = [k for k in expected if got[k] != expected[k]]
        assert not wrong, f"build {i}: {len(wrong)} answers differ, first {wrong[:3]}"


def test_the_following_builds_write_overlays_and_the_churned_one_compacts(series):
    folder, steps = series
    overlaid = [_overlaid_days(_build(folder, here)) for here, _, _ in steps]
    assert not overlaid[0]  # nothing to follow: bases only
    assert overlaid[1] and overlaid[2] and overlaid[3]
    # the 40 % churn writes its days afresh: fewer days keep an overlay than before
    last = _build(folder, steps[-1][0])
    keys = [k for k in last.objects if k.startswith("iocs/day/") and "/over/" not in k]
    assert len(overlaid[-1]) < len(overlaid[-2])
    assert keys


def test_an_unchanged_day_keeps_its_objects_and_a_changed_day_its_base(series):
    folder, steps = series
    first, second = _build(folder, steps[0][0]), _build(folder, steps[1][0])
    day_keys = [k for k in first.objects if k.startswith("iocs/day/")]
    kept = [k for k in day_keys if second.ref(k) == first.ref(k)]
    changed_days = _overlaid_days(second)
    unchanged = {k.split("/")[2] for k in day_keys} - changed_days
    assert changed_days and unchanged
    for key in day_keys:  # every base object, of changed and unchanged days alike
        assert second.ref(key) is not None and second.ref(key).sha256 == first.ref(key).sha256
    assert len(kept) == len(day_keys)
    # the overlay is small: its bytes are a fraction of the bases'
    over = sum(r.stored_size for k, r in second.objects.items() if "/over/" in k)
    bases = sum(first.ref(k).stored_size for k in day_keys)
    assert over < bases / 10


def test_a_new_machine_continues_the_overlays(series, tmp_path):
    """The change-feed restore brings the day partitions, so a build on a new machine writes
    the same overlays as the old machine's build did."""
    from generator.build import changes
    from generator.publish.folder import LocalDestination
    from generator.publish.upload import publish

    folder, steps = series
    tmp = folder.parent
    bucket = LocalDestination(str(tmp_path / "bucket"))
    publish(folder, bucket, build_id=steps[0][0])
    fresh = tmp_path / "build"
    assert changes.restore(fresh, bucket) == steps[0][0]
    store = Store(tmp / "s1")
    again = build(store, fresh, now=NOW + HOUR).build_id
    assert again == steps[1][0]
    assert writer.Previous.of(fresh) is not None


def test_one_process_writes_the_same_overlays_as_two(series, tmp_path):
    """The line numbers are decided once and shared: a build in one process writes the same
    objects (the same build id) as the two-process build that followed the same build."""
    folder, steps = series
    tmp = folder.parent
    build(Store(tmp / "store"), tmp_path / "one", now=NOW, processes=1)
    again = build(Store(tmp / "s1"), tmp_path / "one", now=NOW + HOUR, processes=1).build_id
    assert again == steps[1][0]
    assert _overlaid_days(_build(tmp_path / "one", again))
