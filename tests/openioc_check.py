"""The OpenIOC gate: the official 1.1 XSD through lxml, and the official term list.

Every ``IndicatorItem`` must name a search term of ``current.iocterms`` with that term's
display type as ``Content/@type`` and the term's first path step as ``Context/@document``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree

SCHEMAS = Path(__file__).resolve().parent / "schemas" / "openioc" / "OpenIOC_1.1"
NS = {"ioc": "http://openioc.org/schemas/OpenIOC_1.1"}
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


@cache
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMAS / "ioc.xsd")))


@cache
def terms() -> dict[str, str]:
    """search term → display type. The file has a comment before its XML declaration."""
    raw = (SCHEMAS / "current.iocterms").read_bytes()
    root = etree.fromstring(raw[raw.index(b"<?xml") :], PARSER)
    return {t.get("text"): t.get("display-type") for t in root.iter("{*}iocterm")}


def check_document(raw: bytes) -> etree._Element:
    """Every check of one OpenIOC document; returns its root element."""
    root = etree.fromstring(raw, PARSER)
    if not schema().validate(root):
        raise AssertionError([f"{e.line}: {e.message}" for e in schema().error_log][:5])
    ids = set()
    for item in root.iterfind(".//ioc:IndicatorItem", NS):
        context = item.find("ioc:Context", NS)
        content = item.find("ioc:Content", NS)
        search = context.get("search")
        assert terms()[search] == content.get("type"), search
        assert context.get("document") == search.split("/")[0]
        ids.add(item.get("id"))
    refs = {p.get("ref-id") for p in root.iterfind(".//ioc:param", NS)}
    assert refs <= ids, refs - ids
    return root
