"""Quality gate on the labelled development set, plus the cases it taught the extractor."""

from __future__ import annotations

import ipaddress
import json
import re

import pytest

from generator.extract.analyst import decode_report, looks_like_html
from generator.extract.indicators import IOC_TYPES, extract
from tests.conftest import socdef
from tests.extraction_devset import evaluate, load_devset

DOCS = load_devset()
_FORMS = {
    "md5": re.compile(r"[0-9a-f]{32}"),
    "sha1": re.compile(r"[0-9a-f]{40}"),
    "sha256": re.compile(r"[0-9a-f]{64}"),
    "sha512": re.compile(r"[0-9a-f]{128}"),
    "cve": re.compile(r"CVE-\d{4}-\d{4,7}"),
    "mitre_attack": re.compile(r"T1\d{3}(\.\d{3})?"),
    "email": re.compile(r"[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}"),
    "domain": re.compile(r"[a-z0-9.-]+\.[a-z0-9-]{2,}"),
    "url": re.compile(r"(https?|ftp)://\S+"),
}


def ours(doc):  # type: ignore[no-untyped-def]
    return {(i.type, i.value) for i in extract(doc.text, exclude_domains=[doc.source])}


def test_the_devset_is_large_and_varied():
    assert len(DOCS) >= 40
    labels = [pair for doc in DOCS for pair in doc.gold]
    assert len(labels) >= 800
    assert {t for t, _ in labels} == set(IOC_TYPES)
    assert {doc.kind for doc in DOCS} == {"txt", "html"}
    text = "\n".join(doc.text for doc in DOCS)
    for mark in ("[.]", "(.)", "{.}", "[dot]", "hxxp", "[:]", "[at]", "[@]", "\\."):
        assert mark in text, mark


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_labels_are_normalised(doc):
    for kind, value in doc.gold:
        if kind in ("ipv4", "ipv6"):
            ip = ipaddress.ip_address(value)
            assert ip.is_global and ip.compressed == value, value
        else:
            assert _FORMS[kind].fullmatch(value), (kind, value)


def test_micro_f1_on_the_devset_is_at_least_0_985():
    score = evaluate(DOCS, ours)
    p, r, f1 = score.prf()
    assert f1 >= 0.985, (p, r, f1, score.errors[:20])


# --- cases the dev set surfaced -------------------------------------------------------------


def _values(text: str, kind: str) -> list[str]:
    return [i.value for i in extract(text) if i.type == kind]


@pytest.mark.parametrize(
    "text",
    [
        "firmware versions 3.1.0.12 through 3.4.2.9 and the engineering tool up to 8.0.1.5",
        "appliances on 7.0.x need the hotfix 7.0.15.1",
        "The version string of the appliance at the time was 9.1.18.2 (build 24467)",
        "Its version banner reads v0rtex 1.3.3.7, which is not an address.",
        "version,1.0.0.1,2026-10-01,client build",
        "The billing system ran on an old release, 5.4.2.1.",
    ],
)
def test_version_numbers_in_version_clauses_are_not_addresses(text):
    assert _values(text, "ipv4") == []


def test_addresses_near_version_words_in_other_sentences_are_kept():
    text = "Version 2 shipped in May. The C2 moved to 5.188.86.172 in June."
    assert _values(text, "ipv4") == ["5.188.86.172"]
    assert _values("the firmware update server 185.220.101.4", "ipv4") == ["185.220.101.4"]


def test_sigma_technique_tags_are_found():
    assert _values("tags:\n  - attack.t1071.004\n  - attack.execution", "mitre_attack") == [
        "T1071.004"
    ]


def test_csv_fields_end_urls_at_the_comma():
    line = "url,https://panel-soft.biz/s/g38f,2026-10-06,payload"
    assert _values(line, "url") == ["https://panel-soft.biz/s/g38f"]
    assert _values("see https://cdn.evil-host.top/w_100,h_100/x.png now", "url") == [
        "https://cdn.evil-host.top/w_100,h_100/x.png"
    ]


def test_suricata_keywords_and_impersonated_brands_are_not_domains():
    assert _values('http.host; content:"evil-c2.top";', "domain") == ["evil-c2.top"]
    assert _values("Carriers such as dhl.com and ups.com were not involved.", "domain") == []


# --- socdef extract -------------------------------------------------------------------------


def test_html_is_detected():
    assert looks_like_html(b"<!DOCTYPE html><html><body>x</body></html>")
    assert looks_like_html(b"<p>a</p><p>b</p><table><tr><td>c</td></tr></table>")
    assert not looks_like_html(b"C2 at 1.2.3.4 <- seen twice")
    assert decode_report("caf\u00e9".encode("cp1252")) == "caf\u00e9"


def test_cli_extract_prints_json_lines_from_html(tmp_path):
    report = tmp_path / "report.html"
    report.write_text(
        "<html><body><p>Beacon to <b>bad-c2[.]top</b></p><table><tr>"
        "<td>185.220.101.4</td><td>8.8.8.8</td></tr></table></body></html>"
    )
    rows = [json.loads(line) for line in socdef("extract", str(report)).stdout.splitlines()]
    assert [(r["type"], r["value"]) for r in rows] == [
        ("domain", "bad-c2.top"),
        ("ipv4", "185.220.101.4"),
        ("ipv4", "8.8.8.8"),
    ]
    assert all(set(r) == {"type", "value", "context", "confidence", "defanged"} for r in rows)
    assert rows[0]["confidence"] == "high" and rows[0]["context"] == "Beacon to bad-c2[.]top"


def test_cli_extract_reads_stdin():
    import subprocess
    import sys

    from tests.conftest import ROOT

    out = subprocess.run(
        [sys.executable, "-m", "generator", "extract", "-"],
        cwd=ROOT,
        input=b"see hxxp://evil[.]ru/a and CVE-2026-1234",
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    assert [json.loads(x)["value"] for x in out.splitlines()] == [
        "http://evil.ru/a",
        "CVE-2026-1234",
    ]
