"""``GET /api/v1/iocs/suppressed`` on the real build and worker: what the build held back, by
which list, from which article and source, with counts per list; JSON and CSV, keyed, limited
and bounded by the key's lookback; errors in the spec's shape."""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from generator.build.suppressed import CSV_COLUMNS
from generator.store.generations import Store
from generator.store.lifecycle import DAY
from tests.support import bearer, new_key, published
from tests.test_lifecycle import (
    ACTIVE,
    DOMAIN,
    SIGHTINGS,
    SUPPRESSED,
    T0,
    one_article_store,
    tables,
)

PATH = "/api/v1/iocs/suppressed"
ARTICLE = "b" * 16


def two_days_later(root) -> None:
    """The article of tests/test_lifecycle.py, built two days after it was published."""
    Store(root).commit(*tables([(ARTICLE, T0, SIGHTINGS)]), {"as_of": T0 + 2 * DAY, "sources": {}})


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return published(tmp_path_factory.mktemp("report"), store=two_days_later)


def report(url: str, key: str, **params: str) -> httpx.Response:
    return httpx.get(url + PATH, params=params, headers=bearer(key), timeout=30)


def test_the_report_names_each_held_back_value_its_lists_and_its_article(serve_process, data_dir):
    server = serve_process(data_dir)
    key = new_key(data_dir, "enterprise")
    resp = report(server.url, key)
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    assert "x-ratelimit-limit" in resp.headers
    body = resp.json()
    assert body["meta"]["tier"] == "enterprise" and body["meta"]["lookback_days"] == 365
    data = body["data"]
    items = {i["value"]: i for i in data["items"]}
    assert set(items) == set(SUPPRESSED)  # the active ones are not in it
    assert not set(items) & ACTIVE
    for value, listed in SUPPRESSED.items():
        item = items[value]
        assert item["status"] == "suppressed" and listed in item["held_by"]
        assert set(item["held_by"]) <= set(item["warnings"])
        assert item["source"]["article_id"] == ARTICLE
        assert item["source"]["feed_name"] == "Vendor X Labs"
        assert item["source"]["article_url"] == f"https://x/{ARTICLE}"
    assert data["total"] == 4 and data["by_status"] == {"suppressed": 4, "withdrawn": 0}
    assert data["by_list"]["public-dns-v4"] == 2
    for name, count in data["by_list"].items():
        assert count == sum(name in i["held_by"] for i in data["items"])
    # the same report as CSV
    text = report(server.url, key, format="csv")
    assert text.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text.text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert {r["value"]: r["held_by"] for r in rows} == {
        v: ",".join(i["held_by"]) for v, i in items.items()
    }
    # conditional GET
    again = httpx.get(
        server.url + PATH, headers={**bearer(key), "If-None-Match": resp.headers["etag"]}
    )
    assert again.status_code == 304


def test_a_key_sees_its_own_lookback(serve_process, data_dir):
    server = serve_process(data_dir)
    free = report(server.url, new_key(data_dir, "free")).json()
    # the build is two days after the article; the free tier looks back one day
    assert free["meta"]["lookback_days"] == 1 and free["data"]["total"] == 0
    assert free["data"]["items"] == [] and free["data"]["by_list"] == {}


def test_bad_requests_are_errors_in_the_spec_shape(serve_process, data_dir):
    server = serve_process(data_dir)
    key = new_key(data_dir, "pro")
    for params, detail in (({"format": "xml"}, "valid_formats"), ({"type": "ipv4"}, None)):
        resp = httpx.get(
            server.url + PATH, params=params, headers={**bearer(key), "Accept": "application/json"}
        )
        assert resp.status_code == 400, resp.text
        error = resp.json()["error"]
        assert error["code"] == "invalid_parameter" and error["request_id"]
        if detail:
            assert error["details"][detail] == ["json", "csv"]
    text = httpx.get(server.url + PATH, params={"format": "csv", "x": "1"}, headers=bearer(key))
    assert text.status_code == 400 and text.text.startswith("400 invalid_parameter: ")
    assert httpx.get(server.url + PATH).status_code == 401


def test_an_operator_block_is_reported_as_withdrawn(serve_process, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "overrides.txt").write_text(f"block {DOMAIN}\n")
    published(data, store=one_article_store)
    server = serve_process(data)
    body = report(server.url, new_key(data, "pro")).json()["data"]
    withdrawn = {i["value"]: i for i in body["items"] if i["status"] == "withdrawn"}
    # the block names the domain, and so the URL on it
    assert set(withdrawn) == {DOMAIN, f"http://{DOMAIN}/gate.php"}
    assert all(i["held_by"] == ["operator-block"] for i in withdrawn.values())
    assert body["by_status"] == {"suppressed": 4, "withdrawn": 2}
    assert body["by_list"]["operator-block"] == 2
