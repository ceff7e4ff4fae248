"""TAXII 2.1 end to end: taxii2-client (the OASIS client) against a real ``socdef serve``.

The real CLI builds and publishes a synthetic store, a real worker serves it on 127.0.0.1, and
the stock client walks discovery → API root → collections → every page. A rebuild with new
articles (the real ``ingest``) is then polled with ``added_after`` set to the last
``X-TAXII-Date-Added-Last`` seen, as OpenCTI and Sentinel do.
"""

from __future__ import annotations

import base64
import calendar
import time
import uuid

import httpx
import pytest
import requests
from taxii2client.common import TokenAuth
from taxii2client.v21 import Server, as_pages

from exports.attack import technique_name
from generator.sources.catalog import SAMPLE_DIR
from tests.conftest import ROOT, build_and_publish, in_one_minute, socdef
from tests.stix_check import problems
from tests.support import new_key, published
from worker.contract import taxii_common as tc

DISCOVERY = "/api/taxii2/"
COLLECTIONS = "/api/taxii2/api/collections/"
ALL = tc.collection_id("all")
OBJECTS = f"{COLLECTIONS}{ALL}/objects/"
SCALE = ("--limit-scale", "1000")  # the client makes hundreds of requests a minute


def version(o: dict) -> str:
    """An object's version: ``modified``, or ``created`` for a marking definition."""
    return o.get("modified", o["created"])


def make_data(root, iocs: int = 2_000, days: int = 60):
    """A published synthetic store whose newest indicators are a minute old."""
    return published(root, iocs, days, now=int(time.time()) - 60)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("taxii"))


@pytest.fixture(scope="module")
def keys(data_dir) -> dict[str, str]:
    return {tier: new_key(data_dir, tier) for tier in ("free", "pro", "enterprise")}


