"""Two real worker processes, one on the local folder and one on S3 (moto), answer alike;
compression is negotiated and conditional requests work with every encoding."""

from __future__ import annotations

import gzip
import http.client
from urllib.parse import urlsplit

import pytest

from tests.buildseries import make_store
from tests.conftest import Server, free_port, socdef, start_server
from tests.s3fixture import moto_s3_fixture  # noqa: F401 - the moto_s3 fixture
from tests.support import new_key, published
from worker.encoding import CODERS

QUERIES = [
    "",
    "format=csv",
    "format=txt",
    "type=ipv4",
    "type=domain&confidence=high&format=csv",
    "category=vendor&format=txt",
    "limit=1000",
    "limit=250&offset=40",
    "include_context=false",
    "since=2026-11-10T00:00:00Z&until=2026-11-15T12:00:00Z",
    "type=url&since=2026-11-12T06:30:00Z&format=json&limit=7&offset=3",
    "limit=1&format=txt",
    "type=bogus",
]


def fetch(server: Server, query: str, key: str, **headers: str):
    """One raw request: (status, lower-cased headers, body bytes as sent)."""
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(
            headers.pop("method", "GET"),
            f"/api/v1/iocs?{query}",
            headers={"Authorization": f"Bearer {key}", **headers},
        )
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def start(data_dir, log_dir, name: str, env: dict[str, str]) -> Server:
    return start_server(data_dir, log_dir / f"{name}.log", env=env)


@pytest.fixture(scope="module")
def servers(tmp_path_factory, moto_s3):
    data = tmp_path_factory.mktemp("worker-s3")
    published(data, store=lambda root: make_store(root, 4000))
    bucket = moto_s3.new_bucket()
    socdef("publish", "--to", f"s3://{bucket}/feeds", data_dir=data, env=moto_s3.env)
    key = new_key(data, "enterprise", "s3@example.org")
    same_links = {"SOCDEF_PUBLIC_URL": "https://feeds.example.org"}  # links name no port
    local = start(data, data, "local", same_links)
    remote = start(
        data, data, "s3", {**same_links, **moto_s3.env, "SOCDEF_BUCKET": f"s3://{bucket}/feeds"}
    )
    yield local, remote, key
    for server in (local, remote):
        server.proc.terminate()
        server.proc.wait(timeout=10)


def test_both_workers_serve_the_same_build(servers):
    import httpx

    local, remote, _ = servers
    a = httpx.get(local.url + "/healthz").json()
    b = httpx.get(remote.url + "/healthz").json()
    assert a["status"] == b["status"] == "ok" and a["build_id"] == b["build_id"]


@pytest.mark.parametrize("query", QUERIES)
def test_local_folder_and_s3_answer_identical_bytes(servers, query):
    local, remote, key = servers
    for coding in ("identity", *CODERS):
        ours = fetch(local, query, key, **{"Accept-Encoding": coding})
        theirs = fetch(remote, query, key, **{"Accept-Encoding": coding})
        assert ours[0] == theirs[0], (query, coding, theirs[2][:300])
        if ours[0] != 200:
            assert ours[1]["content-type"] == theirs[1]["content-type"]
            continue
        assert ours[2] == theirs[2], (query, coding)
        for header in ("etag", "content-type", "content-encoding", "vary", "last-modified"):
            assert ours[1].get(header) == theirs[1].get(header), (query, coding, header)


def decode(headers: dict[str, str], body: bytes) -> bytes:
    coding = headers.get("content-encoding")
    if coding == "gzip":
        return gzip.decompress(body)
    if coding == "br":
        import brotli

        return brotli.decompress(body)
    assert coding is None
    return body


