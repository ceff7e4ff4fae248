"""HTTP for machines, against a real worker: every 401 challenges for Basic and Bearer; errors
come in the client's format (one line of text on text routes, JSON otherwise, TAXII's error on
TAXII); text pages carry ``Link: rel="next"`` and a total; offset paging stays on the build it
began on across a publish; ``type=ipv4,ipv6`` is one list."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from generator.store.synthetic import synthetic_store
from tests.conftest import build_and_publish, poll_until
from tests.support import bearer, new_key, published, serving


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return published(tmp_path_factory.mktemp("machines"), iocs=1_200, days=20)


@pytest.fixture(scope="module")
def server(data_dir, tmp_path_factory):
    yield from serving(data_dir, tmp_path_factory, "--limit-scale", "100")


@pytest.fixture(scope="module")
def key(data_dir) -> dict[str, str]:
    return bearer(new_key(data_dir, "pro"))


def get(server, path: str, headers: dict[str, str] | None = None, **params) -> httpx.Response:
    return httpx.get(server.url + path, headers=headers or {}, params=params, timeout=60)


KEY_ROUTES = [
    "/api/v1/iocs",
    "/api/v1/iocs/stix",
    "/api/v1/feeds",
    "/api/v1/feeds/ip.txt",
    "/api/v1/iocs/cef",
    "/api/taxii2/api/",
    "/api/taxii2/api/collections/",
]


@pytest.mark.parametrize("path", KEY_ROUTES)
def test_every_401_challenges_for_basic_and_bearer(server, path):
    resp = get(server, path)
    assert resp.status_code == 401
    (challenge,) = resp.headers.get_list("www-authenticate")
    schemes = [
        part.strip().split()[0] for part in re.split(r",\s*(?=[A-Za-z]+(?:\s|$))", challenge)
    ]
    assert schemes == ["Basic", "Bearer"]


def test_text_routes_answer_errors_as_one_line_of_text(server, key):
    resp = get(server, "/api/v1/iocs", key, format="txt", type="bogus")
    assert resp.status_code == 400
    assert resp.headers["content-type"] == "text/plain; charset=utf-8"
    first = resp.text.splitlines()[0]
    assert first.startswith("400 invalid_parameter: Invalid IOC type: bogus [request_id req_")
    assert resp.headers["x-request-id"] in first
    missing = get(server, "/api/v1/feeds/ip.txt")
    assert missing.headers["content-type"].startswith("text/plain")
    assert missing.text.startswith("401 missing_api_key: ")


def test_a_client_asking_for_json_gets_json_on_a_text_route(server, key):
    resp = get(server, "/api/v1/iocs", key | {"Accept": "application/json"}, format="csv", type="x")
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_parameter"


def test_json_and_taxii_routes_keep_their_error_shapes(server, key):
    assert (
        get(server, "/api/v1/iocs", key, type="bogus").json()["error"]["code"]
        == "invalid_parameter"
    )
    taxii = get(server, "/api/taxii2/api/collections/nope/")
    assert taxii.headers["content-type"] == "application/taxii+json;version=2.1"
    assert taxii.json()["http_status"] == "401"


def next_link(resp: httpx.Response) -> str | None:
    found = re.search(r'<([^>]+)>; rel="next"', resp.headers.get("link", ""))
    return found[1] if found else None


def walk(server, key, **params) -> tuple[list[str], list[httpx.Response]]:
    """Every page of a text walk, following ``Link: rel="next"``."""
    pages = [get(server, "/api/v1/iocs", key, **params)]
    while (link := next_link(pages[-1])) is not None:
        pages.append(httpx.get(link, headers=key, timeout=60))
    assert all(p.status_code == 200 for p in pages)
    return [line for p in pages for line in p.text.splitlines()], pages


@pytest.mark.parametrize("fmt", ["txt", "csv"])
def test_text_pages_link_the_next_page_and_carry_the_total(server, key, fmt):
    total = get(server, "/api/v1/iocs", key, limit=1).json()["meta"]["total"]
    lines, pages = walk(server, key, format=fmt, limit=250)
    rows = [line for line in lines if not line.startswith("id,type,value")]
    assert len(pages) == -(-total // 250) > 1
    assert {p.headers["x-total-count"] for p in pages} == {str(total)}
    assert len(rows) == total and len(set(rows)) == total
    assert "build=" in pages[0].headers["link"]


def test_type_ipv4_ipv6_is_one_list_of_both(server, key):
    both = get(server, "/api/v1/iocs", key, type="ipv6,ipv4", limit=1000).json()
    v4 = get(server, "/api/v1/iocs", key, type="ipv4", limit=1).json()["meta"]["total"]
    v6 = get(server, "/api/v1/iocs", key, type="ipv6", limit=1).json()["meta"]["total"]
    assert both["meta"]["total"] == v4 + v6 > 0
    assert {r["type"] for r in both["data"]} == {"ipv4", "ipv6"}
    assert both["meta"]["filters"]["type"] == "ipv4,ipv6"
    bad = get(server, "/api/v1/iocs", key, type="ipv4,domain")
    assert bad.status_code == 400
    assert bad.json()["error"]["details"]["valid_type_lists"] == ["ipv4,ipv6"]


def test_paging_stays_on_its_build_across_a_publish(data_dir, tmp_path_factory):
    """A walk begun on build A ends on build A even when B is published half-way, so its pages
    neither overlap nor skip; a build no longer kept answers 410."""
    data = published(tmp_path_factory.mktemp("pinned"), iocs=600, days=5)
    srv_gen = serving(data, tmp_path_factory, "--limit-scale", "100")
    srv = next(srv_gen)
    try:
        headers = bearer(new_key(data, "pro"))
        reference, _ = walk(srv, headers, format="txt", limit=100)
        first = get(srv, "/api/v1/iocs", headers, format="txt", limit=100)
        build_a = re.search(r"build=([^&>]+)", first.headers["link"])[1]
        synthetic_store(str(data / "store"), 900, now=int(time.time()) + 3_600, days=5, seed=11)
        build_and_publish(data)
        poll_until(
            lambda: (
                get(srv, "/api/v1/iocs", headers, limit=1).json()["meta"]["feed_version"] != build_a
            ),
            what="the worker follows the new build",
        )
        lines = first.text.splitlines()
        link = next_link(first)
        while link is not None:
            page = httpx.get(link, headers=headers, timeout=60)
            lines += page.text.splitlines()
            link = next_link(page)
        assert lines == reference
        gone = get(
            srv,
            "/api/v1/iocs",
            headers,
            format="txt",
            offset=100,
            build="20000101T000000Z-000000000000",
        )
        assert gone.status_code == 410 and gone.text.startswith("410 build_gone: ")
    finally:
        srv_gen.close()
