"""TAXII without HTTP: cursors, negotiation, filters, date_added rules and page slicing.

The slicing oracle walks every collection page by page through ``worker.taxii.index.select``
(random limits and filters, following the returned cursors) and compares what it got with a
plain filter over all the collection's entries decoded at once.
"""

from __future__ import annotations

import json
from array import array

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.build.taxii import META_OBJECTS
from generator.build.taxii_order import DateAllocator, dates_added, strictly_increasing
from generator.build.tree import build
from generator.store.generations import Article, Sighting, Store
from generator.store.history import joined, version_times
from generator.store.synthetic import synthetic_store
from worker.buckets.storage import Build, LocalBucket
from worker.contract import taxii_common as tc
from worker.contract.taxii_epochs import Epochs, appended
from worker.errors import InvalidParameter
from worker.taxii import index
from worker.taxii.index import entry_of, page_bytes, select
from worker.taxii.params import (
    Filters,
    NotAcceptable,
    decode_cursor,
    encode_cursor,
    negotiate,
    objects_offers,
    parse_filters,
    parse_timestamp,
)

NOW = 1_795_000_000
TAXII, STIX = tc.TAXII_MEDIA_TYPE, tc.STIX_MEDIA_TYPE


SHARED = len(META_OBJECTS)  # the identity and the TLP markings, first in every collection


def open_build(out) -> Build:
    build_id = (out / "LATEST").read_text()
    return Build(LocalBucket(out), json.loads((out / "builds" / f"{build_id}.json").read_bytes()))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("taxii")
    store = synthetic_store(str(root / "store"), 1_500, now=NOW, days=40)
    build(store, root / "build", now=NOW)
    return open_build(root / "build")


def all_entries(b: Build, name: str) -> list[tuple]:
    """The entries a collection serves (its entry file without the dead ones)."""
    seq = index.sequences(b, name, None)[0]
    gone = index.dead(b)
    return [e for e in index.entries(b, seq, 0, seq.count) if e[0] not in gone]


# --- cursors, negotiation, parameters -------------------------------------------------------


@given(st.integers(0, 2**63 - 1), st.one_of(st.none(), st.integers(-1, 2**63 - 1)))
def test_cursor_round_trips(position, pinned):
    assert decode_cursor(encode_cursor(position, pinned)) == (position, pinned)


@pytest.mark.parametrize("garbage", ["%%%", "abc", "A" * 40, ""])
def test_a_foreign_cursor_is_a_400(garbage):
    with pytest.raises(InvalidParameter):
        decode_cursor(garbage) if garbage else parse_filters({"next": "!"}, 1000)


@pytest.mark.parametrize(
    ("accept", "offers", "chosen"),
    [
        (None, objects_offers(False), TAXII),
        ("*/*", objects_offers(False), TAXII),
        ("application/taxii+json", objects_offers(False), TAXII),
        ("application/taxii+json;version=2.1", objects_offers(True), TAXII),
        ("application/stix+json;version=2.1", objects_offers(False), STIX),
        ("application/stix+json", objects_offers(False), STIX),
        ("application/stix+json;q=0.5, application/taxii+json", objects_offers(False), TAXII),
        ("application/stix+json, application/taxii+json;q=0.2", objects_offers(False), STIX),
        ("text/html, application/*;q=0.8", objects_offers(True), TAXII),
    ],
)
def test_negotiation_picks_what_the_client_prefers(accept, offers, chosen):
    assert negotiate(accept, offers) == chosen


@pytest.mark.parametrize(
    ("accept", "offers"),
    [
        ("application/taxii+json;version=2.0", objects_offers(False)),
        ("application/json", objects_offers(False)),
        ("application/stix+json;version=2.1", objects_offers(True)),
        ("application/taxii+json;q=0", objects_offers(True)),
        ("application/xml", objects_offers(True)),
    ],
)
def test_negotiation_refuses_what_it_cannot_serve(accept, offers):
    with pytest.raises(NotAcceptable) as err:
        negotiate(accept, offers)
    assert err.value.status == 406


