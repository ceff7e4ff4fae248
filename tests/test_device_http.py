"""Device files over real HTTP: the CLI builds and publishes, a worker answers; each tier's
files are whole (its lookback, no row cap), listed by ``GET /api/v1/feeds``, fetched with
any credential a device can send, and saved under their own names."""

from __future__ import annotations

import base64
import calendar
import time

import httpx
import pytest

from tests import device_check as dc
from tests.support import bearer, new_key, published, serving
from tests.test_device_files import checker
from worker.contract.device_files import BY_NAME, FORMAT_NAMES, file_of


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    # 1,500 indicators over 10 days: a free key's day holds more than its 100-row page
    return published(tmp_path_factory.mktemp("devices"), iocs=1_500, days=10)


@pytest.fixture(scope="module")
def server(data_dir, tmp_path_factory):
    yield from serving(data_dir, tmp_path_factory, "--limit-scale", "100")


@pytest.fixture(scope="module")
def keys(data_dir) -> dict[str, str]:
    return {tier: new_key(data_dir, tier) for tier in ("free", "pro", "enterprise")}


def get(server, path: str, headers: dict[str, str] | None = None, **params) -> httpx.Response:
    return httpx.get(server.url + path, headers=headers or {}, params=params, timeout=60)


def index(server, key: str) -> list[dict]:
    resp = get(server, "/api/v1/feeds", bearer(key))
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]


def test_index_lists_every_format_with_url_and_media_type(server, keys):
    entries = index(server, keys["free"])
    assert {e["format"] for e in entries} == set(FORMAT_NAMES)
    for e in entries:
        file = file_of(e["name"])
        assert file is not None and e["media_type"] == file.media_type
        assert e["type"] == file.type and e["url"] == f"{server.url}/api/v1/feeds/{e['name']}"
    assert {"name": "rpz.zone", "format": "rpz", "type": None} == {
        k: v
        for k, v in next(e for e in entries if e["name"] == "rpz.zone").items()
        if k in ("name", "format", "type")
    }


@pytest.mark.parametrize("tier", ["free", "enterprise"])
def test_every_listed_file_is_served_whole_and_passes_its_checker(server, keys, tier):
    served = {}
    for e in index(server, keys[tier]):
        resp = httpx.get(e["url"], headers=bearer(keys[tier]), timeout=60)
        assert resp.status_code == 200, (e["name"], resp.text)
        assert resp.headers["content-type"] == e["media_type"]
        assert resp.headers["content-disposition"] == f'attachment; filename="{e["name"]}"'
        assert resp.content.count(b"\n") == e["lines"]
        served[e["name"]] = resp.content
        file = BY_NAME[e["name"]]
        if file.format not in ("suricata-iprep", "rpz"):  # they need this build's facts: below
            assert checker(file)(resp.content) == [], e["name"]
    generated = get(server, "/healthz").json()["generated_at"]
    serial = calendar.timegm(time.strptime(generated, "%Y-%m-%dT%H:%M:%SZ"))
    assert dc.check_rpz(served["rpz.zone"], serial) == []
    categories = served["suricata-iprep-categories.txt"]
    assert dc.check_iprep(served["suricata-iprep.list"], categories) == []


def test_files_hold_the_tiers_whole_lookback_without_a_row_cap(server, keys):
    for tier in ("free", "pro"):
        listed = get(server, "/api/v1/iocs", bearer(keys[tier]), limit=1)
        total = listed.json()["meta"]["total"]
        plain = [e for e in index(server, keys[tier]) if e["format"] == "plain"]
        lines = sum(e["lines"] for e in plain)
        assert lines == total
    assert total > 100 and lines > 1_000  # more than one page of a free or pro key


def test_free_files_are_the_newest_part_of_enterprise_files(server, keys):
    free = set(get(server, "/api/v1/feeds/ip.txt", bearer(keys["free"])).text.split())
    everything = set(get(server, "/api/v1/feeds/ip.txt", bearer(keys["enterprise"])).text.split())
    assert free and free < everything


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_devices_authenticate_with_query_bearer_or_basic(server, keys):
    key = keys["pro"]
    answers = [
        get(server, "/api/v1/feeds/hosts.txt", bearer(key)),
        get(server, "/api/v1/feeds/hosts.txt", api_key=key),
        get(server, "/api/v1/feeds/hosts.txt", basic("", key)),  # PAN-OS: password only
        get(server, "/api/v1/feeds/hosts.txt", basic("socdef", key)),  # FortiGate: user + password
        get(server, "/api/v1/feeds/hosts.txt", basic(key, "")),  # the key as user name
    ]
    assert [a.status_code for a in answers] == [200] * 5
    assert len({a.content for a in answers}) == 1


def test_unknown_file_is_404_and_no_key_is_401_with_both_challenges(server, keys):
    missing = get(server, "/api/v1/feeds/nothing.txt", bearer(keys["free"]))
    assert missing.status_code == 404 and "GET /api/v1/feeds" in missing.text
    anonymous = get(server, "/api/v1/feeds/ip.txt")
    assert anonymous.status_code == 401
    challenge = anonymous.headers["www-authenticate"]
    assert "Basic" in challenge and "Bearer" in challenge


def test_conditional_get_answers_304(server, keys):
    first = get(server, "/api/v1/feeds/rpz.zone", bearer(keys["free"]))
    again = get(
        server,
        "/api/v1/feeds/rpz.zone",
        bearer(keys["free"]) | {"If-None-Match": first.headers["etag"]},
    )
    assert again.status_code == 304 and again.content == b""
