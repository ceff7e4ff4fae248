"""A build of 5,500 synthetic IOCs, every MISP, CEF, syslog and OpenIOC line of it checked by the
same tools as the golden files: one test per format."""

from __future__ import annotations

import json
from array import array

import pytest

from generator.build import misp_feed
from generator.build.tree import build
from generator.store.synthetic import synthetic_store
from tests.cef_check import check_cef_line, check_syslog_line
from tests.misp_check import check_event, check_feed
from tests.openioc_check import NS, check_document
from worker.buckets.storage import Build, LocalBucket
from worker.contract import layout
from worker.endpoints import query
from worker.endpoints.exports import ExportParams
from worker.endpoints.misp import event_document
from worker.endpoints.openioc import document

N = 5_500
NOW = 1_795_000_000
YEAR = 365 * layout.DAY_SECONDS


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Build:
    root = tmp_path_factory.mktemp("full")
    result = build(synthetic_store(str(root / "store"), N, now=NOW, days=400), root / "build")
    assert result.iocs >= 5_000
    manifest = json.loads((root / "build" / layout.manifest_key(result.build_id)).read_text())
    return Build(LocalBucket(root / "build"), manifest)


def day_lines(b: Build, variant: str) -> list[bytes]:
    found = []
    for day, _count, _start in query.view_days(b, layout.ALL_VIEW):
        data = b.read(layout.day_data_key(day, variant)) or b""
        offsets = array("Q")
        offsets.frombytes(b.read(layout.day_index_key(day, variant)) or b"")
        found += [data[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
    return found


def stamps(b: Build) -> list[int]:
    found = array("q")
    for day, _count, _start in query.view_days(b, layout.ALL_VIEW):
        found.frombytes(b.read(layout.day_ts_key(day)) or b"")
    return list(found)


def everything(b: Build) -> ExportParams:
    return ExportParams(layout.ALL_VIEW, 0, b.generated_at, len(stamps(b)), "json")


def test_misp_event_of_every_attribute(built):
    attributes = b"".join(day_lines(built, "misp"))
    event = check_event(
        event_document(built.build_id, built.generated_at, everything(built), "socdef", attributes)
    )
    assert len(event["Event"]["Attribute"]) == len(stamps(built))


def test_misp_feed(built):
    prefix = layout.feed_key("misp", "")
    feed = {
        k.removeprefix(prefix): built.read(k) or b"" for k in built.objects if k.startswith(prefix)
    }
    events = check_feed(feed, misp_feed.MAX_ATTRIBUTES)
    in_window = sum(t >= built.generated_at - YEAR for t in stamps(built))
    assert sum(len(e["Event"]["Attribute"]) for e in events.values()) == in_window
    assert len(events) > 100  # one per article, not one huge event


def test_cef_every_line(built):
    lines = day_lines(built, "cef")
    assert len(lines) == len(stamps(built))
    for line in lines:
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        check_cef_line(line[:-1].decode())


def test_syslog_every_line(built):
    lines = day_lines(built, "syslog")
    assert len(lines) == len(stamps(built))
    for line in lines:
        assert line.count(b"\n") == 1
        check_syslog_line(line[:-1].decode())


def test_openioc_document_of_every_item(built):
    items, params = b"".join(day_lines(built, "openioc")), b"".join(day_lines(built, "openiocp"))
    root = check_document(
        document(built.build_id, built.generated_at, everything(built), "socdef", items, params)
    )
    assert len(root.findall(".//ioc:IndicatorItem", NS)) == items.count(b"<IndicatorItem ")
    assert items.count(b"<IndicatorItem ") > len(stamps(built)) // 2
