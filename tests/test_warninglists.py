"""The compiled warninglists: what a hit suppresses or annotates, the PSL's private section,
the operator's overrides, and agreement with pymispwarninglists and between the two paths."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from generator.extract import warninglists
from generator.extract.domains import host_in
from generator.extract.warninglist_batch import BatchChecker
from generator.extract.warninglists import WarninglistError, Warninglists

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def lists() -> Warninglists:
    return warninglists.bundled()


@pytest.mark.parametrize(
    ("type_", "value", "listed"),
    [
        ("ipv4", "8.8.8.8", "public-dns-v4"),
        ("ipv4", "1.1.1.1", "public-dns-v4"),
        ("ipv6", "2001:4860:4860::8888", "public-dns-v6"),
        ("domain", "bit.ly", "url-shortener"),
        ("domain", "microsoft.com", "microsoft"),
        ("domain", "mail.google.com", "google"),  # a ".google.com" entry: the name and below
        ("ipv4", "10.1.2.3", "rfc1918"),  # inside a CIDR block
        ("ipv4", "198.51.100.7", "socdef"),  # documentation range, socdef's own list
        ("domain", "example.com", "rfc6761"),
        ("url", "https://securelist.com/some-report/", "security-provider-blogpost"),
        ("md5", "d41d8cd98f00b204e9800998ecf8427e", "empty-hashes"),
    ],
)
def test_false_positives_are_suppressed_with_their_list(lists, type_, value, listed):
    hit = lists.check(type_, value)
    assert hit is not None and hit.suppress and listed in hit.lists


@pytest.mark.parametrize(
    ("type_", "value", "listed"),
    [
        ("domain", "update-check.herokuapp.com", "lots-project"),  # rented under a provider
        ("ipv4", "52.95.1.1", "amazon-aws"),
        ("url", "https://bit.ly/3xYz", "url-shortener"),  # a shortened link is an indicator
        ("email", "abuse@hosting-provider.net", "common-contact-emails"),  # regex list
    ],
)
def test_known_identifiers_are_only_annotated(lists, type_, value, listed):
    hit = lists.check(type_, value)
    assert hit is not None and not hit.suppress and listed in hit.lists


@pytest.mark.parametrize(
    ("type_", "value"),
    [
        ("domain", "qzxv-update-service.com"),
        ("ipv4", "45.137.21.9"),
        ("sha256", "a" * 64),
        ("url", "http://qzxv-update-service.com/gate.php"),
        ("cve", "CVE-2024-3400"),
    ],
)
def test_unlisted_indicators_have_no_hit(lists, type_, value):
    assert lists.check(type_, value) is None


def test_a_ranking_of_a_provider_does_not_suppress_the_names_under_it(lists):
    # github.io is on the top lists and is a private public suffix: the name is suppressed,
    # a user's site under it is judged by itself (annotated by the lists that annotate)
    assert lists.check("domain", "github.io").suppress
    below = lists.check("domain", "attacker-site.github.io")
    assert below is not None and not below.suppress and "tranco10k" not in below.lists
    # an ordinary subdomain of a ranked site is still covered by the ranking
    assert lists.check("domain", "login.live.com").suppress


def test_extraction_allowlist_stops_at_private_suffixes():
    allow = frozenset({"github.io", "microsoft.com"})
    assert host_in("github.io", allow)
    assert not host_in("attacker-site.github.io", allow)
    assert host_in("www.microsoft.com", allow)


def test_every_bundled_list_has_a_policy_and_every_policy_a_list():
    table = warninglists.policies()
    folders = {p.name for p in warninglists.misp_lists_dir().iterdir() if p.is_dir()}
    assert folders - set(table) == set()
    assert set(table) - folders == {"socdef"}
    assert all(p.reason for p in table.values())


def test_pymispwarninglists_exact_hits_are_found(lists):
    """Every value pymispwarninglists's own search finds on a loaded list, ours finds there."""
    from pymispwarninglists import WarningLists

    theirs = WarningLists()
    folder_of = {}
    for folder in warninglists.misp_lists_dir().iterdir():
        data = json.loads((folder / "list.json").read_text())
        folder_of[data["name"]] = folder.name
    table = warninglists.policies()
    probes = [
        ("domain", "dns.google"),
        ("domain", "bit.ly"),
        ("ipv4", "8.8.4.4"),
        ("md5", "d41d8cd98f00b204e9800998ecf8427e"),
        ("domain", "login.microsoftonline.com"),
        ("domain", "outlook.office365.com"),
    ]
    for type_, value in probes:
        expected = {folder_of[w.name] for w in theirs.search(value)}
        expected = {n for n in expected if table[n].action != warninglists.IGNORE}
        expected = {n for n in expected if _applies(n, type_)}
        hit = lists.check(type_, value)
        assert expected <= set(hit.lists if hit else ()), (value, expected)


