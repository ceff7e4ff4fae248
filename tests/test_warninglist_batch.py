"""The column check of the warninglists (``BatchChecker``) against the one-by-one check
(``Warninglists.check``) and against pymispwarninglists's own search: same answer for every
value, on the benchmark's mix and on generated values at every rule's edges."""

from __future__ import annotations

import ipaddress
import json
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.extract import warninglists
from generator.extract.warninglist_batch import BatchChecker, _Bytes, _Table
from generator.extract.warninglists import Warninglists

ROOT = Path(__file__).resolve().parent.parent
OVERRIDES = """\
allow 8.8.8.8
block 203.0.113.0/24
block 2001:db8:beef::/48
block *.bad-cdn.example
block http://exact.example/path?q=1
block victim@exact.example
block 44d88612fea8a8f36de82e1278abb02f
"""


@pytest.fixture(scope="module")
def lists() -> Warninglists:
    return warninglists.load_text(OVERRIDES)


@pytest.fixture(scope="module")
def checker(lists: Warninglists) -> BatchChecker:
    return BatchChecker(lists)


def agree(checker: BatchChecker, values: list[tuple[str, str]]) -> list:
    got = checker.check([t for t, _ in values], [v for _, v in values])
    want = [checker.lists.check(t, v) for t, v in values]
    for pair, a, b in zip(values, got, want, strict=True):
        assert a == b, (pair, a, b)
    return got


# Values that each reach one rule; a column check that dropped the rule would answer None (or
# another hit) where the one-by-one check answers the hit named here.
RULES = [
    ("ipv4", "10.1.2.3", "rfc1918"),  # inside a CIDR block
    ("ipv4", "203.0.113.77", "operator-block"),  # an operator's CIDR block
    ("ipv4", "8.8.8.8", "operator-allow"),  # an operator's single address
    ("ipv6", "2001:4860:4860::8888", "public-dns-v6"),
    ("ipv6", "2001:DB8:BEEF::1", "operator-block"),  # upper case hex, "::"
    ("ipv6", "2001:db8:beef:0:0:0:0:1", "operator-block"),  # written out
    ("domain", "mail.google.com", "google"),  # a ".name" entry: the name and below
    ("domain", "microsoft.com", "microsoft"),  # exact
    ("domain", "x.bad-cdn.example", "operator-block"),  # "*.name" override
    ("domain", "update-check.herokuapp.com", "lots-project"),  # under a private suffix
    ("domain", "github.io", "tranco10k"),  # the private suffix itself: its own lists
    ("url", "https://bit.ly/3xYz", "url-shortener"),  # a URL's host
    ("url", "HTTP://User:Pw@Bit.LY:8080/x?y#z", "url-shortener"),  # user info, port, case
    ("url", "https://bit.ly?x=/y", "url-shortener"),  # the host ends at "?"
    ("url", "http://exact.example/path?q=1", "operator-block"),  # an exact URL entry
    ("url", "http://1.1.1.1/x", "public-dns-v4"),  # an address as the host
    ("url", "http://[2001:4860:4860::8888]/x", "public-dns-v6"),
    ("email", "victim@exact.example", "operator-block"),  # exact address
    ("email", "someone@MAILINATOR.com", "disposable-email"),  # the domain, upper case
    ("email", "abuse@hosting-provider.net", "common-contact-emails"),  # regex list
    ("md5", "d41d8cd98f00b204e9800998ecf8427e", "empty-hashes"),
    ("md5", "44d88612fea8a8f36de82e1278abb02f", "operator-block"),
]


@pytest.mark.parametrize(("type_", "value", "listed"), RULES)
def test_every_rule_reaches_the_column_check(checker, type_, value, listed):
    # between unlisted neighbours, so a column of one type holds more than the probe
    values = [(type_, value)] + [(t, v) for t, v, _ in RULES if t == type_ and v != value]
    [hit, *_] = agree(checker, values)
    assert hit is not None and listed in hit.lists


