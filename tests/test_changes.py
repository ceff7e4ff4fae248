"""The change feed ``GET /api/v1/iocs/changes`` on the real build and worker: expiry, an
operator's block and allow, a renewing sighting, paging with ``next``, a cursor past the
lookback (410) and a damaged one (400); and, for random stores and sequences of builds, that
replaying the feed from any cursor onto the earlier list gives exactly the later list."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.build.tree import build
from generator.store.generations import Store
from generator.store.lifecycle import DAY
from tests.support import bearer, new_key, published
from tests.test_lifecycle import DOMAIN, IP, SIGHTINGS, T0, _switch, one_article_store, tables
from worker.buckets.storage import Build, LocalBucket
from worker.contract import changes as contract
from worker.contract import layout
from worker.contract.tiers import TIERS
from worker.endpoints import changes, query
from worker.endpoints.query import iso
from worker.errors import InvalidParameter

PATH = "/api/v1/iocs/changes"


def feed(url: str, key: str, **params: str) -> httpx.Response:
    return httpx.get(url + PATH, params=params, headers=bearer(key), timeout=30)


def drain(url: str, key: str, since: str | None = None, limit: int = 1000) -> tuple[list, str]:
    """Every change after ``since``, following ``next`` until ``more`` is false."""
    seen: list[dict] = []
    while True:
        params = {"limit": str(limit)} | ({"since": since} if since else {})
        resp = feed(url, key, **params)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        seen += body["data"]
        since = body["meta"]["next"]
        assert resp.headers[changes.NEXT_HEADER] == since
        if not body["meta"]["more"]:
            return seen, since


def by_value(found: list[dict]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for change in found:
        assert change["value"] not in out, "one change per indicator per build"
        out[change["value"]] = change
    return out


def test_every_lifecycle_change_reaches_the_feed(serve_process, tmp_path):
    data = published(tmp_path / "data", store=one_article_store)
    server = serve_process(data)
    key, pro = new_key(data, "enterprise"), new_key(data, "pro")
    # a client reads the full list, then takes the cursor of the same build with since=now
    listed = httpx.get(
        server.url + "/api/v1/iocs", params={"limit": "1000"}, headers=bearer(key)
    ).json()
    active = {r["value"]: r for r in listed["data"]}
    resp = feed(server.url, key, since="now")
    assert resp.status_code == 200 and resp.json()["data"] == []
    assert resp.json()["meta"]["build_id"] == listed["meta"]["feed_version"]
    head = start = resp.json()["meta"]["next"]
    assert drain(server.url, key) == ([], head)  # the feed starts at its first build
    pro_head = feed(server.url, pro, since="now").json()["meta"]["next"]

    # the same answer again is a 304; rate headers and the request id as on /api/v1/iocs
    resp = feed(server.url, key, since=head)
    assert resp.status_code == 200 and resp.json()["data"] == []
    assert resp.headers["x-ratelimit-limit"] and "x-request-id" in resp.headers
    assert "accept-encoding" in resp.headers["vary"].lower()
    again = httpx.get(
        server.url + PATH,
        params={"since": head},
        headers=bearer(key) | {"If-None-Match": resp.headers["etag"]},
    )
    assert again.status_code == 304

    # the operator blocks the domain and allows a public resolver
    (data / "overrides.txt").write_text(f"block {DOMAIN}\nallow 8.8.8.8\n")
    _switch(server, data, "--now", str(T0 + 3600))
    found, after = drain(server.url, key, head)
    # paging one change at a time loses and repeats nothing
    assert drain(server.url, key, head, limit=1) == (found, after)
    assert len(found) >= 2
    head = after
    changed = by_value(found)
    assert changed[DOMAIN]["change"] == "removed" and changed[DOMAIN]["reason"] == "withdrawn"
    allowed = changed["8.8.8.8"]
    assert allowed["change"] == "added" and allowed["record"]["status"] == "active"
    assert "operator-allow" in allowed["record"]["warnings"]
    assert allowed["build_time"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(T0 + 3600))

    # a new sighting renews the IP's valid_until
    renewed_at = T0 + 10 * DAY
    more = [("b" * 16, T0, SIGHTINGS), ("e" * 16, renewed_at, [("ipv4", IP)])]
    Store(data / "store").commit(*tables(more), {"as_of": renewed_at + 60, "sources": {}})
    _switch(server, data, "--now", str(renewed_at + 60))
    changed = by_value(drain(server.url, key, head)[0])
    assert changed[IP]["change"] == "updated"
    old_until, new_until = active[IP]["valid_until"], changed[IP]["record"]["valid_until"]
    assert new_until > old_until and changed[IP]["record"]["status"] == "active"
    head = drain(server.url, key, head)[1]

    # past the renewed valid_until (33 days for a high-confidence IP): removed, expired
    _switch(server, data, "--now", str(renewed_at + 40 * DAY))
    changed = by_value(drain(server.url, key, head)[0])
    assert changed[IP] | {"build_time": ""} == {
        "change": "removed",
        "build_time": "",
        "id": active[IP]["id"],
        "type": "ipv4",
        "value": IP,
        "reason": "expired",
    }

    # three publishes later, the first cursor replays onto the first list to give this one
    # (the earlier builds' deltas were published with each build and never pruned)
    replayed = {(r["type"], r["value"]): r for r in active.values()}
    replayed = replay(replayed, drain(server.url, key, start)[0])
    now_listed = httpx.get(
        server.url + "/api/v1/iocs", params={"limit": "1000"}, headers=bearer(key)
    ).json()["data"]
    assert replayed == {(r["type"], r["value"]): r for r in now_listed}

    # the pro key's cursor is older than its 30 days: 410, telling it to read the list again
    gone = feed(server.url, pro, since=pro_head)
    assert gone.status_code == 410
    error = gone.json()["error"]
    assert error["code"] == "cursor_expired" and error["details"]["resync"] == "/api/v1/iocs"
    assert "request_id" in error
    # a damaged cursor, another tier's cursor and a bad format are 400s in the spec's shape
    for bad in (head[:-2] + ("A" if head[-2] != "A" else "B") + head[-1], "x" * 40, pro_head):
        resp = feed(server.url, key, since=bad)
        assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_parameter"
    resp = feed(server.url, key, format="xml")
    assert resp.status_code == 400 and "valid_formats" in resp.json()["error"]["details"]
    csv_page = feed(server.url, key, since=head, format="csv")
    assert csv_page.text.splitlines()[0] == contract.CSV_HEADER.decode().strip()
    assert csv_page.headers["content-type"].startswith("text/csv")
    assert feed(server.url, "sk_live_" + "0" * 38).status_code == 401


def test_a_cursor_checks_every_byte():
    cursor = contract.Cursor("pro", "20261205T203534Z-91b7879c5bc6", 17)
    text = contract.encode(cursor)
    assert contract.decode(text) == cursor
    for i in range(len(text)):
        for other in "AQw_-":
            if other != text[i]:
                assert contract.decode(text[:i] + other + text[i + 1 :]) is None
    assert contract.decode(text + "A") is None and contract.decode(text[:-1]) is None


# -- the feed is an exact diff: random stores, random sequences of builds ---------------------

POOL = [("ipv4", f"45.137.21.{n}") for n in range(1, 9)]
POOL += [("domain", f"qzx{n}-update.com") for n in range(6)]
POOL += [("sha256", f"{n:x}" * 64) for n in range(1, 5)]
POOL += [("ipv4", "8.8.8.8")]  # suppressed by a warninglist
HOUR = 3600

step = st.tuples(
    st.lists(
        st.tuples(st.integers(0, 48), st.lists(st.sampled_from(POOL), min_size=1, max_size=4)),
        max_size=3,
    ),
    st.sampled_from([HOUR, 6 * HOUR, DAY + HOUR, 10 * DAY, 35 * DAY]),
)


def tier_list(build_: Build, tier: str) -> dict[tuple[str, str], dict]:
    """A tier's whole active list, as ``GET /api/v1/iocs`` answers it."""
    low = build_.generated_at - TIERS[tier].lookback_days * layout.DAY_SECONDS
    q = query.Query(layout.ACTIVE_VIEW, "json", low, build_.generated_at, 0, 10**6)
    body, _ = query.render(build_, q, "json", "socdef")
    return {(r["type"], r["value"]): r for r in json.loads(body + b"}")["data"]}


