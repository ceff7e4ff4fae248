"""The HTTP fetcher against a hostile server on 127.0.0.1: bounds, SSRF, conditional GET, retries."""

from __future__ import annotations

import ipaddress
import random
import time
import tracemalloc
import zlib
from collections.abc import Iterator

import httpcore
import pytest

from generator.sources.fetch import (
    FetchError,
    FetchPolicy,
    HttpFetcher,
    Validators,
    parse_retry_after,
)
from generator.sources.httpbody import BodyError, BodyTooLarge, read_body
from generator.sources.netguard import AddressPolicy, TargetRefused
from tests.hostile_server import LAST_MODIFIED, HostileServer, gzip_bomb_member

LOOPBACK = AddressPolicy.allowing(["127.0.0.1/32"])
FEED = b"""<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>
<item><guid>a1</guid><title>Loader</title><description>C2 at evil-c2[.]top</description></item>
</channel></rss>"""


class LoopbackOnly(httpcore.SyncBackend):
    """The real socket backend, refusing (and recording) anything but 127.0.0.1."""

    def __init__(self) -> None:
        self.connected: list[str] = []

    def connect_tcp(self, host: str, port: int, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.connected.append(host)
        if not ipaddress.ip_address(host).is_loopback:
            raise AssertionError(f"test tried to connect to {host}")
        return super().connect_tcp(host, port, *args, **kwargs)


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with HostileServer() as s:
        yield s


def fetcher(
    backend: httpcore.NetworkBackend | None = None,
    *,
    sleeps: list[float] | None = None,
    resolve=None,
    **policy,
) -> HttpFetcher:  # type: ignore[no-untyped-def]
    options = {
        "deadline": 2.5,
        "read_timeout": 5.0,
        "max_bytes": 1 << 20,
        "attempts": 3,
        "backoff_base": 0.01,
        "backoff_cap": 0.05,
        "max_retry_after": 1.0,
        "allow": LOOPBACK,
        **policy,
    }
    extra = {"resolve": resolve} if resolve else {}
    sleep = sleeps.append if sleeps is not None else time.sleep
    return HttpFetcher(
        FetchPolicy(**options),
        inner_backend=backend or LoopbackOnly(),
        sleep=sleep,
        rng=random.Random(7),
        **extra,
    )


# --- conditional GET ------------------------------------------------------------------------


def test_conditional_get_sends_the_stored_validators_byte_for_byte(server):
    url = server.route("/f", "feed", FEED)
    first = fetcher().fetch(url)
    assert first.body == FEED and first.status == 200
    assert first.validators.etag.startswith('"') and first.validators.last_modified == LAST_MODIFIED
    second = fetcher().fetch(url, first.validators)
    assert second.not_modified and second.body is None and second.status == 304
    sent = server.headers_of("/f")[1]
    assert sent["If-None-Match"] == first.validators.etag
    assert sent["If-Modified-Since"] == LAST_MODIFIED
    assert "socdef" in sent["User-Agent"]


def test_a_changed_feed_is_fetched_again_despite_old_validators(server):
    url = server.route("/f", "feed", FEED)
    stale = Validators('"old"', "Mon, 01 Jan 2024 00:00:00 GMT")
    assert fetcher().fetch(url, stale).body == FEED


# --- size, time and encodings ---------------------------------------------------------------


@pytest.mark.parametrize("behaviour", ["gzip", "deflate", "br"])
def test_compressed_bodies_are_decoded(server, behaviour):
    if behaviour == "br":
        pytest.importorskip("brotli")
    url = server.route("/c", behaviour, FEED)
    assert fetcher().fetch(url).body == FEED


def test_raw_deflate_is_accepted(server):
    url = server.route("/c", "deflate", FEED, headers={"raw": "1"})
    assert fetcher().fetch(url).body == FEED


def test_gzip_bomb_stops_at_the_cap_with_bounded_memory(server):
    url = server.route("/bomb", "bomb")
    gzip_bomb_member()  # built before measuring: the server shares this process
    tracemalloc.start()
    try:
        with pytest.raises(FetchError, match="larger than"):
            fetcher(max_bytes=4 << 20, deadline=20).fetch(url)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 << 20


def test_oversized_bodies_are_refused(server):
    with pytest.raises(FetchError, match="larger than"):
        fetcher().fetch(server.route("/big", "big"))
    with pytest.raises(FetchError, match="larger than"):
        fetcher().fetch(server.route("/declared", "big-declared"))


def test_slow_drip_is_cut_at_the_total_deadline(server):
    url = server.route("/drip", "drip")
    started = time.monotonic()
    with pytest.raises(FetchError, match="deadline"):
        fetcher(deadline=2.5, read_timeout=5.0).fetch(url)
    assert 2.0 < time.monotonic() - started < 4.5


def test_a_server_that_never_answers_is_cut_at_the_deadline(server):
    url = server.route("/hang", "hang")
    started = time.monotonic()
    with pytest.raises(FetchError, match="deadline"):
        fetcher(deadline=1.5).fetch(url)
    assert time.monotonic() - started < 3.5


def test_corrupt_and_unknown_encodings_are_errors():
    with pytest.raises(BodyError):
        read_body([b"\x1f\x8b\x08\x00garbage"], "gzip", 1000)
    with pytest.raises(BodyError, match="unsupported"):
        read_body([b"x"], "compress", 1000)
    with pytest.raises(BodyError, match="truncated"):
        read_body([zlib.compress(b"a" * 5000)[:20]], "deflate", 10_000)
    with pytest.raises(BodyTooLarge):
        read_body([b"a" * 600, b"b" * 600], "", 1000)


# --- redirects ------------------------------------------------------------------------------


def test_redirects_are_followed_and_the_final_url_kept(server):
    final = server.route("/feed", "feed", FEED)
    start = server.route("/old", "redirect", location="/feed", status=301)
    result = fetcher().fetch(start)
    assert result.body == FEED and result.url == final


def test_redirect_loops_end(server):
    with pytest.raises(FetchError, match="too many redirects"):
        fetcher().fetch(server.route("/loop", "loop"))
    assert server.hits["/loop"] == 6  # the first request and five redirects


@pytest.mark.parametrize(
    "target",
    [
        "http://10.0.0.1/feed",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:1/",
        "http://127.0.0.2:1/",
        "http://[::ffff:10.0.0.1]:1/",
        "http://2130706433/",
        "http://0177.0.0.1/",
        "http://0x7f.1/",
        "file:///etc/passwd",
        "gopher://127.0.0.1/",
    ],
)
def test_redirects_to_private_targets_are_refused_before_connecting(server, target):
    backend = LoopbackOnly()
    url = server.route("/r", "redirect", location=target)
    with pytest.raises(FetchError, match="refused"):
        fetcher(backend).fetch(url)
    assert set(backend.connected) == {"127.0.0.1"}


# --- SSRF -----------------------------------------------------------------------------------


def test_loopback_is_refused_unless_allowed(server):
    url = server.route("/f", "feed", FEED)
    backend = LoopbackOnly()
    with pytest.raises(FetchError, match="refused"):
        fetcher(backend, allow=AddressPolicy()).fetch(url)
    assert backend.connected == [] and server.hits["/f"] == 0


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "[::1]",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "[::ffff:127.0.0.1]",
        "[::ffff:10.0.0.1]",
        "[2002:7f00:1::]",
        "[64:ff9b::a00:1]",
        "[fe80::1]",
        "[fc00::1]",
        "224.0.0.1",
        "2130706433",
        "0177.0.0.1",
        "0x7f000001",
        "127.1",
        "192.0.2.10",
    ],
)
def test_non_public_literals_are_refused(host):
    with pytest.raises(TargetRefused):
        AddressPolicy().check_host(host)