def test_filters_parse_like_taxii():
    f = parse_filters(
        {
            "limit": "5000",
            "match[type]": "indicator,relationship",
            "added_after": "2026-01-01T00:00:00.5Z",
        },
        10_000,
    )
    assert f.limit == tc.MAX_PAGE and f.types == ("indicator", "relationship")
    assert f.after == parse_timestamp("x", "2026-01-01T00:00:00.500000Z")
    assert parse_filters({"type": "indicator"}, 1000).types == ("indicator",)  # the spec's name
    assert parse_filters({}, 1000).limit == 100
    assert parse_filters({"limit": "500"}, 100).limit == 100  # the tier's cap
    assert parse_filters({"match[version]": "last"}, 1000).versions is None
    assert parse_filters({"match[version]": "2026-01-01T00:00:00.000Z"}, 1000).versions == (
        parse_timestamp("x", "2026-01-01T00:00:00Z"),
    )
    assert not parse_filters({"match[spec_version]": "2.0"}, 1000).spec_ok
    assert parse_filters({"match[spec_version]": "2.0,2.1"}, 1000).spec_ok
    cursor = encode_cursor(123)
    assert parse_filters({"next": cursor, "added_after": "1970-01-01T00:00:00Z"}, 9).after == 123


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "x"},
        {"added_after": "yesterday"},
        {"match[version]": "soon"},
        {"match[spec_version]": "two"},
        {"match[type]": "Bad Type"},
    ],
)
def test_bad_parameters_are_400s(query):
    with pytest.raises(InvalidParameter):
        parse_filters(query, 1000)


# --- date_added ------------------------------------------------------------------------------


def test_version_times_follow_the_latest_publication():
    seen = [(100, 50, "a"), (200, 40, "b"), (300, 60, "c"), (300, 70, "d"), (400, 70, "e")]
    assert version_times(seen) == (100, 300)
    assert joined(
        seen, ["T1", "T2"], {"a": ["T1"], "c": ["T2"], "e": ["T1"]}, {("a", "T1"): 150}
    ) == (150, 300)


events = st.lists(st.tuples(st.integers(1, 6), st.integers(0, 2**64 - 1)), max_size=60)


def allocate(members: list[tuple[tuple[int, ...], int]]) -> dict[int, int]:
    alloc = DateAllocator()
    for times, key in members:
        alloc.add(times, key)
    alloc.finish()
    return {key: alloc.date_added(times[-1], key) for times, key in members}


@given(events, st.integers(0, 2**64 - 1))
def test_dates_are_unique_and_do_not_move_when_later_ingests_arrive(raw, new_key):
    members = {key: (t * 10,) for t, key in raw}  # one ingest per member, times 10…60
    before = allocate(list((v, k) for k, v in members.items()))
    assert len(set(before.values())) == len(before)
    old = next(iter(members), None)
    grown = dict(members)
    if old is not None:
        grown[old] = (*members[old], 70)  # a new version of an old object, at a later ingest
    grown.setdefault(new_key, (70,))  # and a new object
    after = allocate(list((v, k) for k, v in grown.items()))
    for key, date in before.items():
        if key != old:
            assert after[key] == date  # nobody else moves
    for key in {old, new_key} - {None}:
        if grown[key][-1] == 70:
            assert after[key] > max(before.values(), default=0)


@given(
    st.lists(
        st.tuples(
            st.lists(st.integers(1, 6), min_size=1, max_size=3, unique=True),
            st.one_of(st.integers(0, 3), st.integers(0, 2**64 - 1)),
        ),
        max_size=60,
    )
)
def test_column_wise_dates_are_the_allocators(raw):
    members = [(t, key) for times, key in raw for t in sorted(times)]
    alloc = DateAllocator()
    for t, key in members:
        alloc.add((t,), key)
    alloc.finish()
    got = dates_added(
        pa.array([t for t, _ in members], pa.int64()),
        pa.array([key for _, key in members], pa.uint64()),
    )
    assert got.to_pylist() == [alloc.date_added(t, key) for t, key in members]


def test_ties_are_broken_by_a_microsecond():
    values = array("q", [5, 5, 5, 9])
    assert strictly_increasing(values) == 2 and list(values) == [5, 6, 7, 9]


# --- the store's ingest time ----------------------------------------------------------------