def head_of(build_: Build, tier: str) -> tuple[list[dict], str]:
    """Every change the tier's lookback reaches and the cursor after the last one."""
    found: list[dict] = []
    since = None
    while True:
        p = changes.page(build_, TIERS[tier], since, 3, "json")
        found += [json.loads(line) for line in p.lines]
        since = contract.encode(p.next)
        if not p.more:
            return found, since


def replay(start: dict, found: list[dict]) -> dict:
    out = dict(start)
    for c in found:
        key = (c["type"], c["value"])
        if c["change"] == "removed":
            assert key in out, f"removed {key}, which the list did not hold"
            del out[key]
        else:
            assert (key in out) == (c["change"] == "updated"), c
            out[key] = c["record"]
    return out


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(step, min_size=2, max_size=3))
def test_replaying_the_feed_from_any_cursor_gives_the_later_list(tmp_path_factory, steps):
    root = tmp_path_factory.mktemp("feed")
    store = Store(root / "store")
    now = T0
    articles: list = [("f" * 16, T0 - HOUR, [POOL[0]])]
    seen: list[tuple[Build, dict[str, dict], dict[str, str]]] = []
    for n, (new, advance) in enumerate(steps):
        now += advance
        for i, (hours_ago, found) in enumerate(new):
            articles.append((f"{n:04x}{i:04x}{hours_ago:08x}", now - hours_ago * HOUR, found))
        store.commit(*tables(articles), {"as_of": now, "sources": {}})
        result = build(store, root / "build", now=now, processes=1)
        manifest = json.loads((root / "build" / layout.manifest_key(result.build_id)).read_bytes())
        current = Build(LocalBucket(root / "build"), manifest)
        lists = {t: tier_list(current, t) for t in TIERS}
        heads = {}
        for tier in TIERS:
            everything, heads[tier] = head_of(current, tier)
            if all(b.generated_at >= now - TIERS[tier].lookback_days * DAY for b, _, _ in seen):
                base = seen[0][1][tier] if seen else lists[tier]  # the first build's list
                assert replay(base, everything) == lists[tier]  # the feed from its start
            for earlier, earlier_lists, earlier_heads in seen:
                floor = now - TIERS[tier].lookback_days * DAY
                if earlier.generated_at < floor:
                    with pytest.raises(changes.CursorExpired):
                        changes.page(current, TIERS[tier], earlier_heads[tier], 5, "json")
                    continue
                found, _ = head_of_since(current, tier, earlier_heads[tier])
                assert replay(earlier_lists[tier], found) == lists[tier]
        seen.append((current, lists, heads))


