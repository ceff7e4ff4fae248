"""nginx in front of ``socdef serve --edge nginx`` (deploy/nginx/socdef-edge.conf.j2): the worker
decides, nginx sends the bytes, and a client sees the same answers as from the worker alone."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server, in_one_minute, start_server, stop_server
from tests.nginx_edge import (
    Nginx,
    socket_get,
    socket_path,
    start_nginx,
    start_socket_worker,
    stop_nginx,
)
from tests.support import bearer, new_key, published
from worker.contract import taxii_common as tc

HOST = "feeds.example.org"  # the same Host on both paths: links in JSON answers name it
# what the API promises on an answer, beside its body (Date, Server and Connection are the
# servers' own; the rate-limit counts and the request id differ from request to request)
SAME = (
    "content-type",
    "content-length",
    "content-encoding",
    "etag",
    "last-modified",
    "cache-control",
    "vary",
    "x-content-type-options",
    "x-ratelimit-limit",
    "ratelimit-policy",
    "www-authenticate",
    "retry-after",
    "content-security-policy",
    "referrer-policy",
    "content-disposition",
    "link",
    "x-total-count",
    "x-taxii-date-added-first",
    "x-taxii-date-added-last",
)
RATE = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "ratelimit")
REQUEST_ID = re.compile(r"req_[0-9a-f]{16}")
ANSWERS = [
    "/api/v1/iocs",  # the default poll: precomputed, links appended by the worker
    "/api/v1/iocs?format=csv",  # a default answer that is one published object
    "/api/v1/iocs?type=ipv4&limit=7&offset=3",  # a list composed from day partitions
    "/feeds/misp/hashes.csv",  # a download: one published object
    "/docs/",  # a site page, no key
    "/api/v1/iocs?format=txt&limit=5&offset=5",  # a text page: Link and X-Total-Count
    "/api/v1/feeds/ipv4.txt",  # a device file: Content-Disposition
]
TAXII = f"/api/taxii2/api/collections/{tc.collection_id('all')}/objects/?limit=5"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return published(tmp_path_factory.mktemp("edge"), iocs=2_000, days=60)


@pytest.fixture(scope="module")
def plain(data_dir, tmp_path_factory) -> Iterator[Server]:
    server = start_server(data_dir, tmp_path_factory.mktemp("plain") / "server.log")
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def answers(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("answers")


@pytest.fixture(scope="module")
def worker(data_dir, answers, tmp_path_factory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("edge-worker") / "server.log"
    server = start_server(data_dir, log, "--edge", "nginx", "--answers-dir", str(answers))
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def socket_answers(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("socket-answers")


@pytest.fixture(scope="module")
def socket_worker(data_dir, socket_answers, tmp_path_factory) -> Iterator[Server]:
    """``--edge nginx`` with no address: the worker listens on DATA_DIR/worker.sock."""
    log = tmp_path_factory.mktemp("socket-worker") / "server.log"
    server = start_socket_worker(data_dir, log, "--answers-dir", str(socket_answers))
    yield server
    stop_server(server)


# nginx reaches the worker over its Unix socket (the default on one host) or over TCP
@pytest.fixture(scope="module", params=["unix socket", "tcp"])
def edge(request, data_dir, tmp_path_factory) -> Iterator[Nginx]:
    if request.param == "tcp":
        upstream, answers = request.getfixturevalue("worker"), request.getfixturevalue("answers")
    else:
        upstream = request.getfixturevalue("socket_worker")
        answers = request.getfixturevalue("socket_answers")
    nginx = start_nginx(
        tmp_path_factory.mktemp("nginx"), upstream.url, data_dir / "bucket", answers
    )
    yield nginx
    stop_nginx(nginx)


def get(base: str, path: str, key: str | None = None, **headers: str) -> httpx.Response:
    sent = {"Host": HOST, **(bearer(key) if key else {}), **headers}
    return httpx.get(base + path, headers=sent, timeout=30)


def assert_same(alone: httpx.Response, fronted: httpx.Response) -> None:
    """Same status, body and promised headers; fresh rate headers and request id on both."""
    assert fronted.status_code == alone.status_code, fronted.text
    assert fronted.content == alone.content
    for name in SAME:
        assert fronted.headers.get(name) == alone.headers.get(name), name
    assert "x-accel-redirect" not in fronted.headers
    assert REQUEST_ID.fullmatch(fronted.headers["x-request-id"])
    assert fronted.headers["x-request-id"] != alone.headers["x-request-id"]
    if "x-ratelimit-limit" in alone.headers:
        for name in RATE:
            assert name in fronted.headers, name


@pytest.mark.parametrize("coding", ["identity", "gzip, br"])
def test_answers_are_byte_identical_to_the_worker_alone(plain, edge, data_dir, coding):
    key = new_key(data_dir, "enterprise")
    for path in ANSWERS:
        for _ in range(2):  # the second is the worker's hot path (a kept answer)
            alone = get(plain.url, path, key, **{"Accept-Encoding": coding})
            fronted = get(edge.url, path, key, **{"Accept-Encoding": coding})
            assert alone.status_code == 200, (path, alone.text)
            assert_same(alone, fronted)


def test_a_taxii_page_keeps_its_headers(plain, edge, data_dir):
    key = new_key(data_dir, "enterprise")
    accept = {"Accept": "application/taxii+json;version=2.1", "Accept-Encoding": "identity"}
    for _ in range(2):
        alone = get(plain.url, TAXII, key, **accept)
        fronted = get(edge.url, TAXII, key, **accept)
        assert alone.status_code == 200 and "x-taxii-date-added-first" in alone.headers
        assert_same(alone, fronted)


def test_nginx_sends_the_bytes_the_worker_names(worker, edge, data_dir, answers):
    """The edge worker's own answer has no body: a published object, or a composed answer
    written once into the answers folder, is named in X-Accel-Redirect."""
    key = new_key(data_dir, "enterprise")
    plain_headers = {"Accept-Encoding": "identity"}
    # a download stored compressed, to a gzip client: nginx sends the object file as it is
    download = get(worker.url, "/feeds/misp/hashes.csv", key, **{"Accept-Encoding": "gzip"})
    assert download.status_code == 200 and download.content == b""
    assert download.headers["content-encoding"] == "gzip"
    target = download.headers["x-accel-redirect"]
    assert target.startswith("/_socdef/objects/")
    on_disk = data_dir / "bucket" / "objects" / target.removeprefix("/_socdef/objects/")
    sent = get(edge.url, "/feeds/misp/hashes.csv", key, **{"Accept-Encoding": "gzip"})
    assert sent.headers["content-encoding"] == "gzip"
    assert gzip.decompress(on_disk.read_bytes()) == sent.content  # httpx decoded it
    # to a client that refuses compression: the text, written once into the answers folder
    text = get(worker.url, "/feeds/misp/hashes.csv", key, **plain_headers)
    target = text.headers["x-accel-redirect"]
    assert text.content == b"" and target.startswith("/_socdef/answers/")
    written = answers / target.removeprefix("/_socdef/answers/")
    assert written.read_bytes() == sent.content
    assert get(edge.url, "/feeds/misp/hashes.csv", key, **plain_headers).content == sent.content

    poll = get(worker.url, "/api/v1/iocs", key, **plain_headers)
    target = poll.headers["x-accel-redirect"]
    assert poll.content == b"" and target.startswith("/_socdef/answers/")
    written = answers / target.removeprefix("/_socdef/answers/")
    assert written.read_bytes() == get(edge.url, "/api/v1/iocs", key, **plain_headers).content


def test_head_has_the_headers_of_get(edge, data_dir):
    key = new_key(data_dir, "enterprise")
    whole = get(edge.url, "/api/v1/iocs", key, **{"Accept-Encoding": "identity"})
    head = httpx.head(
        edge.url + "/api/v1/iocs",
        headers={"Host": HOST, **bearer(key), "Accept-Encoding": "identity"},
    )
    assert head.status_code == 200 and head.content == b""
    for name in ("content-type", "content-length", "etag", "last-modified", "vary"):
        assert head.headers[name] == whole.headers[name], name


@pytest.mark.parametrize("path", ["/api/v1/iocs", "/feeds/misp/hashes.csv"])
def test_if_none_match_is_a_304_from_the_worker(plain, edge, data_dir, path):
    key = new_key(data_dir, "pro" if path == "/api/v1/iocs" else "enterprise")
    first = get(edge.url, path, key)
    assert first.status_code == 200
    etag = first.headers["etag"]
    alone = get(plain.url, path, key, **{"If-None-Match": etag})
    again = get(edge.url, path, key, **{"If-None-Match": etag})
    assert alone.status_code == again.status_code == 304
    assert again.content == b""
    assert_same(alone, again)
    changed = get(edge.url, path, key, **{"If-None-Match": '"another"'})
    assert changed.status_code == 200 and changed.content == first.content


def assert_error(resp: httpx.Response, status: int, code: str) -> dict:
    """An error in the spec's shape whose request id is the header's."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert body["error"]["request_id"] == resp.headers["x-request-id"]
    return body["error"]


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_api_key"),
        ({"Authorization": "Bearer sk_live_" + "a" * 38}, "invalid_api_key"),
    ],
)
def test_401_in_the_spec_shape_with_the_challenge(plain, edge, headers, code):
    alone = get(plain.url, "/api/v1/iocs", **headers)
    fronted = get(edge.url, "/api/v1/iocs", **headers)
    assert_error(alone, 401, code)
    error = assert_error(fronted, 401, code)
    assert fronted.headers["www-authenticate"] == 'Basic realm="socdef", Bearer'
    assert error["message"] == alone.json()["error"]["message"]
    assert_same_but_ids(alone, fronted)


