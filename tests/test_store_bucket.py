"""The store's history in the bucket: restore on a new machine, incremental upload, racing
publishes, refusal of an empty or much smaller store. Over S3 (moto in server mode, real HTTP)
and a folder bucket, through the command line's entry point (run in the test process, one
command after another: ``tests.conftest.socdef_here``)."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from generator.publish.folder import LocalDestination, PointerMoved
from generator.publish.s3 import S3Destination
from generator.publish.upload import publish
from generator.sources.catalog import SAMPLE_DIR
from generator.store import bucket as store_bucket
from generator.store import lifecycle
from generator.store.generations import ARTICLE_SCHEMA, Store
from tests.conftest import socdef_here
from tests.s3fixture import moto_s3_fixture  # noqa: F401 - the moto_s3 fixture
from worker.contract import layout

T1, T2, T3 = 1_795_000_000, 1_795_003_600, 1_795_007_200
ARTICLE = {
    "source_id": "s",
    "feed_name": "S",
    "category": "news",
    "title": "t",
    "url": "https://example.org/",
    "tags": [],
    "techniques": [],
}
FEEDS = {
    "a": ("krebs", "huntress", "dfir-report"),
    "b": ("bleepingcomputer", "ncsc-uk"),
    "c": ("cisa-advisories", "jpcert-eyes"),
}


@pytest.fixture
def feeds(tmp_path: Path) -> dict[str, Path]:
    """Three disjoint sets of saved sample feeds, and an empty one."""
    found = {}
    for name, ids in {**FEEDS, "none": ()}.items():
        folder = tmp_path / f"feeds-{name}"
        folder.mkdir()
        for source in ids:
            shutil.copy(SAMPLE_DIR / f"{source}.xml", folder)
        found[name] = folder
    return found


class Bucket:
    """A bucket the commands share through ``SOCDEF_BUCKET``: S3 (moto) or a folder."""

    def __init__(self, kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        if kind == "s3":
            moto = request.getfixturevalue("moto_s3")
            name = moto.new_bucket()
            self.env = {**moto.env, "SOCDEF_BUCKET": f"s3://{name}/feeds"}
            self.dest: Any = S3Destination(name, "feeds/", endpoint_url=moto.endpoint)
        else:
            self.env = {"SOCDEF_BUCKET": str(tmp_path / "bucket")}
            self.dest = LocalDestination(tmp_path / "bucket")

    def run(self, data: Path, *args: str, check: bool = True) -> Any:
        return socdef_here(*args, data_dir=data, env=self.env, check=check)

    def pointer(self) -> dict:
        raw = self.dest.get(store_bucket.STORE_POINTER)
        assert raw is not None
        return json.loads(raw)

    def store_objects(self) -> set[str]:
        return set(self.dest.sizes("store/objects/"))


@pytest.fixture(params=["s3", "folder"])
def bucket(request: pytest.FixtureRequest, tmp_path: Path) -> Bucket:
    return Bucket(request.param, tmp_path, request)


@pytest.fixture
def s3_bucket(request: pytest.FixtureRequest, tmp_path: Path) -> Bucket:
    return Bucket("s3", tmp_path, request)


def cycle(bucket: Bucket, data: Path, feeds: Path, now: int, *extra: str) -> Any:
    """One hourly run: ingest, build, publish; the publish's output."""
    bucket.run(data, "ingest", "--offline", str(feeds), "--now", str(now), *extra)
    bucket.run(data, "build")
    return bucket.run(data, "publish")


def tree(data: Path) -> tuple[str, dict]:
    build_id = (data / "build" / "LATEST").read_text().strip()
    manifest = json.loads((data / "build" / layout.manifest_key(build_id)).read_bytes())
    return build_id, manifest["objects"]


def article_ids(data: Path) -> set[str]:
    return set(Store(data / "store").articles()["article_id"].to_pylist())


def file_hashes(data: Path) -> dict[str, str]:
    return {
        name: hashlib.sha256(path.read_bytes()).hexdigest()
        for name, path in Store(data / "store").files().items()
    }


