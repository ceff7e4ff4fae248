"""The seed corpus every format's golden file is rendered from.

Six articles and 31 sightings that fold into 30 records covering all eleven IOC types, with
the strings that break naive escaping: single and double quotes, backslashes, pipes, ``=``,
newlines and carriage returns, ``]]>``, ``<&>``, tabs and non-ASCII text. One value is
reported by two sources (its confidence is raised), and every article's techniques are the
ATT&CK ids it mentions, as ingest records them. Everything is fixed: same corpus, same records.

    records = seed_records()          # list[IOCRecord], newest first, via the real model
    store = seed_store(tmp_path)      # the same corpus as a committed store
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import pyarrow as pa

from exports.model import IOCRecord
from generator.extract import warninglists
from generator.extract.warninglists import Warninglists
from generator.store.generations import ARTICLE_SCHEMA, SIGHTING_SCHEMA, Article, Sighting, Store
from generator.store.lifecycle import Lifecycle, expiry
from generator.store.records import iter_records

SEED_NOW = 1_795_000_000  # 2026-11-18T11:06:40Z, the corpus's "as of"
HOUR = 3_600

ARTICLES: tuple[Article, ...] = (
    Article(
        "a000000000000001",
        "unit42",
        'Unit 42 | "Threat" Research',
        "research",
        "Operation 'Quote\\Slash': C2 | pivots = found]]>",
        "https://unit42.example/op?a=1&b=2",
        SEED_NOW - 1 * HOUR,
        ("c2", "tag with space", "ünïcode"),
        ("T1071", "T1059.001"),
    ),
    Article(
        "a000000000000002",
        "cisa",
        "CISA Advisories",
        "government",
        'AA26-001: Exploited <vulnerabilities> & "patches"',
        "https://cisa.example/advisories/aa26-001",
        SEED_NOW - 5 * HOUR,
        ("kev", "ransomware"),
        ("T1190",),
    ),
    Article(
        "a000000000000003",
        "sans",
        "SANS ISC",
        "news",
        "Phishing wave\nsecond line\r\nthird = line",
        "https://isc.example/diary/31337",
        SEED_NOW - 26 * HOUR,
        ("phishing", "a|b=c"),
        ("T1566.001",),
    ),
    Article(
        "a000000000000004",
        "jpcert",
        "JPCERT/CC 日本",
        "threat-intel",
        "攻撃キャンペーン — ]]><script>alert('x')</script>",
        "https://jpcert.example/ja/2026/11/report.html",
        SEED_NOW - 3 * 86_400,
        ("apt", "日本語タグ"),
        (),
    ),
    Article(
        "a000000000000005",
        "vendor-x",
        "Vendor X Labs",
        "vendor",
        "Stealer \\\\ loader \t tabbed",
        "https://vendorx.example/blog/stealer",
        SEED_NOW - 9 * 86_400,
        ("stealer",),
        ("T1105", "T1027"),
    ),
    Article(
        "a000000000000006",
        "krebs",
        "Krebs",
        "news",
        "Emoji 🐍 and ¿qué? title",
        "https://krebs.example/2026/10/emoji/",
        SEED_NOW - 40 * 86_400,
        (),
        (),
    ),
)

_MD5 = "d41d8cd98f00b204e9800998ecf8427e"
_SHA1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
_SHA512 = (
    "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
    "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
)


def _s(
    article: int, type_: str, value: str, context: str, confidence: str, defanged: bool = False
) -> Sighting:
    return Sighting(f"a{article:015d}", type_, value, context, confidence, defanged)


SIGHTINGS: tuple[Sighting, ...] = (
    _s(1, "ipv4", "198.51.100.7", 'C2 at 198.51.100.7 ("primary")', "high", True),
    _s(1, "ipv6", "2001:db8::1", "backup C2 2001:db8::1 | port=443", "medium"),
    _s(1, "domain", "evil.example", "beacons to evil.example\nevery 60s", "high", True),
    _s(1, "url", "http://evil.example/it's\\a|b=c]]>", "payload URL 'quoted' \\ here", "high"),
    _s(1, "sha256", _SHA256, "dropper sha256 ]]> <b>bold</b>", "high"),
    _s(1, "mitre_attack", "T1071", "Application Layer Protocol (T1071)", "medium"),
    _s(1, "mitre_attack", "T1059.001", "PowerShell T1059.001 one-liner", "medium"),
    _s(1, "email", "o'brien@evil.example", "sender o'brien@evil.example", "medium"),
    _s(2, "cve", "CVE-2026-12345", "exploits CVE-2026-12345 = RCE", "medium"),
    _s(2, "cve", "CVE-2025-0001", "older CVE-2025-0001 | chained", "medium"),
    _s(2, "ipv4", "203.0.113.99", "scanner 203.0.113.99\r\nseen", "low"),
    _s(
        2,
        "url",
        'https://exploit.example/cgi-bin/a.cgi?x="y"&z=1',
        'GET /cgi-bin/a.cgi?x="y"',
        "high",
    ),
    _s(2, "mitre_attack", "T1190", "T1190 exploit public-facing app", "medium"),
    _s(2, "sha1", _SHA1, "tool sha1", "medium"),
    _s(3, "email", "billing@phish.example", "From: billing@phish.example", "high", True),
    _s(3, "domain", "phish.example", "lure on phish.example", "low"),
    _s(3, "url", "https://phish.example/login?next=/acct|x", "login page\tphish", "medium"),
    _s(3, "md5", _MD5, "attachment md5 = d41d8cd98f00b204e9800998ecf8427e", "high"),
    _s(3, "mitre_attack", "T1566.001", "spearphishing attachment T1566.001", "medium"),
    _s(3, "ipv4", "198.51.100.7", "also seen: 198.51.100.7", "low"),  # second source
    _s(4, "domain", "bücher.example", "IDN domain bücher.example 日本", "medium"),
    _s(4, "ipv6", "2001:db8:dead:beef::42", "v6 node 2001:db8:dead:beef::42", "low"),
    _s(4, "url", "https://例え.example/パス?q=ü", "unicode URL ]]>", "medium"),
    _s(4, "sha512", _SHA512, "sha512 of implant", "high"),
    _s(4, "email", '"quoted local"@example.org', 'odd sender "quoted local"@example.org', "low"),
    _s(
        5,
        "sha256",
        "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
        "loader \\\\server\\share\\x.exe",
        "high",
    ),
    _s(5, "md5", "900150983cd24fb0d6963f7d28e17f72", "packed md5", "medium"),
    _s(5, "mitre_attack", "T1105", "Ingress Tool Transfer", "medium"),
    _s(5, "mitre_attack", "T1027", "Obfuscated Files", "medium"),
    _s(5, "cve", "CVE-2024-3400", "PAN-OS CVE-2024-3400", "high"),
    _s(6, "domain", "old-campaign.example", "", "low"),  # empty context
)


# The sources' TLP levels (``sources.toml``'s ``tlp``); the others are clear.
SEED_TLP = {"unit42": "green", "vendor-x": "amber"}


def seed_tables() -> tuple[pa.Table, pa.Table]:
    articles = {n: [getattr(a, n) for a in ARTICLES] for n in ARTICLE_SCHEMA.names}
    articles["tags"] = [list(t) for t in articles["tags"]]
    articles["techniques"] = [list(t) for t in articles["techniques"]]
    articles["categories"] = [list(t) for t in articles["categories"]]
    articles["tlp"] = [SEED_TLP.get(a.source_id, "clear") for a in ARTICLES]
    sightings = {n: [getattr(s, n) for s in SIGHTINGS] for n in SIGHTING_SCHEMA.names}
    return (pa.table(articles, schema=ARTICLE_SCHEMA), pa.table(sightings, schema=SIGHTING_SCHEMA))


def seed_records() -> list[IOCRecord]:
    """The corpus folded by the real model: one record per (type, value), newest first, each
    in its state as of ``SEED_NOW`` with :data:`SEED_OVERRIDES`. A new list each call; the
    records (frozen) are computed once per process."""
    return list(_seed_records())


@cache
def _seed_records() -> tuple[IOCRecord, ...]:
    return tuple(fold_seed_records())


def fold_seed_records() -> list[IOCRecord]:
    """:func:`seed_records` computed anew: the warninglists compiled and the corpus folded
    again (for a test that compares two computations)."""
    lifecycle = Lifecycle(warninglists.load_text(SEED_OVERRIDES), expiry(), SEED_NOW)
    return list(iter_records(*seed_tables(), lifecycle)[1])


@cache
def _compiled(overrides: str) -> Warninglists:
    """The bundled warninglists plus ``overrides``, compiled once per process and text (about
    3 s each), as ``warninglists.bundled`` is: checks only read them (and fill their memo)."""
    return warninglists.load_text(overrides)


# The corpus uses documentation addresses and names, which the warninglists suppress; the
# operator's overrides file that keeps them active (docs/lifecycle.md).
SEED_OVERRIDES = f"""\
allow {_SHA1}
allow {_SHA256}
allow {_SHA512}
allow *.example
allow *.example.org
allow 198.51.100.0/24
allow 203.0.113.0/24
allow 2001:db8::/32
allow d41d8cd98f00b204e9800998ecf8427e
allow 900150983cd24fb0d6963f7d28e17f72
allow 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
"""


def seed_store(root: str | os.PathLike[str]) -> Store:
    """The corpus as a committed store at ``root``, and :data:`SEED_OVERRIDES` beside it as
    ``overrides.txt`` (where a data folder's build reads it)."""
    store = Store(root)
    store.commit(*seed_tables(), {"as_of": SEED_NOW, "sources": {}})
    (Path(root).parent / "overrides.txt").write_text(SEED_OVERRIDES)
    return store


def seed_lists(root: str | os.PathLike[str]) -> Warninglists:
    """The warninglists a build of :func:`seed_store` at ``root`` uses (its overrides file's
    text, compiled once per process)."""
    return _compiled((Path(root).parent / "overrides.txt").read_text("utf-8"))