def test_ingested_at_is_kept_on_reingest_and_later_for_new_sightings(tmp_path):
    store = Store(tmp_path)
    a = Article("a1", "s", "S", "news", "t", "https://x.example/1", 900)
    seen = Sighting("a1", "ipv4", "198.51.100.1", "c", "low")
    store.merge([a], [seen], as_of=1_000)
    more = Sighting("a1", "ipv4", "198.51.100.2", "c", "low")
    store.merge([a], [seen, more], as_of=1_000)  # same clock: the new one still comes later
    got = dict(
        zip(
            store.sightings()["value"].to_pylist(),
            store.sightings()["ingested_at"].to_pylist(),
            strict=True,
        )
    )
    assert got == {"198.51.100.1": 1_000, "198.51.100.2": 1_001}
    moved = Article("a1", "s", "S", "news", "t", "https://x.example/1", 950)
    store.merge([moved], [seen, more], as_of=2_000)  # republished: both are new again
    assert set(store.sightings()["ingested_at"].to_pylist()) == {2_000}


def test_a_store_without_the_column_reads_it_as_the_publication_time(tmp_path):
    from tests.seed import seed_tables

    store = Store(tmp_path)
    articles, sightings = seed_tables()
    assert "ingested_at" not in sightings.column_names
    store.commit(articles, sightings, {"as_of": NOW, "sources": {}})
    published = dict(
        zip(articles["article_id"].to_pylist(), articles["published"].to_pylist(), strict=True)
    )
    table = store.sightings()
    for aid, at in zip(
        table["article_id"].to_pylist(), table["ingested_at"].to_pylist(), strict=True
    ):
        assert at == published[aid]


# --- slicing ---------------------------------------------------------------------------------


def test_every_collection_is_strictly_increasing_and_complete(built):
    total = 0
    for name in tc.COLLECTIONS:
        entries = all_entries(built, name)
        dates = [e[0] for e in entries]
        assert dates == sorted(set(dates))
        meta = json.loads(built.read(tc.collection_key(name, "meta.json")))
        assert meta["count"] == meta["served"] == len(entries)
        # every collection starts with the identity and the TLP markings, then its own objects
        shared = [tc.STIX_TYPES[e[7]] for e in entries[:SHARED]]
        assert shared.count("identity") == 1 and shared.count("marking-definition") == SHARED - 1
        total += len(entries) - SHARED if name != tc.ALL_COLLECTION else 0
    assert total == len(all_entries(built, tc.ALL_COLLECTION)) - SHARED >= 3_000


def expected(entries: list[tuple], f: Filters, floor: int) -> list[tuple]:
    if not f.spec_ok:
        return []
    return [
        e
        for e in entries
        if e[0] > f.after
        and (e[1] >= floor or e[7] in tc.TIMELESS)
        and (f.types is None or tc.STIX_TYPES[e[7]] in f.types)
        and (f.versions is None or e[1] in f.versions)
    ]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.sampled_from(tc.COLLECTIONS), st.integers(1, 700), st.data())
def test_paging_any_filter_returns_each_match_once_in_order(built, name, limit, data):
    entries = all_entries(built, name)
    query: dict[str, str] = {"limit": str(limit)}
    if entries and data.draw(st.booleans()):
        query["added_after"] = tc.timestamp_us(data.draw(st.sampled_from(entries))[0])
    if data.draw(st.booleans()):
        query["match[type]"] = ",".join(
            data.draw(st.sets(st.sampled_from(tc.STIX_TYPES), min_size=1))
        )
    if entries and data.draw(st.booleans()):
        picked = data.draw(st.lists(st.sampled_from(entries), max_size=3))
        query["match[version]"] = ",".join(tc.version_string(e[1]) for e in picked) or "last"
    floor = data.draw(st.sampled_from([0, (NOW - 10 * 86_400) * 1_000_000]))
    want = expected(entries, parse_filters(query, 1000), floor)
    got: list[tuple] = []
    for _ in range(len(entries) + 2):
        page = select(built, name, parse_filters(query, 1000), floor)
        assert len(page.entries) <= limit
        got += page.entries
        if not page.more:
            break
        query["next"] = encode_cursor(page.cursor)
    assert got == want


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(tc.COLLECTIONS), st.integers(1, 400), st.data())
def test_a_visible_end_cuts_every_page_at_it(built, name, limit, data):
    """Pages under a visible end (a publish not yet visible, or the end a poll's ``next``
    carries) hold exactly the matches at or below it, and say ``more`` only when such remain."""
    entries = all_entries(built, name)
    cap = data.draw(st.sampled_from([-1] + [e[0] for e in entries]))
    query: dict[str, str] = {"limit": str(limit)}
    if data.draw(st.booleans()):
        query["match[type]"] = ",".join(
            data.draw(st.sets(st.sampled_from(tc.STIX_TYPES), min_size=1))
        )
    want = [e for e in expected(entries, parse_filters(query, 1000), 0) if e[0] <= cap]
    got: list[tuple] = []
    for _ in range(len(entries) + 2):
        page = select(built, name, parse_filters(query, 1000), 0, cap)
        got += page.entries
        if not page.more:
            break
        assert page.cursor is not None and page.cursor < cap
        query["next"] = encode_cursor(page.cursor, cap)
    assert got == want


