"""An article's tags are the families, actors and tools it names, never its feed's categories
(kept as ``categories``); a record's TLP is its source's (``sources.toml``), default clear."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from exports import ioc_csv, ioc_json, misp, stix21
from generator.ingest.pipeline import ingest, offline_reader, read_article
from generator.sources.catalog import Source, SourcesError, load_sources
from generator.sources.feeds import FeedItem
from generator.store.generations import Store
from generator.store.records import iter_records
from worker.contract.formats import CSV_HEADER
from worker.contract.stix_common import TLP_IDS

ROOT = Path(__file__).resolve().parents[1]
NOW = 1_795_000_000
FEED = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Lab</title><link>https://lab.example.net/</link>
<item><title>Emotet is back</title><link>https://lab.example.net/emotet</link>
<guid>emotet-1</guid><pubDate>Mon, 23 Nov 2026 10:00:00 GMT</pubDate>
<category>Malware</category><category>Threat Research</category>
<description>Emotet loaders fetch Cobalt Strike from evil-c2[.]top today.</description>
</item></channel></rss>
"""


def sources_file(tmp: Path, tlp: str | None) -> Path:
    line = f'tlp = "{tlp}"\n' if tlp is not None else ""
    path = tmp / "sources.toml"
    path.write_text(
        '[[source]]\nid = "lab"\nname = "Lab"\nurl = "https://lab.example.net/feed"\n'
        f'category = "vendor"\n{line}'
    )
    return path


def records_of(tmp: Path, tlp: str | None):
    feeds = tmp / "feeds"
    feeds.mkdir()
    (feeds / "lab.xml").write_text(FEED)
    store = Store(tmp / "store")
    ingest(store, load_sources(sources_file(tmp, tlp)), offline_reader(feeds), now=NOW)
    records = list(iter_records(store.articles(), store.sightings())[1])
    assert [r.value for r in records] == ["evil-c2.top"]
    return store, records


def test_feed_categories_are_categories_and_never_tags():
    source = Source("lab", "Lab", "https://lab.example.net/feed", "vendor")
    item = FeedItem(
        "g1",
        "Weekly notes",
        "https://lab.example.net/notes",
        datetime(2026, 11, 23, tzinfo=UTC),
        ("malware", "phishing", "lazarus"),
        "<p>LockBit affiliates used Mimikatz against evil.example.com.</p>",
    )
    article, _ = read_article(source, item, NOW)
    assert article.tags == ("lockbit", "mimikatz")
    assert article.categories == ("lazarus", "malware", "phishing")
    assert "malware" not in article.tags and "phishing" not in article.tags
    # a category naming a family is still only a category unless the text names it
    assert "lazarus" not in article.tags


def test_ingested_record_keeps_categories_apart_and_defaults_to_clear(tmp_path):
    _, (record,) = records_of(tmp_path, None)
    assert record.tags == ("cobalt-strike", "emotet")
    assert record.categories == ("malware", "threat research")
    assert record.tlp == "clear"
    main = stix21.main_object(record)
    assert main["object_marking_refs"] == [TLP_IDS["clear"]]
    assert "malware" not in main.get("labels", [])
    names = [t["name"] for t in misp.attribute(record)["Tag"]]
    assert "tlp:clear" in names and "malware" not in names


@pytest.mark.parametrize("level", ["green", "amber+strict", "red"])
def test_the_source_tlp_marks_stix_and_misp(tmp_path, level):
    _, (record,) = records_of(tmp_path, level)
    assert record.tlp == level
    for obj in orjson.loads(b"[" + stix21.render_line(record)[:-1] + b"]"):
        assert obj["object_marking_refs"] == [TLP_IDS[level]]
    names = [t["name"] for t in misp.attribute(record)["Tag"]]
    assert f"tlp:{level}" in names
    assert [n for n in names if n.startswith("tlp:")] == [f"tlp:{level}"]