def test_a_lost_data_dir_comes_back_from_the_bucket_and_builds_the_same_tree(
    s3_bucket, feeds, tmp_path
):
    old, new = tmp_path / "old", tmp_path / "new"
    cycle(s3_bucket, old, feeds["a"], T1)
    # what the old machine builds from its own store after the next ingest
    s3_bucket.run(old, "ingest", "--offline", str(feeds["b"]), "--now", str(T2))
    s3_bucket.run(old, "build", "--now", str(T3))
    expected = tree(old)
    shutil.rmtree(old)

    ingested = s3_bucket.run(new, "ingest", "--offline", str(feeds["b"]), "--now", str(T2))
    live = s3_bucket.pointer()["store_id"]
    assert f"restored store {live}" in ingested.stderr
    assert (new / "store" / "SYNCED").read_text() == live
    s3_bucket.run(new, "build", "--now", str(T3))
    assert tree(new) == expected


def test_a_lost_data_dir_dates_a_withdrawal_made_after_publish_as_the_old_machine_did(
    s3_bucket, feeds, tmp_path
):
    """An operator's block after a publish withdraws an indicator at the time of the build
    that made the change, after everything published before; later builds keep that date
    from the lifecycle ledger. Publish keeps the ledger beside the build, so a machine
    without the data folder builds the same tree (and TAXII pollers get no second version)."""
    old, new = tmp_path / "old", tmp_path / "new"
    cycle(s3_bucket, old, feeds["a"], T1)
    sightings = Store(old / "store").sightings()
    pairs = list(zip(sightings["type"].to_pylist(), sightings["value"].to_pylist(), strict=True))
    value = next(v for t, v in sorted(pairs) if t in ("sha256", "md5", "domain"))
    overrides = f"block {value}\n"
    (old / "overrides.txt").write_text(overrides)
    s3_bucket.run(old, "build", "--now", str(T2))
    s3_bucket.run(old, "publish")
    assert s3_bucket.dest.get(lifecycle.published_ledger_key(tree(old)[0])) is not None
    s3_bucket.run(old, "build", "--now", str(T3))
    expected = tree(old)
    shutil.rmtree(old)

    new.mkdir()
    (new / "overrides.txt").write_text(overrides)
    built = s3_bucket.run(new, "build", "--now", str(T3))
    assert "restored the lifecycle ledger of build" in built.stderr
    assert tree(new) == expected


def test_a_second_publish_uploads_only_the_store_files_that_changed(bucket, feeds, tmp_path):
    data = tmp_path / "data"
    first = cycle(bucket, data, feeds["a"], T1)
    assert "sent 4 of 4 files" in first.stdout
    before, objects = file_hashes(data), bucket.store_objects()

    second = cycle(bucket, data, feeds["b"], T2)
    after = file_hashes(data)
    changed = {name for name in after if after[name] != before.get(name)}
    assert changed and changed != set(after)  # new articles; the revision history stays as is
    assert f"sent {len(changed)} of {len(after)} files" in second.stdout
    added = bucket.store_objects() - objects
    assert added == {store_bucket.object_key(after[name]) for name in changed}

    bucket.run(data, "build")
    third = bucket.run(data, "publish")
    assert f"unchanged ({len(after)} files in the bucket)" in third.stdout
    assert bucket.store_objects() - objects == added
    pointer = bucket.pointer()
    assert pointer["files"] == {n: [after[n], len(p.read_bytes())] for n, p in _files(data)}
    assert len(pointer["history"]) == 2


def _files(data: Path) -> list[tuple[str, Path]]:
    return sorted(Store(data / "store").files().items())


class Gated:
    """A destination that runs ``hook(event, key)`` after each read of a pointer and before
    each conditional write of one, so a test can order two publishes exactly."""

    def __init__(self, dest: Any, hook: Callable[[str, str], None]) -> None:
        self.dest, self.hook = dest, hook
        self.encodes = dest.encodes

    def __getattr__(self, name: str) -> Any:
        return getattr(self.dest, name)

    def get_versioned(self, key: str) -> tuple[bytes | None, str | None]:
        found = self.dest.get_versioned(key)
        self.hook("read", key)
        return found

    def swap(self, key: str, *args: Any, **kwargs: Any) -> None:
        self.hook("swap", key)
        self.dest.swap(key, *args, **kwargs)
        self.hook("swapped", key)


