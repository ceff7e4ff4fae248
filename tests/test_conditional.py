"""One conditional-GET helper (``worker.http.conditional``) and one place for cache policies."""

from __future__ import annotations

import ast
from pathlib import Path

from worker.http import PRIVATE, PUBLIC, Request, conditional, strong_etag

WORKER = Path(__file__).resolve().parent.parent / "worker"


def _req(inm: str | None = None) -> Request:
    headers = {"if-none-match": inm} if inm is not None else {}
    return Request("GET", "/x", {}, headers, "http", "-")


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


def test_no_route_writes_its_own_cache_policy_or_etag_check():
    """Only worker/http.py names a cache-control value or calls ``etag_matches`` for a route
    (``worker/encoding.py`` re-checks a tag after compression; ``keys_api`` answers no-store)."""
    for path in sorted(WORKER.glob("*.py")):
        if path.name in ("http.py", "encoding.py"):
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
