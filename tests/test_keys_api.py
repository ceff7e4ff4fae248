"""Key management over HTTP with a session cookie, against a real worker process."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sqlite3
import uuid

import httpx
import pytest

from tests.conftest import in_one_minute, poll_until, socdef
from tests.support import published, serving

COOKIE = "sb-access-token"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return published(tmp_path_factory.mktemp("keysapi"), iocs=500, days=10)


@pytest.fixture(scope="module")
def server(data_dir, tmp_path_factory):
    yield from serving(data_dir, tmp_path_factory, "--access-log")


def session_for(data_dir, user: str) -> dict[str, str]:
    token = socdef("session", "create", "--user", user, data_dir=data_dir).stdout.strip()
    return {COOKIE: token}


def api(server, method: str, path: str, cookies=None, **kw) -> httpx.Response:
    if method not in ("GET", "HEAD"):  # a write from the service's own page, as a browser sends it
        kw["headers"] = {"Sec-Fetch-Site": "same-origin", **kw.get("headers", {})}
    with httpx.Client(base_url=server.url, cookies=cookies, timeout=30) as client:
        return client.request(method, path, **kw)


def create(server, cookies, **body) -> httpx.Response:
    return api(server, "POST", "/api/v1/keys", cookies, json=body)


def test_create_list_get_revoke_cycle(server, data_dir):
    socdef("users", "set-tier", "ana@example.org", "pro", data_dir=data_dir)
    ana = session_for(data_dir, "ana@example.org")
    resp = create(server, ana, name="SIEM", expires_in_days=30)
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert created["meta"]["warning"]
    key = created["data"]["key"]
    info = created["data"]
    assert key.startswith("sk_live_") and info["tier"] == "pro" and "read:stix" in info["scopes"]
    assert info["rate_limit_per_minute"] == 100 and info["expires_at"]
    assert key not in json.dumps({k: v for k, v in info.items() if k != "key"})
    # the new key works on the data API
    feed = httpx.get(server.url + "/api/v1/iocs", headers={"X-API-Key": key}, timeout=30)
    assert feed.status_code == 200
    listed = api(server, "GET", "/api/v1/keys", ana).json()
    assert listed["meta"]["total"] == len(listed["data"]) >= 1
    assert all("key" not in k for k in listed["data"])
    mine = [k for k in listed["data"] if k["id"] == info["id"]][0]
    assert mine["key_preview"] == info["key_preview"] and key not in json.dumps(listed)
    details = api(server, "GET", f"/api/v1/keys/{info['id']}", ana).json()["data"]
    assert details["id"] == info["id"] and len(details["usage"]["daily"]) == 30
    revoked = api(server, "DELETE", f"/api/v1/keys/{info['id']}", ana, json={"reason": "rotated"})
    assert revoked.status_code == 200 and revoked.json()["success"] is True
    refused = httpx.get(server.url + "/api/v1/iocs", headers={"X-API-Key": key}, timeout=30)
    assert refused.status_code == 401  # at once on the worker that revoked it


def test_someone_elses_key_is_a_plain_404(server, data_dir):
    ana = session_for(data_dir, "ana@example.org")
    eve = session_for(data_dir, "eve@example.org")
    key_id = create(server, ana, name="mine").json()["data"]["id"]
    for method, path in (
        ("GET", f"/api/v1/keys/{key_id}"),
        ("DELETE", f"/api/v1/keys/{key_id}"),
        ("GET", f"/api/v1/keys/{key_id}/usage"),
    ):
        theirs = api(server, method, path, eve)
        random = api(server, method, path.replace(key_id, str(uuid.uuid4())), eve)
        assert theirs.status_code == random.status_code == 404
        assert theirs.json()["error"]["code"] == random.json()["error"]["code"] == "not_found"
        assert theirs.json()["error"]["message"] == random.json()["error"]["message"]
    assert api(server, "GET", f"/api/v1/keys/{key_id}", ana).status_code == 200
    assert key_id not in api(server, "GET", "/api/v1/keys", eve).text


def test_bodies_cannot_set_tier_scopes_limits_or_ids(server, data_dir):
    bo = session_for(data_dir, "bo@example.org")
    for extra in (
        {"tier": "enterprise"},
        {"scopes": ["read:misp"]},
        {"id": str(uuid.uuid4())},
        {"rate_limit_per_minute": 10**6},
    ):
        resp = create(server, bo, name="x", **extra)
        assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_parameter"
    for bad in (
        {},
        {"name": ""},
        {"name": "x" * 101},
        {"name": "x", "expires_in_days": 0},
        {"name": "x", "expires_in_days": 366},
        {"name": "x", "expires_in_days": "7"},
        {"name": 5},
    ):
        assert create(server, bo, **bad).status_code == 400, bad
    not_json = api(
        server,
        "POST",
        "/api/v1/keys",
        bo,
        content=b"name=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert not_json.status_code == 400
    assert api(server, "GET", "/api/v1/keys", bo).json()["meta"]["total"] == 0
    created = create(server, bo, name="free one").json()["data"]
    assert created["tier"] == "free" and created["scopes"] == ["read:iocs", "read:search"]


def test_api_keys_are_not_sessions_and_sessions_are_not_keys(server, data_dir):
    ana = session_for(data_dir, "ana@example.org")
    key = create(server, ana, name="k").json()["data"]["key"]
    for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
        resp = httpx.get(server.url + "/api/v1/keys", headers=headers, timeout=30)
        assert resp.status_code == 401
    resp = httpx.get(server.url + "/api/v1/keys", params={"api_key": key}, timeout=30)
    assert resp.status_code == 401
    token = ana[COOKIE]
    for headers in ({"Authorization": f"Bearer {token}"}, {"X-API-Key": token}):
        assert httpx.get(server.url + "/api/v1/iocs", headers=headers).status_code == 401


def test_bad_sessions_are_401(server, data_dir):
    good = session_for(data_dir, "ana@example.org")[COOKIE]
    head, body, sig = good.split(".")
    none_alg = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["sub"] = "eve@example.org"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    wrong_secret = hmac.new(b"x" * 32, f"{head}.{body}".encode(), hashlib.sha256).digest()
    wrong_sig = base64.urlsafe_b64encode(wrong_secret).rstrip(b"=").decode()
    for token in (
        f"{none_alg}.{body}.",
        f"{head}.{forged}.{sig}",
        f"{head}.{body}.{wrong_sig}",
        "garbage",
        good[:-2],
    ):
        resp = api(server, "GET", "/api/v1/keys", {COOKIE: token})
        assert resp.status_code == 401, token
        assert resp.json()["error"]["request_id"] == resp.headers["x-request-id"]
    assert api(server, "GET", "/api/v1/keys").status_code == 401
    expired = socdef(
        "session", "create", "--user", "ana@example.org", "--ttl", "60", data_dir=data_dir
    ).stdout.strip()
    assert api(server, "GET", "/api/v1/keys", {COOKIE: expired}).status_code == 200


def test_cross_site_writes_are_refused(server, data_dir):
    ana = session_for(data_dir, "ana@example.org")
    for headers in (
        {"Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ):
        resp = api(server, "POST", "/api/v1/keys", ana, json={"name": "x"}, headers=headers)
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "cross_site_request"
    same = api(
        server,
        "POST",
        "/api/v1/keys",
        ana,
        json={"name": "ok"},
        headers={"Origin": server.url, "Sec-Fetch-Site": "same-origin"},
    )
    assert same.status_code == 201
    # reads are not writes: a cross-site GET is answered (the browser keeps the answer private)
    assert (
        api(
            server, "GET", "/api/v1/keys", ana, headers={"Sec-Fetch-Site": "cross-site"}
        ).status_code
        == 200
    )


def test_usage_counts_what_the_key_did(server, data_dir):
    runs = iter(range(10))

    def sequence() -> tuple[dict, dict, httpx.Response]:
        # a user and key of its own each run; the requests and the usage read in one minute
        user = f"cy{next(runs)}@example.org"
        socdef("users", "set-tier", user, "free", data_dir=data_dir)
        cy = session_for(data_dir, user)
        info = create(server, cy, name="usage").json()["data"]
        for params in ({}, {"limit": "5"}, {"type": "bogus"}, {"format": "csv"}):
            httpx.get(
                server.url + "/api/v1/iocs", headers={"X-API-Key": info["key"]}, params=params
            )
        for _ in range(8):  # 4 + 8 > 10/min: two are refused
            httpx.get(
                server.url + "/api/v1/iocs",
                headers={"X-API-Key": info["key"]},
                params={"limit": "1"},
            )

        def read() -> httpx.Response | None:  # usage rows are written at most a second apart
            got = api(server, "GET", f"/api/v1/keys/{info['id']}/usage", cy, params={"days": "3"})
            return (
                got
                if got.status_code != 200 or got.json()["data"]["summary"]["totalRequests"] >= 12
                else None
            )

        return cy, info, poll_until(read, what="the twelve requests in the usage")

    cy, info, usage = in_one_minute(sequence, need=30)
    assert usage.status_code == 200, usage.text
    data = usage.json()["data"]
    assert data["key"] == {"id": info["id"], "name": "usage", "tier": "free"}
    assert data["period"]["days"] == 3 and len(data["timeSeries"]) == 3
    summary = data["summary"]
    assert summary["totalRequests"] == 12
    assert summary["failedRequests"] == 3 and summary["successfulRequests"] == 9
    assert data["rateLimitHits"]["total"] == 2
    assert data["rateLimits"]["perMinute"]["current"] == 10
    assert data["rateLimits"]["perMinute"]["remaining"] == 0
    codes = {row["statusCode"]: row["count"] for row in data["breakdown"]["byStatusCode"]}
    assert codes == {200: 9, 400: 1, 429: 2}
    assert summary["totalIOCsReturned"] > 0
    assert (
        api(
            server, "GET", f"/api/v1/keys/{info['id']}/usage", cy, params={"days": "91"}
        ).status_code
        == 400
    )
    listed = api(server, "GET", "/api/v1/keys", cy).json()["data"]
    assert [k["id"] for k in listed] == [info["id"]]
    assert listed[0]["total_requests"] == 12 and listed[0]["last_used_at"]


def usage_rows(data_dir, key_id: str) -> list[tuple]:
    with sqlite3.connect(data_dir / "usage.sqlite") as db:
        return db.execute("SELECT * FROM usage WHERE key_id = ?", (key_id,)).fetchall()


def test_no_full_key_in_logs_usage_or_stored_data(server, data_dir):
    ana = session_for(data_dir, "ana@example.org")
    made = create(server, ana, name="leak check").json()["data"]
    key = made["key"]
    httpx.get(server.url + "/api/v1/iocs", params={"api_key": key}, timeout=30)
    httpx.get(server.url + "/api/v1/iocs", params={"api_key": key[:-1] + "x"}, timeout=30)
    poll_until(lambda: usage_rows(data_dir, made["id"]), what="the request's usage row")
    assert key not in server.log() and key[8:] not in server.log()
    for path in data_dir.glob("*.sqlite*"):
        raw = path.read_bytes()
        assert key.encode() not in raw and key[8:40].encode() not in raw, path.name
    rows = sqlite3.connect(data_dir / "usage.sqlite").execute("SELECT * FROM usage").fetchall()
    assert rows and key not in repr(rows)
