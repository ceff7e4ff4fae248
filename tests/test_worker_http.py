"""End to end: the real CLI builds and publishes, a real worker process answers over HTTP."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest

from tests.conftest import in_one_minute, poll_until, socdef
from tests.support import new_key, published, serving


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return published(tmp_path_factory.mktemp("e2e"), iocs=2_000, days=60)


@pytest.fixture(scope="module")
def server(data_dir, tmp_path_factory):
    yield from serving(data_dir, tmp_path_factory, "--access-log")


def get(server, path="/api/v1/iocs", **kw) -> httpx.Response:
    return httpx.get(server.url + path, timeout=30, **kw)


def assert_error(resp: httpx.Response, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["error"]["request_id"] == resp.headers["x-request-id"]
    return body["error"]


def test_three_auth_styles_answer_the_same(server, data_dir):
    key = new_key(data_dir, "pro")
    bearer = get(server, headers={"Authorization": f"Bearer {key}"})
    header = get(server, headers={"X-API-Key": key})
    query = get(server, params={"api_key": key})
    assert bearer.status_code == header.status_code == query.status_code == 200
    assert bearer.content == header.content == query.content
    body = bearer.json()
    assert set(body) == {"meta", "data", "links"}
    assert body["meta"]["limit"] == 100 and body["meta"]["offset"] == 0
    assert len(body["data"]) == min(100, body["meta"]["total"])
    assert "api_key" not in query.text


def test_quota_is_per_key_whatever_the_auth_style(server, data_dir):
    def twelve() -> list[httpx.Response]:  # a new key each run: its minute starts empty
        key = new_key(data_dir, "free")
        styles = [
            {"headers": {"Authorization": f"Bearer {key}"}},
            {"headers": {"X-API-Key": key}},
            {"params": {"api_key": key}},
        ]
        return [get(server, **styles[i % 3]) for i in range(12)]

    answers = in_one_minute(twelve)  # 10 a minute: all twelve inside one window
    assert [r.status_code for r in answers[:10]] == [200] * 10
    remaining = [int(r.headers["x-ratelimit-remaining"]) for r in answers[:10]]
    assert remaining == list(range(9, -1, -1))
    err = assert_error(answers[10], 429, "rate_limit_exceeded")
    assert err["details"]["limit"] == 10 and err["details"]["tier"] == "free"
    assert int(answers[10].headers["retry-after"]) >= 1
    assert answers[10].headers["x-ratelimit-remaining"] == "0"
    assert int(answers[10].headers["x-ratelimit-reset"]) > time.time() - 1


def test_missing_and_invalid_keys(server):
    assert_error(get(server), 401, "missing_api_key")
    err = assert_error(get(server, headers={"X-API-Key": "sk_live_nope"}), 401, "invalid_api_key")
    assert "sk_live_nope" not in json.dumps(err)


def test_revoked_key_is_refused(server, data_dir):
    key = new_key(data_dir, "pro")
    assert get(server, headers={"X-API-Key": key}).status_code == 200
    key_id = [
        line.split()[0]
        for line in socdef("keys", "list", data_dir=data_dir).stdout.splitlines()
        if key[:12] in line
    ][0]
    socdef("keys", "revoke", key_id, data_dir=data_dir)
    deadline = time.time() + 10  # the worker's key cache lives at most 5 s
    while time.time() < deadline:
        resp = get(server, headers={"X-API-Key": key})
        if resp.status_code == 401:
            break
        time.sleep(0.5)
    assert_error(resp, 401, "invalid_api_key")


def test_bad_parameters_get_400_with_valid_values(server, data_dir):
    key = {"Authorization": f"Bearer {new_key(data_dir, 'enterprise')}"}
    err = assert_error(get(server, headers=key, params={"type": "bogus"}), 400, "invalid_parameter")
    assert (
        "ipv4" in err["details"]["valid_types"] and "mitre_attack" in err["details"]["valid_types"]
    )
    for params in (
        {"limit": "0"},
        {"limit": "abc"},
        {"limit": "10001"},
        {"offset": "-1"},
        {"since": "yesterday"},
        {"format": "xml"},
        {"include_context": "maybe"},
        {"category": "blogs"},
        {"confidence": "sure"},
        {"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
    ):
        assert_error(get(server, headers=key, params=params), 400, "invalid_parameter")


def test_tier_caps_limit_and_lookback(server, data_dir):
    free = {"X-API-Key": new_key(data_dir, "free")}
    body = get(
        server, headers=free, params={"limit": "5000", "since": "2000-01-01T00:00:00Z"}
    ).json()
    assert body["meta"]["limit"] == 100
    generated = time.mktime(time.strptime(body["meta"]["generated_at"], "%Y-%m-%dT%H:%M:%SZ"))
    since = time.mktime(time.strptime(body["meta"]["filters"]["since"], "%Y-%m-%dT%H:%M:%SZ"))
    assert generated - since == 86400
    for record in body["data"]:
        seen = time.mktime(time.strptime(record["last_seen"], "%Y-%m-%dT%H:%M:%SZ"))
        assert seen >= since


def test_etag_and_304(server, data_dir):
    key = {"Authorization": f"Bearer {new_key(data_dir, 'enterprise')}"}
    for params in ({}, {"format": "csv", "type": "url"}, {"offset": "3", "limit": "7"}):
        first = get(server, headers=key, params=params)
        etag = first.headers["etag"]
        again = get(server, headers={**key, "If-None-Match": etag}, params=params)
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag
        assert "x-ratelimit-limit" in again.headers


def test_formats(server, data_dir):
    key = {"X-API-Key": new_key(data_dir, "enterprise")}
    csv_ = get(server, headers=key, params={"format": "csv", "limit": "20"})
    assert csv_.headers["content-type"].startswith("text/csv")
    lines = csv_.text.splitlines()
    assert lines[0] == (
        "id,type,value,confidence,first_seen,last_seen,source_article,source_feed,category,tags,"
        "status,valid_until,warnings,categories"
    )
    txt = get(server, headers=key, params={"format": "txt", "limit": "20"})
    assert txt.headers["content-type"].startswith("text/plain")
    values = [r["value"] for r in get(server, headers=key, params={"limit": "20"}).json()["data"]]
    assert txt.text.splitlines() == values
    nc = get(server, headers=key, params={"include_context": "false", "limit": "3"}).json()
    assert all("context" not in r for r in nc["data"])


def test_paging_links_walk_the_whole_window(server, data_dir):
    key = {"X-API-Key": new_key(data_dir, "enterprise")}
    url = server.url + "/api/v1/iocs?type=domain&limit=50"
    seen: list[str] = []
    total = None
    while url:
        body = httpx.get(url, headers=key, timeout=30).json()
        total = body["meta"]["total"]
        seen += [r["id"] for r in body["data"]]
        url = body["links"].get("next")
    assert len(seen) == len(set(seen)) == total > 50


def test_unknown_path_and_method(server, data_dir):
    assert_error(get(server, "/api/v1/nothing"), 404, "not_found")
    key = {"X-API-Key": new_key(data_dir, "pro")}
    resp = httpx.post(server.url + "/api/v1/iocs", headers=key, timeout=10)
    assert_error(resp, 405, "method_not_allowed")


def test_basic_auth_carries_the_key(server, data_dir):
    key = new_key(data_dir, "pro")
    token = base64.b64encode(f"anything:{key}".encode()).decode()
    assert get(server, headers={"Authorization": f"Basic {token}"}).status_code == 200


def test_keys_never_reach_the_log(server, data_dir):
    key = new_key(data_dir, "pro")
    mark = "api_key=[redacted]"
    before = server.log().count(mark)
    get(server, params={"api_key": key, "limit": "1"})
    get(server, params={"api_key": key + "x"})
    log = poll_until(
        lambda: (text := server.log()).count(mark) >= before + 2 and text,
        what="both requests in the access log",
    )
    assert key not in log and key[8:] not in log