def head_of_since(build_: Build, tier: str, since: str) -> tuple[list[dict], str]:
    found: list[dict] = []
    while True:
        p = changes.page(build_, TIERS[tier], since, 2, "json")
        found += [json.loads(line) for line in p.lines]
        since = contract.encode(p.next)
        if not p.more:
            return found, since


def test_a_garbled_cursor_is_refused_before_any_read(tmp_path):
    one_article_store(tmp_path / "store")
    result = build(Store(tmp_path / "store"), tmp_path / "build", now=T0 + 60, processes=1)
    manifest = json.loads((tmp_path / "build" / layout.manifest_key(result.build_id)).read_bytes())
    current = Build(LocalBucket(tmp_path / "build"), manifest)
    with pytest.raises(InvalidParameter):
        changes.page(current, TIERS["pro"], "bm90LWEtY3Vyc29yLWF0LWFsbA", 5, "json")
    forged = contract.encode(contract.Cursor("pro", result.build_id, 999))
    with pytest.raises(InvalidParameter):  # past the end of its build's changes
        changes.page(current, TIERS["pro"], forged, 5, "json")


def test_rebuilding_the_same_build_keeps_the_feed_unchanged(tmp_path):
    one_article_store(tmp_path / "store")
    store = Store(tmp_path / "store")
    first = build(store, tmp_path / "build", now=T0 + 60, processes=1)
    index = Path(tmp_path / "build" / layout.manifest_key(first.build_id)).read_bytes()
    again = build(store, tmp_path / "build", now=T0 + 60, processes=2)
    assert again.build_id == first.build_id
    assert Path(tmp_path / "build" / layout.manifest_key(again.build_id)).read_bytes() == index