def test_racing_publishes_advance_the_store_once_and_the_loser_retries_losing_nothing(
    bucket, feeds, tmp_path
):
    base, one, two = tmp_path / "base", tmp_path / "one", tmp_path / "two"
    cycle(bucket, base, feeds["a"], T1)
    start = bucket.pointer()["store_id"]
    for data, name in ((one, "b"), (two, "c")):  # two runners start from the same store
        bucket.run(data, "ingest", "--offline", str(feeds[name]), "--now", str(T2))
        bucket.run(data, "build")
        assert (data / "store" / "SYNCED").read_text() == start

    # one switches its build pointer; two then reads both pointers, switches its build pointer
    # and tries the store pointer only after one has switched it
    one_built, two_read, one_done = threading.Event(), threading.Event(), threading.Event()

    def hook_one(event: str, key: str) -> None:
        if (event, key) == ("swap", store_bucket.STORE_POINTER):
            one_built.set()
            assert two_read.wait(60)
        if (event, key) == ("swapped", store_bucket.STORE_POINTER):
            one_done.set()

    def hook_two(event: str, key: str) -> None:
        if (event, key) == ("read", store_bucket.STORE_POINTER):
            two_read.set()
        if (event, key) == ("swap", store_bucket.STORE_POINTER):
            assert one_done.wait(60)

    outcome: dict[str, Any] = {}

    def run(name: str, data: Path, hook: Callable[[str, str], None]) -> None:
        try:
            outcome[name] = publish(
                data / "build", Gated(bucket.dest, hook), store=Store(data / "store")
            )
        except Exception as exc:  # noqa: BLE001 - the loser's failure is the finding
            outcome[name] = exc

    first = threading.Thread(target=run, args=("one", one, hook_one))
    first.start()
    assert one_built.wait(120)
    second = threading.Thread(target=run, args=("two", two, hook_two))
    second.start()
    first.join(120)
    second.join(120)

    assert not isinstance(outcome["one"], Exception), outcome["one"]
    assert isinstance(outcome["two"], store_bucket.StoreMoved), outcome["two"]
    assert "another publish advanced the store first" in str(outcome["two"])
    won = outcome["one"].store.store_id
    pointer = bucket.pointer()
    assert pointer["store_id"] == won and pointer["parent"] == start
    assert pointer["history"] == [won, start]  # advanced once
    assert (two / "store" / "SYNCED").read_text() == start

    # publishing the loser's store as it is: refused before anything is sent, exit 75
    build_pointer = bucket.dest.get(layout.POINTER_KEY)
    again = bucket.run(two, "publish", check=False)
    assert again.returncode == store_bucket.RETRY_EXIT
    assert again.stderr.startswith("Error: the bucket's store moved on to " + won)
    assert len(again.stderr.strip().splitlines()) == 1
    assert bucket.pointer()["store_id"] == won
    assert bucket.dest.get(layout.POINTER_KEY) == build_pointer

    # the retry: ingest restores the winner's store and merges its sources into it
    retried = cycle(bucket, two, feeds["c"], T3)
    assert "store " in retried.stdout
    pointer = bucket.pointer()
    assert pointer["parent"] == won and pointer["history"][1:] == [won, start]
    final = tmp_path / "final"
    bucket.run(final, "build")  # a new machine restores the final store
    assert article_ids(final) == article_ids(base) | article_ids(one) | article_ids(two)
    assert article_ids(one) - article_ids(base) and article_ids(two) - article_ids(one)