def test_pages_hold_exactly_the_objects_and_manifest_records_of_their_entries(built):
    page = select(built, "all", parse_filters({"limit": "250"}, 1000), 0)
    objects = json.loads(b"[" + page_bytes(built, "all", page.entries, "obj")[:-1] + b"]")
    manifest = json.loads(b"[" + page_bytes(built, "all", page.entries, "man")[:-1] + b"]")
    assert [o["id"] for o in objects] == [m["id"] for m in manifest]
    for o, m, e in zip(objects, manifest, page.entries, strict=True):
        # a marking definition has no modified: its version is its created
        assert m["version"] == o.get("modified", o["created"]) == tc.version_string(e[1])
        assert m["date_added"] == tc.timestamp_us(e[0])
        assert o["type"] == tc.STIX_TYPES[e[7]]
        assert entry_of(built, "all", o["id"]) == e


def test_match_id_finds_objects_only_in_their_collections(built):
    first = select(built, "ipv4", parse_filters({"limit": "9"}, 1000), 0).entries
    records = json.loads(b"[" + page_bytes(built, "ipv4", first, "man")[:-1] + b"]")
    shared, own = [m["id"] for m in records[:SHARED]], [m["id"] for m in records[SHARED:]]
    assert all(i.startswith(("identity--", "marking-definition--")) for i in shared)
    f = parse_filters(
        {
            "match[id]": ",".join(
                [*own, "indicator--" + "0" * 8 + "-0000-4000-8000-" + "0" * 12, "junk"]
            )
        },
        1000,
    )
    assert select(built, "ipv4", f, 0).entries == first[SHARED:]
    assert [e[0] for e in select(built, "all", f, 0).entries] == [e[0] for e in first[SHARED:]]
    assert select(built, "domain", f, 0).entries == []
    # the identity and the markings are in every collection, at the same place
    every = parse_filters({"match[id]": ",".join(shared)}, 1000)
    for name in tc.COLLECTIONS:
        assert select(built, name, every, 0).entries == first[:SHARED]


# --- epochs: build dates to the date_added clients see ---------------------------------------


@given(
    st.lists(st.integers(0, 10**6), min_size=1, max_size=8, unique=True),
    st.lists(st.integers(1, 5), min_size=8, max_size=8),
    st.integers(0, 10**6),
    st.integers(-1, 40),
)
def test_epochs_serve_each_object_from_its_date_added_on(lasts, gaps, build_date, clock):
    """``served``, ``lower`` and ``cap`` agree: a poll at time ``t`` sees exactly the objects
    served at or before ``t``, and ``added_after=A`` selects exactly those served after ``A``."""
    pairs: list[list[int]] = []
    for last, gap in zip(sorted(lasts), gaps, strict=False):
        pairs = appended(pairs, last, (pairs[-1][1] if pairs else 0) + gap * 1_000_000)
    epochs = Epochs.parse(pairs)
    assert epochs is not None
    d = min(build_date, epochs.lasts[-1])
    now = clock * 1_000_000
    assert (d <= epochs.cap(now)) == (epochs.served(d) <= now)
    assert (d > epochs.lower(now)) == (epochs.served(d) > now)
    assert appended(pairs, epochs.lasts[-1], 10**12) == pairs  # nothing new: no new epoch
    assert Epochs.parse([[5, 2], [4, 3]]) is None and Epochs.parse("x") is None
