"""MISP, CEF/syslog and OpenIOC over real HTTP: the CLI builds and publishes, a worker process
answers enterprise and pro keys, and every answer goes through the format's checker."""

from __future__ import annotations

import httpx
import pytest

from generator.build import misp_feed
from tests.cef_check import check_cef_line, check_syslog_line
from tests.misp_check import check_event, check_feed
from tests.openioc_check import NS, check_document
from tests.support import bearer, new_key, published, serving
from worker.contract import formats

ENDPOINTS = {
    "/api/v1/iocs/misp": "read:misp",
    "/api/v1/iocs/cef": "read:cef",
    "/api/v1/iocs/openioc": "read:openioc",
    "/feeds/misp/manifest.json": "read:misp",
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return published(tmp_path_factory.mktemp("formats"), iocs=1_500, days=60)


@pytest.fixture(scope="module")
def server(data_dir, tmp_path_factory):
    yield from serving(data_dir, tmp_path_factory)


@pytest.fixture(scope="module")
def enterprise(data_dir) -> dict[str, str]:
    return bearer(new_key(data_dir, "enterprise"))


def get(server, path: str, headers: dict[str, str], **params) -> httpx.Response:
    """A client that reads errors as JSON (text routes answer errors as text otherwise)."""
    headers = {"Accept": "application/json", **headers}
    return httpx.get(server.url + path, headers=headers, params=params, timeout=60)


def assert_error(resp: httpx.Response, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()["error"]
    assert body["code"] == code and body["request_id"] == resp.headers["x-request-id"]
    return body


@pytest.mark.parametrize("path", ENDPOINTS)
def test_pro_key_is_refused_with_the_missing_scope(server, data_dir, path):
    pro = {"X-API-Key": new_key(data_dir, "pro")}
    error = assert_error(get(server, path, pro), 403, "insufficient_scope")
    assert error["details"]["required_scope"] == ENDPOINTS[path]
    assert "read:stix" in error["details"]["your_scopes"]
    assert ENDPOINTS[path] not in error["details"]["your_scopes"]


def test_misp_event(server, enterprise):
    resp = get(server, "/api/v1/iocs/misp", enterprise)
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    event = check_event(resp.content)["Event"]
    assert len(event["Attribute"]) == 100
    again = get(server, "/api/v1/iocs/misp", enterprise)
    assert again.content == resp.content
    assert (
        get(
            server, "/api/v1/iocs/misp", {**enterprise, "If-None-Match": resp.headers["etag"]}
        ).status_code
        == 304
    )
    ips = check_event(get(server, "/api/v1/iocs/misp", enterprise, type="ipv4", limit=7).content)
    assert [a["type"] for a in ips["Event"]["Attribute"]] == ["ip-dst"] * 7
    assert ips["Event"]["uuid"] != event["uuid"]


def test_misp_event_window_and_errors(server, enterprise):
    empty = get(server, "/api/v1/iocs/misp", enterprise, since="2999-01-01T00:00:00Z")
    assert check_event(empty.content)["Event"]["Attribute"] == []
    assert_error(
        get(server, "/api/v1/iocs/misp", enterprise, type="bogus"), 400, "invalid_parameter"
    )
    assert_error(get(server, "/api/v1/iocs/misp", enterprise, limit="0"), 400, "invalid_parameter")
    assert_error(
        get(server, "/api/v1/iocs/misp", enterprise, since="yesterday"), 400, "invalid_parameter"
    )


@pytest.mark.parametrize("fmt", ["cef", "syslog"])
def test_cef_events(server, enterprise, fmt):
    params = {} if fmt == "cef" else {"format": "syslog"}
    resp = get(server, "/api/v1/iocs/cef", enterprise, limit=50, **params)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    lines = resp.content.decode().split("\n")
    assert lines.pop() == "" and len(lines) == 50
    for line in lines:
        check_cef_line(line) if fmt == "cef" else check_syslog_line(line)
    assert (
        get(
            server,
            "/api/v1/iocs/cef",
            {**enterprise, "If-None-Match": resp.headers["etag"]},
            limit=50,
            **params,
        ).status_code
        == 304
    )


def test_cef_rejects_an_unknown_format(server, enterprise):
    error = assert_error(
        get(server, "/api/v1/iocs/cef", enterprise, format="leef"), 400, "invalid_parameter"
    )
    assert error["details"]["valid_formats"] == ["cef", "syslog"]
    # a CEF client that did not ask for JSON reads the same error as one line of text
    resp = httpx.get(
        server.url + "/api/v1/iocs/cef", headers=enterprise, params={"format": "leef"}, timeout=60
    )
    assert resp.status_code == 400 and resp.headers["content-type"].startswith("text/plain")
    assert resp.text.startswith("400 invalid_parameter")


def test_openioc_document(server, enterprise):
    resp = get(server, "/api/v1/iocs/openioc", enterprise, limit=40)
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/xml"
    root = check_document(resp.content)
    assert 0 < len(root.findall(".//ioc:IndicatorItem", NS)) <= 40
    assert (
        get(
            server,
            "/api/v1/iocs/openioc",
            {**enterprise, "If-None-Match": resp.headers["etag"]},
            limit=40,
        ).status_code
        == 304
    )


def test_misp_feed_as_a_misp_instance_reads_it(server, enterprise):
    manifest = get(server, "/feeds/misp/manifest.json", enterprise)
    assert manifest.status_code == 200
    feed = {"manifest.json": manifest.content}
    for uuid in manifest.json():
        feed[f"{uuid}.json"] = get(server, f"/feeds/misp/{uuid}.json", enterprise).content
    hashes = get(server, "/feeds/misp/hashes.csv", enterprise)
    assert hashes.headers["content-type"].startswith("text/csv")
    feed["hashes.csv"] = hashes.content
    check_feed(feed, misp_feed.MAX_ATTRIBUTES)
    assert (
        get(
            server,
            "/feeds/misp/manifest.json",
            {**enterprise, "If-None-Match": manifest.headers["etag"]},
        ).status_code
        == 304
    )
    assert_error(get(server, "/feeds/misp/nothing.json", enterprise), 404, "not_found")
    assert_error(get(server, "/feeds/misp/manifest.json", {}), 401, "missing_api_key")


@pytest.mark.parametrize("fmt", formats.FORMATS, ids=lambda f: f.name)
def test_every_format_is_served_with_the_media_type_of_its_record(server, enterprise, fmt):
    resp = get(server, fmt.path, enterprise, **dict(fmt.params))
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == fmt.media_type
