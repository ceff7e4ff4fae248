"""Content-Encoding negotiation in the worker's last step (``worker/encoding.py``)."""

from __future__ import annotations

import gzip

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.encoding import CODERS, Encoder, accepted, choose, suffixed
from worker.http import Request, Response

BEST = "br" if "br" in CODERS else "gzip"


@pytest.mark.parametrize(
    "header, expected",
    [
        (None, None),
        ("", None),
        ("gzip", "gzip"),
        ("GZIP", "gzip"),
        ("gzip, deflate, br", BEST),
        ("*", BEST),
        ("gzip;q=0", None),
        ("gzip;q=0.5", "gzip"),
        ("gzip;q=0.5, identity", None),
        ("identity;q=0.4, gzip;q=0.5", "gzip"),
        ("br;q=0, *;q=0.3", "gzip"),
        ("gzip;q=nonsense", None),
        ("deflate, compress", None),
    ],
)
def test_choose(header, expected):
    assert choose(header) == expected


@given(st.text(max_size=80))
def test_any_accept_encoding_header_is_handled(header):
    assert choose(header) in (None, *CODERS)
    assert all(0.0 <= q <= 1.0 for q in accepted(header).values())


def request(**headers: str) -> Request:
    return Request(
        "GET",
        "/api/v1/iocs",
        {},
        {k.lower().replace("_", "-"): v for k, v in headers.items()},
        "http",
        "test",
    )


def answer(body: bytes, content_type: str = "application/json", status: int = 200) -> Response:
    resp = Response(status, body, content_type)
    resp.header("etag", '"abc"')
    return resp


def test_the_encoder_compresses_and_caches_by_etag():
    encoder = Encoder()
    body = b'{"data":[' + b'{"value":"198.51.100.7"},' * 200 + b"]}"
    first = encoder(request(accept_encoding="gzip"), answer(body))
    assert gzip.decompress(first.body) == body
    assert dict(first.headers)["etag"] == '"abc-gzip"'
    assert dict(first.headers)["content-encoding"] == "gzip"
    assert encoder.cache.get('"abc-gzip"') == first.body
    again = encoder(request(accept_encoding="gzip"), answer(body))
    assert again.body is first.body  # compressed once


@pytest.mark.parametrize(
    "resp",
    [
        answer(b"x" * 5000, "application/octet-stream"),
        answer(b"x" * 5000, status=404),
        answer(b"x" * 1000),
    ],
)
def test_what_is_left_alone(resp):
    body = resp.body
    out = Encoder()(request(accept_encoding="gzip"), resp)
    assert out.body == body and "content-encoding" not in dict(out.headers)


def test_vary_is_merged_not_duplicated():
    resp = answer(b"x" * 5000)
    resp.header("vary", "Origin")
    out = Encoder()(request(accept_encoding="identity"), resp)
    assert [v for k, v in out.headers if k == "vary"] == ["Origin, Accept-Encoding"]


def test_suffixed_etags():
    assert suffixed('"abc"', "gzip") == '"abc-gzip"'
    assert suffixed('W/"abc"', "br") == 'W/"abc-br"'