class HeaderLog:
    """Remembers the response headers of every request a taxii2-client session makes."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []

    def __call__(self, resp, *args, **kwargs):
        self.headers.append(dict(resp.headers))
        return resp


def collection(url: str, key: str, alias: str = "all", **auth):
    server = Server(url + DISCOVERY, **(auth or {"user": "soc", "password": key}))
    root = server.api_roots[0]
    assert root.versions == [tc.TAXII_MEDIA_TYPE]
    found = {c.alias: c for c in root.collections}
    assert set(found) == set(tc.COLLECTIONS)
    log = HeaderLog()
    found[alias]._conn.session.hooks["response"].append(log)
    return found[alias], log


def every_object(c, **filters) -> list[dict]:
    return [
        o
        for env in as_pages(c.get_objects, per_request=100, **filters)
        for o in env.get("objects", [])
    ]


def manifest(c) -> dict[tuple[str, str], str]:
    """(id, version) → date_added of every object in the collection."""
    return {
        (m["id"], m["version"]): m["date_added"]
        for env in as_pages(c.get_manifest, per_request=1000)
        for m in env.get("objects", [])
    }


def test_taxii2_client_pages_through_every_object_exactly_once(serve_process, data_dir, keys):
    server = serve_process(data_dir, *SCALE)
    c, log = collection(server.url, keys["enterprise"])
    objects = every_object(c)
    ids = [o["id"] for o in objects]
    assert len(ids) == len(set(ids)) >= 5_000
    listed = manifest(c)
    assert {(o["id"], version(o)) for o in objects} == set(listed)
    dates = [listed[(o["id"], version(o))] for o in objects]
    assert dates == sorted(dates)  # date_added order, no ties
    pages = [h for h in log.headers if "x-taxii-date-added-last" in h]
    assert pages and all(h["content-type"] == tc.TAXII_MEDIA_TYPE for h in pages)
    by_type = {t: every_object(c, type=t) for t in tc.STIX_TYPES}
    assert sum(len(v) for v in by_type.values()) == len(objects)
    assert all(o["type"] == t for t, found in by_type.items() for o in found)
    one = objects[len(objects) // 2]
    assert c.get_object(one["id"])["objects"] == [one]
    assert c.object_versions(one["id"])["versions"] == [version(one)]


def test_the_type_collections_split_the_whole_one(serve_process, data_dir, keys):
    server = serve_process(data_dir, *SCALE)
    whole, _ = collection(server.url, keys["enterprise"])
    everything = {o["id"] for o in every_object(whole)}
    shared = {i for i in everything if i.startswith(("identity--", "marking-definition--"))}
    assert len(shared) == 6  # the producer and the five TLP levels: in every collection
    parts: set[str] = set()
    for name in tc.COLLECTIONS[1:]:
        c, _ = collection(server.url, keys["enterprise"], name)
        got = {o["id"] for o in every_object(c)}
        assert got >= shared
        assert not (got - shared) & parts
        parts |= got - shared
    assert parts | shared == everything


def test_paging_survives_a_switch_of_replica(serve_process, data_dir, keys):
    one, two = serve_process(data_dir, *SCALE), serve_process(data_dir, *SCALE)
    auth = {"Authorization": f"Bearer {keys['pro']}"}
    first = httpx.get(one.url + OBJECTS, params={"limit": 300}, headers=auth).json()
    rest_one = httpx.get(
        one.url + OBJECTS, params={"limit": 300, "next": first["next"]}, headers=auth
    )
    rest_two = httpx.get(
        two.url + OBJECTS, params={"limit": 300, "next": first["next"]}, headers=auth
    )
    assert rest_one.status_code == rest_two.status_code == 200
    assert rest_one.content == rest_two.content
    assert not {o["id"] for o in first["objects"]} & {o["id"] for o in rest_two.json()["objects"]}


def seconds(stamp: str) -> int:
    return calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))


def test_lookback_of_the_tier_applies(serve_process, data_dir, keys):
    server = serve_process(data_dir, *SCALE)
    pro, _ = collection(server.url, keys["pro"])
    ent, _ = collection(server.url, keys["enterprise"])
    generated = httpx.get(server.url + "/healthz").json()["generated_at"]
    floor = seconds(generated) - 30 * 86_400
    seen_pro = {o["id"] for o in every_object(pro)}
    timeless = ("attack-pattern", "identity", "marking-definition")  # what the others refer to
    wanted = {
        o["id"]
        for o in every_object(ent)
        if o["type"] in timeless or seconds(o["modified"]) >= floor
    }
    assert seen_pro == wanted and len(seen_pro) < len({o["id"] for o in every_object(ent)})


def taxii_error(resp: httpx.Response, status: int) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == tc.TAXII_MEDIA_TYPE
    body = resp.json()
    assert body["title"] and body["http_status"] == str(status)
    assert body["error_id"] == resp.headers["x-request-id"]
    return body


def test_one_key_in_every_style_and_errors_in_taxii_shape(serve_process, data_dir, keys):
    server = serve_process(data_dir, *SCALE)
    key = keys["pro"]
    url = server.url + OBJECTS
    basic = base64.b64encode(f"sentinel:{key}".encode()).decode()
    styles = [
        {"headers": {"Authorization": f"Basic {basic}"}},
        {"headers": {"Authorization": f"Token {key}"}},
        {"headers": {"Authorization": f"Bearer {key}"}},
        {"headers": {"X-API-Key": key}},
        {"params": {"api_key": key}},
    ]
    answers = [httpx.get(url, **style) for style in styles]
    assert {a.status_code for a in answers} == {200}
    assert len({a.content for a in answers}) == 1
    c, _ = collection(server.url, key, auth=TokenAuth(key))  # the client's other auth helper
    assert c.get_objects(limit=1)["objects"]
    missing = httpx.get(url)
    assert taxii_error(missing, 401)["error_code"] == "missing_api_key"
    assert missing.headers["www-authenticate"].startswith("Basic")
    free = taxii_error(httpx.get(url, headers={"X-API-Key": keys["free"]}), 403)
    assert free["details"]["required_scope"] == "read:taxii"
    assert httpx.get(server.url + DISCOVERY).status_code == 200  # discovery needs no key
    auth = {"Authorization": f"Bearer {key}"}
    taxii_error(httpx.get(url, params={"limit": "0"}, headers=auth), 400)
    taxii_error(httpx.get(url, params={"next": "not-ours"}, headers=auth), 400)
    taxii_error(httpx.get(f"{server.url}{COLLECTIONS}nope/objects/", headers=auth), 404)
    taxii_error(httpx.post(url, headers=auth, content=b"{}"), 405)
    taxii_error(httpx.get(server.url + "/api/taxii2/api/status/x/", headers=auth), 404)


def test_media_types_envelope_bundle_and_406(serve_process, data_dir, keys):
    server = serve_process(data_dir, *SCALE)
    auth = {"Authorization": f"Bearer {keys['pro']}"}
    url = server.url + OBJECTS
    envelope = httpx.get(url, params={"limit": 5}, headers=auth)
    assert envelope.headers["content-type"] == tc.TAXII_MEDIA_TYPE
    bundle = httpx.get(url, params={"limit": 5}, headers={**auth, "Accept": tc.STIX_MEDIA_TYPE})
    assert bundle.headers["content-type"] == tc.STIX_MEDIA_TYPE
    assert bundle.json()["type"] == "bundle"
    assert bundle.json()["objects"] == envelope.json()["objects"]
    assert envelope.headers["x-taxii-date-added-last"] == bundle.headers["x-taxii-date-added-last"]
    following = httpx.get(bundle.headers["link"].split(";")[0].strip("<>"), headers=auth)
    assert following.json()["objects"][0]["id"] != envelope.json()["objects"][0]["id"]
    for path, accept in (
        (OBJECTS, "application/taxii+json;version=2.0"),
        (OBJECTS, "application/xml"),
        (f"{COLLECTIONS}{ALL}/manifest/", tc.STIX_MEDIA_TYPE),
        (COLLECTIONS, tc.STIX_MEDIA_TYPE),
    ):
        taxii_error(httpx.get(server.url + path, headers={**auth, "Accept": accept}), 406)
    etag = envelope.headers["etag"]
    again = httpx.get(url, params={"limit": 5}, headers={**auth, "If-None-Match": etag})
    assert again.status_code == 304


def test_polling_after_a_rebuild_returns_exactly_the_new_objects(serve_process, tmp_path):
    data = make_data(tmp_path, iocs=600, days=20)
    server = serve_process(data, *SCALE)
    key = new_key(data, "enterprise")
    c, log = collection(server.url, key)
    before = manifest(c)
    every_object(c)
    last = [h["x-taxii-date-added-last"] for h in log.headers if "x-taxii-date-added-last" in h][-1]
    build_one = httpx.get(server.url + "/healthz").json()["build_id"]
    socdef("ingest", "--offline", str(SAMPLE_DIR), "--shift-dates", data_dir=data)
    socdef("build", data_dir=data)
    socdef("publish", data_dir=data)
    for _ in range(100):
        if httpx.get(server.url + "/healthz").json()["build_id"] != build_one:
            break
        time.sleep(0.1)
    polled = every_object(c, added_after=last)
    after = manifest(c)
    new = set(after) - set(before)
    assert new and len(polled) == len(new)
    assert {(o["id"], version(o)) for o in polled} == new
    for kept in set(before) & set(after):
        assert before[kept] == after[kept]  # unchanged objects keep their date_added
    assert min(after[v] for v in new) > max(before.values())


def refs_of(value) -> list[str]:
    """Every id an object refers to: the values of its ``*_ref`` and ``*_refs`` properties,
    at any depth."""
    found: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k.endswith("_ref") and isinstance(v, str):
                found.append(v)
            elif k.endswith("_refs") and isinstance(v, list):
                found += [r for r in v if isinstance(r, str)]
            else:
                found += refs_of(v)
    elif isinstance(value, list):
        for v in value:
            found += refs_of(v)
    return found


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory):
    """The sample feeds through the real ingest: an article's techniques are the ATT&CK ids
    it names, each also a sighting (the synthetic store gives articles techniques without)."""
    data = tmp_path_factory.mktemp("taxii-sample")
    socdef("ingest", "--offline", str(SAMPLE_DIR), "--shift-dates", data_dir=data)
    return build_and_publish(data)


def test_every_reference_resolves_within_the_collections(serve_process, small_dir):
    server = serve_process(small_dir, *SCALE)
    for tier in ("pro", "enterprise"):  # the pro lookback leaves old techniques referenced
        key = new_key(small_dir, tier)
        served = {
            name: every_object(collection(server.url, key, name)[0]) for name in tc.COLLECTIONS
        }
        everything = {o["id"] for found in served.values() for o in found}
        dangling = {r for found in served.values() for o in found for r in refs_of(o)} - everything
        assert not dangling, sorted(dangling)[:5]
        whole = {o["id"] for o in served["all"]}
        assert {r for o in served["all"] for r in refs_of(o)} <= whole  # "All indicators" alone
        for name, found in served.items():  # every collection has the author and the TLPs
            kinds = {o["type"] for o in found}
            assert {"identity", "marking-definition"} <= kinds, name
    bundle = {"type": "bundle", "id": "bundle--" + str(uuid.uuid4()), "objects": served["all"]}
    assert problems(bundle, enforce_refs=True) == []


def test_techniques_and_cves_carry_their_names_and_references(serve_process, small_dir):
    server = serve_process(small_dir, *SCALE)
    c, _ = collection(server.url, new_key(small_dir, "enterprise"))
    objects = every_object(c)
    techniques = [o for o in objects if o["type"] == "attack-pattern"]
    cves = [o for o in objects if o["type"] == "vulnerability"]
    assert techniques and cves
    for o in techniques:
        ref = o["external_references"][0]
        assert ref["source_name"] == "mitre-attack"
        assert (
            ref["url"]
            == f"https://attack.mitre.org/techniques/{ref['external_id'].replace('.', '/')}/"
        )
        assert o["name"] == (technique_name(ref["external_id"]) or ref["external_id"])
    assert sum(o["name"] != o["external_references"][0]["external_id"] for o in techniques) > 0
    for o in cves:
        ref = o["external_references"][0]
        assert ref == {
            "source_name": "cve",
            "external_id": o["name"],
            "url": f"https://www.cve.org/CVERecord?id={o['name']}",
        }


def test_a_whole_poll_of_the_lookback_fits_the_minute_limit(serve_process, data_dir):
    """OpenCTI's connector asks for no page size and never retries a 429: with the limits
    scaled down to 5 requests a minute for pro, its whole poll (API root, collections, every
    page of the 30-day lookback) still gets through; pages of 100 would not."""
    server = serve_process(data_dir, "--limit-scale", "0.05")

    def poll(per_request: int) -> list[dict]:
        c, _ = collection(server.url, new_key(data_dir, "pro"))  # API root, collections: 2
        pages = list(as_pages(c.get_objects, per_request=per_request))  # 0: no limit sent
        return [o for env in pages for o in env.get("objects", [])]

    assert len(in_one_minute(lambda: poll(0), need=30)) > 1_000
    with pytest.raises(requests.exceptions.HTTPError, match="429"):
        in_one_minute(lambda: poll(100), need=30)


def test_taxii2_client_needs_a_user_name_for_basic(serve_process, data_dir, keys):
    """taxii2-client sends Basic only when user and password are both set: an empty user
    sends nothing (a 401); any user name with the key as password works."""
    server = serve_process(data_dir, *SCALE)
    with pytest.raises(requests.exceptions.HTTPError, match="401"):
        list(Server(server.url + DISCOVERY, user="", password=keys["pro"]).api_roots[0].collections)
    root = Server(server.url + DISCOVERY, user="soc", password=keys["pro"]).api_roots[0]
    assert {c.title for c in root.collections} >= {"All indicators", "Indicators: IPv4 addresses"}


def test_the_taxii2_client_example_in_the_docs_runs_as_written(serve_process, data_dir, keys):
    doc = (ROOT / "docs" / "taxii.md").read_text()
    block = doc.split("### taxii2-client", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    setting = 'URL, KEY = "https://host/api/taxii2/", "sk_live_..."'
    assert setting in block
    server = serve_process(data_dir, *SCALE)
    namespace: dict = {}
    exec(
        block.replace(setting, f"URL, KEY = {server.url + DISCOVERY!r}, {keys['pro']!r}"), namespace
    )
    assert namespace["objects"] == [] and namespace["last"]  # the second run: nothing new
    first, last = namespace["poll"]()
    assert len(first) > 1_000 and last == namespace["last"]
