"""CEF and RFC 5424 syslog lines (``/api/v1/iocs/cef``), checked by three CEF readers and a
syslog parser; escaping checked against cefevent as a second producer."""

from __future__ import annotations

import re

import pytest
from cefevent import CEFEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from exports import cef
from exports.registry import VARIANT_RENDERERS
from exports.timefmt import iso_z
from tests.cef_check import check_cef_line, check_syslog_line, parse_cef
from tests.golden import assert_golden
from tests.ioc_strategies import records, text
from tests.seed import seed_records
from worker.contract.stix_common import CONFIDENCE_SCORE

RECORDS = seed_records()
_DROP = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def lines(variant: str, recs) -> list[str]:
    return [VARIANT_RENDERERS[variant](r).decode() for r in recs]


def normalised(text_: str) -> str:
    """What an extension value keeps of a text: no control characters, no edge whitespace."""
    return _DROP.sub("", text_).strip()


def assert_carries(r, pairs: dict[str, str]) -> None:
    key, _ = cef.VALUE_KEYS[r.type]
    assert pairs[key] == normalised(r.value)
    assert pairs["externalId"] == r.id and pairs["cs1"] == r.confidence
    assert pairs["cn1"] == str(CONFIDENCE_SCORE[r.confidence])
    assert (pairs["start"], pairs["end"]) == (f"{r.first_seen}000", f"{r.last_seen}000")
    assert pairs.get("msg", "") == normalised(r.context)[: cef.MSG_MAX].rstrip()
    assert pairs.get("cs5", "") == normalised(r.article_title)
    assert pairs.get("cs2", "") == normalised(",".join(r.tags))


@pytest.mark.parametrize("variant", ["cef", "syslog"])
def test_golden(variant):
    rendered = lines(variant, RECORDS)
    assert_golden(f"{variant}.log", "".join(rendered).encode())
    for r, line in zip(RECORDS, rendered, strict=True):
        assert line.endswith("\n") and line.count("\n") == 1
        if variant == "cef":
            pairs = check_cef_line(line[:-1])
        else:
            message, pairs = check_syslog_line(line[:-1])
            assert message.timestamp == iso_z(r.last_seen)
            assert int(message.severity) == cef.SYSLOG_PRI[r.confidence] - 128
        assert_carries(r, pairs)


def test_every_type_has_its_field():
    by_type = {r.type: check_cef_line(cef.cef_event(r)) for r in RECORDS}
    assert by_type["ipv4"]["dst"] in {"198.51.100.7", "203.0.113.99"}
    assert by_type["ipv6"]["c6a1"] and by_type["ipv6"]["c6a1Label"] == "indicator"
    assert "src" not in by_type["ipv6"] and "dst" not in by_type["ipv6"]
    assert by_type["cve"]["flexString1Label"] == "cve"
    assert by_type["mitre_attack"]["flexString1Label"] == "mitreTechnique"
    severities = {r.confidence: parse_cef(cef.cef_event(r))[0][6] for r in RECORDS}
    assert severities == {"high": "8", "medium": "5", "low": "3"}


def test_escaping_matches_the_specification():
    assert cef.escape_header("a\\b|c=d") == "a\\\\b\\|c=d"
    assert cef.escape_value("a\\b|c=d\ne\rf") == "a\\\\b|c\\=d\\ne\\rf"
    assert cef.escape_value("x" * 2000, cef.MSG_MAX) == "x" * cef.MSG_MAX


@settings(max_examples=300, deadline=None)
@given(text)
def test_escaping_agrees_with_cefevent(value):
    plain = normalised(value)  # what both producers receive: no control characters or edges
    event = CEFEvent()
    if "\n" not in plain and "\r" not in plain:
        assert cef.escape_header(plain) == event.set_prefix("name", plain)
    if "\r" not in plain and len(plain) <= cef.MSG_MAX:  # cefevent leaves CR unescaped
        assert cef.escape_value(plain) == event._validate_field_value("message", plain)


@settings(max_examples=200, deadline=None)
@given(st.lists(records(), min_size=1, max_size=4))
def test_arbitrary_text_survives_and_validates(recs):
    for r, line, framed in zip(recs, lines("cef", recs), lines("syslog", recs), strict=True):
        assert line.count("\n") == 1 and framed.count("\n") == 1
        assert_carries(r, check_cef_line(line[:-1]))
        assert check_syslog_line(framed[:-1])[1] == check_cef_line(line[:-1])
