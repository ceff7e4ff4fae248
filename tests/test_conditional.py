"""One conditional-GET helper (``worker.encoding.conditional``) and one place for cache policies.

Its 304 is for the representation a 200 would be: RFC 9110 § 13.1.2 compares ``If-None-Match``
with the selected representation's tag, and § 15.4.5 wants the 304 to carry the ``ETag`` the 200
would have carried; for a client that accepts gzip, a large text answer is the gzip one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from worker.encoding import MIN_SIZE, Encoder, conditional
from worker.http import PRIVATE, PUBLIC, Request, Response, strong_etag

WORKER = Path(__file__).resolve().parent.parent / "worker"


def _req(inm: str | None = None, coding: str | None = None) -> Request:
    headers = {"if-none-match": inm} if inm is not None else {}
    if coding is not None:
        headers["accept-encoding"] = coding
    return Request("GET", "/x", {}, headers, "http", "-")


LARGE = b"x" * MIN_SIZE  # compressed for a client that accepts gzip
SMALL = b"x" * (MIN_SIZE - 1)  # sent as it is to every client


def never() -> bytes:
    raise AssertionError("this 304 must not render its body")


def answer(req: Request, content_type: str, body: bytes | None) -> Response:
    """The route's answer after the encoding step, as the client receives it."""
    made = conditional(
        req, '"abc"', content_type, never if body is None else lambda: body, modified=None
    )
    return Encoder()(req, made)


def test_a_fresh_answer_is_200_with_validators_in_order():
    resp = conditional(_req(), '"abc"', "text/csv", lambda: b"body", modified=0)
    assert (resp.status, resp.body, resp.content_type) == (200, b"body", "text/csv")
    assert resp.headers == [
        ("etag", '"abc"'),
        ("last-modified", "Thu, 01 Jan 1970 00:00:00 GMT"),
        ("cache-control", PRIVATE),
    ]


def test_a_matching_tag_is_304_without_computing_the_body():
    def body() -> bytes:
        raise AssertionError("a 304 must not render its body")

    resp = conditional(_req('W/"abc"'), '"abc"', "text/html", body, modified=None, cache=PUBLIC)
    assert (resp.status, resp.body) == (304, b"")
    assert resp.headers == [("etag", '"abc"'), ("cache-control", PUBLIC)]


@pytest.mark.parametrize(
    "inm", ["*", " * ", '"abc"', 'W/"abc"', '"x", "abc-gzip"', '"abc", "abc-gzip"']
)
def test_a_304_names_the_tag_of_the_coded_representation(inm):
    """A client that accepts gzip would get the gzip representation: ``*`` and its tag match it
    and the 304 names ``"abc-gzip"``; the identity tag alone does not match it (below)."""
    resp = answer(_req(inm, "gzip"), "application/json", LARGE)
    if inm.strip() == "*" or "abc-gzip" in inm:
        assert (resp.status, resp.body) == (304, b"")
        assert dict(resp.headers)["etag"] == '"abc-gzip"'
        assert "accept-encoding" in dict(resp.headers)["vary"].lower()
    else:
        assert resp.status == 200 and dict(resp.headers)["content-encoding"] == "gzip"
        assert dict(resp.headers)["etag"] == '"abc-gzip"'


@pytest.mark.parametrize("inm", ['"abc-gzip"', 'W/"abc-gzip"', '"x",\tW/"abc-gzip"'])
def test_a_listed_coded_tag_is_304_without_computing_the_body(inm):
    resp = answer(_req(inm, "gzip"), "application/json", None)
    assert (resp.status, dict(resp.headers)["etag"]) == (304, '"abc-gzip"')


@pytest.mark.parametrize(
    ("coding", "content_type", "body"),
    [
        ("gzip", "application/json", SMALL),  # too small to compress: identity for everyone
        ("gzip", "application/octet-stream", None),  # never compressed: no body needed
        ("identity", "application/json", None),
        (None, "text/csv", None),
    ],
)
def test_a_304_names_the_identity_tag_when_the_200_would_be_identity(coding, content_type, body):
    for inm in ("*", '"abc"', '"x", W/"abc"'):
        resp = answer(_req(inm, coding), content_type, body)
        assert (resp.status, dict(resp.headers)["etag"]) == (304, '"abc"'), inm
    if body is None:  # no coded representation: a coded tag names nothing current
        resp = answer(_req('"abc-gzip"', coding), content_type, SMALL)
        assert (resp.status, dict(resp.headers)["etag"]) == (200, '"abc"')


def test_a_body_computed_to_choose_the_tag_is_computed_once():
    calls = []

    def body() -> bytes:
        calls.append(1)
        return LARGE

    resp = conditional(_req('"abc"', "gzip"), '"abc"', "text/csv", body, modified=None)
    assert (resp.status, resp.body, len(calls)) == (200, LARGE, 1)


def test_no_route_writes_its_own_cache_policy_or_etag_check():
    """Only worker/http.py names a cache-control value and only ``worker/encoding.py``'s
    ``conditional`` calls ``etag_matches`` for a route (``keys_api`` answers no-store)."""
    paths = sorted(WORKER.rglob("*.py"))
    assert any(p.parent.name == "endpoints" for p in paths)  # the route modules are read
    for path in paths:
        if path in (WORKER / "http.py", WORKER / "encoding.py"):
            continue
        text = path.read_text()
        assert "must-revalidate" not in text and "max-age=" not in text, path.name
        calls = [
            n
            for n in ast.walk(ast.parse(text))
            if isinstance(n, ast.Call)
            and getattr(n.func, "id", getattr(n.func, "attr", None)) == "etag_matches"
        ]
        assert not calls, path.name


def test_a_strong_etag_is_24_hex_digits_in_quotes_of_its_identity():
    tag = strong_etag("build|range|abcde")
    assert tag == strong_etag(b"build|range|abcde") != strong_etag("build|range|abcdf")
    assert len(tag) == 26 and tag[0] == tag[-1] == '"' and int(tag[1:-1], 16) >= 0