def test_the_benchmarks_mix_agrees(checker):
    sys.path.insert(0, str(ROOT / "bench"))
    from lifecycle import indicators  # the benchmark's mix, here 20 % drawn from the lists

    values = indicators(20_000, 0.2, seed=5)
    got = agree(checker, values)
    assert sum(h is not None for h in got) > 3_000
    # columns as the store keeps them (Arrow, types dictionary-encoded) give the same
    types = pa.array([t for t, _ in values]).dictionary_encode()
    assert checker.check(types, pa.array([v for _, v in values])) == got


def test_private_suffixes_turn_shorter_hits_into_annotations(checker):
    [provider, below] = agree(checker, [("domain", "github.io"), ("domain", "a.b.github.io")])
    assert provider.suppress and "tranco10k" in provider.lists
    assert below is None or ("tranco10k" not in below.lists and not below.suppress)


def test_odd_values_are_checked_one_by_one(checker):
    odd = [
        ("ipv4", "010.1.2.3"),  # octal to inet_aton
        ("ipv4", "1.2.3"),
        ("ipv4", "256.1.1.1"),
        ("ipv4", "1.2.3.4.5"),
        ("ipv4", "1.2.3.1000"),
        ("ipv4", "1..2.3"),
        ("ipv4", "1.2.3."),
        ("ipv4", "1.2.3.00"),
        ("ipv4", "1.2.3.4a"),
        ("ipv4", "::1"),
        ("ipv6", "::ffff:8.8.8.8"),  # embedded IPv4
        ("ipv6", "fe80::1%eth0"),
        ("ipv6", "1::2::3"),
        ("ipv6", ":1:2:3:4:5:6:7"),
        ("ipv6", "1:2:3:4:5:6:7:8:9"),
        ("ipv6", "12345::"),
        ("ipv6", "8.8.8.8"),
        ("domain", "google.com."),  # trailing dot
        ("domain", ".google.com"),
        ("domain", "mail..google.com"),
        ("domain", "GOOGLE.COM"),  # domains are compared as written
        ("domain", "bücher.google.com"),
        ("url", "http://bücher.de/x"),
        ("url", "http://\u212aEVIN.example/"),  # Kelvin sign: Python lowercases it to "k"
        ("url", "no-scheme"),
        ("url", "http://"),
        ("url", "http://[::1"),
        ("url", "a/b://bit.ly/x"),
        ("url", "https://@bit.ly/"),
        ("url", "https://"),  # the scheme alone, read in one word
        ("url", "http:/bit.ly"),
        ("url", "https:bit.ly/x"),
        ("url", "httpx://bit.ly/"),
        ("url", "http://bit.ly"),  # the last URL of the column
        ("email", "abuse@x.com\n"),
        ("email", "no-at-sign.mailinator.com"),
        ("email", "a@b@mailinator.com"),
        ("email", "x@"),
        ("sha256", "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"),
        ("md5", ""),
        ("cve", "CVE-2024-3400"),
    ]
    agree(checker, odd)


# -- generated values at the edges of every kind of entry --------------------------------


def _address_edges(lists: Warninglists) -> st.SearchStrategy[tuple[str, str]]:
    v4 = [s for s in lists._v4.starts if 0 < s < 1 << 32]
    v6 = [s for s in lists._v6.starts if 0 < s < 1 << 128]
    four = st.tuples(st.sampled_from(v4), st.sampled_from([-1, 0, 1])).map(
        lambda p: ("ipv4", str(ipaddress.IPv4Address(p[0] + p[1])))
    )
    six = st.tuples(
        st.sampled_from(v6), st.sampled_from([-1, 0, 1]), st.sampled_from(["c", "x", "u"])
    ).map(lambda p: ("ipv6", _six(p[0] + p[1], p[2])))
    return st.one_of(four, six)


def _six(number: int, form: str) -> str:
    address = ipaddress.IPv6Address(number)
    if form == "x":
        return address.exploded
    return str(address).upper() if form == "u" else str(address)