def test_gzip_is_negotiated_with_its_own_etag_and_304s(servers):
    local, remote, key = servers
    for server in (local, remote):
        plain = fetch(server, "limit=500", key, **{"Accept-Encoding": "identity"})
        zipped = fetch(server, "limit=500", key, **{"Accept-Encoding": "gzip"})
        assert plain[0] == zipped[0] == 200
        assert "content-encoding" not in plain[1]
        assert zipped[1]["content-encoding"] == "gzip"
        assert gzip.decompress(zipped[2]) == plain[2]
        assert len(zipped[2]) < len(plain[2]) / 3
        assert int(zipped[1]["content-length"]) == len(zipped[2])
        assert "accept-encoding" in zipped[1]["vary"].lower()
        assert "accept-encoding" in plain[1]["vary"].lower()
        assert zipped[1]["etag"] == plain[1]["etag"][:-1] + '-gzip"'
        # a 304 for the representation the client holds, in either encoding
        for held, accept in ((zipped, "gzip"), (plain, "identity")):
            again = fetch(
                server,
                "limit=500",
                key,
                **{"Accept-Encoding": accept, "If-None-Match": held[1]["etag"]},
            )
            assert again[0] == 304 and again[2] == b""
            assert again[1]["etag"] == held[1]["etag"]
            assert "accept-encoding" in again[1]["vary"].lower()
        # the gzip tag does not validate the identity representation
        other = fetch(
            server,
            "limit=500",
            key,
            **{"Accept-Encoding": "identity", "If-None-Match": zipped[1]["etag"]},
        )
        assert other[0] == 200 and other[2] == plain[2]


def test_brotli_is_preferred_when_installed_and_q_values_are_honoured(servers):
    local, _, key = servers
    plain = fetch(local, "", key, **{"Accept-Encoding": "identity"})[2]
    both = fetch(local, "", key, **{"Accept-Encoding": "gzip, deflate, br"})
    expected = "br" if "br" in CODERS else "gzip"
    assert both[1]["content-encoding"] == expected and decode(both[1], both[2]) == plain
    only_gzip = fetch(local, "", key, **{"Accept-Encoding": "br;q=0, gzip;q=0.5"})
    assert only_gzip[1]["content-encoding"] == "gzip"
    refused = fetch(local, "", key, **{"Accept-Encoding": "*;q=0, identity"})
    assert "content-encoding" not in refused[1] and refused[2] == plain


def test_small_bodies_and_head_requests(servers):
    local, _, key = servers
    tiny = fetch(local, "limit=1&format=txt", key, **{"Accept-Encoding": "gzip"})
    assert tiny[0] == 200 and len(tiny[2]) < 1024
    assert "content-encoding" not in tiny[1] and "accept-encoding" in tiny[1]["vary"].lower()
    full = fetch(local, "", key, **{"Accept-Encoding": "gzip"})
    head = fetch(local, "", key, method="HEAD", **{"Accept-Encoding": "gzip"})
    assert head[0] == 200 and head[2] == b""
    assert head[1]["content-length"] == str(len(full[2]))
    assert head[1]["etag"] == full[1]["etag"]


def test_an_unreachable_bucket_is_a_503_that_names_no_address(tmp_path):
    import httpx

    data = tmp_path / "data"
    dead = f"http://127.0.0.1:{free_port()}"
    env = {
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_ENDPOINT_URL": dead,
        "SOCDEF_BUCKET": "s3://feeds/prod",
    }
    server = start(data, tmp_path, "dead", env)
    try:
        health = httpx.get(server.url + "/healthz", timeout=30)
        assert health.status_code == 503
        assert health.json()["status"] == "storage_unreachable"
        assert "127.0.0.1" not in health.text and "feeds" not in health.text
        key = new_key(data, None, "d@example.org")
        answer = httpx.get(server.url + "/api/v1/iocs", headers={"X-API-Key": key}, timeout=30)
        assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
        assert answer.json()["error"]["code"] == "service_unavailable"
        assert "127.0.0.1" not in answer.text
    finally:
        server.proc.terminate()
        server.proc.wait(timeout=10)
