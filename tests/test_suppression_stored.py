"""The suppression report's CSV answer is stored gzip-compressed by the build
(``worker/contract/coded.py``): a client that accepts gzip gets the stored bytes as they are,
with nothing compressed in the request path; one that refuses compression gets the exact text;
ETags and 304s name the representation they stand for."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from generator.build.suppressed import CSV_COLUMNS
from generator.store.generations import Store
from generator.store.lifecycle import DAY
from tests.support import latest_manifest, new_key, published, refuse_compression
from tests.test_lifecycle import SIGHTINGS, SUPPRESSED, T0, tables
from worker import encoding
from worker.config import WorkerConfig, create_app
from worker.contract import coded, layout
from worker.http import Request, Response

PATH = "/api/v1/iocs/suppressed"
BLOCKED = [f"blocked-{n:03d}-update-service.example" for n in range(40)]


def blocked_store(root: Path) -> None:
    """An article naming the warninglisted values of tests/test_lifecycle.py and 40 domains the
    operator blocks: a report long enough to be stored compressed."""
    found = SIGHTINGS + [("domain", d) for d in BLOCKED]
    as_of = {"as_of": T0 + 2 * DAY, "sources": {}}
    Store(root).commit(*tables([("c" * 16, T0, found)]), as_of)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    (root / "overrides.txt").write_text("".join(f"block {d}\n" for d in BLOCKED))
    return published(root, store=blocked_store)


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


def get(app, key: str, headers: dict[str, str] | None = None, method: str = "GET") -> Response:
    path, _, query = f"{PATH}?format=csv".partition("?")
    auth = {"host": "127.0.0.1", "authorization": f"Bearer {key}"}
    req = Request(method, path, dict(parse_qsl(query)), {**auth, **(headers or {})}, "http", "-")
    resp: Response = app.answer(req, "req_test")
    return resp


def header(resp: Response, name: str) -> str | None:
    return dict(resp.headers).get(name)


def stored_csv(data: Path, manifest: dict) -> bytes:
    sha = manifest["objects"][layout.suppressed_key("enterprise", "csv")][0]
    return (data / "build" / layout.object_key(sha)).read_bytes()


def text_tag(text: bytes) -> str:
    return f'"{hashlib.sha256(text).hexdigest()[:32]}"'


def test_the_csv_report_is_stored_compressed_with_the_hash_of_its_text(data, manifest):
    entry = manifest["coded"][layout.suppressed_key("enterprise", "csv")]
    stored = stored_csv(data, manifest)
    text = gzip.decompress(stored)
    assert entry == [coded.CODING, hashlib.sha256(text).hexdigest(), len(text)]
    assert len(stored) < len(text) // 2
    rows = list(csv.DictReader(io.StringIO(text.decode())))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert {r["value"] for r in rows} == set(SUPPRESSED) | set(BLOCKED)


def test_a_gzip_client_gets_the_stored_bytes_as_they_are(app, data, manifest, key, no_compression):
    resp = get(app, key, {"accept-encoding": "gzip, deflate"})
    stored = stored_csv(data, manifest)
    assert resp.status == 200 and resp.body == stored
    assert header(resp, "content-encoding") == "gzip"
    assert resp.content_type == "text/csv; charset=utf-8"
    assert header(resp, "etag") == encoding.suffixed(text_tag(gzip.decompress(stored)), "gzip")
    assert "Accept-Encoding" in (header(resp, "vary") or "")
    assert header(resp, "x-ratelimit-limit") is not None
    # the body is the object byte for byte: an edge may send the object file itself
    key_sha = manifest["objects"][layout.suppressed_key("enterprise", "csv")][0]
    assert resp.source is not None and resp.source.sha256 == key_sha


@pytest.mark.parametrize("accept", [None, "identity", "gzip;q=0, identity"])
def test_a_client_that_refuses_compression_gets_the_exact_text(app, data, manifest, key, accept):
    resp = get(app, key, {"accept-encoding": accept} if accept else {})
    text = gzip.decompress(stored_csv(data, manifest))
    assert resp.status == 200 and resp.body == text
    assert header(resp, "content-encoding") is None
    assert header(resp, "etag") == text_tag(text)
    assert resp.source is None  # the body is not the stored object
    assert dict(resp.raw_headers(False))[b"content-length"] == str(len(text)).encode()


def test_a_304_names_the_representation_it_stands_for(app, data, manifest, key):
    text = gzip.decompress(stored_csv(data, manifest))
    plain, packed = text_tag(text), encoding.suffixed(text_tag(text), "gzip")
    gz = {"accept-encoding": "gzip"}
    for headers, inm, status, tag in (
        (gz, packed, 304, packed),
        (gz, plain, 200, packed),  # the identity tag does not name the gzip bytes
        ({}, plain, 304, plain),
        ({}, packed, 200, plain),
    ):
        resp = get(app, key, {**headers, "if-none-match": inm})
        assert (resp.status, header(resp, "etag")) == (status, tag), (headers, inm)
        if status == 304:
            assert resp.body == b"" and header(resp, "content-encoding") is None


def test_another_tier_gets_its_own_report(app, data, manifest):
    # the free tier looks back one day; the article is two days old: a header row only
    resp = get(app, new_key(data, "free"), {"accept-encoding": "gzip"})
    assert resp.status == 200 and header(resp, "content-encoding") is None  # too short to code
    assert resp.body == (",".join(CSV_COLUMNS) + "\n").encode()
    assert layout.suppressed_key("free", "csv") not in manifest["coded"]
