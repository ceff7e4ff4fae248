"""The same taxii2-client calls against our server and medallion loaded with the same objects.

medallion (the OASIS reference server) holds a copy of one of our collections: its objects and
manifest records as our server serves them. Every client call must return the same objects,
in the same order, from both. medallion's page time grows about with the square of a
collection's size (`bench/taxii.py --medallion-only` measures it at three sizes; figures in
docs/performance.md), so the collection is kept near 300 objects.
"""

from __future__ import annotations

import pytest
from taxii2client.v21 import Server, as_pages

from tests.conftest import start_server, stop_server
from tests.medallion_server import PASSWORD, USER, Medallion
from tests.support import new_key
from tests.test_taxii_http import make_data
from worker.contract import taxii_common as tc


def pages(c, per_request=100, **filters) -> list[dict]:
    return [
        o
        for env in as_pages(c.get_objects, per_request=per_request, **filters)
        for o in env.get("objects", [])
    ]


def manifest(c, **filters) -> list[dict]:
    return [
        m
        for env in as_pages(c.get_manifest, per_request=100, **filters)
        for m in env.get("objects", [])
    ]


@pytest.fixture(scope="module")
def both(tmp_path_factory, request):
    """(our collection, medallion's collection), each reached through taxii2-client."""
    folder = tmp_path_factory.mktemp("medallion")
    data = make_data(folder, iocs=100, days=20)
    server = start_server(data, folder / "server.log", "--limit-scale", "1000")
    request.addfinalizer(lambda: stop_server(server))
    ours_url = server.url
    key = new_key(data, "enterprise")
    root = Server(ours_url + "/api/taxii2/", user="soc", password=key).api_roots[0]
    ours = next(c for c in root.collections if c.alias == "all")
    objects, records = pages(ours), manifest(ours)
    assert 200 <= len(objects) <= 400
    ref = Medallion(folder, dict(ours._raw), objects, records)
    request.addfinalizer(ref.stop)
    theirs = Server(ref.discovery, user=USER, password=PASSWORD).api_roots[0].collections[0]
    return ours, theirs, objects, records


def test_all_pages_are_the_same(both):
    ours, theirs, objects, _ = both
    assert pages(theirs) == objects
    assert pages(ours, per_request=37) == pages(theirs, per_request=37)


def test_manifests_are_the_same(both):
    ours, theirs, _, records = both
    key = lambda m: (m["id"], m["date_added"], m["version"], m["media_type"])  # noqa: E731
    # one publish's objects share their date_added: the order within it is the server's own
    assert sorted(key(m) for m in manifest(theirs)) == sorted(key(m) for m in records)
    assert [m["date_added"] for m in records] == sorted(m["date_added"] for m in records)


def test_added_after_and_match_filters_agree(both):
    ours, theirs, objects, records = both
    middle = records[len(records) // 2]["date_added"]
    assert pages(ours, added_after=middle) == pages(theirs, added_after=middle)
    for stix_type in ("indicator", "relationship", ["attack-pattern", "vulnerability"]):
        assert pages(ours, type=stix_type) == pages(theirs, type=stix_type)
    picked = [objects[3]["id"], objects[-2]["id"]]
    assert ours.get_objects(id=picked)["objects"] == theirs.get_objects(id=picked)["objects"]
    version = objects[5].get("modified", objects[5]["created"])
    assert pages(ours, version=version) == pages(theirs, version=version)
    assert pages(ours, spec_version="2.1") == pages(theirs, spec_version="2.1")


def test_one_object_and_its_versions_agree(both):
    ours, theirs, objects, _ = both
    for obj in (objects[0], objects[len(objects) // 2], objects[-1]):
        assert ours.get_object(obj["id"])["objects"] == theirs.get_object(obj["id"])["objects"]
        mine, ref = ours.object_versions(obj["id"]), theirs.object_versions(obj["id"])
        assert mine["versions"] == ref["versions"] == [obj.get("modified", obj["created"])]


def test_collection_resources_agree(both):
    ours, theirs, _, _ = both
    assert ours.id == theirs.id == tc.collection_id("all")
    assert (ours.title, ours.can_read, ours.can_write, ours.media_types) == (
        theirs.title,
        theirs.can_read,
        theirs.can_write,
        theirs.media_types,
    )
