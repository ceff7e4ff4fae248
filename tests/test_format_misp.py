"""MISP: the event (``/api/v1/iocs/misp``) and the feed in the build tree, checked by pymisp."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exports import misp
from exports.registry import VARIANT_RENDERERS
from exports.timefmt import iso_z
from generator.build import misp_feed
from generator.build.tree import build
from tests.golden import GOLDEN, assert_golden
from tests.ioc_strategies import records
from tests.misp_check import DESCRIBE, check_event, check_feed
from tests.seed import SEED_NOW, seed_lists, seed_records, seed_store
from worker.buckets.storage import Build, LocalBucket
from worker.contract import layout
from worker.endpoints.exports import ExportParams
from worker.endpoints.misp import event_document

RECORDS = seed_records()
YEAR = 365 * layout.DAY_SECONDS
PARAMS = ExportParams(layout.ACTIVE_VIEW, SEED_NOW - YEAR, SEED_NOW, 100, "json")


def event_of(records, build_id: str = "golden", params: ExportParams = PARAMS) -> bytes:
    lines = b"".join(VARIANT_RENDERERS["misp"](r) for r in records)
    return event_document(build_id, SEED_NOW, params, "socdef", lines)


def feed_files(build_dir) -> dict[str, bytes]:
    build_id = (build_dir / "LATEST").read_text()
    manifest = json.loads((build_dir / layout.manifest_key(build_id)).read_text())
    reader = Build(LocalBucket(build_dir), manifest)
    prefix = layout.feed_key("misp", "")
    return {
        k.removeprefix(prefix): reader.read(k) or b""
        for k in manifest["objects"]
        if k.startswith(prefix)
    }


def test_event_golden_and_pymisp_accepts_it():
    doc = event_of(RECORDS)
    assert_golden("misp-event.json", doc)
    event = check_event(doc)["Event"]
    assert [a["uuid"] for a in event["Attribute"]] == [r.id for r in RECORDS]
    assert {"tlp:amber", "type:OSINT"} == {t["name"] for t in event["Tag"]}
    for r, a in zip(RECORDS, event["Attribute"], strict=True):
        assert a["value"] == r.value
        assert f"tlp:{r.tlp}" in [t["name"] for t in a["Tag"]]
        assert (a["first_seen"], a["last_seen"]) == (iso_z(r.first_seen), iso_z(r.last_seen))


@pytest.mark.parametrize("ioc_type", layout.IOC_TYPES)
def test_type_category_and_to_ids_are_misp_defaults(ioc_type):
    misp_type, category, to_ids = misp.MISP_TYPES[ioc_type]
    defaults = DESCRIBE["sane_defaults"][misp_type]
    assert category == defaults["default_category"] or ioc_type == "mitre_attack"
    assert misp_type in DESCRIBE["category_type_mappings"][category]
    assert to_ids == bool(defaults["to_ids"])


def test_to_ids_is_off_for_low_confidence_and_for_references():
    by_key = {(r.type, r.value): json.loads(misp.render_line(r)[:-1]) for r in RECORDS}
    for r in RECORDS:
        expected = misp.MISP_TYPES[r.type][2] and r.confidence != "low"
        assert by_key[(r.type, r.value)]["to_ids"] is expected


def test_galaxy_tags_name_the_technique_or_are_left_out():
    assert misp.galaxy_tag("T1071") == (
        'misp-galaxy:mitre-attack-pattern="Application Layer Protocol - T1071"'
    )
    assert (
        misp.galaxy_tag("T1059.001") == 'misp-galaxy:mitre-attack-pattern="PowerShell - T1059.001"'
    )
    assert misp.galaxy_tag("T1999.999") is None
    technique = next(r for r in RECORDS if r.type == "mitre_attack" and r.value == "T1190")
    names = [t["name"] for t in misp.tags(technique)]
    assert 'misp-galaxy:mitre-attack-pattern="Exploit Public-Facing Application - T1190"' in names


def test_event_uuid_is_a_function_of_build_and_query():
    uuid_of = lambda *a: json.loads(event_of(RECORDS[:3], *a))["Event"]["uuid"]  # noqa: E731
    other = ExportParams("ipv4.all.all", PARAMS.since, PARAMS.until, 100, "json")
    assert uuid_of("b1") == uuid_of("b1")
    assert len({uuid_of("b1"), uuid_of("b2"), uuid_of("b1", other)}) == 3


@settings(max_examples=150, deadline=None)
@given(st.lists(records(), min_size=1, max_size=5))
def test_arbitrary_text_survives_and_validates(recs):
    event = check_event(event_of(recs))["Event"]
    for r, a in zip(recs, event["Attribute"], strict=True):
        assert a["value"] == r.value
        assert a["comment"].endswith(r.context) and r.article_title in a["comment"]
        names = [t["name"] for t in a["Tag"]]
        # a record's own tags all survive, except TLP: the export sets the one TLP marking
        assert all(tag in names for tag in r.tags if tag.strip() and not tag.startswith("tlp:"))
        assert len([n for n in names if n.startswith("tlp:")]) == 1


@pytest.fixture(scope="module")
def seed_build(tmp_path_factory):
    root = tmp_path_factory.mktemp("misp")
    build(seed_store(root / "store"), root / "build", lists=seed_lists(root / "store"))
    return root / "build"


def test_feed_golden_and_pymisp_feed_tooling_agree(seed_build):
    files = feed_files(seed_build)
    events = check_feed(files, misp_feed.MAX_ATTRIBUTES)
    for name, data in files.items():
        assert_golden(f"misp-feed/{name}", data)
    assert sorted(p.name for p in (GOLDEN / "misp-feed").iterdir()) == sorted(files)
    assert sum(len(e["Event"]["Attribute"]) for e in events.values()) == len(RECORDS)


def test_feed_has_one_event_per_article(seed_build):
    events = check_feed(feed_files(seed_build), misp_feed.MAX_ATTRIBUTES)
    by_article = {r.article_title: set() for r in RECORDS}
    for r in RECORDS:
        by_article[r.article_title].add(r.id)
    infos = {
        e["Event"]["info"]: {a["uuid"] for a in e["Event"]["Attribute"]} for e in events.values()
    }
    assert infos == {" ".join(t.split()): ids for t, ids in by_article.items()}


def test_feed_splits_large_articles(tmp_path, monkeypatch):
    monkeypatch.setattr(misp_feed, "MAX_ATTRIBUTES", 2)
    build(seed_store(tmp_path / "store"), tmp_path / "build", lists=seed_lists(tmp_path / "store"))
    events = check_feed(feed_files(tmp_path / "build"), 2)
    parts = [
        e["Event"]["info"]
        for e in events.values()
        if re.search(r"\(part \d of \d\)$", e["Event"]["info"])
    ]
    assert parts and sum(len(e["Event"]["Attribute"]) for e in events.values()) == len(RECORDS)


def test_feed_covers_the_enterprise_lookback(tmp_path):
    now = SEED_NOW + 340 * layout.DAY_SECONDS  # the 40-day-old article is now 380 days old
    build(
        seed_store(tmp_path / "store"),
        tmp_path / "build",
        now=now,
        lists=seed_lists(tmp_path / "store"),
    )
    events = check_feed(feed_files(tmp_path / "build"), misp_feed.MAX_ATTRIBUTES)
    kept = [r for r in RECORDS if r.last_seen >= now - YEAR]
    assert len(kept) < len(RECORDS)
    assert sum(len(e["Event"]["Attribute"]) for e in events.values()) == len(kept)