def test_a_build_folder_without_the_earlier_state_starts_the_feed_again(tmp_path):
    one_article_store(tmp_path / "store")
    store = Store(tmp_path / "store")
    first = build(store, tmp_path / "build", now=T0 + 60, processes=1)
    old = contract.encode(contract.Cursor("enterprise", first.build_id, 0))
    (tmp_path / "build" / contract.state_pointer(first.build_id)).unlink()
    second = build(store, tmp_path / "build", now=T0 + 3 * DAY, processes=1)
    manifest = json.loads((tmp_path / "build" / layout.manifest_key(second.build_id)).read_bytes())
    current = Build(LocalBucket(tmp_path / "build"), manifest)
    assert [e.build_id for e in changes.read_index(current).entries] == [second.build_id]
    with pytest.raises(changes.CursorExpired):  # the client reads the full list again
        changes.page(current, TIERS["enterprise"], old, 5, "json")


def test_csv_and_text_changes_carry_the_lists_rows_and_lines(tmp_path):
    """A consumer parsing the list's CSV (or text) parses the feed's: the same columns (lines)
    first, then ``change``, ``reason`` and ``build_time``."""
    store = Store(tmp_path / "store")
    first = [("a" * 16, T0 - HOUR, POOL[:3])]
    store.commit(*tables(first), {"as_of": T0, "sources": {}})
    build(store, tmp_path / "build", now=T0, processes=1)
    later = T0 + 2 * DAY  # POOL[:3] leave the free list (1 day); POOL[3:5] enter it
    store.commit(*tables([*first, ("b" * 16, later - HOUR, POOL[3:5])]), {"as_of": later})
    result = build(store, tmp_path / "build", now=later, processes=1)
    manifest = json.loads((tmp_path / "build" / layout.manifest_key(result.build_id)).read_bytes())
    current = Build(LocalBucket(tmp_path / "build"), manifest)
    free = TIERS["free"]
    low = current.generated_at - free.lookback_days * layout.DAY_SECONDS
    q = query.Query(layout.ACTIVE_VIEW, "csv", low, current.generated_at, 0, 1000)
    listed_csv, _ = query.render(current, q, "csv", "socdef")
    listed = {row[2]: row for row in csv.reader(io.StringIO(listed_csv.decode()))}
    header = next(csv.reader(io.StringIO(contract.CSV_HEADER.decode())))
    assert header == next(csv.reader(io.StringIO(layout.CSV_HEADER.decode()))) + [
        "change",
        "reason",
        "build_time",
    ]
    rows = list(
        csv.reader(
            io.StringIO(b"".join(changes.page(current, free, None, 100, "csv").lines).decode())
        )
    )
    kinds = {row[2]: row[-3:] for row in rows}
    when = iso(later)
    assert kinds == {
        **{v: ["removed", "aged-out", when] for _, v in POOL[:3]},
        **{v: ["added", "", when] for _, v in POOL[3:5]},
    }
    for row in rows:
        assert len(row) == len(header)
        if row[-3] == "added":
            assert row[:-3] == listed[row[2]]  # the list's row, column for column
        else:
            assert row[3:-3] == [""] * (len(header) - 6)
    lines = b"".join(changes.page(current, free, None, 100, "txt").lines).decode().splitlines()
    assert sorted(lines) == sorted(
        [f"{v} removed aged-out {when}" for _, v in POOL[:3]]
        + [f"{v} added - {when}" for _, v in POOL[3:5]]
    )
