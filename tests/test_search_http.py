"""Search, range and stats end to end: the real CLI builds and publishes, a real worker answers."""

from __future__ import annotations

import hashlib
import json
import time

import httpx
import jsonschema
import pytest

from generator.store.generations import Article, Sighting, Store
from generator.store.records import aggregate
from tests.conftest import (
    ROOT,
)
from tests.search_reference import reference_stats
from tests.support import bearer, new_key, published, serving
from worker.contract import layout

NOW = int(time.time())
HOUR, DAY = 3600, 86400
SOURCES = {
    "alpha": {"status": "ok", "last_fetch": NOW - 600, "last_success": NOW - 600},
    "beta": {"status": "error", "last_fetch": NOW - 300, "last_success": NOW - 10 * DAY},
    "gamma": {"status": "ok", "last_fetch": NOW - DAY},
}
A1 = [
    ("domain", "evil.com"),
    ("url", "https://evil.com/x"),
    ("email", "bad@evil.com"),
    ("ipv4", "146.70.87.172"),
    ("ipv6", "2a01:4f8:c17:1::1"),
    ("cve", "CVE-2024-3400"),
    ("mitre_attack", "T1059.001"),
    ("md5", "5d41402abc4b2a76b9719d911017c592"),
]
A2 = [("domain", "evil.com"), ("domain", "other-c2.net"), ("cve", "CVE-2024-3400")]
A3 = [("domain", "lonely.org")]


def _store(root) -> Store:
    arts = [
        Article(
            "a1",
            "alpha",
            "Alpha Research",
            "research",
            "Evil campaign",
            "https://alpha.example/1",
            NOW - HOUR,
            ("c2",),
            ("T1059.001",),
        ),
        Article(
            "a2",
            "beta",
            "Beta Vendor",
            "vendor",
            "Evil again",
            "https://beta.example/2",
            NOW - 3 * DAY,
        ),
        Article(
            "a3",
            "gamma",
            "Gamma News",
            "news",
            "Old one",
            "https://gamma.example/3",
            NOW - 40 * DAY,
        ),
    ]
    seen = [
        Sighting(aid, t, v, f"{v} seen in {aid}", "medium")
        for aid, found in (("a1", A1), ("a2", A2), ("a3", A3))
        for t, v in found
    ]
    store = Store(root)
    store.merge(arts, seen, as_of=NOW, sources_state=SOURCES)
    return store


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return published(tmp_path_factory.mktemp("search-e2e"), store=_store)


@pytest.fixture(scope="module")
def server(data_dir, tmp_path_factory):
    yield from serving(data_dir, tmp_path_factory)


def key_for(data_dir, tier: str) -> dict[str, str]:
    return bearer(new_key(data_dir, tier))


@pytest.fixture(scope="module")
def free(data_dir):
    return key_for(data_dir, "free")


@pytest.fixture(scope="module")
def pro(data_dir):
    return key_for(data_dir, "pro")


@pytest.fixture(scope="module")
def ent(data_dir):
    return key_for(data_dir, "enterprise")


def get(server, path: str, headers: dict | None = None, **params: str) -> httpx.Response:
    return httpx.get(server.url + path, headers=headers, params=params, timeout=30)


