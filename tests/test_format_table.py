"""The format table (``worker.contract.formats``) is complete, and every list of formats is read from it.

A format record without a golden file, a media type or a docs entry fails here, instead of being
published as ``text/plain`` or missing from the site.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from exports.registry import (
    BATCH_RENDERERS,
    VARIANT_RENDERERS,
    batch_groups,
    load,
    render_variants,
)
from generator.build import tree as build
from generator.publish import headers as objectmeta
from generator.site import links as site_links
from tests.golden import GOLDEN, VARIANT_GOLDENS
from tests.seed import SEED_NOW, seed_records
from worker.contract import formats, framing, layout
from worker.contract.formats import Format, Variant
from worker.contract.tiers import TIERS
from worker.endpoints import cef, iocs
from worker.endpoints.params import parse_list

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FORMATS_PAGE = ROOT / "templates" / "formats.html"
SPEC = json.loads((ROOT / "spec" / "openapi.json").read_text())
MEDIA = re.compile(r"[a-z]+/[a-z0-9.+-]+(\s*;\s*[a-z]+=[a-z0-9.-]+)*")


def described_on_the_site() -> list[str]:
    """The terms of the site's "What each format holds" list."""
    return re.findall(r"<dt>(.*?)</dt>", FORMATS_PAGE.read_text())


def spec_media_types(path: str) -> list[str]:
    operation = SPEC["paths"].get(path, {}).get("get", {})
    return list(operation.get("responses", {}).get("200", {}).get("content", {}))


def spec_list_formats() -> list[str]:
    params = SPEC["paths"][formats.LIST_ROUTE]["get"]["parameters"]
    return next(p["schema"]["enum"] for p in params if p["name"] == "format")


def golden_problems(fmt: Format) -> list[str]:
    out = []
    for v in fmt.variants:
        if v.name not in VARIANT_GOLDENS:
            out.append(f"{fmt.name}: variant {v.name} has no entry in tests.golden.VARIANT_GOLDENS")
        elif not (GOLDEN / VARIANT_GOLDENS[v.name][0]).is_file():
            out.append(f"{fmt.name}: no golden file tests/golden/{VARIANT_GOLDENS[v.name][0]}")
    return out


def media_problems(fmt: Format) -> list[str]:
    out = [
        f"{fmt.name}: variant {v.name} has no media type"
        for v in fmt.variants
        if not MEDIA.fullmatch(v.media_type)
    ]
    if not MEDIA.fullmatch(fmt.media_type):
        out.append(f"{fmt.name}: no media type")
    elif fmt.media_type.split(";")[0] not in spec_media_types(fmt.path):
        out.append(f"{fmt.name}: the spec's {fmt.path} does not answer {fmt.media_type}")
    return out


def docs_problems(fmt: Format) -> list[str]:
    doc = DOCS / fmt.doc
    out = []
    if not doc.is_file() or fmt.label.lower() not in doc.read_text().lower():
        out.append(f"{fmt.name}: docs/{fmt.doc} does not describe {fmt.label}")
    if not any(fmt.label in term for term in described_on_the_site()):
        out.append(f"{fmt.name}: {fmt.label} is not described on the site's formats page")
    if fmt.listed and fmt.name not in spec_list_formats():
        out.append(f"{fmt.name}: not in the spec's format parameter of {formats.LIST_ROUTE}")
    return out


def problems(fmt: Format) -> list[str]:
    return golden_problems(fmt) + media_problems(fmt) + docs_problems(fmt)


@pytest.mark.parametrize("fmt", formats.FORMATS, ids=lambda f: f.name)
def test_every_format_has_a_golden_a_media_type_and_docs(fmt: Format) -> None:
    assert problems(fmt) == []


def test_a_record_without_golden_media_type_or_docs_is_reported() -> None:
    toy = Format(
        "toy",
        "Toy list",
        "",
        "toy",
        "read:iocs",
        (Variant("toy", "exports.ioc_toy.render_line", "toy lines"),),
        "formats/toy.md",
    )
    found = problems(toy)
    assert "toy: variant toy has no entry in tests.golden.VARIANT_GOLDENS" in found
    assert "toy: no media type" in found and "toy: variant toy has no media type" in found
    assert "toy: docs/formats/toy.md does not describe Toy list" in found
    assert "toy: Toy list is not described on the site's formats page" in found
    assert "toy: not in the spec's format parameter of /api/v1/iocs" in found


def test_a_golden_file_that_is_missing_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(VARIANT_GOLDENS, "csv", ("no-such-golden.csv", lambda: b""))
    assert golden_problems(formats.BY_NAME["csv"]) == [
        "csv: no golden file tests/golden/no-such-golden.csv"
    ]


