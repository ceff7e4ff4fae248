"""One ``Authorization`` parser (``worker.access.auth.authorization_key``, on bytes) behind the hot
path and the full path: both find the same key in the same header, and an app accepts and
refuses exactly the same credentials whichever path answers."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import published
from tests.test_worker_hot import call
from worker.access.auth import authorization_key, presented_key
from worker.app import hot_inputs
from worker.config import WorkerConfig, create_app
from worker.http import Request

SCHEMES = st.sampled_from(
    [
        b"Bearer",
        b"bearer",
        b"BEARER",
        b"Token",
        b"token",
        b"Basic",
        b"basic",
        b"BASIC",
        b"Digest",
        b"Bearer:",
        b"",
    ]
)
SPACE = st.sampled_from([b"", b" ", b"  ", b"\t", b"\r", b"\x0b", b"\xa0", b"\x85", b"\x1f"])
SOME_KEY = b"sk_live_0123456789"


def texts(key: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.just(key),
        st.binary(max_size=12),
        st.sampled_from([b"", b"u", b"\xc3\xa9", b"\xff", b":", key + b"\xff"]),
    )


@st.composite
def basic_payloads(draw, key: bytes) -> bytes:
    user, password = draw(texts(key)), draw(texts(key))
    raw = base64.b64encode(user + b":" + password if draw(st.booleans()) else user)
    return draw(
        st.sampled_from(
            [
                raw,
                raw.rstrip(b"="),
                raw + b"=",
                raw + b"==",
                b"=" + raw,
                raw[:-1],
                raw + b"AA",
                raw.replace(b"A", b"-"),
            ]
        )
    )


@st.composite
def authorization(draw, key: bytes = SOME_KEY) -> bytes:
    """``Authorization`` values around ``key``: its schemes in any case, strange whitespace,
    broken, padded and unpadded base64, user or password, text that is not UTF-8."""
    payload = draw(st.one_of(st.just(key), texts(key), basic_payloads(key)))
    return (
        draw(SPACE)
        + draw(SCHEMES)
        + draw(st.sampled_from([b" ", b"  ", b"\t", b""]))
        + draw(SPACE)
        + payload
        + draw(SPACE)
    )


def _scope(auth: bytes) -> dict:
    return {
        "type": "http",
        "method": "GET",
        "path": "/api/v1/iocs",
        "query_string": b"",
        "headers": [(b"authorization", auth)],
        "scheme": "http",
    }


@given(authorization())
def test_hot_and_full_path_find_the_same_key(auth):
    hot = hot_inputs(_scope(auth))
    full = presented_key(Request.from_scope({**_scope(auth), "method": "GET"}))
    assert (hot[0] if hot else None) == (full.encode("latin-1") if full else None)


@pytest.mark.parametrize(
    "value,key",
    [
        (b"Bearer k1", b"k1"),
        (b"  token \t k1 ", b"k1"),
        (b"Bearer ", None),
        (b"Digest k1", None),
        (b"Basic " + base64.b64encode(b"u:k1"), b"k1"),
        (b"Basic " + base64.b64encode(b"k1:"), b"k1"),
        (b"Basic " + base64.b64encode(b"k1"), b"k1"),
        (b"Basic a2Ex", b"ka1"),
        (b"Basic a2E", b""),
        (b"Basic " + base64.b64encode(b"\xff:k1"), b""),
        (b"Basic !!!", b""),
        (b"Basic", b""),
        (b"Bearer k1\xa0", b"k1\xa0"),
    ],
)
def test_authorization_key(value, key):
    assert authorization_key(value) == key


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """An app with a kept default poll, its key in the key cache and limits it cannot reach."""
    data = published(tmp_path_factory.mktemp("auth"), iocs=50, days=2)
    bucket = data / "bucket"
    app = create_app(WorkerConfig.for_data_dir(Path(data / "worker"), bucket=str(bucket)))
    app.limit_scale = 10_000.0
    key, _ = app.keys.create("ana@example.org", "pro")
    assert call(app, [(b"authorization", f"Bearer {key}".encode())])[0] == 200
    app.test_key = key
    return app


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_both_paths_accept_and_refuse_the_same_credentials(app, data):
    headers = [(b"authorization", data.draw(authorization(app.test_key.encode())))]
    cached = app._cached_key
    app._cached_key = None  # the full path only
    try:
        full = call(app, headers)
    finally:
        app._cached_key = cached
    either = call(app, headers)  # the hot path when it finds the key, else the full path
    assert either[0] == full[0]
    assert either[2] == full[2] or either[0] != 200


def test_the_hot_path_takes_basic_credentials(app):
    lookups = app.keys.lookups
    basic = base64.b64encode(f"ana:{app.test_key}".encode())
    assert call(app, [(b"authorization", b"Basic " + basic)])[0] == 200
    assert app.keys.lookups == lookups  # answered from the kept answer and the key cache