def test_green_is_tlp_green_whatever_the_confidence(tmp_path):
    _, (record,) = records_of(tmp_path, "green")
    assert stix21.main_object(record)["object_marking_refs"] == [
        "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
    ]
    assert {"name": "tlp:green"} in misp.attribute(record)["Tag"]


def test_an_indicator_from_two_sources_takes_the_stricter_tlp(tmp_path):
    _, (record,) = records_of(tmp_path, "amber")
    other = Source("other", "Other", "https://other.example.org/feed", "news", tlp="green")
    item = FeedItem("o1", "More", "https://other.example.org/1", None, (), "evil-c2[.]top")
    store = Store(tmp_path / "store")
    article, sightings = read_article(other, item, NOW + 60)
    store.merge([article], sightings, as_of=NOW + 60)
    (merged,) = iter_records(store.articles(), store.sightings())[1]
    assert merged.sightings == 2 and merged.tlp == "amber"


@pytest.mark.parametrize("bad", ["white", "AMBER", "tlp:red", ""])
def test_an_invalid_tlp_is_reported_with_the_source(tmp_path, bad):
    with pytest.raises(SourcesError, match=r"source #1 \(lab\): tlp must be one of clear, green"):
        load_sources(sources_file(tmp_path, bad))


def test_socdef_sources_reports_an_invalid_tlp(tmp_path):
    path = sources_file(tmp_path, "white")
    result = subprocess.run(
        [sys.executable, "-m", "generator", "sources", "--sources", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "SOCDEF_DATA_DIR": str(tmp_path / "d")},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "source #1 (lab): tlp must be one of clear, green, amber, amber+strict, red" in (
        result.stderr
    )


def test_a_store_written_without_categories_and_tlp_still_loads(tmp_path):
    store, (before,) = records_of(tmp_path, "green")
    path = store.generation() / "articles.parquet"
    old = pq.read_table(path).drop_columns(["categories", "tlp"])
    pq.write_table(old, path)
    articles = store.articles()
    assert articles["tlp"].to_pylist() == ["clear"]
    assert articles["categories"].to_pylist() == [[]]
    (after,) = iter_records(articles, store.sightings())[1]
    assert (after.tlp, after.categories, after.tags) == ("clear", (), before.tags)


def test_an_old_store_with_categories_in_tags_reads_them_as_categories(tmp_path):
    store, _ = records_of(tmp_path, None)
    path = store.generation() / "articles.parquet"
    old = pq.read_table(path).drop_columns(["categories", "tlp"])
    old = old.set_column(
        old.schema.get_field_index("tags"),
        "tags",
        pa.array(
            [["cobalt-strike", "emotet", "malware", "threat research"]], pa.list_(pa.string())
        ),
    )
    pq.write_table(old, path)
    (record,) = iter_records(store.articles(), store.sightings())[1]
    assert record.tags == ("cobalt-strike", "emotet")
    assert record.categories == ("malware", "threat research")
    out = ioc_json.record_dict(record)
    assert out["tags"] == ["cobalt-strike", "emotet"]
    assert out["categories"] == ["malware", "threat research"]
    header = CSV_HEADER.decode().strip().split(",")
    (row,) = csv.reader(io.StringIO(ioc_csv.render_line(record).decode()))
    fields = dict(zip(header, row, strict=True))
    assert fields["tags"] == "cobalt-strike,emotet"
    assert fields["categories"] == "malware,threat research"
    assert "malware" not in stix21.main_object(record).get("labels", [])


def test_json_and_csv_records_carry_the_feed_categories(tmp_path):
    _, (record,) = records_of(tmp_path, None)
    assert ioc_json.record_dict(record)["categories"] == ["malware", "threat research"]
    (row,) = csv.reader(io.StringIO(ioc_csv.render_line(record).decode()))
    assert row[-1] == "malware,threat research" and row[9] == "cobalt-strike,emotet"
