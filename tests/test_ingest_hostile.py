"""Ingest over HTTP against a hostile server: each failure is recorded, none costs data."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.ingest import fetching as ingest_fetch
from generator.ingest.fetching import http_reader
from generator.ingest.pipeline import IngestError, ingest
from generator.sources.catalog import Source
from generator.sources.state import Backoff, SourceState
from generator.store.generations import Store
from tests.conftest import socdef
from tests.hostile_server import HostileServer
from tests.test_fetch import LoopbackOnly, fetcher

NOW = 1_795_000_000
LAUGHS = b"""<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "lol">
<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
<!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
<!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;"><!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">
<!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;"><!ENTITY i "&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;">
]><rss version="2.0"><channel><title>&i;</title><item><title>&i;</title></item></channel></rss>"""
QUADRATIC = (
    b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY big "'
    + b"x" * 100_000
    + b'">]><rss version="2.0"><channel><title>'
    + b"&big;" * 2000
    + b"</title></channel></rss>"
)


def feed(sid: str, items: int = 3) -> bytes:
    """A small RSS feed whose articles name indicators unique to the source."""
    entries = "".join(
        f"<item><guid>{sid}-{n}</guid><title>{sid} report {n}</title>"
        f"<link>https://news.example.org/{sid}/{n}</link>"
        f"<pubDate>Wed, 25 Nov 2026 0{n}:00:00 GMT</pubDate>"
        f"<description>Indicators: hxxps://{sid}-{n}-c2[.]top/gate.php and "
        f"45.{n + 10}.{len(sid)}.77 (CVE-2026-{1000 + n}).</description></item>"
        for n in range(items)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{sid}</title>{entries}</channel></rss>"
    ).encode()


def xxe(listener: str) -> bytes:
    return (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "{listener}">]>'
        f'<rss version="2.0"><channel><title>&x;</title></channel></rss>'
    ).encode()


HOSTILE: dict[str, tuple[str, dict, str]] = {
    # source id: (behaviour, options, words expected in the recorded error)
    "s-500": ("status", {"status": 500}, "HTTP 500"),
    "s-hang": ("hang", {}, "deadline"),
    "s-drip": ("drip", {}, "deadline"),
    "s-big": ("big", {}, "larger than"),
    "s-bomb": ("bomb", {}, "larger than"),
    "s-malformed": ("raw", {"body": b"<rss><channel><item><title>cut off"}, "malformed"),
    "s-laughs": ("raw", {"body": LAUGHS}, "entit"),
    "s-quadratic": ("raw", {"body": QUADRATIC}, "entit"),
    "s-html": ("raw", {"body": b"<!DOCTYPE html><html><body>Login</body></html>"}, "HTML"),
    "s-empty": ("raw", {"body": b""}, "empty"),
    "s-loop": ("loop", {}, "too many redirects"),
    "s-private": ("redirect", {"location": "http://169.254.169.254/latest/"}, "refused"),
    "s-429": ("status", {"status": 429, "retry_after": "600"}, "HTTP 429"),
}


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with HostileServer() as s:
        yield s


def sources_for(server: HostileServer, ids: list[str]) -> list[Source]:
    return [Source(sid, sid.upper(), server.url(f"/{sid}"), "research") for sid in ids]


def run(store: Store, sources: list[Source], now: int, **kwargs) -> object:  # type: ignore[no-untyped-def]
    fetch = http_reader(fetcher=fetcher(LoopbackOnly(), **kwargs))
    return ingest(store, sources, fetch, now=now, backoff=Backoff(rng=random.Random(3)))


def tables(store: Store) -> tuple:
    return store.articles(), store.sightings()


def test_every_hostile_source_is_recorded_and_costs_nothing(server, tmp_path):
    ids = ["s-ok", "s-xxe", *HOSTILE]
    for sid in ids:
        server.route(f"/{sid}", "feed", feed(sid))
    store = Store(tmp_path / "store")
    first = run(store, sources_for(server, ids), NOW)
    assert {s.status for s in first.sources} == {"ok"}
    before = tables(store)
    listener = server.route("/listener", "feed", b"secret")
    server.route("/s-xxe", "raw", xxe(listener))
    for sid, (behaviour, options, _) in HOSTILE.items():
        server.route(f"/{sid}", behaviour, **options)

    started = time.monotonic()
    report = run(store, sources_for(server, ids), NOW + 86400)
    assert time.monotonic() - started < 20

    lines = {s.source: s for s in report.sources}
    assert lines["s-ok"].status == "not_modified"
    state = store.state()["sources"]
    for sid, (_, _, words) in {**HOSTILE, "s-xxe": ("", {}, "entit")}.items():
        assert lines[sid].status == "error", sid
        assert words.lower() in lines[sid].error.lower(), (sid, lines[sid].error)
        recorded = SourceState.from_dict(state[sid])
        assert recorded.status == "error" and recorded.consecutive_failures == 1
        assert recorded.items == 3 and recorded.iocs > 0  # the last good fetch's counts stand
        assert recorded.etag  # validators of the last good fetch kept
    assert server.hits["/listener"] == 0  # the external entity was never fetched
    assert tables(store)[0].equals(before[0]) and tables(store)[1].equals(before[1])


def test_a_304_costs_no_parse_and_changes_nothing(server, tmp_path, monkeypatch):
    server.route("/s-a", "feed", feed("s-a"))
    store = Store(tmp_path / "store")
    run(store, sources_for(server, ["s-a"]), NOW)
    before = tables(store)
    parses = []
    original = ingest_fetch.parse_feed
    monkeypatch.setattr(ingest_fetch, "parse_feed", lambda b: parses.append(b) or original(b))
    report = run(store, sources_for(server, ["s-a"]), NOW + 3600)
    assert report.sources[0].status == "not_modified" and parses == []
    assert report.sources[0].items == 3
    assert tables(store)[0].equals(before[0]) and tables(store)[1].equals(before[1])
    assert store.state()["sources"]["s-a"]["last_success"] == NOW + 3600


def test_the_same_feed_without_validators_twice_changes_nothing(server, tmp_path):
    server.route("/s-a", "plain", feed("s-a"))
    store = Store(tmp_path / "store")
    run(store, sources_for(server, ["s-a"]), NOW)
    before = tables(store)
    report = run(store, sources_for(server, ["s-a"]), NOW + 3600)
    assert report.sources[0].status == "ok"
    assert tables(store)[0].equals(before[0]) and tables(store)[1].equals(before[1])


def test_an_outage_keeps_the_data_and_backs_off(server, tmp_path):
    server.route("/s-a", "feed", feed("s-a"))
    server.route("/s-b", "feed", feed("s-b"))
    store = Store(tmp_path / "store")
    sources = sources_for(server, ["s-a", "s-b"])
    run(store, sources, NOW)
    before = tables(store)
    server.route("/s-b", "status", status=500)
    for day in (1, 2, 3):
        report = run(store, sources, NOW + day * 86400)
        assert [s.status for s in report.sources] == ["not_modified", "error"]
        assert tables(store)[0].equals(before[0])
    b = SourceState.from_dict(store.state()["sources"]["s-b"])
    assert b.consecutive_failures == 3 and b.items == 3
    assert b.next_attempt_at is not None
    assert NOW + 3 * 86400 <= b.next_attempt_at <= NOW + 3 * 86400 + 600 * 4


def test_retry_after_defers_the_next_run(server, tmp_path):
    server.route("/s-a", "feed", feed("s-a"))
    server.route("/s-b", "throttle", feed("s-b"), status=503, retry_after="600", times=1)
    store = Store(tmp_path / "store")
    sources = sources_for(server, ["s-a", "s-b"])
    report = run(store, sources, NOW)
    assert [s.status for s in report.sources] == ["ok", "error"]
    assert store.state()["sources"]["s-b"]["next_attempt_at"] >= NOW + 600
    hits = server.hits["/s-b"]
    report = run(store, sources, NOW + 10)
    assert report.sources[1].status == "deferred" and server.hits["/s-b"] == hits
    report = run(store, sources, NOW + 601)
    assert report.sources[1].status == "ok" and report.sources[1].items == 3


def test_all_sources_failing_records_state_and_raises(server, tmp_path):
    server.route("/s-a", "feed", feed("s-a"))
    store = Store(tmp_path / "store")
    run(store, sources_for(server, ["s-a"]), NOW)
    before = tables(store)
    server.route("/s-a", "status", status=404)
    with pytest.raises(IngestError, match="failures were recorded") as info:
        run(store, sources_for(server, ["s-a"]), NOW + 86400)
    assert info.value.report is not None and info.value.report.failed
    assert store.state()["sources"]["s-a"]["status"] == "error"
    assert tables(store)[0].equals(before[0])


def test_a_mislabelled_encoding_is_recovered(server, tmp_path):
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>x</title>'
        "<item><guid>1</guid><title>Caf\u00e9 \u20ac campaign</title><description>"
        "C2 evil-cafe[.]top</description></item></channel></rss>"
    ).encode("cp1252")
    server.route("/s-enc", "feed", body)
    store = Store(tmp_path / "store")
    report = run(store, sources_for(server, ["s-enc"]), NOW)
    assert report.sources[0].status == "ok"
    assert store.articles()["title"].to_pylist() == ["Caf\u00e9 \u20ac campaign"]
    assert "evil-cafe.top" in store.sightings()["value"].to_pylist()


# --- the command line -----------------------------------------------------------------------


def write_sources(path: Path, server: HostileServer, ids: list[str]) -> Path:
    blocks = [
        f'[[source]]\nid = "{sid}"\nname = "{sid.upper()}"\nurl = "{server.url("/" + sid)}"\n'
        f'category = "research"\n'
        for sid in ids
    ]
    path.write_text("\n".join(blocks))
    return path


def test_cli_refuses_loopback_by_default(server, tmp_path):
    server.route("/s-a", "feed", feed("s-a"))
    sources = write_sources(tmp_path / "sources.toml", server, ["s-a"])
    result = socdef(
        "ingest",
        "--sources",
        str(sources),
        data_dir=tmp_path / "d",
        check=False,
        env={"SOCDEF_ALLOW_NETWORKS": ""},
    )
    assert result.returncode == 1 and "refused" in result.stdout + result.stderr
    assert server.hits["/s-a"] == 0


def test_cli_ingest_then_sources(server, tmp_path):
    server.route("/s-a", "feed", feed("s-a"))
    server.route("/s-b", "status", status=404)
    fetched = write_sources(tmp_path / "fetched.toml", server, ["s-a", "s-b"])
    env = {"SOCDEF_ALLOW_NETWORKS": "127.0.0.1/32"}
    out = socdef("ingest", "--sources", str(fetched), data_dir=tmp_path / "d", env=env).stdout
    assert "s-a" in out and "HTTP 404" in out
    sources = write_sources(tmp_path / "sources.toml", server, ["s-a", "s-b", "s-c"])
    rows = socdef("sources", "--sources", str(sources), "--json", data_dir=tmp_path / "d").stdout
    by_id = {r["id"]: r for r in map(json.loads, rows.splitlines())}
    assert by_id["s-a"]["status"] == "ok" and by_id["s-a"]["items"] == 3
    assert by_id["s-a"]["iocs"] == 9 and by_id["s-a"]["last_fetch"].endswith("Z")
    assert by_id["s-b"]["status"] == "error" and "HTTP 404" in by_id["s-b"]["error"]
    assert by_id["s-c"]["status"] == "never" and by_id["s-c"]["last_fetch"] == "never"
    table = socdef("sources", "--sources", str(sources), data_dir=tmp_path / "d").stdout
    assert "HTTP 404" in table and "never" in table