def spec_schema(name: str) -> dict:
    """The spec's schema ``name`` for jsonschema: refs inlined, OpenAPI ``nullable`` mapped."""
    spec = json.loads((ROOT / "spec" / "openapi.json").read_text())

    def fix(node):
        if isinstance(node, dict):
            if "$ref" in node:
                return fix(spec["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]])
            out = {k: fix(v) for k, v in node.items() if k != "nullable"}
            if node.get("nullable"):
                out["type"] = [node["type"], "null"]
            return out
        return [fix(v) for v in node] if isinstance(node, list) else node

    return fix(spec["components"]["schemas"][name])


def conforms(body: dict, name: str) -> None:
    jsonschema.validate(body, spec_schema(name), format_checker=jsonschema.FormatChecker())


def assert_error(resp: httpx.Response, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert body["error"]["request_id"] == resp.headers["x-request-id"]
    conforms(body, "Error")
    return body["error"]


@pytest.mark.parametrize(
    ("query", "value"),
    [
        ("evil.com", "evil.com"),
        ("evil[.]com", "evil.com"),
        ("EVIL[.]COM", "evil.com"),
        (" Evil(.)com. ", "evil.com"),
        ("HXXPS://Evil[.]com/x", "https://evil.com/x"),
        ("hxxps[:]//evil[.]com/x", "https://evil.com/x"),
        ("bad[at]EVIL[.]com", "bad@evil.com"),
        ("146.70.87[.]172", "146.70.87.172"),
        ("2A01:04F8:0C17:0001:0:0:0:1", "2a01:4f8:c17:1::1"),
        ("cve-2024-3400", "CVE-2024-3400"),
        ("t1059.001", "T1059.001"),
        ("5D41402ABC4B2A76B9719D911017C592", "5d41402abc4b2a76b9719d911017c592"),
    ],
)
def test_search_finds_exact_defanged_and_recased_values(server, ent, query, value):
    resp = get(server, "/api/v1/iocs/search", ent, q=query)
    assert resp.status_code == 200 and resp.headers["x-ratelimit-limit"] == "1000"
    body = resp.json()
    conforms(body, "SearchResponse")
    assert body["data"]["found"] is True and body["data"]["query"] == query
    assert [m["value"] for m in body["data"]["matches"]] == [value]
    assert body["data"]["meta"]["total_matches"] == 1


def test_free_keys_may_search_the_whole_build(server, free):
    """Search ignores the tier's lookback: a 40-day-old indicator is known to a 1-day tier."""
    body = get(server, "/api/v1/iocs/search", free, q="lonely[.]org").json()["data"]
    assert [m["value"] for m in body["matches"]] == ["lonely.org"]


def test_related_iocs_come_from_every_article_of_the_match(server, ent):
    body = get(server, "/api/v1/iocs/search", ent, q="evil.com").json()["data"]
    expected = {v for _, v in A1 + A2} - {"evil.com"}
    assert {r["value"] for r in body["relatedIOCs"]} == expected
    assert body["meta"]["related_count"] == len(expected)
    other = get(server, "/api/v1/iocs/search", ent, q="other-c2.net").json()["data"]
    assert {r["value"] for r in other["relatedIOCs"]} == {"evil.com", "CVE-2024-3400"}
    none = get(server, "/api/v1/iocs/search", ent, q="evil.com", include_related="false").json()
    assert none["data"]["relatedIOCs"] == [] and none["data"]["meta"]["related_count"] == 0
    assert none["data"]["matches"] == body["matches"]


def test_a_miss_is_200_with_found_false(server, ent):
    resp = get(server, "/api/v1/iocs/search", ent, q="never-seen.example")
    assert resp.status_code == 200
    data = resp.json()["data"]
    assert data["found"] is False and data["matches"] == data["relatedIOCs"] == []
    assert data["meta"]["total_matches"] == 0


def test_search_refuses_bad_queries_and_missing_keys(server, ent):
    for params in (
        {},
        {"q": ""},
        {"q": "a"},
        {"q": "x" * 3000},
        {"q": "evil.com", "include_related": "maybe"},
    ):
        assert_error(get(server, "/api/v1/iocs/search", ent, **params), 400, "invalid_parameter")
    assert_error(get(server, "/api/v1/iocs/search", q="evil.com"), 401, "missing_api_key")


def test_range_lookup_never_sends_the_value(server, ent):
    digest = hashlib.sha256(b"bad@evil.com").hexdigest()  # the client's side: hash locally
    resp = get(server, f"/api/v1/iocs/range/{digest[:5].upper()}", ent)
    assert resp.status_code == 200
    body = resp.json()
    assert body["meta"]["prefix"] == digest[:5] and body["meta"]["count"] == len(body["data"])
    assert digest in [e["hash"] for e in body["data"]]
    assert all(e["hash"].startswith(digest[:5]) for e in body["data"])
    assert "evil.com" not in resp.text
    again = get(
        server, f"/api/v1/iocs/range/{digest[:5]}", {**ent, "If-None-Match": resp.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""
    for bad in ("abcd", "abcdef", "xyz12", "%20abcd"):
        assert_error(get(server, f"/api/v1/iocs/range/{bad}", ent), 400, "invalid_parameter")


def test_stats_equal_the_store_for_pro_and_are_refused_to_free(server, data_dir, pro, free):
    resp = get(server, "/api/v1/iocs/stats", pro)
    assert resp.status_code == 200
    body = resp.json()
    conforms(body, "StatsResponse")
    store = Store(data_dir / "store")
    records = aggregate(store.articles(), store.sightings())
    published = store.articles()["published"].to_pylist()
    assert body["data"] == reference_stats(
        records, published, SOURCES, NOW, layout.IOC_TYPES, layout.CATEGORIES, layout.CONFIDENCES
    )
    assert body["data"]["sources"]["active"] == 2 and body["data"]["total_iocs"] == 10
    assert body["data"]["top_cves"] == [{"id": "CVE-2024-3400", "count": 2}]
    assert (
        get(
            server, "/api/v1/iocs/stats", {**pro, "If-None-Match": resp.headers["etag"]}
        ).status_code
        == 304
    )
    err = assert_error(get(server, "/api/v1/iocs/stats", free), 403, "insufficient_scope")
    assert err["details"]["required_scope"] == "read:stats"