def _names(lists: Warninglists) -> st.SearchStrategy[str]:
    keys = sorted(set(lists._host) | set(lists._suffix))[::50]
    private = sorted(lists._private)[::20]
    label = st.from_regex(r"[a-z0-9-]{1,12}", fullmatch=True)
    return st.tuples(
        st.lists(label, max_size=2), st.sampled_from(keys + private + ["example-7.com"])
    ).map(lambda p: ".".join([*p[0], p[1]]))


def _values(lists: Warninglists) -> st.SearchStrategy[tuple[str, str]]:
    names = _names(lists)
    url = st.tuples(
        st.sampled_from(["http://", "https://", "HTTPS://", "ftp://", ""]),
        st.sampled_from(["", "user@", "u:p@"]),
        names,
        st.sampled_from(["", ":8080", ":"]),
        st.sampled_from(["", "/", "/a.b/c", "?q=a://b", "#f/g"]),
        st.booleans(),
    ).map(lambda p: ("url", "".join(p[:5]).upper() if p[5] else "".join(p[:5])))
    email_domains = sorted(lists._email_suffix)[::10] + ["example-7.com"]
    email = st.tuples(
        st.sampled_from(["abuse", "soc", "someone", "x.y"]),
        st.sampled_from(email_domains),
        st.booleans(),
    ).map(lambda p: ("email", f"{p[0]}@{p[1]}".upper() if p[2] else f"{p[0]}@{p[1]}"))
    hashes = sorted(lists._hash)[::2000]
    digest = st.tuples(st.sampled_from(hashes), st.booleans()).map(
        lambda p: (
            ({32: "md5", 40: "sha1", 64: "sha256"}.get(len(p[0]), "sha512"), p[0])
            if p[1]
            else ("sha256", p[0][:-1] + "0")
        )
    )
    return st.one_of(_address_edges(lists), names.map(lambda n: ("domain", n)), url, email, digest)


def test_generated_values_agree(checker, lists):
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(_values(lists), min_size=1, max_size=40))
    def run(values):
        agree(checker, values)

    run()


def test_pymispwarninglists_hits_are_found_by_the_column_check(checker):
    """Every list pymispwarninglists's own search puts a value drawn from a list on (of the
    lists it applies to the value's type, and not ignored), the column check puts it on too."""
    from pymispwarninglists import WarningLists

    sys.path.insert(0, str(ROOT / "bench"))
    import random

    from lifecycle import _listed

    theirs = WarningLists()
    folder_of = {}
    for folder in warninglists.misp_lists_dir().iterdir():
        data = json.loads((folder / "list.json").read_text())
        folder_of[data["name"]] = (folder.name, data["matching_attributes"])
    table = warninglists.policies()
    values = random.Random(3).sample(_listed(random.Random(2)), 300)
    found = checker.check([t for t, _ in values], [v for _, v in values])
    checked = 0
    for (type_, value), hit in zip(values, found, strict=True):
        for listed in theirs.search(value):
            name, attributes = folder_of[listed.name]
            applies = any(type_ in warninglists._APPLIES.get(a, ()) for a in attributes)
            if applies and table[name].action != warninglists.IGNORE:
                checked += 1
                assert hit is not None and name in hit.lists, (value, name)
    assert checked > 100


def test_names_alike_but_in_the_middle_are_told_apart():
    # the same length, first and last 8 bytes: one slot of the table, told apart by the middle
    keys = [f"prefix00{m}suffix.com".encode() for m in ("aa", "ab", "ba", "bb", "middle")]
    table = _Table(keys + [b"short.io"])
    asked = [b"prefix00absuffix.com", b"prefix00zzsuffix.com", b"short.io", b"prefix00middle"]
    asked += keys[::-1]
    column = _Bytes(pa.array([a.decode() for a in asked]))
    found = table.find(column, column.starts, column.ends)
    assert found.tolist() == [1, -1, 5, -1, 4, 3, 2, 1, 0]


# -- random values: the column check against check_many --------------------------------

