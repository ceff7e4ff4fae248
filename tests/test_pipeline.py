"""Ingest → store → build → publish through the library and the real CLI."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from generator.build.sinks import ObjectWriter
from generator.build.tree import build
from generator.ingest.pipeline import IngestError, ingest, offline_reader
from generator.publish.upload import LocalDestination, PublishError, publish
from generator.sources.catalog import SAMPLE_DIR, load_sources
from generator.store.generations import Store
from generator.store.records import iter_records
from generator.store.synthetic import synthetic_tables
from tests.conftest import socdef
from tests.reference import fold_records
from worker.buckets.storage import BuildSource, LocalBucket
from worker.contract import layout

NOW = 1_795_000_000
TRUTH = json.loads((Path(__file__).parent / "data" / "sample_truth.json").read_text())


def tree_digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def sample_store(tmp_path) -> Store:
    store = Store(tmp_path / "store")
    ingest(store, load_sources(), offline_reader(SAMPLE_DIR), now=NOW, shift_dates=True)
    return store


def test_sample_ingest_finds_the_planted_indicators(sample_store):
    found = {
        (t, v)
        for t, v in zip(
            sample_store.sightings()["type"].to_pylist(),
            sample_store.sightings()["value"].to_pylist(),
            strict=True,
        )
    }
    planted = {(t, v) for t, values in TRUTH.items() if t != "negatives" for v in values}
    assert len(planted) >= 200
    assert planted <= found
    values = {v for _, v in found}
    assert not values & set(TRUTH["negatives"])


def test_shifted_dates_end_at_the_ingest_time(sample_store):
    published = sample_store.articles()["published"].to_pylist()
    assert max(published) == NOW
    assert sum(1 for p in published if p > NOW - 86400) >= 6


def test_ingesting_the_same_feeds_twice_changes_nothing(sample_store, tmp_path):
    before = (sample_store.articles(), sample_store.sightings())
    ingest(sample_store, load_sources(), offline_reader(SAMPLE_DIR), now=NOW, shift_dates=True)
    assert sample_store.articles().equals(before[0])
    assert sample_store.sightings().equals(before[1])


def test_a_broken_source_is_recorded_and_costs_nothing(sample_store, tmp_path):
    feeds = tmp_path / "feeds"
    shutil.copytree(SAMPLE_DIR, feeds)
    (feeds / "krebs.xml").write_bytes(b"<rss><channel><item><title>cut off")
    (feeds / "sans-isc.xml").write_bytes(b'<!DOCTYPE x [<!ENTITY a "aaaa">]><rss>&a;</rss>')
    before = sample_store.articles().num_rows
    report = ingest(
        sample_store, load_sources(), offline_reader(feeds), now=NOW + 60, shift_dates=True
    )
    failed = {s.source: s.error for s in report.failed}
    assert set(failed) == {"krebs", "sans-isc"} and all(failed.values())
    assert sample_store.articles().num_rows == before  # krebs' earlier articles are still there
    assert sample_store.state()["sources"]["krebs"]["status"] == "error"


def test_nothing_readable_changes_nothing(sample_store, tmp_path):
    generation = sample_store.generation()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(IngestError):
        ingest(sample_store, load_sources(), offline_reader(empty), now=NOW)
    assert sample_store.generation() == generation


def test_builds_are_deterministic(sample_store, tmp_path):
    first = build(sample_store, tmp_path / "b1")
    second = build(sample_store, tmp_path / "b2")
    assert first.build_id == second.build_id
    assert tree_digest(tmp_path / "b1") == tree_digest(tmp_path / "b2")


def test_one_process_builds_what_two_do(sample_store, tmp_path):
    two = build(sample_store, tmp_path / "b2", processes=2)
    one = build(sample_store, tmp_path / "b1", processes=1)
    assert one.build_id == two.build_id
    assert tree_digest(tmp_path / "b1") == tree_digest(tmp_path / "b2")


def test_publish_switches_atomically_and_skips_what_arrived(sample_store, tmp_path):
    out, bucket = tmp_path / "build", tmp_path / "bucket"
    first = build(sample_store, out)
    dest = LocalDestination(bucket)
    result = publish(out, dest)
    assert result.uploaded > 0 and result.skipped == 0
    again = publish(out, dest)
    assert again.uploaded == 0 and again.skipped == result.uploaded
    reader = BuildSource(LocalBucket(bucket), pointer_ttl=0)
    assert reader.current().build_id == first.build_id
    # a later build: the reader moves to it only when the pointer moves
    ingest(
        sample_store, load_sources(), offline_reader(SAMPLE_DIR), now=NOW + 3600, shift_dates=True
    )
    second = build(sample_store, out)
    assert second.build_id != first.build_id
    assert reader.current().build_id == first.build_id
    publish(out, dest)
    assert reader.current().build_id == second.build_id


def test_interrupted_publish_leaves_readers_on_the_old_build(sample_store, tmp_path):
    out, bucket = tmp_path / "build", tmp_path / "bucket"
    first = build(sample_store, out)
    publish(out, LocalDestination(bucket))
    ingest(
        sample_store, load_sources(), offline_reader(SAMPLE_DIR), now=NOW + 7200, shift_dates=True
    )
    second = build(sample_store, out)

    class Dies(LocalDestination):
        puts = 0

        def put(self, key, data, **kw):
            Dies.puts += 1
            if Dies.puts > 5:
                raise OSError("connection lost")
            super().put(key, data, **kw)

    with pytest.raises(OSError):
        publish(out, Dies(bucket))
    reader = BuildSource(LocalBucket(bucket), pointer_ttl=0)
    assert reader.current().build_id == first.build_id
    resumed = publish(out, LocalDestination(bucket))
    assert resumed.skipped >= 5
    assert reader.current().build_id == second.build_id


def test_old_builds_are_pruned(sample_store, tmp_path):
    out, bucket = tmp_path / "build", tmp_path / "bucket"
    dest = LocalDestination(bucket)
    ids = []
    for hour in range(4):
        ingest(
            sample_store,
            load_sources(),
            offline_reader(SAMPLE_DIR),
            now=NOW + hour * 3600,
            shift_dates=True,
        )
        ids.append(build(sample_store, out).build_id)
        publish(out, dest, keep=2)
    manifests = sorted(p.stem for p in (bucket / "builds").glob("*.json"))
    assert manifests == sorted(ids[-2:])
    live = set()
    for build_id in ids[-2:]:
        manifest = json.loads((bucket / layout.manifest_key(build_id)).read_bytes())
        live |= {layout.object_key(sha) for sha, _ in manifest["objects"].values()}
    stored = {
        p.relative_to(bucket).as_posix() for p in (bucket / "objects").rglob("*") if p.is_file()
    }
    assert stored == live


def test_publish_without_a_build_is_a_clean_error(tmp_path):
    with pytest.raises(PublishError):
        publish(tmp_path / "nothing", LocalDestination(tmp_path / "bucket"))


def test_cli_pipeline_and_errors(tmp_path):
    data = tmp_path / "data"
    out = socdef(
        "ingest", "--offline", str(SAMPLE_DIR), "--shift-dates", "--now", str(NOW), data_dir=data
    ).stdout
    assert "krebs" in out and "store: 48 new articles" in out
    assert "build " in socdef("build", data_dir=data).stdout
    assert "uploaded" in socdef("publish", data_dir=data).stdout
    failed = socdef("publish", "--build-id", "nope", data_dir=data, check=False)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert failed.stderr.startswith("Error: ") and len(failed.stderr.strip().splitlines()) == 1
    usage = socdef(
        "keys", "create", "--user", "a@b.c", "--tier", "gold", data_dir=data, check=False
    )
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
    bad_sources = tmp_path / "bad.toml"
    bad_sources.write_text(
        '[[source]]\nid = "X Y"\nname = "n"\nurl = "ftp://x"\ncategory = "blog"\n'
    )
    bad = socdef(
        "ingest",
        "--sources",
        str(bad_sources),
        "--offline",
        str(SAMPLE_DIR),
        data_dir=data,
        check=False,
    )
    assert bad.returncode == 1 and "category must be one of" in bad.stderr
    assert "url must be http" in bad.stderr and "Traceback" not in bad.stderr


def odd_tables() -> tuple[pa.Table, pa.Table]:
    """Synthetic tables plus what a store may hold: repeated rows, sightings of unknown
    articles, unknown or missing confidences, indicators reported by several articles
    published at the same second, ingest times for some sightings only."""
    articles, sightings = synthetic_tables(3_000, now=NOW, days=60)
    published = articles["published"].to_pylist()
    published[1] = published[2] = published[3]  # ties: the smallest article id wins
    articles = articles.set_column(
        articles.schema.get_field_index("published"), "published", pa.array(published, pa.int64())
    )
    ids = articles["article_id"].to_pylist()
    tied = {name: [] for name in sightings.column_names}
    for n, article in enumerate((ids[3], ids[1], ids[2], "missing", ids[2])):
        for name, value in (
            ("article_id", article),
            ("type", "domain"),
            ("value", "tied.example.com"),
            ("context", f"context {n}"),
            ("confidence", ("high", "low", None, "odd", "medium")[n]),
            ("defanged", False),
        ):
            tied[name].append(value)
    sightings = pa.concat_tables(
        [
            sightings,
            sightings.slice(10, 40),
            sightings.slice(500, 5),
            pa.table(tied, schema=sightings.schema),
        ]
    )
    confidence = sightings["confidence"].to_pylist()
    confidence[7], confidence[8] = None, "unknown"
    articles_of = sightings["article_id"].to_pylist()
    articles_of[20] = "gone"
    sightings = sightings.set_column(0, "article_id", pa.array(articles_of, pa.string()))
    sightings = sightings.set_column(4, "confidence", pa.array(confidence, pa.string()))
    types = sightings["type"].to_pylist()
    ingested = [
        None if n % 3 and types[n] != "mitre_attack" else NOW - 7 * n
        for n in range(sightings.num_rows)
    ]
    return articles, sightings.append_column("ingested_at", pa.array(ingested, pa.int64()))


@pytest.mark.parametrize("kind", ["synthetic", "odd", "odd without ingest times", "empty"])
def test_records_are_the_fold_of_the_sightings(kind):
    articles, sightings = (
        synthetic_tables(2_000, now=NOW, days=30) if kind == "synthetic" else odd_tables()
    )
    if kind == "odd without ingest times":
        sightings = sightings.drop_columns(["ingested_at"])
    if kind == "empty":
        sightings = sightings.slice(0, 0)
    expected = fold_records(articles, sightings)
    count, records = iter_records(articles, sightings)
    assert list(records) == expected
    assert count == len(expected)
    if kind.startswith("odd"):
        tied = next(r for r in expected if r.value == "tied.example.com")
        ids = articles["article_id"].to_pylist()
        assert (tied.article_id, tied.context) == (ids[1], "context 1") and ids[1] < ids[3]


def test_a_streamed_object_is_the_object_put(tmp_path):
    out = ObjectWriter(tmp_path)
    out.put("a", b"hello, world")
    with out.stream("b") as stream:
        stream.write(b"hello, ")
        stream.write(memoryview(b"world"))
    assert out.objects["a"] == out.objects["b"] == [hashlib.sha256(b"hello, world").hexdigest(), 12]
    with pytest.raises(RuntimeError), out.stream("c") as stream:
        stream.write(b"half")
        raise RuntimeError("the producer failed")
    assert "c" not in out.objects
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]
    with pytest.raises(ValueError, match="two producers"):
        out.stream("a")


def test_an_object_cut_short_by_a_killed_build_is_written_again(tmp_path):
    data = b"x" * 10_000
    first = ObjectWriter(tmp_path)
    first.put("a", data)
    path = tmp_path / layout.object_key(first.objects["a"][0])
    assert path.read_bytes() == data
    path.write_bytes(data[:4_096])  # what a build killed mid-write leaves
    ObjectWriter(tmp_path).put("a", data)
    assert path.read_bytes() == data
    stamp = path.stat().st_mtime_ns
    ObjectWriter(tmp_path).put("a", data)  # present and whole: left as it is
    assert path.stat().st_mtime_ns == stamp and path.read_bytes() == data
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]