def test_a_media_type_the_spec_does_not_answer_is_reported() -> None:
    wrong = Format(
        "stix",
        "STIX 2.1",
        "text/plain",
        "json",
        "read:stix",
        (),
        "formats/stix.md",
        route="/api/v1/iocs/stix",
    )
    assert media_problems(wrong) == [
        "stix: the spec's /api/v1/iocs/stix does not answer text/plain"
    ]


def test_names_are_unique_and_a_format_stores_its_own_variant_first() -> None:
    names = [f.name for f in formats.FORMATS]
    variants = [v.name for v in formats.VARIANTS]
    assert len(set(names)) == len(names) and len(set(variants)) == len(variants)
    assert all(f.variants[0].name == f.name for f in formats.FORMATS)
    assert set(spec_list_formats()) == {f.name for f in formats.LISTED}


def test_the_table_imports_nothing_but_the_standard_library() -> None:
    code = (
        "import sys; before = set(sys.modules); import worker.contract.formats; print(sorted("
        "m for m in set(sys.modules) - before if m.split('.')[0] not in sys.stdlib_module_names))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert out.strip() == "['worker', 'worker.contract', 'worker.contract.formats']"


def test_the_renderers_are_the_ones_the_table_names() -> None:
    assert list(VARIANT_RENDERERS) == [v.name for v in formats.VARIANTS]
    for v in formats.VARIANTS:
        assert VARIANT_RENDERERS[v.name] is load(v.renderer)


def test_published_objects_take_the_tables_media_types() -> None:
    """An object stored as sent takes its format's media type; a framed one (compressed
    blocks the worker reads by range and inflates) is binary to HTTP."""
    framed = 0
    for key, media_type in [
        *((layout.day_data_key("2026-11-28", v.name), v.media_type) for v in formats.VARIANTS),
        *(
            (layout.default_key("free", layout.ACTIVE_VIEW, f.name), f.media_type)
            for f in formats.LISTED
        ),
    ]:
        if framing.is_framed(key):
            framed += 1
            assert objectmeta.content_type(key) == objectmeta.BINARY, key
        else:
            assert objectmeta.content_type(key) == media_type, key
    assert 0 < framed < len(formats.VARIANTS) + len(formats.LISTED)


def test_the_worker_build_and_site_read_the_table() -> None:
    assert layout.LIST_FORMATS == tuple(f.name for f in formats.LISTED)
    assert iocs.CONTENT_TYPES == {f.name: f.media_type for f in formats.LISTED}
    assert site_links.FORMATS is formats.FORMATS
    lanes = set(build.SECOND) | build.FIRST_VARIANTS
    assert {v.name for v in formats.VARIANTS} <= lanes


def test_the_own_routes_read_their_formats_from_the_table() -> None:
    assert cef.FORMATS == ("cef", "syslog")
    assert cef.FORMATS == tuple(f.name for f in formats.FORMATS if f.route == cef.ROUTE)


def test_the_record_says_which_variant_answers_without_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def variant(fmt: str, include_context: str) -> str:
        query = {"format": fmt, "include_context": include_context}
        return parse_list(query, TIERS["free"], SEED_NOW, layout.LIST_FORMATS).variant

    assert variant("json", "false") == "jsonnc" and variant("json", "true") == "json"
    assert variant("csv", "false") == "csv"
    bare_csv = dataclasses.replace(formats.BY_NAME["csv"], no_context="csvnc")
    monkeypatch.setitem(formats.BY_NAME, "csv", bare_csv)
    assert variant("csv", "false") == "csvnc" and variant("csv", "true") == "csv"


def test_the_batch_renderers_are_the_ones_the_table_names() -> None:
    assert list(BATCH_RENDERERS) == [("json", "jsonnc"), ("csv",), ("cef", "syslog")]
    assert batch_groups() == {
        v.batch: tuple(w.name for w in formats.VARIANTS if w.batch == v.batch)
        for v in formats.VARIANTS
        if v.batch
    }


def test_a_variant_naming_a_batch_renderer_joins_its_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    toy = Variant("toy", "exports.ioc_csv.render_line", formats.CSV, formats.BATCH_CEF)
    monkeypatch.setattr(formats, "VARIANTS", (*formats.VARIANTS, toy))
    assert batch_groups()[formats.BATCH_CEF] == ("cef", "syslog", "toy")


def test_batched_lines_are_the_line_renderers_bytes() -> None:
    records = seed_records()
    names = [v.name for v in formats.VARIANTS]
    batched = render_variants(records, names)
    assert list(batched) == names
    for name in names:
        assert batched[name] == [VARIANT_RENDERERS[name](r) for r in records], name