def assert_same_but_ids(alone: httpx.Response, fronted: httpx.Response) -> None:
    """Error answers: equal once each request id is taken out of its body."""
    strip = REQUEST_ID.sub("", alone.text), REQUEST_ID.sub("", fronted.text)
    assert strip[0] == strip[1]
    for name in SAME:
        assert fronted.headers.get(name) == alone.headers.get(name), name


def test_a_missing_scope_and_an_unknown_path_keep_their_shape(edge, data_dir):
    free = new_key(data_dir, "free")
    refused = assert_error(get(edge.url, "/api/v1/iocs/stix", free), 403, "insufficient_scope")
    assert refused["details"]["required_scope"] == "read:stix"
    assert_error(get(edge.url, "/api/v1/nothing-here", free), 404, "not_found")
    # nginx's internal locations cannot be asked for from outside, and refuse in the same shape
    object_name = next((data_dir / "bucket" / "objects").glob("*/*")).relative_to(
        data_dir / "bucket" / "objects"
    )
    for path in (f"/_socdef/objects/{object_name}", "/_socdef/answers/x"):
        assert_error(get(edge.url, path, free), 404, "not_found")


def test_limits_are_exact_behind_nginx(edge, data_dir):
    """A free key gets exactly its 10 requests a minute through nginx, whichever route and
    whichever way the bytes are sent; the 11th is a 429 in the spec's shape."""
    # the 11th request (index 10) asks for JSON, so its refusal is the JSON error body
    paths = ["/api/v1/iocs?format=csv", "/api/v1/iocs", "/api/v1/iocs?type=url&limit=3"]

    def eleven() -> list[httpx.Response]:
        key = new_key(data_dir, "free")
        return [get(edge.url, paths[i % 3], key) for i in range(11)]

    answers = in_one_minute(eleven)
    assert [r.status_code for r in answers] == [200] * 10 + [429]
    assert [int(r.headers["x-ratelimit-remaining"]) for r in answers[:10]] == list(range(9, -1, -1))
    for resp in answers[:10]:
        assert resp.headers["x-ratelimit-limit"] == "10"
        assert resp.headers["ratelimit-policy"] == '"minute";q=10;w=60, "day";q=1000;w=86400'
    refused = answers[10]
    error = assert_error(refused, 429, "rate_limit_exceeded")
    assert error["details"]["limit"] == 10 and error["details"]["tier"] == "free"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert refused.headers["x-ratelimit-reset"] == answers[0].headers["x-ratelimit-reset"]


