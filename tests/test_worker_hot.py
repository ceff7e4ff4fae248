"""The worker's hot path: a repeated shared GET is answered from the kept answer, with the same
bytes and headers as the full path, the same limits, revocation and usage counting."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import in_one_minute
from tests.support import published
from worker.app import READY, Kept
from worker.config import WorkerConfig, create_app
from worker.contract import taxii_common as tc

PATH = "/api/v1/iocs"
PER_REQUEST = {"x-ratelimit-remaining", "ratelimit", "x-request-id"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return published(tmp_path_factory.mktemp("hot"), iocs=300, days=10)


def make_app(data_dir: Path, tmp_path: Path, limiter: str = "sqlite"):
    # the shared published build; each test gets its own key, limit and usage databases
    return create_app(
        WorkerConfig.for_data_dir(tmp_path, bucket=str(data_dir / "bucket"), limiter=limiter)
    )


def call(
    app,
    headers: list[tuple[bytes, bytes]],
    method: str = "GET",
    query: bytes = b"",
    path: str = PATH,
    host: bytes = b"feeds.test",
) -> tuple[int, dict[str, str], bytes]:
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": [(b"host", host), *headers],
        "scheme": "http",
        "client": ("127.0.0.1", 5000),
    }
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    names = [k.decode() for k, _ in sent[0]["headers"]]
    assert len(names) == len(set(names)), names  # no header twice
    return (
        sent[0]["status"],
        {k.decode(): v.decode() for k, v in sent[0]["headers"]},
        sent[1]["body"],
    )


def kept(app) -> dict:
    return app.builds.current().cached(READY, Kept)


def test_second_poll_is_the_first_ones_bytes(data_dir, tmp_path) -> None:
    app = make_app(data_dir, tmp_path)
    key, _ = app.keys.create("ana@example.org", "pro")
    auth = [(b"authorization", f"Bearer {key}".encode())]
    first = call(app, auth)
    assert len(kept(app)) == 1
    lookups = app.keys.lookups
    answers = [call(app, auth) for _ in range(3)]
    assert app.keys.lookups == lookups  # answered from the kept answer and the key cache
    assert first[0] == 200 and all(a[0] == 200 and a[2] == first[2] for a in answers)
    for _, headers, _ in answers:
        assert {k: v for k, v in headers.items() if k not in PER_REQUEST} == {
            k: v for k, v in first[1].items() if k not in PER_REQUEST
        }
    assert [int(a[1]["x-ratelimit-remaining"]) for a in (first, *answers)] == [99, 98, 97, 96]
    assert len({a[1]["x-request-id"] for a in (first, *answers)}) == 4


def test_each_coding_and_validator_is_its_own_answer(data_dir, tmp_path) -> None:
    app = make_app(data_dir, tmp_path)
    key, _ = app.keys.create("ana@example.org", "pro")
    auth = [(b"authorization", f"Token {key}".encode())]
    gzip = [*auth, (b"accept-encoding", b"gzip")]
    plain, zipped = call(app, auth), call(app, gzip)
    assert zipped[1]["content-encoding"] == "gzip" and "content-encoding" not in plain[1]
    again_plain, again_zipped = call(app, auth), call(app, gzip)
    assert again_plain[2] == plain[2] and again_zipped[2] == zipped[2]
    assert "content-encoding" not in again_plain[1]
    etag = zipped[1]["etag"].encode()
    for _ in range(2):  # the full path, then the kept 304
        status, headers, body = call(app, [*gzip, (b"if-none-match", etag)])
        assert (status, body, headers["etag"]) == (304, b"", zipped[1]["etag"])
        assert "content-length" not in headers and headers["x-ratelimit-remaining"]


def test_refusals_and_revocation_on_the_hot_path(data_dir, tmp_path) -> None:
    app = make_app(data_dir, tmp_path)

    def thirteen() -> list[tuple[int, dict[str, str], bytes]]:  # a fresh key: an empty minute
        key, _ = app.keys.create("ana@example.org", "free")
        auth = [(b"authorization", f"Bearer {key}".encode())]
        return [call(app, auth) for _ in range(13)]

    answers = in_one_minute(thirteen)  # the limiter counts per minute of the wall clock
    assert [a[0] for a in answers] == [200] * 10 + [429] * 3
    status, headers, body = answers[-1]
    assert status == 429 and b"rate_limit_exceeded" in body and int(headers["retry-after"]) >= 1
    other, _ = app.keys.create("bo@example.org", "pro")
    other_auth = [(b"authorization", f"Bearer {other}".encode())]
    assert call(app, other_auth)[0] == call(app, other_auth)[0] == 200
    app.keys.revoke(app.keys.list("bo@example.org")[0].id)
    status, _, body = call(app, other_auth)  # this worker's revocation: at once
    assert status == 401 and b"revoked" in body


def test_scope_and_usage_are_kept(data_dir, tmp_path) -> None:
    app = make_app(data_dir, tmp_path)
    key, record = app.keys.create("ana@example.org", "pro")
    auth = [(b"authorization", f"Bearer {key}".encode())]
    for _ in range(5):
        assert call(app, auth)[0] == 200
    rows = app.usage.rows(record.id, 0)
    assert sum(r[5] for r in rows) == 5  # requests, hot or not
    assert {r[1] for r in rows} == {PATH} and {r[2] for r in rows} == {200}
    assert sum(r[4] for r in rows) == 500  # 100 indicators per answer, hot or not
    narrow, _ = app.keys.create("ana@example.org", "pro", scopes=["read:search"])
    narrow_auth = [(b"authorization", f"Bearer {narrow}".encode())]
    for _ in range(2):  # same tier, kept answer exists: the scope still refuses
        status, _, body = call(app, narrow_auth)
        assert status == 403 and b"read:iocs" in body


@pytest.mark.parametrize(
    "headers",
    [
        [(b"x-api-key", b"KEY")],  # other auth styles take the full path
        [
            (b"authorization", b"Bearer KEY"),
            (b"accept-encoding", b"gzip"),
            (b"accept-encoding", b"br"),
        ],  # a repeated header is joined by the full path
    ],
)
def test_other_requests_take_the_full_path(data_dir, tmp_path, headers) -> None:
    app = make_app(data_dir, tmp_path)
    key, _ = app.keys.create("ana@example.org", "pro")
    real = [(k, v.replace(b"KEY", key.encode())) for k, v in headers]
    for _ in range(2):
        assert call(app, real)[0] == 200
    assert kept(app) == {}
    assert call(app, [(b"authorization", f"Bearer {key}".encode())], query=b"limit=5")[0] == 200
    assert kept(app) == {}


def test_taxii_pages_with_basic_auth(data_dir, tmp_path) -> None:
    app = make_app(data_dir, tmp_path)
    key, _ = app.keys.create("ana@example.org", "pro")
    path = f"/api/taxii2/api/collections/{tc.collection_id('all')}/objects/"
    basic = [(b"authorization", b"Basic " + base64.b64encode(f"taxii:{key}".encode()))]
    stix = [*basic, (b"accept", b"application/stix+json;version=2.1")]
    first, bundle = (
        call(app, basic, query=b"limit=7", path=path),
        call(app, stix, query=b"limit=7", path=path),
    )
    lookups = app.keys.lookups
    again, again_bundle = (
        call(app, basic, query=b"limit=7", path=path),
        call(app, stix, query=b"limit=7", path=path),
    )
    assert app.keys.lookups == lookups and len(kept(app)) == 2
    assert (again[0], again[2]) == (first[0], first[2]) == (200, first[2])
    assert again_bundle[2] == bundle[2] != first[2]
    assert again_bundle[1]["content-type"] == bundle[1]["content-type"]
    assert again[1]["content-type"] == first[1]["content-type"] == tc.TAXII_MEDIA_TYPE
    other = call(app, basic, query=b"limit=8", path=path)  # another query: another answer
    assert other[2] != first[2] and len(kept(app)) == 3
    wrong = [(b"authorization", b"Basic " + base64.b64encode(b"taxii:sk_live_nope"))]
    assert call(app, wrong, query=b"limit=7", path=path)[0] == 401


def test_kept_answers_are_bounded(data_dir, tmp_path, monkeypatch) -> None:
    import worker.app

    app = make_app(data_dir, tmp_path)
    key, _ = app.keys.create("ana@example.org", "pro")
    auth = [(b"authorization", f"Bearer {key}".encode())]
    size = len(call(app, auth)[2])
    monkeypatch.setattr(worker.app, "READY_BYTES", size * 2)
    for host in (b"a.test", b"b.test", b"c.test", b"d.test"):
        call(app, auth, host=host)
        assert 1 <= len(kept(app)) <= 2 and kept(app).size <= size * 2
    monkeypatch.setattr(worker.app, "READY_LARGEST", size // 2)
    before = dict(kept(app))
    call(app, auth, host=b"e.test")
    assert kept(app) == before  # too large to keep


def test_raw_rate_headers_match_the_full_paths() -> None:
    from worker.app import rate_headers, rate_raw
    from worker.http import Response
    from worker.limits.windows import MemoryLimiter

    limiter = MemoryLimiter()
    decisions = [
        limiter.hit("k", 5, 1_000),
        limiter.hit("d", 1_000, 2),
        limiter.hit("d", 1_000, 2),
        limiter.hit("d", 1_000, 2),
    ]
    assert decisions[2].binding == "day" and not decisions[3].allowed
    for decision in decisions:
        resp = Response(200)
        rate_headers(resp, decision)
        assert rate_raw(decision) == [(k.encode(), v.encode()) for k, v in resp.headers]


def _hot_scope(key: str) -> dict:
    return {
        "type": "http",
        "method": "GET",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": b"",
        "scheme": "http",
        "client": ("127.0.0.1", 5000),
        "headers": [(b"host", b"feeds.test"), (b"authorization", f"Bearer {key}".encode())],
    }


def _hot_exchange() -> tuple[list[dict], Any, Any]:
    """(messages sent, receive, send) for hot requests: a hot answer reads no body."""
    sent: list[dict] = []

    async def receive() -> dict:
        raise AssertionError("the hot path reads no body")

    async def send(message: dict) -> None:
        sent.append(message)

    return sent, receive, send


def test_memory_limiter_answers_without_waiting(data_dir, tmp_path) -> None:
    """A single-process deployment's hot path decides inline: the request coroutine finishes in
    its first step (no suspension for a batch that would save nothing)."""
    app = make_app(data_dir, tmp_path, limiter="memory")
    assert app.coalescer is None
    key, _ = app.keys.create("ana@example.org", "pro")
    auth = [(b"authorization", f"Bearer {key}".encode())]
    first = call(app, auth)
    sent, receive, send = _hot_exchange()
    step = app(_hot_scope(key), receive, send)
    with pytest.raises(StopIteration):  # done in one step: never handed back to the loop
        step.send(None)
    assert sent[0]["status"] == 200 and sent[1]["body"] == first[2]
    assert dict(sent[0]["headers"])[b"x-ratelimit-remaining"] == b"98"


def test_shared_limiter_decides_a_turn_in_one_batch(data_dir, tmp_path) -> None:
    """With SQLite, the hot requests of one event-loop turn share one transaction."""
    app = make_app(data_dir, tmp_path, limiter="sqlite")
    key, _ = app.keys.create("ana@example.org", "pro")
    call(app, [(b"authorization", f"Bearer {key}".encode())])
    sent, receive, send = _hot_exchange()

    async def many() -> None:
        await asyncio.gather(*(app(_hot_scope(key), receive, send) for _ in range(20)))

    asyncio.run(many())
    assert app.coalescer.batches == 1
    remaining = sorted(
        int(dict(m["headers"])[b"x-ratelimit-remaining"])
        for m in sent
        if m["type"] == "http.response.start"
    )
    assert remaining == list(range(79, 99))
