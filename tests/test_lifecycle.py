"""The indicator lifecycle on the real build and worker: suppression by warninglists, expiry,
renewal by a new sighting, an operator's block and allow, and how every format tells a consumer
(lists, txt, CSV, STIX, CEF, the MISP feed read by pymisp, TAXII polled by taxii2-client)."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import httpx
import pyarrow as pa
import pytest
from pymisp import MISPEvent

from generator.build.tree import build
from generator.extract import warninglists
from generator.store import lifecycle
from generator.store.generations import ARTICLE_SCHEMA, SIGHTING_SCHEMA, Article, Sighting, Store
from generator.store.lifecycle import DAY, Lifecycle
from generator.store.records import iter_records
from tests.conftest import poll_until, socdef
from tests.support import bearer, new_key, published
from tests.test_taxii_http import SCALE, collection, every_object

T0 = int(time.time()) - 2 * DAY  # when the article was published
SUPPRESSED = {
    "8.8.8.8": "public-dns-v4",
    "1.1.1.1": "public-dns-v4",
    "bit.ly": "url-shortener",
    "microsoft.com": "microsoft",
}
CLOUD = "update-check.herokuapp.com"
IP = "45.137.21.9"  # high confidence: active for 33 days after its last sighting
DOMAIN = "qzxv-update-service.com"
ACTIVE = {IP, DOMAIN, CLOUD, "http://qzxv-update-service.com/gate.php", "9f86" + "0a08" * 15}
SIGHTINGS = [
    ("ipv4", "8.8.8.8"),
    ("ipv4", "1.1.1.1"),
    ("domain", "bit.ly"),
    ("domain", "microsoft.com"),
    ("domain", CLOUD),
    ("ipv4", IP),
    ("domain", DOMAIN),
    ("url", "http://qzxv-update-service.com/gate.php"),
    ("sha256", "9f86" + "0a08" * 15),
]


def tables(articles: list[tuple[str, int, list[tuple[str, str]]]]) -> tuple[pa.Table, pa.Table]:
    arts = [
        Article(aid, "vendor-x", "Vendor X Labs", "vendor", f"Report {aid}", f"https://x/{aid}", at)
        for aid, at, _ in articles
    ]
    sights = [
        Sighting(aid, type_, value, f"{value} seen in the campaign", "high")
        for aid, _, found in articles
        for type_, value in found
    ]
    columns = {n: [getattr(a, n) for a in arts] for n in ARTICLE_SCHEMA.names}
    columns["tags"] = [list(t) for t in columns["tags"]]
    columns["techniques"] = [list(t) for t in columns["techniques"]]
    columns["categories"] = [list(t) for t in columns["categories"]]
    rows = {n: [getattr(s, n) for s in sights] for n in SIGHTING_SCHEMA.names}
    return pa.table(columns, schema=ARTICLE_SCHEMA), pa.table(rows, schema=SIGHTING_SCHEMA)


def one_article_store(root: Path) -> None:
    Store(root).commit(*tables([("b" * 16, T0, SIGHTINGS)]), {"as_of": T0 + 60, "sources": {}})


def get(url: str, key: str, path: str = "/api/v1/iocs", **params: str) -> httpx.Response:
    resp = httpx.get(url + path, params=params, headers=bearer(key), timeout=30)
    assert resp.status_code == 200, resp.text
    return resp


def records(url: str, key: str, **params: str) -> dict[str, dict]:
    data = get(url, key, limit="1000", **params).json()["data"]
    return {r["value"]: r for r in data}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return published(tmp_path_factory.mktemp("lifecycle"), store=one_article_store)


def test_false_positives_are_suppressed_everywhere_and_the_rest_active(serve_process, data_dir):
    server = serve_process(data_dir)
    key = new_key(data_dir, "enterprise")
    every = records(server.url, key, status="all")
    for value, listed in SUPPRESSED.items():
        assert every[value]["status"] == "suppressed" and listed in every[value]["warnings"]
    assert every[CLOUD]["status"] == "active" and "lots-project" in every[CLOUD]["warnings"]
    for value in ACTIVE:
        record = every[value]
        assert record["status"] == "active" and record["valid_until"] > record["last_seen"]
    # the default list, its txt and CSV and the device files hold the active ones only
    assert set(records(server.url, key)) == ACTIVE
    assert set(get(server.url, key, format="txt").text.split()) == ACTIVE
    rows = list(csv.DictReader(io.StringIO(get(server.url, key, format="csv").text)))
    assert {r["value"] for r in rows} == ACTIVE and {r["status"] for r in rows} == {"active"}
    assert {r["value"]: r["warnings"] for r in rows}[CLOUD] == "lots-project"
    suppressed = records(server.url, key, status="suppressed")
    assert set(suppressed) == set(SUPPRESSED)
    for path in ("/api/v1/iocs/stix", "/api/v1/iocs/cef", "/api/v1/iocs/misp"):
        body = get(server.url, key, path).text
        assert IP in body and not any(v in body for v in ("8.8.8.8", "1.1.1.1", '"bit.ly"'))


def test_a_bad_status_is_a_400_in_the_spec_shape(serve_process, data_dir):
    server = serve_process(data_dir)
    key = new_key(data_dir, "pro")
    resp = httpx.get(server.url + "/api/v1/iocs", params={"status": "gone"}, headers=bearer(key))
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["code"] == "invalid_parameter" and "request_id" in error
    assert "all" in error["details"]["valid_statuses"]


def _switch(server, data: Path, *build_args: str) -> None:
    before = httpx.get(server.url + "/healthz").json()["build_id"]
    socdef("build", *build_args, data_dir=data)
    socdef("publish", data_dir=data)
    poll_until(
        lambda: httpx.get(server.url + "/healthz").json()["build_id"] != before,
        what="the new build served",
    )


def _feed_event(url: str, key: str, value: str) -> MISPEvent:
    manifest = get(url, key, "/feeds/misp/manifest.json").json()
    for uuid in manifest:
        event = MISPEvent()
        event.load(get(url, key, f"/feeds/misp/{uuid}.json").text)
        if any(a.value == value for a in event.attributes):
            return event
    raise AssertionError(f"{value} is in no feed event")


def test_expiry_block_and_allow_reach_every_consumer(serve_process, tmp_path):
    data = published(tmp_path / "data", store=one_article_store)
    server = serve_process(data, *SCALE)
    key = new_key(data, "enterprise")
    taxii, log = collection(server.url, key)
    first = {o.get("pattern", ""): o for o in every_object(taxii)}
    assert any(IP in p for p in first)
    last = [h["x-taxii-date-added-last"] for h in log.headers if "x-taxii-date-added-last" in h]
    event = _feed_event(server.url, key, IP)
    assert next(a for a in event.attributes if a.value == IP).to_ids is True

    later = T0 + 40 * DAY  # past the IP's valid_until (33 days), not the domain's
    _switch(server, data, "--now", str(later))
    assert IP not in records(server.url, key)
    expired = records(server.url, key, status="expired")[IP]
    assert expired["valid_until"] < time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(later))
    polled = every_object(taxii, added_after=last[-1])
    version = next(o for o in polled if IP in o.get("pattern", ""))
    assert version["modified"] > first[version["pattern"]]["modified"]
    assert version["valid_until"] <= version["modified"]  # its validity ended: withdrawn
    refetched = _feed_event(server.url, key, IP)
    assert next(a for a in refetched.attributes if a.value == IP).to_ids is False
    assert refetched.timestamp > event.timestamp
    cef = get(server.url, key, "/api/v1/iocs/cef", status="all").text
    removal = next(line for line in cef.splitlines() if f"dst={IP}" in line)
    assert "act=remove reason=expired" in removal

    # the operator blocks the domain and allows a public resolver
    (data / "overrides.txt").write_text(f"block {DOMAIN}\nallow 8.8.8.8\n")
    marks = [h["x-taxii-date-added-last"] for h in log.headers if "x-taxii-date-added-last" in h]
    _switch(server, data, "--now", str(later))
    assert DOMAIN not in records(server.url, key)
    allowed = records(server.url, key, status="all")["8.8.8.8"]
    # no longer suppressed: judged by its age like any address (40 days: expired)
    assert allowed["status"] == "expired" and "operator-allow" in allowed["warnings"]
    assert records(server.url, key, status="withdrawn")[DOMAIN]["warnings"] == ["operator-block"]
    polled = every_object(taxii, added_after=marks[-1])
    revoked = next(o for o in polled if f"'{DOMAIN}'" in o.get("pattern", ""))
    assert revoked["revoked"] is True


def test_a_new_sighting_renews_valid_until(tmp_path):
    renewed_at = T0 + 20 * DAY
    store = Store(tmp_path / "store")
    articles = [("c" * 16, T0, [("ipv4", IP)]), ("d" * 16, renewed_at, [("ipv4", IP)])]
    store.commit(*tables(articles), {"as_of": renewed_at, "sources": {}})
    policy = lifecycle.expiry()
    check = Lifecycle(warninglists.bundled(), policy, T0 + 40 * DAY)
    (record,) = iter_records(store.articles(), store.sightings(), check)[1]
    assert record.status == "active"
    assert record.valid_until == renewed_at + policy.lifetime("ipv4", "high") * DAY
    # without the second sighting it would have expired by then
    alone = tables(articles[:1])
    (old,) = iter_records(*alone, check)[1]
    assert old.status == "expired" and old.valid_until == T0 + 33 * DAY
    # and the real build serves it in the active view
    out = build(store, tmp_path / "build", now=T0 + 40 * DAY, processes=1)
    assert out.iocs == 1


def test_expiry_setting_overrides_the_defaults_and_reports_every_bad_entry():
    policy = lifecycle.expiry("ipv4=7, url:high=365")
    assert policy.lifetime("ipv4", "low") == policy.lifetime("ipv4", "high") == 7
    assert policy.lifetime("url", "high") == 365 and policy.lifetime("url", "low") == 60
    with pytest.raises(lifecycle.PolicyError) as err:
        lifecycle.expiry("ipv9=3,url:urgent=5,domain=0")
    assert str(err.value).count("expected") == 2 and "at least 1" in str(err.value)


def test_explain_tells_each_state_and_why(tmp_path):
    one_article_store(tmp_path / "store")
    (tmp_path / "overrides.txt").write_text(f"block {DOMAIN}\n")
    story = socdef("explain", "8.8.8[.]8", data_dir=tmp_path).stdout
    assert story.startswith("ipv4 8.8.8.8: suppressed")
    assert "why: on a suppressing warninglist (public-dns-v4)" in story
    assert "warninglist public-dns-v4 (suppress): public DNS resolvers" in story
    assert "Vendor X Labs: Report bbbbbbbbbbbbbbbb <https://x/bbbbbbbbbbbbbbbb> [high]" in story
    assert "8.8.8.8 seen in the campaign" in story
    blocked = socdef("explain", DOMAIN, data_dir=tmp_path).stdout
    assert blocked.startswith(f"domain {DOMAIN}: withdrawn") and "block entry" in blocked
    later = socdef("explain", IP, "--now", str(T0 + 40 * DAY), data_dir=tmp_path).stdout
    assert later.startswith(f"ipv4 {IP}: expired")
    assert "+ 33 days (ipv4, high confidence)" in later
    missing = socdef("explain", "203.0.113.250", data_dir=tmp_path, check=False)
    assert missing.returncode == 1 and "no indicator '203.0.113.250' in the store" in missing.stderr
