"""The static design answers every query: the worker equals a reference query of the store."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.build.tree import build
from generator.store.generations import Store
from generator.store.synthetic import synthetic_store, synthetic_tables
from tests.reference import iso, reference, stated_records
from worker.buckets.storage import Build, LocalBucket
from worker.contract import layout
from worker.contract.tiers import TIERS
from worker.endpoints import iocs
from worker.errors import InvalidParameter
from worker.http import Request

NOW = 1_795_000_000  # 2026-11-18T11:06:40Z
BASE = "http://feeds.test"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("oracle")
    store = synthetic_store(str(root / "store"), 3_000, now=NOW, days=420)
    result = build(store, root / "build")
    manifest = json.loads((root / "build" / layout.manifest_key(result.build_id)).read_bytes())
    records = stated_records(store, result.generated_at)
    return Build(LocalBucket(root / "build"), manifest), records


def stamp(draw, name: str, anchors: list[int]) -> tuple[str, float] | None:
    if not draw(st.booleans()):
        return None
    if anchors and draw(st.booleans()):
        # a record's own last_seen, or one second either side: where an off-by-one in the
        # window's ends shows (random seconds almost never hit a record's timestamp)
        seconds = draw(st.sampled_from(anchors)) + draw(st.sampled_from([0, 0, -1, 1]))
        fraction = 0.0
    else:
        seconds = draw(st.integers(NOW - 430 * 86400, NOW + 86400))
        if draw(st.booleans()):  # land exactly on a day boundary sometimes
            seconds -= seconds % 86400
        fraction = draw(st.sampled_from([0, 0, 0.25, 0.999]))
    offset = draw(st.sampled_from([0, 0, 2, -5]))
    moment = datetime.fromtimestamp(seconds + fraction, UTC).astimezone(
        timezone(timedelta(hours=offset))
    )
    text = moment.isoformat()
    if offset == 0 and draw(st.booleans()):
        text = text.replace("+00:00", "Z")
    return text, seconds + fraction


@st.composite
def queries(draw, anchors: list[int] = ()):
    params: dict[str, str] = {}
    for name, values in (
        ("type", layout.IOC_TYPES),
        ("category", layout.CATEGORIES),
        ("confidence", layout.CONFIDENCES),
        ("status", (*layout.STATUSES, layout.ALL)),
        ("format", layout.LIST_FORMATS),
    ):
        if draw(st.booleans()):
            params[name] = draw(st.sampled_from(values))
    times = {}
    for name in ("since", "until"):
        got = stamp(draw, name, list(anchors))
        if got:
            params[name], times[name] = got
    if draw(st.booleans()):
        params["limit"] = str(draw(st.one_of(st.integers(1, 150), st.integers(1, 10_000))))
    if draw(st.booleans()):
        params["offset"] = str(draw(st.one_of(st.integers(0, 60), st.integers(0, 3_000))))
    if draw(st.booleans()):
        params["include_context"] = draw(st.sampled_from(["true", "false"]))
    return draw(st.sampled_from(sorted(TIERS))), params, times


def anchors(records) -> list[int]:
    """Some records' last_seen, recent ones first in weight (every tier's window reaches them)."""
    stamps = sorted({r.last_seen for r in records}, reverse=True)
    return stamps[:40] + stamps[40::50]


def request(params: dict[str, str]) -> Request:
    return Request("GET", "/api/v1/iocs", dict(params), {"host": "ignored"}, "http", "test")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_worker_equals_reference(built, data):
    build_, records = built
    tier_name, params, times = data.draw(queries(anchors(records)))
    tier = TIERS[tier_name]
    floor = NOW - tier.lookback_days * 86400
    since = math.ceil(times["since"]) if "since" in times else floor
    until = math.floor(times["until"]) if "until" in times else NOW
    req = request(params)
    if "since" in times and "until" in times and since > until:
        with pytest.raises(InvalidParameter):
            iocs.list_answer(req, build_, tier, public_url=BASE, source_name="socdef")
        return
    resp = iocs.list_answer(req, build_, tier, public_url=BASE, source_name="socdef")
    fmt, expected = reference(
        records,
        tier=tier,
        generated_at=NOW,
        build_id=build_.build_id,
        params=params,
        since=max(since, floor),
        until=until,
        base=BASE,
    )
    assert resp.status == 200
    if fmt == "json":
        assert json.loads(resp.body) == expected
    else:
        assert resp.body == expected


@pytest.mark.parametrize("tier_name", sorted(TIERS))
@pytest.mark.parametrize("view", ["all.all.all", "ipv4.all.all", "all.news.high", "url.vendor.low"])
@pytest.mark.parametrize("fmt", layout.LIST_FORMATS)
def test_precomputed_default_matches_composed(built, tier_name, view, fmt):
    """The hourly poll is served from one precomputed object equal to the composed answer."""
    build_, _ = built
    type_, category, confidence = view.split(".")
    params = {
        k: v
        for k, v in (
            ("type", type_),
            ("category", category),
            ("confidence", confidence),
            ("format", fmt),
        )
        if v != "all"
    }
    tier = TIERS[tier_name]
    assert build_.ref(layout.default_key(tier_name, view, fmt)) is not None
    default = iocs.list_answer(request(params), build_, tier, public_url=BASE, source_name="socdef")
    composed = iocs.list_answer(
        request({**params, "offset": "0"}), build_, tier, public_url=BASE, source_name="socdef"
    )
    assert default.status == composed.status == 200
    assert default.body == composed.body
    # Same bytes, different provenance: the default came from the precomputed object.
    assert dict(default.headers)["etag"] != dict(composed.headers)["etag"]


@pytest.mark.parametrize(
    "view", ["all.all.all", "domain.all.all", "all.vendor.all", "sha256.research.medium"]
)
@pytest.mark.parametrize("share", [0, 0.1, 0.5, 0.95])
def test_windows_cut_inside_days(built, view, share):
    """Both window ends fall mid-day, the page crosses day boundaries, and it is not empty."""
    build_, records = built
    tier = TIERS["enterprise"]
    type_, category, confidence = view.split(".")
    params = {
        k: v
        for k, v in (("type", type_), ("category", category), ("confidence", confidence))
        if v != "all"
    }
    since, until = NOW - 200 * 86400 + 43_210, NOW - 3 * 86400 - 3_333
    params.update(
        since=datetime.fromtimestamp(since, UTC).isoformat(),
        until=datetime.fromtimestamp(until, UTC).isoformat(),
        limit="40",
    )
    _, whole = reference(
        records,
        tier=tier,
        generated_at=NOW,
        build_id=build_.build_id,
        params=params,
        since=since,
        until=until,
        base=BASE,
    )
    params["offset"] = str(int(whole["meta"]["total"] * share))
    got, expected = window_answers(build_, records, tier, params, since, until)
    assert got == expected
    assert got["data"], "the case must exercise a non-empty page"


def window_answers(build_, records, tier, params, since, until) -> tuple[dict, dict]:
    """The worker's list answer for ``params`` and the reference's for the window
    ``[since, until]``."""
    resp = iocs.list_answer(request(params), build_, tier, public_url=BASE, source_name="socdef")
    _, expected = reference(
        records,
        tier=tier,
        generated_at=NOW,
        build_id=build_.build_id,
        params=params,
        since=since,
        until=until,
        base=BASE,
    )
    return json.loads(resp.body), expected


@pytest.mark.parametrize("tier_name", sorted(TIERS))
@pytest.mark.parametrize("end", ["since", "until"])
def test_window_ends_are_inclusive(built, tier_name, end):
    """``since`` and ``until`` exactly on a record's last_seen, and one second either side: the
    worker equals the reference, whose window is inclusive at both ends."""
    build_, records = built
    tier = TIERS[tier_name]
    floor = NOW - tier.lookback_days * 86400
    stamps = sorted({r.last_seen for r in records if floor < r.last_seen < NOW}, reverse=True)
    assert stamps
    for ts in sorted({stamps[0], stamps[len(stamps) // 2], stamps[-1]}):
        for at in (ts - 1, ts, ts + 1):
            params = {end: iso(at), "limit": str(tier.max_limit)}
            since, until = (at, NOW) if end == "since" else (floor, at)
            got, expected = window_answers(build_, records, tier, params, since, until)
            assert got == expected, params
            on_edge = any(r.last_seen == ts for r in records if since <= r.last_seen <= until)
            assert on_edge == (at == ts or (at < ts) == (end == "since"))


@pytest.fixture(scope="module")
def day_edges(tmp_path_factory):
    """A build whose articles (hence last_seen) fall on the first and last second of days."""
    root = tmp_path_factory.mktemp("oracle-edges")
    articles, sightings = synthetic_tables(600, now=NOW, days=30)
    day = NOW - NOW % 86400
    edges = sorted({day - k * 86400 + off for k in (2, 5, 9) for off in (0, 86399)})
    published = articles.column("published").to_pylist()
    published[: len(edges)] = edges
    articles = articles.set_column(
        articles.schema.get_field_index("published"),
        "published",
        pa.array(published, articles.schema.field("published").type),
    )
    store = Store(str(root / "store"))
    store.commit(articles, sightings, {"as_of": NOW, "sources": {}})
    result = build(store, root / "build")
    manifest = json.loads((root / "build" / layout.manifest_key(result.build_id)).read_bytes())
    records = stated_records(store, result.generated_at)
    return Build(LocalBucket(root / "build"), manifest), records, edges


def test_windows_ending_on_a_day_edge(day_edges):
    """since on a day's last second and until on a day's first second, where a record's
    last_seen lies: the day is trimmed, not skipped."""
    build_, records, edges = day_edges
    tier = TIERS["enterprise"]
    for edge in edges:
        on_edge = [r for r in records if r.last_seen == edge]
        assert on_edge, edge
        for since, until in ((edge, NOW), (NOW - 300 * 86400, edge), (edge, edge)):
            params = {"since": iso(since), "until": iso(until), "limit": "10000"}
            got, expected = window_answers(build_, records, tier, params, since, until)
            assert got == expected, params
            assert {(r.type, r.value) for r in on_edge} <= {
                (d["type"], d["value"]) for d in got["data"]
            }
