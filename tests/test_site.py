"""The docs site: pages built into the tree, their content checked against the spec, the
records and the routes, and served by the worker with the right types, ETags and no traversal."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import lxml.html
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from exports.attack import technique_names
from generator.build.tree import build
from generator.site import apiref as site_apiref
from generator.site import links as site_links
from generator.site.charts import horizontal_bars, nice_ceiling
from generator.site.export import export_site
from generator.site.pages import PAGES
from generator.site.stats import window
from generator.store.records import iter_records
from generator.store.synthetic import synthetic_store
from worker.config import WorkerConfig, create_app
from worker.contract import coded, layout
from worker.contract.tiers import TIERS
from worker.http import Request

NOW = 1_795_000_000
SPEC = site_apiref.load_spec()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict, object]:
    root = tmp_path_factory.mktemp("site")
    store = synthetic_store(str(root / "store"), 1_500, now=NOW, days=45)
    result = build(store, root / "build", now=NOW)
    manifest = json.loads((root / "build" / layout.manifest_key(result.build_id)).read_bytes())
    return root, manifest, store


def read(root: Path, manifest: dict, key: str) -> bytes:
    """The text of a page (pages are stored compressed: ``worker/contract/coded.py``)."""
    sha = manifest["objects"][key][0]
    stored = (root / "build" / layout.object_key(sha)).read_bytes()
    return coded.decompress(stored) if key in manifest.get("coded", {}) else stored


def page(built, url: str) -> lxml.html.HtmlElement:
    root, manifest, _ = built
    return lxml.html.fromstring(read(root, manifest, layout.site_key(url)))


def test_every_page_and_asset_is_in_the_build(built):
    _, manifest, _ = built
    site = {k for k in manifest["objects"] if k.startswith("site/")}
    pages = {layout.site_key(p.url) for p in PAGES}
    assets = {
        f"site/static/{n}"
        for n in ("site.css", "keys.js", "links.js", "browse.js", "suppressed.js", "attack.json")
    }
    assert site == pages | assets


def test_the_browse_page_gets_the_bundled_attack_names(built):
    root, manifest, _ = built
    names = json.loads(read(root, manifest, "site/static/attack.json"))
    assert names == technique_names()
    assert names["T1059.001"] == "PowerShell"
    assert page(built, "/docs/browse/").xpath("//script/@src") == ["/static/browse.js"]


def test_the_suppression_report_page_reads_the_api_with_the_visitors_key(built):
    doc = page(built, "/docs/suppressed/")
    assert doc.xpath("//script/@src") == ["/static/suppressed.js"]
    assert "GET /api/v1/iocs/suppressed" in doc.text_content()
    assert doc.get_element_by_id("report-key").get("type") == "password"
    root, manifest, _ = built
    script = read(root, manifest, "site/static/suppressed.js").decode()
    assert 'fetch("/api/v1/iocs/suppressed"' in script and '"X-API-Key": key()' in script
    assert "innerHTML" not in script


def test_keys_page_tells_how_to_sign_in_on_a_self_hosted_install(built):
    signin = page(built, "/docs/keys/").get_element_by_id("signin").text_content()
    assert "account provider" not in signin
    assert "socdef session create --user you@example.org" in signin
    assert "Paste that line here" in signin and "sb-access-token" in signin


def test_pages_load_nothing_from_elsewhere_and_run_no_inline_script(built):
    for p in PAGES:
        doc = page(built, p.url)
        for el in doc.iter("script", "link", "img", "a", "form", "iframe"):
            for attr in ("src", "href", "action"):
                value = el.get(attr)
                if value is not None and el.tag != "a":
                    assert value.startswith(("/", "#", "data:")), (p.url, el.tag, value)
                if value is not None and el.tag == "a":
                    assert not urlsplit(value).netloc, (p.url, value)
        for script in doc.iter("script"):
            assert script.get("src") and not (script.text or "").strip()
        assert not doc.xpath("//@style") and not doc.xpath("//@*[starts-with(name(), 'on')]")
        assert len(doc.xpath("//h1")) == 1, p.url


def test_api_reference_has_every_operation_parameter_and_response(built):
    doc = page(built, "/docs/api/")
    for path, item in SPEC["paths"].items():
        for method, op in item.items():
            article = doc.get_element_by_id(op["operationId"])
            text = article.text_content()
            assert path in text and method.upper() in text
            for p in op.get("parameters", []):
                names = article.xpath(".//table[1]//td[1]/code/text()")
                assert p["name"] in names, (op["operationId"], p["name"])
            codes = article.xpath(".//table[last()]//td[1]/code/text()")
            assert sorted(codes) == sorted(op["responses"]), op["operationId"]
            for field in (
                op.get("requestBody", {})
                .get("content", {})
                .get("application/json", {})
                .get("schema", {})
                .get("properties", {})
            ):
                assert field in text
    for name in SPEC["components"]["schemas"]:
        assert doc.get_element_by_id(f"schema-{name}") is not None


def test_api_reference_marks_what_this_worker_does_not_serve(built):
    doc = page(built, "/docs/api/")
    served = site_links.served_operations()
    for path, item in SPEC["paths"].items():
        for method, op in item.items():
            badge = doc.get_element_by_id(op["operationId"]).xpath(".//h3/span[@class='badge off']")
            assert bool(badge) != site_links.is_served(method, path, served), op["operationId"]


def expected_links() -> set[tuple[str, str, str]]:
    """(tier, format label, type) for every cell that must be a link."""
    served = site_links.served_operations()
    out = set()
    for tier in TIERS.values():
        for fmt in site_links.FORMATS:
            typed = site_links._query_param(SPEC, fmt.path, "type") is not None
            if fmt.scope in tier.scopes and site_links.is_served("GET", fmt.path, served):
                out |= {
                    (tier.name, fmt.label, t) for t in site_links.TYPES if typed or t == layout.ALL
                }
    return out


def test_formats_page_links_every_tier_format_and_type(built):
    doc = page(built, "/docs/formats/")
    found = set()
    for tier in TIERS.values():
        section = doc.get_element_by_id(f"tier-{tier.name}")
        for a in section.xpath(".//a[@data-feed]"):
            url = urlsplit(a.get("href"))
            query = dict(parse_qsl(url.query))
            assert query["api_key"] == site_links.KEY_PLACEHOLDER
            assert int(query["limit"]) <= tier.max_limit
            fmt = next(
                f
                for f in site_links.FORMATS
                if f.path == url.path and all(query.get(k) == v for k, v in f.params)
            )
            assert fmt.scope in tier.scopes
            found.add((tier.name, fmt.label, query.get("type", layout.ALL)))
    assert found == expected_links()
    assert ("free", "TXT", "ipv4") in found and ("enterprise", "CSV", "cve") in found


def test_stats_chart_counts_the_records_of_each_day(built):
    _, _, store = built
    days = set(window(NOW))
    expected: Counter = Counter()
    for r in iter_records(store.articles(), store.sightings())[1]:
        day = time.strftime("%Y-%m-%d", time.gmtime(r.last_seen))
        if day in days:
            expected[(day, r.type)] += 1
    svg = (
        page(built, "/docs/stats/")
        .get_element_by_id("per-day-type")
        .xpath(".//*[local-name()='svg']")[0]
    )
    drawn = Counter()
    for title in svg.xpath(".//*[local-name()='title']/text()"):
        day, rest = title.split(" · ")
        type_, count = rest.rsplit(": ", 1)
        drawn[(day, type_)] = int(count.replace(",", ""))
    assert drawn == expected and sum(drawn.values()) > 0


def test_stats_top_lists_rank_by_articles_then_id(built):
    _, _, store = built
    cves = {
        r.value: r.sightings
        for r in iter_records(store.articles(), store.sightings())[1]
        if r.type == "cve"
    }
    ranked = sorted(cves.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    svg = page(built, "/docs/stats/").get_element_by_id("top-cves")
    titles = svg.xpath(".//*[local-name()='title']/text()")
    assert titles == [f"{v}: {n:,}" for v, n in ranked]


XML_TEXT = st.text(
    st.characters(
        codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="\ufffe\uffff"
    ),
    min_size=1,
    max_size=20,
)


@given(st.lists(st.tuples(XML_TEXT, st.integers(0, 10**9)), max_size=8))
def test_chart_text_is_escaped_and_the_svg_is_well_formed(rows):
    svg = etree.fromstring(str(horizontal_bars(rows, "<label>")).encode())
    titles = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}title")]
    assert titles == [f"{name}: {n:,}" for name, n in rows]
    assert svg.get("aria-label") == "<label>"


@given(st.integers(0, 10**12))
def test_axis_top_covers_the_value_in_about_four_ticks(value):
    top, step = nice_ceiling(value)
    assert top >= value and top % step == 0 and 1 <= top // step <= 5
    assert str(step).strip("0") in ("1", "2", "5")


def test_two_builds_give_the_same_site(built, tmp_path):
    _, manifest, store = built
    again = build(store, tmp_path / "b2", now=NOW)
    second = json.loads((tmp_path / "b2" / layout.manifest_key(again.build_id)).read_bytes())
    site = {k: v for k, v in manifest["objects"].items() if k.startswith("site/")}
    assert site == {k: v for k, v in second["objects"].items() if k.startswith("site/")}


def test_export_writes_the_site_as_served(built, tmp_path):
    root, manifest, _ = built
    count = export_site(root / "build", tmp_path / "public")
    files = sorted(
        p.relative_to(tmp_path / "public").as_posix()
        for p in (tmp_path / "public").rglob("*")
        if p.is_file()
    )
    assert count == len(files) == len([k for k in manifest["objects"] if k.startswith("site/")])
    assert (tmp_path / "public" / "docs" / "api" / "index.html").read_bytes() == read(
        root, manifest, "site/docs/api/index.html"
    )
    with pytest.raises(FileNotFoundError):
        export_site(tmp_path / "nothing", tmp_path / "out")


# --- the worker's site route, in process -------------------------------------------------


@pytest.fixture(scope="module")
def app(built):
    root, manifest, _ = built
    from generator.publish.upload import LocalDestination, publish

    publish(root / "build", LocalDestination(root / "bucket"))
    return create_app(WorkerConfig.for_data_dir(root))


def get(app, path: str, headers: dict[str, str] | None = None, method: str = "GET"):
    req = Request(method, path, {}, {"host": "127.0.0.1", **(headers or {})}, "http", "-")
    return app.respond(req, "req_test")


@pytest.mark.parametrize(
    ("path", "ctype"),
    [
        ("/", "text/html; charset=utf-8"),
        ("/docs/", "text/html; charset=utf-8"),
        ("/docs/api/", "text/html; charset=utf-8"),
        ("/docs/keys/", "text/html; charset=utf-8"),
        ("/static/site.css", "text/css; charset=utf-8"),
        ("/static/keys.js", "text/javascript; charset=utf-8"),
    ],
)
def test_site_objects_are_served_without_a_key(app, built, path, ctype):
    root, manifest, _ = built
    resp = get(app, path)
    assert resp.status == 200 and resp.content_type == ctype
    assert resp.body == read(root, manifest, layout.site_key(path))
    headers = dict(resp.headers)
    text = hashlib.sha256(resp.body).hexdigest()  # the identity tag names the page's text
    assert headers["etag"] == f'"{text[:32]}"'
    assert headers["x-content-type-options"] == "nosniff"
    assert ("content-security-policy" in headers) == ctype.startswith("text/html")
    again = get(app, path, {"if-none-match": headers["etag"]})
    assert again.status == 304 and again.body == b""


def test_a_directory_without_its_slash_is_redirected(app):
    resp = get(app, "/docs/api")
    assert resp.status == 301 and dict(resp.headers)["location"] == "/docs/api/"
    assert get(app, "/docs").status == 301


@pytest.mark.parametrize(
    "path",
    [
        "/docs/../",
        "/docs/..",
        "/static/..",
        "/static/../builds",
        "/docs/api/index.html",
        "/static/%2e%2e",
        "/docs/nope/",
        "/static/missing.css",
        "/docs/keys/../../secret.key",
        "/static/site.css/",
        "/docs/\x00/",
    ],
)
def test_only_site_objects_of_the_manifest_are_reachable(app, path):
    resp = get(app, path)
    assert resp.status == 404, path
    body = json.loads(resp.body)
    assert body["error"]["code"] == "not_found" and body["error"]["request_id"] == "req_test"


def test_site_pages_need_no_key_but_the_api_still_does(app):
    assert get(app, "/docs/formats/").status == 200
    assert get(app, "/api/v1/iocs").status == 401


def test_links_in_pages_point_at_pages_that_exist(app, built):
    for p in PAGES:
        for href in page(built, p.url).xpath("//a/@href | //link/@href | //script/@src"):
            url = urlsplit(href)
            if url.path.startswith(("/docs", "/static")) or url.path == "/":
                assert get(app, url.path).status == 200, (p.url, href)
            elif url.path == "/healthz":
                assert get(app, url.path).status == 200
            elif href.startswith(("#", "data:")):
                continue
            else:
                assert re.match(r"^/(api/v1|feeds)/", url.path), href
