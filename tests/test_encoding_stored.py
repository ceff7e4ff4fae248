"""Answers stored compressed at build time (``worker/contract/coded.py``): a client that accepts
gzip gets the bucket's bytes as they are, with nothing compressed in the request path; a client
that refuses compression gets the exact text with the identity ETag; 304s, HEAD and tiny
objects keep their HTTP meaning."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from generator.build.sinks import ObjectWriter
from generator.publish import upload
from tests.support import latest_manifest, new_key, published, refuse_compression
from worker import encoding
from worker.buckets.storage import TEXTS
from worker.config import WorkerConfig, create_app
from worker.contract import coded, layout
from worker.contract import taxii_common as tc
from worker.contract.taxii_epochs import appended
from worker.http import Request, Response

NOW = 1_795_000_000
PAGE = "/docs/api/"
HASHES = "/feeds/misp/hashes.csv"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return published(tmp_path_factory.mktemp("stored"), iocs=400, days=20, now=NOW)


@pytest.fixture(scope="module")
def manifest(data) -> dict:
    return latest_manifest(data)


@pytest.fixture(scope="module")
def app(data):
    return create_app(WorkerConfig.for_data_dir(data))


@pytest.fixture(scope="module")
def key(data) -> str:
    return new_key(data, "enterprise")


@pytest.fixture
def no_compression(monkeypatch):
    """Any compression in the request path fails the test."""
    refuse_compression(monkeypatch)


def stored_bytes(data: Path, manifest: dict, logical: str) -> bytes:
    sha = manifest["objects"][logical][0]
    return (data / "build" / layout.object_key(sha)).read_bytes()


def get(app, path: str, headers: dict[str, str] | None = None, method: str = "GET") -> Response:
    path, _, query = path.partition("?")
    params = dict(parse_qsl(query))
    req = Request(method, path, params, {"host": "127.0.0.1", **(headers or {})}, "http", "-")
    resp: Response = app.answer(req, "req_test")
    return resp


def header(resp: Response, name: str) -> str | None:
    return dict(resp.headers).get(name)


def text_tag(text: bytes) -> str:
    return f'"{hashlib.sha256(text).hexdigest()[:32]}"'


def test_whole_text_objects_are_stored_compressed_with_the_hash_of_their_text(data, manifest):
    site = manifest["coded"][layout.site_key(PAGE)]
    assert site[0] == "gzip"
    stored = stored_bytes(data, manifest, layout.site_key(PAGE))
    text = gzip.decompress(stored)
    assert site[1:] == [hashlib.sha256(text).hexdigest(), len(text)]
    assert len(stored) < len(text) // 2
    assert layout.feed_key("misp", "hashes.csv") in manifest["coded"]  # written as a stream
    # what the worker reads by range is never compressed whole
    ranged = (".dat", ".bin", ".idx")  # device files (zeek-intel.dat) are text served whole
    assert not any(k.endswith(ranged) and not k.startswith("devices/") for k in manifest["coded"])


def test_a_gzip_client_gets_the_stored_bytes_as_they_are(app, data, manifest, no_compression):
    resp = get(app, PAGE, {"accept-encoding": "gzip, deflate"})
    stored = stored_bytes(data, manifest, layout.site_key(PAGE))
    assert resp.status == 200 and resp.body == stored
    assert header(resp, "content-encoding") == "gzip"
    assert header(resp, "etag") == encoding.suffixed(text_tag(gzip.decompress(stored)), "gzip")
    assert "Accept-Encoding" in (header(resp, "vary") or "")
    assert (
        resp.source is not None
        and resp.source.sha256 == manifest["objects"][layout.site_key(PAGE)][0]
    )  # an edge may send the object file itself


@pytest.mark.parametrize("accept", [None, "identity", "gzip;q=0, identity"])
def test_a_client_that_refuses_compression_gets_the_exact_text(app, data, manifest, accept):
    resp = get(app, PAGE, {"accept-encoding": accept} if accept else {})
    text = gzip.decompress(stored_bytes(data, manifest, layout.site_key(PAGE)))
    assert resp.status == 200 and resp.body == text
    assert header(resp, "content-encoding") is None
    assert header(resp, "etag") == text_tag(text)
    assert "Accept-Encoding" in (header(resp, "vary") or "")
    assert resp.source is None  # the body is not the stored object: no edge may send that
    sha = manifest["objects"][layout.site_key(PAGE)][0]
    assert TEXTS.get((sha, 0)) == text  # inflated once, then kept for the next such client
    assert dict(resp.raw_headers(False))[b"content-length"] == str(len(text)).encode()


def test_a_304_names_the_representation_it_stands_for(app, data, manifest):
    text = gzip.decompress(stored_bytes(data, manifest, layout.site_key(PAGE)))
    plain, packed = text_tag(text), encoding.suffixed(text_tag(text), "gzip")
    gz = {"accept-encoding": "gzip"}
    for headers, inm, status, tag in (
        (gz, packed, 304, packed),
        (gz, plain, 200, packed),  # the identity tag does not name the gzip bytes
        (gz, "*", 304, packed),
        ({}, plain, 304, plain),
        ({}, packed, 200, plain),
        ({"accept-encoding": "identity"}, f"{packed}, {plain}", 304, plain),
    ):
        resp = get(app, PAGE, {**headers, "if-none-match": inm})
        assert (resp.status, header(resp, "etag")) == (status, tag), (headers, inm)
        assert "Accept-Encoding" in (header(resp, "vary") or "")
        if status == 304:
            assert resp.body == b"" and header(resp, "content-encoding") is None


def test_head_announces_the_length_of_the_representation(app, data, manifest):
    stored = stored_bytes(data, manifest, layout.site_key(PAGE))
    for headers, size in (({"accept-encoding": "gzip"}, len(stored)), ({}, None)):
        head = get(app, PAGE, headers, method="HEAD")
        full = get(app, PAGE, headers)
        assert head.status == 200
        raw = dict(head.raw_headers(True))
        assert raw[b"content-length"] == str(len(full.body)).encode()
        assert header(head, "etag") == header(full, "etag")
        assert header(head, "content-encoding") == header(full, "content-encoding")
        if size is not None:
            assert len(full.body) == size


def test_a_download_and_the_default_text_answer_are_sent_as_stored(
    app, data, manifest, key, no_compression
):
    auth = {"authorization": f"Bearer {key}", "accept-encoding": "gzip"}
    resp = get(app, HASHES, auth)
    stored = stored_bytes(data, manifest, layout.feed_key("misp", "hashes.csv"))
    assert resp.status == 200 and resp.body == stored
    assert header(resp, "content-encoding") == "gzip"
    poll = get(app, "/api/v1/iocs?format=csv", auth)
    default = layout.default_key("enterprise", "all.all.all", "csv")
    assert poll.status == 200 and poll.body == stored_bytes(data, manifest, default)
    assert header(poll, "content-encoding") == "gzip"
    assert header(
        poll,
        "etag",
    ).endswith('-gzip"')  # type: ignore[union-attr]
    plain = get(app, "/api/v1/iocs?format=csv", {"authorization": f"Bearer {key}"})
    assert plain.body == gzip.decompress(poll.body)
    assert header(poll, "etag") == encoding.suffixed(header(plain, "etag") or "", "gzip")


def test_br_clients_take_the_stored_gzip_and_br_only_clients_get_br(
    app, data, manifest, monkeypatch
):
    """With a brotli coder installed: equal q-values go to the stored coding (nothing is
    compressed); a client that accepts br alone gets br, compressed once per ETag."""
    calls: list[int] = []

    def fake_br(body: bytes) -> bytes:
        calls.append(len(body))
        return b"BR" + body[::-1]

    monkeypatch.setitem(encoding.CODERS, "br", fake_br)
    stored = stored_bytes(data, manifest, layout.site_key(PAGE))
    both = get(app, PAGE, {"accept-encoding": "gzip, deflate, br"})
    assert both.body == stored and header(both, "content-encoding") == "gzip" and not calls
    only = get(app, PAGE, {"accept-encoding": "br"})
    text = gzip.decompress(stored)
    assert only.body == b"BR" + text[::-1] and header(only, "content-encoding") == "br"
    assert header(only, "etag") == encoding.suffixed(text_tag(text), "br")
    assert encoding.choose("gzip;q=0.5, br") == "br"  # a higher q still wins
    assert encoding.choose("gzip, br", prefer="gzip") == "gzip"


def test_tiny_and_incompressible_objects_are_kept_as_text(tmp_path):
    out = ObjectWriter(tmp_path)
    tiny, big = b'{"a":1}', b"line of text\n" * 500
    noise = os.urandom(4096)
    out.put("site/tiny.json", tiny)
    out.put("site/big.json", big)
    out.put("site/noise.txt", noise)
    out.put("taxii/ids.bin", big)  # read by range: never compressed whole
    for name, text in (
        ("site/s-tiny.txt", tiny),
        ("site/s-big.txt", big),
        ("site/s-noise.txt", noise),
    ):
        with out.stream(name) as stream:
            for at in range(0, len(text), 700):
                stream.write(text[at : at + 700])

    def on_disk(name: str) -> bytes:
        return (tmp_path / layout.object_key(out.objects[name][0])).read_bytes()

    for name, text in (
        ("site/tiny.json", tiny),
        ("site/noise.txt", noise),
        ("site/s-tiny.txt", tiny),
        ("site/s-noise.txt", noise),
        ("taxii/ids.bin", big),
    ):
        assert name not in out.coded and on_disk(name) == text, name
        assert out.objects[name] == [hashlib.sha256(text).hexdigest(), len(text)]
    for name in ("site/big.json", "site/s-big.txt"):
        assert out.coded[name] == ["gzip", hashlib.sha256(big).hexdigest(), len(big)]
        assert coded.decompress(on_disk(name)) == big
        assert out.objects[name][1] == len(on_disk(name)) < len(big) // 10
    # the same text stored whole or as a stream: the same object
    assert out.objects["site/big.json"][0] == out.objects["site/s-big.txt"][0]


def test_a_tiny_object_is_stored_and_served_as_text(app, data, manifest, no_compression):
    """A text shorter than ``MIN_SIZE`` is stored as it is and sent as it is to every client,
    gzip clients included, with the hash of its bytes as ETag."""
    logical = layout.site_key("/static/links.js")
    text = stored_bytes(data, manifest, logical)
    assert logical not in manifest["coded"] and 0 < len(text) < encoding.MIN_SIZE
    assert manifest["objects"][logical][0] == hashlib.sha256(text).hexdigest()
    for headers in ({"accept-encoding": "gzip"}, {}):
        resp = get(app, "/static/links.js", headers)
        assert resp.status == 200 and resp.body == text
        assert header(resp, "content-encoding") is None
        assert header(resp, "etag") == text_tag(text)
        assert resp.source is not None  # the object itself: an edge may send it


def test_publish_reads_the_taxii_meta_when_it_is_stored_compressed(tmp_path):
    """Publish reads the TAXII collection's ``last`` from the build folder for the pointer's
    epochs: a large ``meta.json`` is stored compressed and must be read as its text."""
    out = ObjectWriter(tmp_path)
    meta = tc.collection_key(tc.ALL_COLLECTION, "meta.json")
    out.put(meta, json.dumps({"last": 1234, "types": ["indicator"] * 300}).encode())
    assert meta in out.coded
    manifest = {"objects": out.objects, "coded": out.coded}
    epochs = upload._taxii_epochs(tmp_path, manifest, None, 1000.0, 0)
    assert epochs == appended(None, 1234, 1000 * 1_000_000)
