"""Ingest faults: a feed that still parses must never cost the store what it already saw."""

from __future__ import annotations

import re
import shutil

from generator.ingest.pipeline import ingest, offline_reader
from generator.sources.catalog import SAMPLE_DIR, load_sources
from generator.store.generations import Article, Sighting, Store
from generator.store.records import iter_records

NOW = 1_795_000_000
GUID = re.compile(r"<guid[^>]*>([^<]+)</guid>")


def sighting_keys(store: Store) -> set[tuple[str, str, str]]:
    t = store.sightings()
    return set(
        zip(t["article_id"].to_pylist(), t["type"].to_pylist(), t["value"].to_pylist(), strict=True)
    )


def ioc_count(store: Store) -> int:
    return iter_records(store.articles(), store.sightings())[0]


def emptied_feed(original: str, body: str) -> str:
    """The feed with its items' GUIDs, titles and dates but ``body`` as every description."""
    items = re.findall(r"<item>.*?</item>", original, re.S)
    out = []
    for item in items:
        guid = GUID.search(item).group(1)
        title = re.search(r"<title>(.*?)</title>", item, re.S).group(1)
        date = re.search(r"<pubDate>(.*?)</pubDate>", item, re.S).group(1)
        out.append(
            f'<item><title>{title}</title><guid isPermaLink="false">{guid}</guid>'
            f"<pubDate>{date}</pubDate><description>{body}</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Volexity</title><link>https://www.volexity.com</link>{''.join(out)}"
        "</channel></rss>"
    )


def test_an_emptied_or_truncated_feed_body_keeps_every_sighting(tmp_path):
    feeds = tmp_path / "feeds"
    shutil.copytree(SAMPLE_DIR, feeds)
    store = Store(tmp_path / "store")
    sources = load_sources(None)
    ingest(store, sources, offline_reader(feeds), now=NOW)
    keys, iocs, articles = sighting_keys(store), ioc_count(store), store.articles().num_rows
    original = (SAMPLE_DIR / "volexity.xml").read_text()
    assert len(GUID.findall(original)) == 3
    for body in ("nothing here", "", "During an incident response investigation, Vol"):
        (feeds / "volexity.xml").write_text(emptied_feed(original, body))
        report = ingest(store, sources, offline_reader(feeds), now=NOW + 3600)
        assert sighting_keys(store) == keys, body
        assert ioc_count(store) == iocs and store.articles().num_rows == articles
        assert report.merge is not None and report.merge.sightings_kept > 0
    # the first emptied read is in the articles' revision history; the same short read again
    # changed nothing, so it is no new revision
    revisions = store.revisions().to_pylist()
    assert len(revisions) == 3 and {r["revised_at"] for r in revisions} == {NOW + 3600}
    assert all(r["kept"] > 0 and r["added"] == 0 and r["read"] == 0 for r in revisions)
    # the full body again: nothing new, nothing lost, the same store
    shutil.copy(SAMPLE_DIR / "volexity.xml", feeds / "volexity.xml")
    ingest(store, sources, offline_reader(feeds), now=NOW + 7200)
    assert sighting_keys(store) == keys and ioc_count(store) == iocs
    back = store.revisions().to_pylist()[3:]  # the body is back: nothing kept any more
    assert len(back) == 3 and all(r["kept"] == 0 and r["read"] > 0 for r in back)


def test_an_update_adds_what_is_new_and_keeps_what_was_seen(tmp_path):
    store = Store(tmp_path)
    a = Article(
        "a1", "s", "S", "news", "first title", "https://x.example/1", 900, ("apt28",), ("T1059",)
    )
    one = Sighting("a1", "ipv4", "198.51.100.1", "c2 server", "high")
    two = Sighting("a1", "domain", "evil.example.com", "drop", "medium")
    store.merge([a], [one, two], as_of=1_000)
    edited = Article(
        "a1", "s", "S", "news", "edited title", "https://x.example/1", 900, ("c2",), ()
    )
    three = Sighting("a1", "ipv4", "198.51.100.3", "new", "low")
    changed = Sighting("a1", "ipv4", "198.51.100.1", "c2 server, confirmed", "high")
    stats = store.merge([edited], [changed, three], as_of=2_000)
    assert stats.articles_updated == 1 and stats.sightings_kept == 1
    rows = store.sightings().to_pylist()
    got = {r["value"]: (r["context"], r["ingested_at"]) for r in rows}
    assert got == {
        "198.51.100.1": ("c2 server, confirmed", 1_000),
        "evil.example.com": ("drop", 1_000),
        "198.51.100.3": ("new", 2_000),
    }
    (art,) = store.articles().to_pylist()
    assert art["title"] == "edited title"
    assert art["tags"] == ["apt28", "c2"] and art["techniques"] == ["T1059"]
    (rev,) = store.revisions().to_pylist()
    assert rev == {
        "article_id": "a1",
        "revised_at": 2_000,
        "title": "first title",
        "url": "https://x.example/1",
        "published": 900,
        "read": 2,
        "added": 1,
        "kept": 1,
    }
    # the same read again changes nothing, and is no revision
    store.merge([edited], [changed, three], as_of=3_000)
    assert store.sightings().to_pylist() == rows and store.revisions().num_rows == 1
    # an empty title or URL keeps the stored one
    blank = Article("a1", "s", "S", "news", "", "", 900)
    store.merge([blank], [], as_of=4_000)
    (art,) = store.articles().to_pylist()
    assert art["title"] == "edited title" and art["url"] == "https://x.example/1"


def test_a_republished_article_keeps_its_sightings_under_the_new_date(tmp_path):
    store = Store(tmp_path)
    a = Article("a1", "s", "S", "news", "t", "https://x.example/1", 900)
    seen = Sighting("a1", "ipv4", "198.51.100.1", "c", "low")
    store.merge([a], [seen], as_of=1_000)
    moved = Article("a1", "s", "S", "news", "t", "https://x.example/1", 950)
    store.merge([moved], [], as_of=2_000)
    (row,) = store.sightings().to_pylist()
    assert row["value"] == "198.51.100.1" and row["ingested_at"] == 2_000  # a changed record