_CHECKED = ("ipv4", "ipv6", "domain", "url", "email", "md5", "sha1", "sha256", "sha512")
_TEXT = st.characters(codec="utf-8", exclude_categories=("Cs",))  # Arrow holds no surrogates
_ASCII = st.characters(min_codepoint=0, max_codepoint=127)
_HOSTS = [
    "bit.ly",
    "BIT.LY",
    "x.github.io",
    "github.io",
    "bücher.de",
    "a..bit.ly",
    ".bit.ly",
    "bit.ly.",
    "1.1.1.1",
    "010.1.1.1",
    "8.8",
    "[2001:4860:4860::8888]",
    "[::1",
    "",
    "@",
    "x.bad-cdn.example",
]


def _strings(alphabet: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Short strings and strings around 64 characters (words of 8, a 64-byte hash)."""
    return st.one_of(st.text(alphabet, max_size=9), st.text(alphabet, min_size=63, max_size=65))


def _octet() -> st.SearchStrategy[str]:
    plain = st.integers(0, 300).map(str)
    padded = st.tuples(st.integers(0, 255), st.sampled_from(["0", "00"])).map(
        lambda p: p[1] + str(p[0])
    )
    return st.one_of(plain, padded, st.sampled_from(["", "0x8", "1a", "1000"]))


def _ipv4() -> st.SearchStrategy[str]:
    return st.lists(_octet(), min_size=1, max_size=5).map(".".join)


def _ipv6() -> st.SearchStrategy[str]:
    written = st.tuples(st.integers(0, (1 << 128) - 1), st.sampled_from(["c", "x", "u"])).map(
        lambda p: _six(p[0], p[1])
    )
    odd = st.sampled_from(
        [
            "::ffff:1.2.3.4",
            "1::2::3",
            "fe80::1%eth0",
            "1:2:3:4:5:6:7:8:9",
            "12345::",
            ":1:2:3:4:5:6:7",
            "1:2:3:4:5:6:7:",
            "1:2:3:4:5:6:7::",
            "::1:2:3:4:5:6:7",
            "::",
            ":::",
            "0000:0000::00001",
            "2001:DB8:BEEF::",
        ]
    )
    groups = st.lists(st.from_regex(r"[0-9a-fA-F]{0,5}", fullmatch=True), max_size=9)
    return st.one_of(written, odd, groups.map(":".join))


def _url() -> st.SearchStrategy[str]:
    return st.tuples(
        st.sampled_from(["http://", "https://", "HTTPS://", "ftp://", "", "a/b://", "http:/"]),
        st.sampled_from(["", "user@", "u:p@", "a@b@"]),
        st.one_of(st.sampled_from(_HOSTS), _strings(_ASCII)),
        st.sampled_from(["", ":8080", ":"]),
        st.sampled_from(["", "/", "/a.b/c", "?q=a://b", "#f/g", "/x@y"]),
    ).map("".join)


def _random_pairs() -> st.SearchStrategy[tuple[str, str]]:
    types = st.sampled_from([*_CHECKED, "cve"])
    anything = st.tuples(types, st.one_of(_strings(_TEXT), _strings(_ASCII)))
    email = st.tuples(_strings(_ASCII), st.sampled_from(_HOSTS + ["MAILINATOR.com"])).map(
        lambda p: ("email", f"{p[0]}@{p[1]}")
    )
    return st.one_of(
        anything,
        _ipv4().map(lambda v: ("ipv4", v)),
        _ipv6().map(lambda v: ("ipv6", v)),
        st.sampled_from(_HOSTS).map(lambda v: ("domain", v)),
        _url().map(lambda v: ("url", v)),
        email,
    )


def test_random_values_agree_with_check_many(checker, lists):
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(_random_pairs(), min_size=1, max_size=30))
    def run(values):
        got = checker.check([t for t, _ in values], [v for _, v in values])
        assert got == lists.check_many(values)
        assert got == [lists.check(t, v) for t, v in values]

    run()