def test_two_publishes_read_the_same_pointers_only_one_advances(bucket, feeds, tmp_path):
    """Both publishes read the pointers before either writes: the second loses on the build
    pointer and advances neither pointer."""
    base, one, two = tmp_path / "base", tmp_path / "one", tmp_path / "two"
    cycle(bucket, base, feeds["a"], T1)
    start = bucket.pointer()["store_id"]
    for data, name in ((one, "b"), (two, "c")):
        bucket.run(data, "ingest", "--offline", str(feeds[name]), "--now", str(T2))
        bucket.run(data, "build")
    both_read = threading.Barrier(2, timeout=120)
    order = threading.Lock()

    def hook(event: str, key: str) -> None:
        if (event, key) == ("read", store_bucket.STORE_POINTER):
            both_read.wait()

    outcome: dict[str, Any] = {}

    def run(name: str, data: Path) -> None:
        try:
            with_lock = Gated(bucket.dest, hook)
            result = publish(data / "build", with_lock, store=Store(data / "store"))
            outcome[name] = result
        except Exception as exc:  # noqa: BLE001
            outcome[name] = exc

    def serial_swap(dest: Any) -> None:  # one conditional write at a time, as S3 orders them
        real = dest.swap

        def swap(*args: Any, **kwargs: Any) -> None:
            with order:
                real(*args, **kwargs)

        dest.swap = swap

    serial_swap(bucket.dest)
    threads = [threading.Thread(target=run, args=(n, d)) for n, d in (("one", one), ("two", two))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    failed = [v for v in outcome.values() if isinstance(v, Exception)]
    won = [v for v in outcome.values() if not isinstance(v, Exception)]
    assert len(won) == 1 and len(failed) == 1, outcome
    assert isinstance(failed[0], PointerMoved)
    pointer = bucket.pointer()
    assert pointer["history"] == [won[0].store.store_id, start]


def test_an_empty_or_much_smaller_store_is_refused_while_the_bucket_holds_history(
    bucket, feeds, tmp_path
):
    base, empty = tmp_path / "base", tmp_path / "empty"
    cycle(bucket, base, feeds["a"], T1)
    cycle(bucket, base, feeds["b"], T2)
    published = bucket.pointer()
    Store(empty / "store").init()  # a store that lost everything

    for args in (("build",), ("ingest", "--offline", str(feeds["none"]))):
        refused = bucket.run(empty, *args, check=False)
        assert refused.returncode == 1, refused.stderr
        assert refused.stderr.startswith("Error: the local store ") and "is empty" in refused.stderr
        assert "--fresh" in refused.stderr and "Traceback" not in refused.stderr
    assert not (empty / "build").exists()

    smaller = bucket.run(empty, "build", "--fresh", check=False)  # no restore: the size check
    assert smaller.returncode == 1
    assert "fewer than 50% of the" in smaller.stderr and "--force" in smaller.stderr
    assert not (empty / "build" / "LATEST").exists()
    assert bucket.pointer() == published

    bucket.run(empty, "build", "--fresh", "--force")
    bucket.run(empty, "publish")
    reset = bucket.pointer()
    assert reset["articles"] == 0 and reset["parent"] == published["store_id"]


def test_a_kept_generation_can_be_restored_and_a_damaged_object_is_refused(bucket, feeds, tmp_path):
    data, back = tmp_path / "data", tmp_path / "back"
    cycle(bucket, data, feeds["a"], T1)
    first = bucket.pointer()
    cycle(bucket, data, feeds["b"], T2)
    live = bucket.pointer()["store_id"]
    restored = bucket.run(back, "build", "--store-generation", first["store_id"])
    assert f"restored store {first['store_id']}" in restored.stderr
    assert Store(back / "store").counts() == (first["articles"], first["sightings"])
    assert (back / "store" / "SYNCED").read_text() == live  # the next publish goes on top

    sha = live_sha = bucket.pointer()["files"]["sightings.parquet"][0]
    bucket.dest.put(
        store_bucket.object_key(live_sha), b"damaged", content_type="x", cache_control="x"
    )
    lost = bucket.run(tmp_path / "other", "build", check=False)
    assert lost.returncode == 1
    assert f"{store_bucket.object_key(sha)} of generation {live} is damaged" in lost.stderr
    assert not (tmp_path / "other" / "store" / "CURRENT").exists()


def test_the_bucket_keeps_the_last_generations_and_the_files_they_use(tmp_path):
    """Library level, folder bucket: five hourly generations with ``keep=3``."""
    dest = LocalDestination(tmp_path / "bucket")
    store = Store(tmp_path / "store")
    store.init()
    ids, files = [], []
    for hour in range(5):
        articles = store.articles().to_pylist()
        state = {"as_of": T1 + hour * 3600, "sources": {"s": {"hour": hour}}}
        if hour % 2:  # every other hour brings an article; the others only a new state
            articles.append({**ARTICLE, "article_id": f"a{hour}", "published": T1 + hour})
        store.commit(
            pa.Table.from_pylist(articles, schema=ARTICLE_SCHEMA), store.sightings(), state
        )
        plan = store_bucket.prepare(store, dest)
        done = store_bucket.switch(plan, store_bucket.upload(plan), keep=3)
        ids.append(done.store_id)
        files.append({store_bucket.object_key(sha) for sha, _ in plan.generation.files.values()})
    pointer = json.loads(dest.get(store_bucket.STORE_POINTER) or b"")
    assert pointer["history"] == ids[:1:-1]
    kept = set().union(*files[2:])
    assert set(dest.sizes("store/objects/")) == kept
    assert set(dest.sizes("store/generations/")) == {
        store_bucket.generation_key(i) for i in ids[2:]
    }
    assert files[0] - kept and files[1] - kept  # files of dropped generations were removed
    restored = Store(tmp_path / "restored")
    assert store_bucket.sync(restored, dest).action == "restored"
    assert restored.articles().equals(store.articles())