@pytest.mark.parametrize("transport", ["unix socket", "tcp"])
def test_a_worker_that_does_not_answer_is_a_503_in_the_spec_shape(data_dir, tmp_path, transport):
    """nginx's own refusal when nothing listens behind it: the API's error shape, not a page."""
    if transport == "tcp":
        worker = start_server(data_dir, tmp_path / "worker.log", "--edge", "nginx")
    else:
        sock = tmp_path / "w.sock"
        worker = start_socket_worker(data_dir, tmp_path / "worker.log", "--uds", str(sock))
    nginx = start_nginx(tmp_path / "nginx", worker.url, data_dir / "bucket", tmp_path / "answers")
    try:
        stop_server(worker)
        if transport != "tcp":  # the worker removed its socket on the way out
            assert not sock.exists()
        down = get(nginx.url, "/api/v1/iocs", new_key(data_dir, "free"))
        error = assert_error(down, 503, "service_unavailable")
        assert error["message"] and down.headers["retry-after"] == "1"
        assert re.fullmatch(r"req_[0-9a-f]{32}", down.headers["x-request-id"])
    finally:
        stop_nginx(nginx)


def test_the_socket_worker_answers_like_the_tcp_one(worker, socket_worker, data_dir):
    """On its socket the edge worker answers as on TCP: the same X-Accel-Redirect target (a
    published object) and the same promised headers; the socket is 0660 at DATA_DIR/worker.sock."""
    sock = socket_path(socket_worker)
    assert sock == (data_dir / "worker.sock").absolute()
    key = new_key(data_dir, "enterprise")  # a command that makes the data folder owner-only
    assert sock.stat().st_mode & 0o777 == 0o660  # leaves the worker's socket as it is
    sent = {"Host": HOST, **bearer(key), "Accept-Encoding": "identity"}
    over_socket = socket_get(sock, "/feeds/misp/hashes.csv", **sent)
    over_tcp = get(worker.url, "/feeds/misp/hashes.csv", key, **{"Accept-Encoding": "identity"})
    assert over_socket.status_code == over_tcp.status_code == 200
    assert over_socket.content == over_tcp.content == b""
    assert over_socket.headers["x-accel-redirect"] == over_tcp.headers["x-accel-redirect"]
    for name in SAME:
        assert over_socket.headers.get(name) == over_tcp.headers.get(name), name