@pytest.mark.parametrize(
    "addresses",
    [
        ["10.0.0.7"],
        ["127.0.0.1"],
        ["169.254.169.254"],
        ["::1"],
        ["93.184.216.34", "10.0.0.7"],  # rebinding-style answers: every address is checked
    ],
)
def test_names_resolving_to_private_addresses_are_refused(addresses):
    backend = LoopbackOnly()
    resolve = lambda host, port: list(addresses)  # noqa: E731 - a stub resolver
    with pytest.raises(FetchError, match="refused"):
        fetcher(backend, resolve=resolve, allow=AddressPolicy()).fetch("https://feeds.example/x")
    assert backend.connected == []


def test_the_checked_address_is_the_one_connected_to(server):
    backend = LoopbackOnly()
    answers = iter([["127.0.0.1"], ["10.0.0.9"]])  # a second lookup would say private
    resolve = lambda host, port: next(answers)  # noqa: E731
    url = server.url("/f").replace("127.0.0.1", "feeds.test")
    server.route("/f", "feed", FEED)
    assert fetcher(backend, resolve=resolve).fetch(url).body == FEED
    assert backend.connected == ["127.0.0.1"]


def test_public_addresses_pass_the_policy():
    policy = AddressPolicy()
    for ip in ("93.184.216.34", "2606:4700:4700::1111", "1.1.1.1"):
        assert policy.permits(ipaddress.ip_address(ip))
    assert policy.check_host("feeds.example.org") is None


def test_allowed_networks_are_parsed_and_checked():
    policy = AddressPolicy.allowing(["10.1.0.0/16", "fd00::/8"])
    assert policy.permits(ipaddress.ip_address("10.1.2.3"))
    assert not policy.permits(ipaddress.ip_address("10.2.0.1"))
    assert policy.permits(ipaddress.ip_address("fd12::1"))
    with pytest.raises(ValueError, match="not a network"):
        AddressPolicy.allowing(["intranet"])


# --- retries --------------------------------------------------------------------------------


def test_server_errors_are_retried_with_jittered_backoff(server):
    sleeps: list[float] = []
    url = server.route("/e", "status", status=500)
    with pytest.raises(FetchError, match="HTTP 500") as info:
        fetcher(sleeps=sleeps).fetch(url)
    assert info.value.status == 500 and server.hits["/e"] == 3
    assert len(sleeps) == 2 and sleeps[0] <= 0.01 and sleeps[1] <= 0.02


def test_retry_after_is_honoured_then_the_feed_is_read(server):
    sleeps: list[float] = []
    url = server.route("/t", "throttle", FEED, status=429, retry_after="1", times=1)
    result = fetcher(sleeps=sleeps).fetch(url)
    assert result.body == FEED and result.attempts == 2 and sleeps == [1.0]


def test_a_long_retry_after_ends_the_attempts_and_is_reported(server):
    url = server.route("/t", "throttle", FEED, status=503, retry_after="600", times=5)
    with pytest.raises(FetchError, match="HTTP 503") as info:
        fetcher(sleeps=[]).fetch(url)
    assert info.value.retry_after == 600 and server.hits["/t"] == 1


def test_client_errors_are_not_retried(server):
    url = server.route("/gone", "status", status=404)
    with pytest.raises(FetchError, match="HTTP 404"):
        fetcher(sleeps=[]).fetch(url)
    assert server.hits["/gone"] == 1


def test_retry_after_dates_and_garbage():
    now = 1_795_000_000.0
    assert parse_retry_after("120", now) == 120
    assert parse_retry_after("Sun, 08 Nov 2026 16:00:00 GMT", 1_794_150_000.0) == 3600
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("", now) is None