def _applies(name: str, type_: str) -> bool:
    data = json.loads((warninglists.misp_lists_dir() / name / "list.json").read_text())
    return any(type_ in warninglists._APPLIES.get(a, ()) for a in data["matching_attributes"])


def test_the_column_path_agrees_with_the_one_by_one_path(lists):
    sys.path.insert(0, str(ROOT / "bench"))
    from lifecycle import indicators  # the benchmark's mix, 20 % drawn from the lists

    values = indicators(4_000, 0.2, seed=3)
    values += [("ipv4", "8.8.8.8"), ("url", "http://[2001:db8::1]/x"), ("url", "no-scheme")]
    values += [("domain", "attacker-site.github.io"), ("email", "SOC@corp.example")]
    batch = BatchChecker(lists).check([t for t, _ in values], [v for _, v in values])
    assert batch == lists.check_many(values)
    assert sum(h is not None for h in batch) > 500


def test_hash_columns_agree_in_any_case_and_width(lists):
    empty_md5 = "d41d8cd98f00b204e9800998ecf8427e"  # on the empty-hashes list
    values = [empty_md5, "0" * 32, "f" * 32, empty_md5.upper(), "xyz", empty_md5[:16]]
    checker = BatchChecker(lists)
    found = checker.check(["md5"] * len(values), values)
    assert found == [lists.check("md5", v) for v in values]
    assert found[0] is not None and found[3] is None  # hashes are compared as written


def test_overrides_allow_and_block(tmp_path):
    path = tmp_path / "overrides.txt"
    path.write_text(
        "# operator overrides\n"
        "allow 8.8.8.8            # our own resolver is reported by a vendor\n"
        "block 203.0.113.0/24\n"
        "block *.bad-cdn.example\n"
        "block 44d88612fea8a8f36de82e1278abb02f\n"
    )
    lists = warninglists.load(path)
    allowed = lists.check("ipv4", "8.8.8.8")
    assert allowed.allow and allowed.suppress and "operator-allow" in allowed.lists
    assert lists.check("ipv4", "203.0.113.77").block
    assert lists.check("domain", "x.bad-cdn.example").block
    assert lists.check("md5", "44d88612fea8a8f36de82e1278abb02f").block
    assert lists.check("ipv4", "45.137.21.9") is None


def test_overrides_report_every_bad_line_at_once(tmp_path):
    path = tmp_path / "overrides.txt"
    path.write_text("allow 1.2.3.4\npermit 5.6.7.8\nblock\nblock two words\n")
    with pytest.raises(WarninglistError) as err:
        warninglists.load(path)
    message = str(err.value)
    assert all(f"overrides.txt:{n}:" in message for n in (2, 3, 4))
    assert "overrides.txt:1:" not in message


def test_a_missing_overrides_file_is_a_clear_error(tmp_path):
    with pytest.raises(WarninglistError, match="cannot read the overrides file"):
        warninglists.load(tmp_path / "absent.txt")
