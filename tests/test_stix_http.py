"""``GET /api/v1/iocs/stix`` end to end: the real CLI builds the seed corpus, a real worker serves.

Every answer is compared with the objects rendered straight from the seed records (what the
build should have stored, selected as the spec says), and bundles go through the strict gate.
"""

from __future__ import annotations

import calendar
import json

import httpx
import pytest

from exports import stix21
from tests.seed import SEED_NOW, seed_records, seed_store
from tests.stix_check import problems
from tests.support import new_key, published, serving
from tests.test_worker_http import assert_error
from worker.contract import formats
from worker.contract.stix_common import IDENTITY, TLP_IDS, TLP_LEVELS, tlp_marking

PATH = "/api/v1/iocs/stix"
LEVEL_OF = {marking: level for level, marking in TLP_IDS.items()}
DAY = 86_400


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return published(tmp_path_factory.mktemp("stix"), store=seed_store)


@pytest.fixture(scope="module")
def server(data_dir, tmp_path_factory):
    yield from serving(data_dir, tmp_path_factory)


@pytest.fixture(scope="module")
def pro(data_dir) -> dict[str, str]:
    return {"Authorization": f"Bearer {new_key(data_dir, 'pro')}"}


def get(server, headers, **params) -> httpx.Response:
    return httpx.get(server.url + PATH, headers=headers, params=params, timeout=30)


def expected_objects(*, lookback_days: int, type_: str = "all", limit: int = 100) -> list[dict]:
    """The records of the window, newest first, rendered directly."""
    since = SEED_NOW - lookback_days * DAY
    records = [r for r in seed_records() if r.last_seen >= since and type_ in ("all", r.type)]
    return [o for r in records[:limit] for o in stix21.record_objects(r)]


def with_head(objects: list[dict]) -> list[dict]:
    used = [
        lvl
        for lvl in TLP_IDS
        if any(o.get("object_marking_refs") == [TLP_IDS[lvl]] for o in objects)
    ]
    return [IDENTITY, *(tlp_marking(lvl) for lvl in used), *objects]


def test_free_key_lacks_the_scope(server, data_dir):
    free = {"X-API-Key": new_key(data_dir, "free")}
    err = assert_error(get(server, free), 403, "insufficient_scope")
    assert err["details"]["required_scope"] == "read:stix"
    assert "read:stix" not in err["details"]["your_scopes"]
    assert "read:iocs" in err["details"]["your_scopes"]


def test_pro_key_gets_a_valid_bundle(server, pro):
    resp = get(server, pro)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == formats.BY_NAME["stix"].media_type
    doc = resp.json()
    assert doc["type"] == "bundle" and doc["id"].startswith("bundle--")
    assert doc["objects"] == with_head(expected_objects(lookback_days=30))
    assert problems(doc) == []
    assert get(server, pro).json()["id"] == doc["id"]  # same build + query, same bundle


def test_type_limit_and_since(server, pro):
    doc = get(server, pro, type="cve", limit="2").json()
    assert doc["objects"] == with_head(expected_objects(lookback_days=30, type_="cve", limit=2))
    old = get(server, pro, since="2000-01-01T00:00:00Z").json()  # clamped to 30 days
    assert old["objects"] == get(server, pro).json()["objects"]
    recent = get(
        server,
        pro,
        since="2026-11-18T00:00:00Z",
        include_identity="false",
        include_tlp_markings="false",
    ).json()
    since = calendar.timegm((2026, 11, 18, 0, 0, 0))
    wanted = [o for r in seed_records() if r.last_seen >= since for o in stix21.record_objects(r)]
    assert recent["objects"] == wanted and wanted


@pytest.mark.parametrize(
    "raw, level",
    [
        ("red", "red"),
        ("amber+strict", "amber+strict"),
        ("amber strict", "amber+strict"),
        ("CLEAR", "clear"),
    ],
)
def test_tlp_override_raises_markings_and_never_lowers_them(server, pro, raw, level):
    doc = get(server, pro, tlp=raw).json()
    assert problems(doc) == []
    plain = get(server, pro).json()["objects"]
    head = sum(o["type"] in ("identity", "marking-definition") for o in plain)
    wanted = []
    for want in plain[head:]:
        if "object_marking_refs" in want:
            own = LEVEL_OF[want["object_marking_refs"][0]]
            strict = max(own, level, key=TLP_LEVELS.index)
            want = {**want, "object_marking_refs": [TLP_IDS[strict]]}
        wanted.append(want)
    used = {LEVEL_OF[o["object_marking_refs"][0]] for o in wanted if "object_marking_refs" in o}
    markings = [tlp_marking(lvl) for lvl in TLP_LEVELS if lvl in used]
    assert [o for o in doc["objects"] if o["type"] == "marking-definition"] == markings
    assert doc["objects"][1 + len(markings) :] == wanted
    if level == "clear":  # the seed's green and amber records keep their markings
        assert {"green", "amber"} <= used


def test_literal_plus_in_the_query_string(server, pro):
    resp = httpx.get(server.url + PATH + "?tlp=amber+strict", headers=pro, timeout=30)
    assert tlp_marking("amber+strict") in resp.json()["objects"]


def test_objects_format_and_optional_parts(server, pro):
    resp = get(
        server,
        pro,
        format="objects",
        include_identity="false",
        include_tlp_markings="false",
        limit="3",
    )
    assert resp.status_code == 200
    assert resp.json() == expected_objects(lookback_days=30, limit=3)
    full = get(server, pro, format="objects").json()
    assert full == with_head(expected_objects(lookback_days=30))


def test_etag_and_304(server, pro):
    first = get(server, pro, type="url")
    again = httpx.get(
        server.url + PATH,
        params={"type": "url"},
        timeout=30,
        headers={**pro, "If-None-Match": first.headers["etag"]},
    )
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    other = get(server, pro, type="url", tlp="red")
    assert other.headers["etag"] != first.headers["etag"]
    assert other.json()["id"] != first.json()["id"]


def test_bad_parameters_are_400(server, pro):
    for params in (
        {"tlp": "purple"},
        {"format": "xml"},
        {"limit": "0"},
        {"limit": "1001"},
        {"type": "bogus"},
        {"since": "yesterday"},
        {"include_identity": "maybe"},
        {"include_tlp_markings": "2"},
    ):
        assert_error(get(server, pro, **params), 400, "invalid_parameter")
    err = assert_error(get(server, pro, tlp="purple"), 400, "invalid_parameter")
    assert err["details"]["valid_tlps"] == list(TLP_IDS)


def test_empty_window_is_a_valid_bundle(server, pro):
    doc = get(server, pro, since="2030-01-01T00:00:00Z", include_identity="false").json()
    assert set(doc) == {"type", "id"}
    assert problems(doc) == []
    assert (
        json.loads(
            get(
                server,
                pro,
                since="2030-01-01T00:00:00Z",
                format="objects",
                include_identity="false",
            ).content
        )
        == []
    )
