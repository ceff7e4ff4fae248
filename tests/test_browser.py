"""The docs site in a real browser: headless Chromium (the system's, driven by Playwright)
against a real worker process. Screenshots land in artifacts/screenshots/.

Skips with the reason when Playwright or Chromium is missing or Chromium cannot start.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import (
    ROOT,
    poll_until,
    socdef_here,
)
from tests.support import bearer, new_key, published, serving

CHROMIUM = os.environ.get("SOCDEF_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = ROOT / "artifacts" / "screenshots"
USER = "dana@example.org"

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')"
)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or make system-deps)")
    manager = sync_api.sync_playwright().start()
    try:
        chromium = manager.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=60_000)
    except sync_api.Error as exc:
        manager.stop()
        pytest.skip(f"Chromium at {CHROMIUM} cannot start: {str(exc).splitlines()[0]}")
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield chromium
    chromium.close()
    manager.stop()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return published(tmp_path_factory.mktemp("browser"), iocs=1_200, days=40)


@pytest.fixture(scope="module")
def server(data_dir, tmp_path_factory):
    yield from serving(data_dir, tmp_path_factory)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 900}, accept_downloads=True)
    tab = context.new_page()
    tab.errors = []
    tab.on("pageerror", lambda exc: tab.errors.append(str(exc)))
    yield tab
    context.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.mark.parametrize(
    ("path", "heading", "name"),
    [
        ("/", "Indicators of compromise", "home"),
        ("/docs/", "Getting started", "getting-started"),
        ("/docs/api/", "API reference", "api-reference"),
        ("/docs/formats/", "Formats", "formats"),
        ("/docs/stats/", "Statistics", "stats"),
        ("/docs/browse/", "Browse indicators", "browse-no-key"),
    ],
)
def test_pages_render_with_their_styles_and_no_script_errors(page, server, path, heading, name):
    resp = page.goto(server.url + path)
    assert resp.status == 200
    assert heading in page.locator("h1").inner_text()
    # the stylesheet applied: the header bar is dark, not the browser's default
    assert (
        page.eval_on_selector("header.top", "e => getComputedStyle(e).backgroundColor")
        == "rgb(16, 33, 63)"
    )
    assert page.locator("nav a", has_text="API reference").count() == 1
    shot(page, name)
    assert page.errors == []


def test_stats_charts_are_drawn_inline(page, server):
    page.goto(server.url + "/docs/stats/")
    bars = page.locator("#per-day-type svg rect")
    assert bars.count() > 10
    box = bars.first.bounding_box()
    assert box is not None and box["height"] > 0 and box["width"] > 0


def test_download_link_carries_the_typed_key_and_returns_the_feed(page, server, data_dir):
    key = new_key(data_dir, "free")
    page.goto(server.url + "/docs/formats/")
    link = page.locator("#tier-free a[data-feed][href*='type=ipv4'][href*='format=txt']")
    assert "api_key=YOUR_KEY" in link.get_attribute("href")
    page.fill("#api-key", key)
    assert f"api_key={key}" in link.get_attribute("href")
    assert "YOUR_KEY" not in page.locator("#tier-free").inner_html()
    shot(page, "formats-with-key")
    href = link.get_attribute("href")
    with page.expect_navigation() as nav:
        link.click()
    resp = nav.value
    assert resp.status == 200 and resp.headers["content-type"].startswith("text/plain")
    expected = httpx.get(
        server.url + href.split("&api_key=")[0],
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert expected.status_code == 200
    assert resp.body() == expected.content and expected.content.count(b"\n") > 0
    assert all(line.count(".") == 3 for line in resp.text().splitlines())  # IPv4 values
    shot(page, "download-txt")


def test_csv_link_downloads_the_feed_file(page, server, data_dir, tmp_path):
    key = new_key(data_dir, "pro")
    page.goto(server.url + "/docs/formats/")
    page.fill("#api-key", key)
    link = page.locator("#tier-pro a[data-feed][href*='type=domain'][href*='format=csv']")
    with page.expect_download() as info:
        link.click()
    saved = tmp_path / "feed.csv"
    info.value.save_as(saved)
    lines = saved.read_text().splitlines()
    assert lines[0].startswith("id,type,value,confidence")
    assert len(lines) > 1 and all(",domain," in line for line in lines[1:])


def test_links_work_without_javascript(browser, server, data_dir):
    context = browser.new_context(java_script_enabled=False)
    tab = context.new_page()
    tab.goto(server.url + "/docs/formats/")
    href = tab.locator("#tier-free a[data-feed]").first.get_attribute("href")
    assert href.endswith("api_key=YOUR_KEY")
    key = new_key(data_dir, "free")
    resp = tab.goto(server.url + href.replace("YOUR_KEY", key))
    assert resp.status == 200 and resp.json()["meta"]["limit"] == 100
    context.close()


def session_token(data_dir: Path, user: str) -> str:
    return socdef_here("session", "create", "--user", user, data_dir=data_dir).stdout.strip()


def test_key_page_creates_shows_usage_and_revokes_a_key(page, server, data_dir):
    socdef_here("users", "set-tier", USER, "pro", data_dir=data_dir)
    session = {"sb-access-token": session_token(data_dir, USER)}
    page.context.add_cookies(
        [{"name": "sb-access-token", "value": session["sb-access-token"], "url": server.url}]
    )
    page.goto(server.url + "/docs/keys/")
    page.wait_for_selector("#account", state="visible")
    assert page.locator("#signin").is_hidden()
    page.fill("#key-name", "Browser SIEM")
    page.fill("#key-days", "30")
    page.click("#create-form button[type=submit]")
    page.wait_for_selector("#new-key", state="visible")
    key = page.locator("#new-key-value").inner_text().strip()
    assert key.startswith("sk_live_")
    row = page.locator("#key-rows tr", has_text="Browser SIEM")
    row.wait_for()
    assert "pro" in row.inner_text() and "active" in row.inner_text()
    # the new key works, and its use shows up in the usage chart
    for _ in range(3):
        assert (
            httpx.get(
                server.url + "/api/v1/iocs", headers={"X-API-Key": key}, timeout=30
            ).status_code
            == 200
        )

    def counted() -> bool:  # the worker flushes its usage log every second
        listed = httpx.get(server.url + "/api/v1/keys", cookies=session, timeout=30).json()
        return any(k["name"] == "Browser SIEM" and k["total_requests"] == 3 for k in listed["data"])

    poll_until(counted, what="the three requests in the key's usage")
    row.locator("button", has_text="Usage").click()
    page.wait_for_selector("#usage", state="visible")
    page.locator("#usage-chart svg rect").first.wait_for()
    assert "Browser SIEM" in page.locator("#usage-name").inner_text()
    assert page.locator("#usage-summary dd").first.inner_text() == "3"
    shot(page, "keys-created")
    revoke = row.locator("button", has_text="Revoke")
    revoke.click()
    assert revoke.inner_text() == "Confirm revoke"
    revoke.click()
    sync_api.expect(page.locator("#key-rows tr", has_text="Browser SIEM")).to_contain_text(
        "revoked"
    )
    shot(page, "keys-revoked")
    deadline = time.monotonic() + 10  # revocations are seen within the key cache's 5 s
    while (
        httpx.get(server.url + "/api/v1/iocs", headers={"X-API-Key": key}, timeout=30).status_code
        != 401
    ):
        assert time.monotonic() < deadline, "the revoked key still works"
        time.sleep(0.5)
    assert page.errors == []


def test_key_page_asks_to_sign_in_then_accepts_a_pasted_session(page, server, data_dir):
    page.goto(server.url + "/docs/keys/")
    page.wait_for_selector("#signin", state="visible")
    assert page.locator("#account").is_hidden()
    shot(page, "keys-signed-out")
    page.fill("#session-token", session_token(data_dir, "erin@example.org"))
    page.click("#session-form button[type=submit]")
    page.wait_for_selector("#account", state="visible")
    assert page.locator("#no-keys").is_visible()
    page.click("#sign-out")
    page.wait_for_selector("#signin", state="visible")


def use_key(page, server, key: str) -> None:
    page.goto(server.url + "/docs/browse/")
    page.fill("#browse-key", key)
    page.click("#browse-key-form button[type=submit]")


def test_browse_lists_the_latest_indicators_of_the_api(page, server, data_dir):
    key = new_key(data_dir, "pro")
    page.goto(server.url + "/docs/browse/")
    assert page.locator("#latest").is_hidden()  # nothing is fetched without a key
    use_key(page, server, key)
    rows = page.locator("#ioc-rows tr")
    rows.first.wait_for()
    api = httpx.get(
        server.url + "/api/v1/iocs", params={"limit": 50}, headers=bearer(key), timeout=30
    ).json()
    assert rows.count() == len(api["data"]) == 50
    for i in (0, 49):
        cells = rows.nth(i).locator("td").all_inner_texts()
        ioc = api["data"][i]
        assert cells[:2] == [ioc["type"], ioc["value"]]
        assert cells[2] == ioc["first_seen"][:16].replace("T", " ")
        assert cells[3] == ioc["last_seen"][:16].replace("T", " ")
        assert cells[4:7] == [ioc["confidence"], ioc["status"], ioc["source"]["article_title"]]
        href = rows.nth(i).locator("td").nth(6).locator("a").get_attribute("href")
        assert href == ioc["source"]["article_url"]
    total = f"{api['meta']['total']:,}"
    assert f"Showing 50 of {total}" in page.locator("#browse-total").inner_text()
    shot(page, "browse")
    # the type filter asks the API for that type only
    page.select_option("#browse-type", "domain")
    sync_api.expect(page.locator("#ioc-rows tr").first.locator("td").first).to_have_text("domain")
    assert set(page.locator("#ioc-rows tr td:first-child").all_inner_texts()) == {"domain"}
    domains = httpx.get(
        server.url + "/api/v1/iocs",
        params={"limit": 1, "type": "domain"},
        headers=bearer(key),
        timeout=30,
    ).json()["meta"]["total"]
    assert domains > 50
    page.click("#browse-more")
    sync_api.expect(rows).to_have_count(min(100, domains), timeout=10_000)
    assert page.locator("#browse-more").is_hidden() == (domains <= 100)
    assert page.errors == []


def test_browse_refuses_a_bad_key_with_the_api_message(page, server):
    use_key(page, server, "sk_live_" + "0" * 40)
    message = page.locator("#browse-message")
    sync_api.expect(message).to_have_class("notice error")
    assert "key" in message.inner_text().lower()
    assert page.locator("#ioc-rows tr").count() == 0
    assert page.locator("#browse-forget").is_hidden()  # the refused key is not kept


def story_with_technique(server, key: str) -> tuple[str, dict]:
    """A value whose search answer holds a technique, a CVE or related indicators."""
    listed = httpx.get(
        server.url + "/api/v1/iocs",
        params={"limit": 300, "type": "domain"},
        headers=bearer(key),
        timeout=30,
    ).json()["data"]
    for ioc in listed:
        found = httpx.get(
            server.url + "/api/v1/iocs/search",
            params={"q": ioc["value"]},
            headers=bearer(key),
            timeout=30,
        ).json()["data"]
        techniques = {t for m in found["matches"] for t in m["mitre_techniques"]}
        if techniques and found["relatedIOCs"]:
            return ioc["value"], found
    pytest.fail("no indicator with techniques and related indicators in the sample store")


def test_indicator_view_tells_its_whole_story(page, server, data_dir):
    from exports.attack import technique_name

    key = new_key(data_dir, "pro")
    value, found = story_with_technique(server, key)
    use_key(page, server, key)
    page.locator("#ioc-rows tr").first.wait_for()
    page.goto(server.url + "/docs/browse/#q=" + value)
    page.wait_for_selector("#indicator", state="visible")
    assert page.locator("#ind-value").inner_text() == value
    matches = found["matches"]
    rows = page.locator("#ind-rows tr")
    sync_api.expect(rows).to_have_count(len(matches))
    for i, m in enumerate(matches):
        cells = rows.nth(i).locator("td").all_inner_texts()
        assert cells[0] == m["source"]["article_title"] and cells[1] == m["source"]["feed_name"]
        assert cells[6] == (m.get("context") or "—")
    summary = page.locator("#ind-summary").inner_text()
    assert f"Sightings (articles)\n{len(matches)}" in summary
    techniques = sorted({t for m in matches for t in m["mitre_techniques"]})
    shown = page.locator("#ind-techniques li").all_inner_texts()
    for t in techniques:
        name = technique_name(t)
        assert f"{t} {name}" in shown if name else any(s.startswith(t) for s in shown)
    assert page.locator("#ind-related-rows tr").count() == len(found["relatedIOCs"])
    cves = sorted({r["value"] for r in matches + found["relatedIOCs"] if r["type"] == "cve"})
    hrefs = page.locator("#ind-cves a").evaluate_all("els => els.map(a => a.href)")
    assert hrefs == [f"https://nvd.nist.gov/vuln/detail/{c}" for c in cves]
    shot(page, "indicator")
    # a related indicator opens its own story
    related = found["relatedIOCs"][0]["value"]
    page.locator("#ind-related-rows a", has_text=related).first.click()
    sync_api.expect(page.locator("#ind-value")).to_have_text(related)
    page.click("#ind-back")
    page.wait_for_selector("#latest", state="visible")
    assert page.errors == []


def test_indicator_view_says_when_the_feed_does_not_know_a_value(page, server, data_dir):
    use_key(page, server, new_key(data_dir, "free"))
    page.locator("#ioc-rows tr").first.wait_for()
    page.fill("#browse-lookup", "never-reported.example")
    page.click("#browse-filter button[type=submit]")
    sync_api.expect(page.locator("#browse-message")).to_contain_text(
        "no indicator never-reported.example"
    )
    assert page.locator("#ind-rows tr").count() == 0


def test_stats_page_names_the_techniques(page, server):
    from exports.attack import technique_name

    page.goto(server.url + "/docs/stats/")
    rows = page.locator("#technique-names tbody tr")
    assert rows.count() > 0
    for cells in (rows.nth(i).locator("td").all_inner_texts() for i in range(rows.count())):
        assert cells[1] == (technique_name(cells[0]) or "(not in the bundled ATT&CK table)")
    assert any(
        technique_name(c) for c in page.locator("#technique-names td:first-child").all_inner_texts()
    )


def test_a_key_made_on_the_keys_page_browses_the_indicators(page, server, data_dir):
    page.goto(server.url + "/docs/keys/")
    page.fill("#session-token", session_token(data_dir, "frank@example.org"))
    page.click("#session-form button[type=submit]")
    page.wait_for_selector("#account", state="visible")
    page.fill("#key-name", "Browsing")
    page.click("#create-form button[type=submit]")
    page.wait_for_selector("#new-key", state="visible")
    key = page.locator("#new-key-value").inner_text().strip()
    page.click("#browse-with-key")
    page.wait_for_url("**/docs/browse/")
    page.locator("#ioc-rows tr").first.wait_for()
    assert page.evaluate("sessionStorage.getItem('socdef-api-key')") == key
    assert page.locator("#browse-forget").is_visible()
    # a malformed escape in the address is looked up as typed, not a script error
    page.goto(server.url + "/docs/browse/#q=%E0%A4%A")
    sync_api.expect(page.locator("#browse-message")).to_contain_text("no indicator %E0%A4%A")
    assert page.errors == []


def test_the_suppression_report_page_shows_what_the_api_reports(page, serve_process, tmp_path):
    from tests.test_lifecycle import SUPPRESSED, one_article_store

    data = published(tmp_path / "data", store=one_article_store)
    server = serve_process(data)
    key = new_key(data, "enterprise")
    page.goto(server.url + "/docs/suppressed/")
    assert "Suppression report" in page.locator("h1").inner_text()
    assert page.locator("#report").is_hidden()  # nothing is fetched without a key
    page.fill("#report-key", key)
    page.click("#report-key-form button[type=submit]")
    rows = page.locator("#report-rows tr")
    sync_api.expect(rows).to_have_count(len(SUPPRESSED), timeout=10_000)
    api = httpx.get(server.url + "/api/v1/iocs/suppressed", headers=bearer(key), timeout=30).json()[
        "data"
    ]
    for i, item in enumerate(api["items"]):
        cells = rows.nth(i).locator("td").all_inner_texts()
        assert cells[:4] == [
            item["type"],
            item["value"],
            item["status"],
            ", ".join(item["held_by"]),
        ]
        assert cells[5:] == [item["source"]["article_title"], item["source"]["feed_name"]]
    lists = page.locator("#report-list-rows tr td").all_inner_texts()
    assert lists == [str(x) for pair in api["by_list"].items() for x in pair]
    assert f"{api['total']} held back" in page.locator("#report-total").inner_text()
    shot(page, "suppressed")
    assert page.errors == []
