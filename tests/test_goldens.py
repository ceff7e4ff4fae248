"""Every record variant in the registry has one golden file rendered from the seed corpus.

A variant added to ``exports.registry`` without a golden file (and an entry in
``tests.golden.VARIANT_GOLDENS``) fails here. Each golden is also checked by the format's own
tooling: the spec's JSON schema, the ``csv`` module, the STIX validator, pymisp, the OpenIOC
XSD and the CEF/syslog parsers. Regenerate with ``python -m tests.golden --update``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from jsonschema import Draft7Validator, FormatChecker

from exports.registry import VARIANT_RENDERERS
from tests.cef_check import check_cef_line, check_syslog_line
from tests.golden import GOLDEN, VARIANT_GOLDENS, assert_golden, main
from tests.misp_check import check_event
from tests.openioc_check import check_document
from tests.seed import seed_records
from tests.stix_check import problems

SPEC = Path(__file__).resolve().parents[1] / "spec" / "openapi.json"

RECORDS = seed_records()


def spec() -> dict:
    return json.loads(SPEC.read_text())


def list_validator() -> Draft7Validator:
    components = spec()["components"]
    schema = {"$ref": "#/components/schemas/IOCListResponse", "components": components}
    return Draft7Validator(schema, format_checker=FormatChecker())


def spec_csv_columns() -> list[str]:
    op = spec()["paths"]["/api/v1/iocs"]["get"]
    example = op["responses"]["200"]["content"]["text/csv"]["example"]
    return next(csv.reader(io.StringIO(example)))


def golden_bytes(variant: str) -> bytes:
    return (GOLDEN / VARIANT_GOLDENS[variant][0]).read_bytes()


@pytest.mark.parametrize("variant", sorted(VARIANT_RENDERERS))
def test_variant_matches_its_golden(variant):
    assert variant in VARIANT_GOLDENS, (
        f"variant {variant!r} has no golden file: add it to tests.golden.VARIANT_GOLDENS and run "
        "python -m tests.golden --update"
    )
    name, render = VARIANT_GOLDENS[variant]
    assert_golden(name, render())


def test_no_golden_for_a_variant_the_registry_lacks():
    assert set(VARIANT_GOLDENS) == set(VARIANT_RENDERERS)


def test_regeneration_command_reports_current():
    assert main([]) == 0
    with pytest.raises(SystemExit):
        main(["no-such-variant"])


@pytest.mark.parametrize("variant", ["json", "jsonnc"])
def test_json_golden_is_an_ioc_list_of_the_spec(variant):
    doc = json.loads(golden_bytes(variant))
    errors = [e.message for e in list_validator().iter_errors(doc)]
    assert errors == []
    assert [d["id"] for d in doc["data"]] == [r.id for r in RECORDS]
    assert doc["meta"]["total"] == len(RECORDS)
    assert [d["value"] for d in doc["data"]] == [r.value for r in RECORDS]
    with_context = [d for d in doc["data"] if "context" in d]
    assert (with_context != []) == (variant == "json")


def test_json_schema_check_can_fail():
    doc = json.loads(golden_bytes("json"))
    doc["data"][0]["type"] = "not-a-type"
    assert list(list_validator().iter_errors(doc)) != []


def test_csv_golden_has_the_spec_columns():
    text = golden_bytes("csv").decode()
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == spec_csv_columns()
    assert len(rows) == len(RECORDS) + 1
    for r, row in zip(RECORDS, rows[1:], strict=True):
        assert len(row) == len(rows[0])
        fields = dict(zip(rows[0], row, strict=True))
        assert (fields["id"], fields["type"], fields["value"]) == (r.id, r.type, r.value)
        assert fields["confidence"] == r.confidence
        assert fields["tags"] == ",".join(r.tags)


def test_txt_golden_is_one_value_per_line():
    data = golden_bytes("txt")
    assert data.endswith(b"\n")
    assert data.decode().split("\n")[:-1] == [r.value for r in RECORDS]


def test_stix_golden_passes_the_validator():
    assert problems(json.loads(golden_bytes("stix")), enforce_refs=True) == []


def test_misp_golden_passes_pymisp():
    event = check_event(golden_bytes("misp"))["Event"]
    assert [a["uuid"] for a in event["Attribute"]] == [r.id for r in RECORDS]


def test_openioc_golden_passes_the_xsd():
    check_document(golden_bytes("openioc"))
    assert golden_bytes("openioc") == golden_bytes("openiocp")


@pytest.mark.parametrize("variant", ["cef", "syslog"])
def test_cef_and_syslog_goldens_parse(variant):
    lines = golden_bytes(variant).decode().split("\n")
    assert lines[-1] == "" and len(lines) - 1 == len(RECORDS)
    for line in lines[:-1]:
        if variant == "cef":
            check_cef_line(line)
        else:
            check_syslog_line(line)
