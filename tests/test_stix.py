"""STIX 2.1: the golden bundle, escaping under arbitrary text, TLP swaps and the ids.

Every bundle is judged by stix2-validator in strict mode and every pattern by stix2-patterns
(``tests/stix_check.py`` names the two checks it disables and why). The endpoint is tested over
real HTTP in ``tests/test_stix_http.py``; the 5,000-IOC build in ``test_whole_build_validates``.
Regenerate the golden file after a deliberate change with ``SOCDEF_UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

import copy
import json
import re
import time
import uuid
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rfc3986_validator import validate_rfc3986

from exports import stix21
from exports.attack import technique_name
from exports.model import IOCRecord
from generator.store.records import IOC_NAMESPACE, ioc_id
from tests.golden import assert_golden
from tests.seed import SEED_NOW, fold_seed_records, seed_records
from tests.stix_check import pattern_problems, problems, problems_parallel
from worker.contract import framing, layout
from worker.contract.stix_common import CONFIDENCE_SCORE, IDENTITY_ID, TLP_IDS, TLP_LEVELS
from worker.endpoints.stix import StixParams, bundle, swap_markings

GOLDEN = "stix_bundle.json"  # the seed corpus as one bundle, pretty-printed
MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
MAIN_TYPE = {"cve": "vulnerability", "mitre_attack": "attack-pattern"}


def params(**changes) -> StixParams:
    base = StixParams("all", 0, SEED_NOW, 1000, "bundle", True, True, None)
    return replace(base, **changes)


def render(records: list[IOCRecord], **changes) -> dict:
    p = params(**changes)
    data = b"".join(stix21.render_line(r) for r in records)
    if p.tlp:
        data = swap_markings(data, p.tlp)
    return json.loads(bundle(p, "seed-build", data))


def by_id(doc: dict) -> dict[str, dict]:
    return {o["id"]: o for o in doc["objects"]}


def unescape(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal)


# --- the golden file ---------------------------------------------------------------------------


def test_golden_bundle_is_current_and_valid():
    doc = render(seed_records())
    assert_golden(GOLDEN, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode())
    assert problems(doc, enforce_refs=True) == []
    assert pattern_problems(doc["objects"]) == []


def test_golden_maps_every_record():
    records = seed_records()
    doc = render(records)
    objects = by_id(doc)
    assert doc["objects"][0]["id"] == IDENTITY_ID
    assert [o["type"] for o in doc["objects"][1:4]] == ["marking-definition"] * 3
    assert {t for r in records for t in [r.type]} == set(layout.IOC_TYPES)
    for r in records:
        main = objects[f"{MAIN_TYPE.get(r.type, 'indicator')}--{r.id}"]
        assert MILLIS.match(main["created"]) and MILLIS.match(main["modified"])
        assert main["created"] == stix21.timestamp(r.first_seen)
        assert main["modified"] == stix21.timestamp(r.last_seen)
        assert main["confidence"] == CONFIDENCE_SCORE[r.confidence]
        assert main["object_marking_refs"] == [TLP_IDS[r.tlp]]
        assert main["created_by_ref"] == IDENTITY_ID
        assert main.get("labels", []) == list(r.tags)
        article = main["external_references"][-1]
        assert (article["description"], article["external_id"]) == (r.article_title, r.article_id)
        if main["type"] == "indicator":
            assert main["valid_from"] == main["created"] and main["pattern_type"] == "stix"
            literal = re.fullmatch(r"\[[^ ]+ = '(.*)'\]", main["pattern"], re.S).group(1)
            assert unescape(literal) == r.value


def test_patterns_quote_and_escape():
    assert stix21.pattern("url", "http://a.example/it's\\x") == (
        "[url:value = 'http://a.example/it\\'s\\\\x']"
    )
    assert stix21.pattern("sha256", "ab" * 32) == f"[file:hashes.'SHA-256' = '{'ab' * 32}']"
    assert stix21.pattern("sha1", "a" * 40).startswith("[file:hashes.'SHA-1' = ")
    assert stix21.pattern("sha512", "a" * 128).startswith("[file:hashes.'SHA-512' = ")
    assert stix21.pattern("md5", "a" * 32).startswith("[file:hashes.MD5 = ")
    assert stix21.pattern("email", "x@y.example") == "[email-addr:value = 'x@y.example']"
    assert stix21.pattern("domain", "y.example") == "[domain-name:value = 'y.example']"
    assert stix21.pattern("ipv6", "2001:db8::1") == "[ipv6-addr:value = '2001:db8::1']"


def test_cve_and_attack_references():
    doc = by_id(render(seed_records()))
    cve = doc[f"vulnerability--{ioc_id('cve', 'CVE-2024-3400')}"]
    assert cve["name"] == "CVE-2024-3400"
    assert cve["external_references"][0] == {
        "source_name": "cve",
        "external_id": "CVE-2024-3400",
        "url": "https://www.cve.org/CVERecord?id=CVE-2024-3400",
    }
    technique = doc[stix21.attack_pattern_id("T1059.001")]
    assert technique["external_references"][0] == {
        "source_name": "mitre-attack",
        "external_id": "T1059.001",
        "url": "https://attack.mitre.org/techniques/T1059/001/",
    }


def test_relationships_link_each_record_to_its_articles_techniques():
    records = seed_records()
    doc = render(records)
    rels = [o for o in doc["objects"] if o["type"] == "relationship"]
    expected = set()
    for r in records:
        kind = {"cve": "related-to", "mitre_attack": None}.get(r.type, "indicates")
        if kind:
            source = f"{MAIN_TYPE.get(r.type, 'indicator')}--{r.id}"
            expected |= {(source, kind, stix21.attack_pattern_id(t)) for t in r.mitre_techniques}
    assert {(o["source_ref"], o["relationship_type"], o["target_ref"]) for o in rels} == expected
    assert len(rels) == len(expected) > 20
    ids = set(by_id(doc))
    assert all(o["target_ref"] in ids for o in rels)  # every technique is in the corpus


def test_validator_gate_catches_broken_bundles():
    good = render(seed_records())
    ind = next(i for i, o in enumerate(good["objects"]) if o["type"] == "indicator")
    mutations = [
        lambda o: o.__setitem__("created", o["created"].replace(".000Z", "Z")),
        lambda o: o.__setitem__("pattern", "[file:hashes.SHA-256 = 'ab']"),
        lambda o: o.__setitem__("pattern", "[url:value = 'it's']"),
        lambda o: o.pop("description"),
        lambda o: o.__setitem__("x_custom", 1),
        lambda o: o.__setitem__("confidence", 101),
        lambda o: o.__setitem__("id", "indicator--12345678-1234-1234-1234-123456789abc"),
    ]
    for mutate in mutations:
        bad = copy.deepcopy(good)
        mutate(bad["objects"][ind])
        assert problems(bad), mutate
    bad = copy.deepcopy(good)
    cve = next(o for o in bad["objects"] if o["type"] == "vulnerability")
    cve["external_references"][0]["external_id"] = "cve-2024-3400"
    assert problems(bad)
    bad = copy.deepcopy(good)
    bad["objects"][1] = {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": "marking-definition--" + str(uuid.uuid4()),
        "created": "2022-10-01T00:00:00.000Z",
        "definition_type": "tlp",
        "definition": {"tlp": "clear"},
    }
    assert problems(bad)


# --- ids and the fast paths --------------------------------------------------------------------


def test_attack_pattern_ids_follow_record_ids():
    assert stix21.RECORD_NAMESPACE == IOC_NAMESPACE
    assert stix21.attack_pattern_id("T1071") == f"attack-pattern--{ioc_id('mitre_attack', 'T1071')}"


@given(st.text(max_size=80))
def test_fast_uuid5_is_uuid5(name):
    ns = stix21._STIX_NS
    assert stix21.uuid5(ns, name) == str(uuid.uuid5(stix21.STIX_NAMESPACE, name))


def test_render_line_equals_record_objects():
    for r in seed_records():
        line = stix21.render_line(r)
        assert line == orjson.dumps(stix21.record_objects(r))[1:-1] + b","
        assert line.endswith(b",") and b"\n" not in line


def test_ids_are_deterministic_rfc4122():
    first, again = render(seed_records()), render(fold_seed_records())
    assert first == again
    for obj in first["objects"] + [first]:
        u = uuid.UUID(obj["id"].split("--")[1])
        assert u.variant == uuid.RFC_4122 and u.version in (4, 5)
    assert render(seed_records(), limit=5)["id"] != first["id"]


# --- TLP -------------------------------------------------------------------------------------


def stricter(a: str, b: str) -> str:
    return max(a, b, key=TLP_LEVELS.index)


@pytest.mark.parametrize("level", ["clear", "green", "amber", "amber+strict", "red"])
def test_tlp_override_raises_and_never_lowers(level):
    records = seed_records()
    assert {r.tlp for r in records} == {"clear", "green", "amber"}
    doc = render(records, tlp=level)
    raised = [replace(r, tlp=stricter(r.tlp, level)) for r in records]
    want = [o for r in raised for o in stix21.record_objects(r)]
    markings = [o for o in doc["objects"] if o["type"] == "marking-definition"]
    used = {r.tlp for r in raised}
    assert [m["id"] for m in markings] == [TLP_IDS[lvl] for lvl in TLP_LEVELS if lvl in used]
    assert doc["objects"][1 + len(markings) :] == want
    assert problems(doc) == []


@pytest.mark.parametrize("level", ["clear", "green", "amber", "amber+strict"])
def test_a_red_record_is_never_served_below_red(level):
    red = replace(seed_records()[0], tlp="red")
    doc = render([red], tlp=level)
    marked = [o for o in doc["objects"] if "object_marking_refs" in o]
    assert marked and all(o["object_marking_refs"] == [TLP_IDS["red"]] for o in marked)
    markings = [o for o in doc["objects"] if o["type"] == "marking-definition"]
    assert [m["id"] for m in markings] == [TLP_IDS["red"]]


def test_tlp_swap_never_touches_text():
    trap = f'"object_marking_refs":["{TLP_IDS["green"]}"] and {TLP_IDS["amber"]}'
    r = replace(seed_records()[0], context=trap, article_title=trap, tags=(trap,))
    line = stix21.render_line(r)
    obj = json.loads(b"[" + swap_markings(line, "red")[:-1] + b"]")[0]
    assert obj["description"] == trap and obj["labels"] == [trap]
    assert obj["object_marking_refs"] == [TLP_IDS["red"]]


def test_optional_parts_of_the_envelope():
    records = seed_records()
    bare = render(records, include_identity=False, include_tlp_markings=False)
    assert {o["type"] for o in bare["objects"]} <= {
        "indicator",
        "vulnerability",
        "attack-pattern",
        "relationship",
    }
    empty = render([], include_identity=False)
    assert set(empty) == {"type", "id"}  # a bundle's objects list is never empty
    assert problems(empty) == []


# --- arbitrary text ----------------------------------------------------------------------------

TEXT = st.text(max_size=40)
HEX = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}


@st.composite
def records(draw) -> IOCRecord:
    type_ = draw(st.sampled_from(layout.IOC_TYPES))
    if type_ in HEX:
        value = draw(st.text("0123456789abcdef", min_size=HEX[type_], max_size=HEX[type_]))
    elif type_ == "cve":
        value = draw(st.from_regex(r"CVE-20[0-9]{2}-[0-9]{4,7}", fullmatch=True))
    elif type_ == "mitre_attack":
        value = draw(st.from_regex(r"T1[0-9]{3}(\.[0-9]{3})?", fullmatch=True))
    else:
        value = draw(TEXT)
    first = draw(st.integers(0, 2**32))
    techniques = draw(
        st.lists(st.from_regex(r"T1[0-9]{3}", fullmatch=True), max_size=2, unique=True)
    )
    return IOCRecord(
        id=ioc_id(type_, value),
        type=type_,
        value=value,
        confidence=draw(st.sampled_from(("high", "medium", "low"))),
        first_seen=first,
        last_seen=first + draw(st.integers(0, 10**6)),
        sightings=1,
        article_id=draw(st.from_regex(r"[0-9a-f]{16}", fullmatch=True)),
        article_title=draw(TEXT),
        article_url=draw(TEXT | st.just("https://n.example/a b")),
        feed_name=draw(TEXT | st.sampled_from(("cve", "capec", "cve\n"))),
        category="news",
        context=draw(TEXT),
        tags=tuple(sorted(set(draw(st.lists(TEXT, max_size=3))))),
        mitre_techniques=tuple(sorted(techniques)),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records())
def test_arbitrary_text_survives_and_validates(r):
    doc = render([r])
    main = by_id(doc)[f"{MAIN_TYPE.get(r.type, 'indicator')}--{r.id}"]
    assert main["description"] in (r.context, f"Reported by {r.feed_name}: {r.article_title}")
    assert main.get("labels", []) == list(r.tags)
    article = main["external_references"][-1]
    assert article["description"] == r.article_title
    if main["type"] == "indicator":
        literal = re.fullmatch(r"\[[^ ]+ = '(.*)'\]", main["pattern"], re.S).group(1)
        assert unescape(literal) == r.value and main["name"].endswith(r.value)
    elif main["type"] == "attack-pattern":  # ATT&CK's own name where the bundled table has one
        assert main["name"] == (technique_name(r.value) or r.value)
    else:
        assert main["name"] == r.value
    assert problems(doc) == []
    assert pattern_problems(doc["objects"]) == []


@given(st.text(max_size=60) | st.builds(lambda t: "https://h.example/" + t, st.text(max_size=30)))
def test_article_links_are_uris_or_left_out(text):
    uri = stix21.to_uri(text)
    assert uri is None or validate_rfc3986(uri, rule="URI")


def test_plain_links_are_kept_as_they_are():
    for url in ("https://a.example/x?y=1&z=%20#f", "http://[2001:db8::1]:8080/p", "https://a/b;c"):
        assert stix21.to_uri(url) == url
    assert stix21.to_uri("https://例え.example/パス") == (
        "https://%E4%BE%8B%E3%81%88.example/%E3%83%91%E3%82%B9"
    )


# --- a whole build -----------------------------------------------------------------------------


def test_whole_build_validates(tmp_path):
    """5,000+ IOCs through the real build; every object of every day by the validator."""
    from generator.build.tree import build
    from generator.store.synthetic import synthetic_store

    now = 1_795_000_000
    result = build(
        synthetic_store(str(tmp_path / "store"), 5_600, now=now, days=90),
        tmp_path / "build",
        now=now,
    )
    assert result.iocs >= 5_000
    manifest = json.loads((tmp_path / "build" / layout.manifest_key(result.build_id)).read_text())
    data = b""
    for key in sorted((k for k in manifest["objects"] if k.endswith("/stix.dat")), reverse=True):
        sha = manifest["objects"][key][0]
        data += framing.unframe((tmp_path / "build" / layout.object_key(sha)).read_bytes())
    doc = json.loads(bundle(params(until=now), result.build_id, data))
    mains = [
        o
        for o in doc["objects"]
        if o["type"] not in ("relationship", "identity", "marking-definition")
    ]
    assert len(mains) == result.iocs
    started = time.perf_counter()
    assert problems_parallel(doc) == []
    assert pattern_problems(doc["objects"]) == []
    print(f"validated {len(doc['objects']):,} objects in {time.perf_counter() - started:.1f}s")


def test_format_page_names_the_constants():
    page = (Path(__file__).parent.parent / "docs" / "formats" / "stix.md").read_text()
    for value in [
        IDENTITY_ID,
        *TLP_IDS.values(),
        str(stix21.STIX_NAMESPACE),
        str(stix21.RECORD_NAMESPACE),
    ]:
        assert value in page, value


def test_line_shape_contract():
    """What the TAXII build relies on to split a line without parsing it."""
    head = re.compile(rb'\{"type":"[a-z-]+","spec_version":"2\.1","id":"[a-z-]+--[0-9a-f-]{36}"')
    for r in seed_records():
        line = stix21.render_line(r)
        objects = stix21.record_objects(r)
        assert line.count(b',{"type":"relationship",') == len(objects) - 1
        for obj in objects:
            assert head.match(orjson.dumps(obj))
