"""If-None-Match on every route family that sends an ETag, against RFC 9110 § 13.1.2: the weak
comparison (``W/"x"`` matches ``"x"``), ``*`` matches any current representation, and a list
matches when any of its members does, whatever the optional whitespace around the commas. The
tag compared is the selected representation's: for a client that accepts gzip, the gzip one's
where the 200 is compressed, and the 304 names that tag (§ 15.4.5)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tests.support import published
from tests.test_worker_hot import call
from worker.config import WorkerConfig, create_app
from worker.contract import taxii_common as tc
from worker.endpoints.search import cacheable
from worker.http import Request, etag_matches

TAXII = [(b"accept", b"application/taxii+json;version=2.1")]
COLLECTION = f"/api/taxii2/api/collections/{tc.collection_id('all')}"

# (path, query, extra headers): one or more per family
ROUTES = [
    ("/api/v1/iocs", b"", []),
    ("/api/v1/iocs", b"format=csv", []),
    ("/api/v1/iocs/stats", b"", []),
    ("/api/v1/iocs/stix", b"", []),
    ("/api/v1/iocs/misp", b"", []),
    ("/feeds/misp/manifest.json", b"", []),
    ("/api/v1/iocs/cef", b"", []),
    ("/api/v1/iocs/openioc", b"", []),
    ("/api/v1/iocs/range/abcde", b"", []),
    (f"{COLLECTION}/objects/", b"", TAXII),
    (f"{COLLECTION}/manifest/", b"", TAXII),
    ("/", b"", []),
    ("/docs/api/", b"", []),
    ("/static/site.css", b"", []),
]
IDS = [f"{p}?{q.decode()}" if q else p for p, q, _ in ROUTES]

# If-None-Match values built around the current tag T (quotes included): the ones that match ...
MATCHING = [
    "{T}",
    "W/{T}",
    "*",
    " * ",
    '"nope", {T}',
    '"nope",{T}',
    '{T}, "nope"',
    'W/"nope", W/{T}',
    ' \t"a" ,\tW/{T} , "b"\t',
    '"a",,{T}',  # empty list members are allowed (RFC 9110 § 5.6.1.2)
]
# ... and the ones that do not
NOT_MATCHING = [
    '"nope"',
    'W/"nope"',
    '"nope", W/"other"',
    "{bare}",  # the opaque tag without its quotes is no entity tag
    "{T}x",
    '"x{bare}"',
]


def fill(template: str, tag: str) -> str:
    return template.replace("{T}", tag).replace("{bare}", tag.strip('"'))


def test_the_weak_comparison_by_itself() -> None:
    assert etag_matches('W/"abc"', '"abc"')
    assert etag_matches('"abc"', '"abc"')
    assert etag_matches("*", '"abc"') and etag_matches("  *\t", '"abc"')
    assert etag_matches('"x", "abc"', '"abc"') and etag_matches('"x",W/"abc" ,"y"', '"abc"')
    assert etag_matches('\t"x" ,\t "abc"  ', '"abc"')
    assert not etag_matches('"abcd"', '"abc"') and not etag_matches('"ab"', '"abc"')
    assert not etag_matches("abc", '"abc"')
    assert not etag_matches(None, '"abc"') and not etag_matches("", '"abc"')
    assert not etag_matches('"x", "y"', '"abc"')


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    data = published(tmp_path_factory.mktemp("etag"), iocs=300, days=10)
    return create_app(
        WorkerConfig.for_data_dir(
            Path(data / "worker"), bucket=str(data / "bucket"), limiter="memory", limit_scale=100
        )
    )


@pytest.fixture(scope="module")
def auth(app) -> list[tuple[bytes, bytes]]:
    key, _ = app.keys.create("ana@example.org", "enterprise")
    return [(b"authorization", f"Bearer {key}".encode())]


@pytest.mark.parametrize("coding", ["identity", "gzip"])
@pytest.mark.parametrize(("path", "query", "extra"), ROUTES, ids=IDS)
def test_if_none_match_on_every_route(app, auth, path, query, extra, coding) -> None:
    headers = [*auth, *extra, (b"accept-encoding", coding.encode())]
    status, first, full = call(app, headers, path=path, query=query)
    assert status == 200 and full, (path, status, full[:200])
    tag = first["etag"]
    assert tag.startswith('"') and tag.endswith('"') and len(tag) > 2
    coded = bool(first.get("content-encoding"))
    matching, not_matching = MATCHING, NOT_MATCHING
    if coded:  # another representation: a strong tag of its own, which the identity one is not
        plain = call(
            app, [*auth, *extra, (b"accept-encoding", b"identity")], path=path, query=query
        )[1]["etag"]
        assert tag != plain and not etag_matches(plain, tag)
        matching = [*MATCHING, f"{plain}, {{T}}", f"W/{plain},{{T}}", f'{{T}}, "nope", {plain}']
        not_matching = [*NOT_MATCHING, plain, f"W/{plain}", f'"nope", {plain}']
    for template in matching:
        value = fill(template, tag)
        for _ in range(2):  # the full path, then any kept answer
            status, got, body = call(
                app, [*headers, (b"if-none-match", value.encode())], path=path, query=query
            )
            assert (status, body) == (304, b""), (value, status)
            # the 304 names the tag the 200 carried: the gzip one where the 200 was gzip
            # (RFC 9110 § 15.4.5), for ``*`` and lists holding the identity tag too
            assert got["etag"] == tag, value
            assert "accept-encoding" in got.get("vary", "").lower() or not coded, value
    for template in not_matching:
        value = fill(template, tag)
        for _ in range(2):
            status, got, again = call(
                app, [*headers, (b"if-none-match", value.encode())], path=path, query=query
            )
            assert status == 200 and got["etag"] == tag, (value, status)
            assert again == full and got.get("content-encoding") == first.get("content-encoding")


def test_a_coded_range_answer_is_304_under_its_coded_tag(app) -> None:
    """The search family's conditional GET (``worker.endpoints.search.cacheable``) with an answer large
    enough to be compressed: the range answers above are small (300 IOCs over 16⁵ prefixes)."""
    build = app.builds.current()
    body = b'{"data":[' + b",".join(b'{"hash":"%064x"}' % i for i in range(40)) + b"]}"

    def answer(inm: str | None) -> tuple[int, dict[str, str], bytes]:
        headers = {"accept-encoding": "gzip", **({"if-none-match": inm} if inm else {})}
        req = Request("GET", "/api/v1/iocs/range/abcde", {}, headers, "http", "-")
        resp = app.encoder(req, cacheable(req, build, body, "range|abcde"))
        return resp.status, dict(resp.headers), resp.body

    status, first, zipped = answer(None)
    tag = first["etag"]
    assert status == 200 and first["content-encoding"] == "gzip" and tag.endswith('-gzip"')
    assert gzip.decompress(zipped) == body
    plain = tag.removesuffix('-gzip"') + '"'
    for inm in ("*", tag, f"W/{tag}", f"{plain}, {tag}", f'"nope",\tW/{plain} ,{tag}'):
        status, got, _ = answer(inm)
        assert (status, got["etag"]) == (304, tag), inm
    for inm in (plain, f"W/{plain}", f'"nope", {plain}'):
        status, got, again = answer(inm)
        assert (status, got["etag"], again) == (200, tag, zipped), inm
