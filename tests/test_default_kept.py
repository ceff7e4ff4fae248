"""A JSON default answer's stored object holds its records only: a rebuild an hour later whose
records did not change keeps the object's bytes (nothing to upload), while the answer the worker
sends names the new build, its clock and its window."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generator.build.tree import build
from generator.store.synthetic import synthetic_store
from worker.buckets.storage import Build, LocalBucket
from worker.contract import layout
from worker.contract.tiers import TIERS
from worker.endpoints import iocs
from worker.http import Request

NOW = 1_795_000_000
HOUR = 3600
BASE = "http://feeds.test"


def _build(root: Path, build_id: str) -> Build:
    return Build(LocalBucket(root), json.loads((root / layout.manifest_key(build_id)).read_bytes()))


@pytest.fixture(scope="module")
def hour(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kept")
    store = synthetic_store(str(tmp / "store"), 800, now=NOW - 2 * HOUR, days=20)
    first = build(store, tmp / "out", now=NOW, processes=1).build_id
    second = build(store, tmp / "out", now=NOW + HOUR, processes=1).build_id
    return _build(tmp / "out", first), _build(tmp / "out", second)


def _json_defaults(b: Build) -> dict[str, str]:
    return {
        key: b.objects[key].sha256
        for key in b.objects
        if key.startswith(layout.DEFAULT_PREFIX) and key.endswith(".json")
    }


def _answer(b: Build, tier: str) -> dict:
    req = Request("GET", "/api/v1/iocs", {}, {"host": "feeds.test"}, "http", "test")
    resp = iocs.list_answer(req, b, TIERS[tier], public_url=BASE, source_name="socdef")
    assert resp.status == 200
    return json.loads(resp.body)


def test_a_quiet_hour_keeps_the_json_default_objects(hour):
    first, second = hour
    assert first.build_id != second.build_id
    before, after = _json_defaults(first), _json_defaults(second)
    assert before and before.keys() == after.keys()
    # nothing was sighted and nothing this young expires in an hour: every view's newest
    # records are the same, so every JSON default object keeps its bytes
    assert after == before


def test_the_answer_names_the_new_build_and_its_window(hour):
    first, second = hour
    for tier in sorted(TIERS):
        old, new = _answer(first, tier), _answer(second, tier)
        assert new["data"] == old["data"]
        assert new["meta"]["feed_version"] == second.build_id != old["meta"]["feed_version"]
        assert new["meta"]["generated_at"] == "2026-11-18T12:06:40Z"
        assert new["meta"]["filters"]["until"] == "2026-11-18T12:06:40Z"
        assert old["meta"]["filters"]["until"] == "2026-11-18T11:06:40Z"
        assert new["meta"]["total"] == len(new["data"]) or new["meta"]["total"] > 100
        # the total counts the window of the new build, as a composed page counts it
        composed = iocs.list_answer(
            Request("GET", "/api/v1/iocs", {"offset": "0"}, {"host": "x"}, "http", "t"),
            second,
            TIERS[tier],
            public_url=BASE,
            source_name="socdef",
        )
        assert new["meta"]["total"] == json.loads(composed.body)["meta"]["total"]
