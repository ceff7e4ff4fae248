"""OpenIOC 1.1 (``/api/v1/iocs/openioc``): documents valid against the official XSD."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from exports import openioc
from exports.registry import VARIANT_RENDERERS
from tests.golden import assert_golden
from tests.ioc_strategies import records
from tests.openioc_check import NS, check_document
from tests.seed import SEED_NOW, seed_records
from worker.contract import layout
from worker.endpoints.exports import ExportParams
from worker.endpoints.openioc import document

RECORDS = seed_records()
PARAMS = ExportParams(layout.ALL_VIEW, SEED_NOW - 365 * layout.DAY_SECONDS, SEED_NOW, 100, "json")
FORBIDDEN = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def document_of(recs, build_id: str = "golden", params: ExportParams = PARAMS) -> bytes:
    items = b"".join(VARIANT_RENDERERS["openioc"](r) for r in recs)
    params_ = b"".join(VARIANT_RENDERERS["openiocp"](r) for r in recs)
    return document(build_id, SEED_NOW, params, "socdef", items, params_)


def params_by_item(root) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for p in root.iterfind(".//ioc:param", NS):
        found.setdefault(p.get("ref-id"), {})[p.get("name")] = p.find("ioc:value", NS).text or ""
    return found


def assert_carries(recs, root) -> None:
    items = {i.get("id"): i for i in root.iterfind(".//ioc:IndicatorItem", NS)}
    expressible = [r for r in recs if r.type in openioc.TERMS]
    assert list(items) == [r.id for r in expressible]
    params = params_by_item(root)
    for r in expressible:
        assert items[r.id].find("ioc:Content", NS).text == FORBIDDEN.sub("", r.value)
        assert params[r.id]["confidence"] == r.confidence
        assert FORBIDDEN.sub("", r.article_title) in params[r.id]["source"]
        assert params[r.id].get("comment", "") == FORBIDDEN.sub("", r.context)


def test_golden_and_xsd_valid():
    doc = document_of(RECORDS)
    assert_golden("openioc.xml", doc)
    root = check_document(doc)
    assert_carries(RECORDS, root)
    assert root.tag == "{http://openioc.org/schemas/OpenIOC_1.1}OpenIOC"
    assert len(root.findall(".//ioc:IndicatorItem", NS)) == 20  # 30 less 1 SHA-512, 3 CVE, 6 ATT&CK


def test_types_without_a_term_render_nothing():
    for r in RECORDS:
        empty = r.type in ("sha512", "cve", "mitre_attack")
        assert (openioc.render_item(r) == b"") is empty
        assert (openioc.render_params(r) == b"") is empty


def test_a_document_without_items_is_still_valid():
    check_document(document_of([r for r in RECORDS if r.type == "cve"]))


def test_ids_are_a_function_of_build_and_query():
    root_id = lambda *a: check_document(document_of(RECORDS[:2], *a)).get("id")  # noqa: E731
    other = ExportParams(layout.ALL_VIEW, PARAMS.since + 1, PARAMS.until, 100, "json")
    assert root_id("b1") == root_id("b1")
    assert len({root_id("b1"), root_id("b2"), root_id("b1", other)}) == 3


@settings(max_examples=200, deadline=None)
@given(st.lists(records(), min_size=1, max_size=5))
def test_arbitrary_text_survives_and_validates(recs):
    assert_carries(recs, check_document(document_of(recs)))
