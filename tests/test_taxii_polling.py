"""TAXII pollers lose nothing and get nothing twice, whatever the interleaving.

A small model, replayed against real processes: a store that grows by ingests, real builds,
real publishes into a bucket (``generator.publish``, with a short TAXII grace period) and a real
``socdef serve``. Two rounds of ingest → build → publish → visible (the grace period over) are
interleaved in every order the pipeline allows (a later ingest may come before an earlier
build or publish; a build and a publish take the latest; a publish made visible implies the
earlier ones are), and after every event two poll loops may poll:

- OpenCTI's TAXII connector (``external-import/taxii2``), replayed step by step with
  taxii2-client: ``added_after`` = its own clock at the start of its previous run, in whole
  seconds (its first run: 24 hours back); pages followed with ``next`` alone (it drops
  ``added_after``), its filters kept from run to run (a stale ``next`` included);
- a header-driven poller (taxii2-client's ``as_pages``): ``added_after`` = the last
  ``X-TAXII-Date-Added-Last`` it saw.

Polls never change the server, and between two events the server's answers do not change
(the test waits for a grace period at a "visible" event, or before polls that one would
otherwise interrupt, and checks that none ended during the polls). So what a poller gets at a poll depends only on where it polled
before: the test polls once for every (previous poll, this poll) pair, and then checks every
subset of poll positions by chaining those answers: no (id, version) twice, and a poller that
polls after the last event holds every object the final build serves.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from taxii2client.v21 import Server, as_pages

from generator.build.tree import build
from generator.publish.upload import open_destination, publish
from generator.store.generations import Article, Sighting, Store
from generator.store.synthetic import synthetic_store
from tests.support import new_key, serving
from worker.contract import layout
from worker.contract import taxii_common as tc

GRACE = 4.0  # the worker re-reads the pointer every 2 s: the grace must be longer
PAGE = 5  # small pages, so every poll pages and OpenCTI keeps a stale ``next``
SCALE = ("--limit-scale", "1000")
Version = tuple[str, str]  # (id, modified)

# Two rounds; an event names its round. Each chain I → B → P → V is ordered, and round 2's
# event of each kind follows round 1's.
EVENTS = [(kind, r) for r in (1, 2) for kind in "IBPV"]


def interleavings() -> list[tuple[tuple[str, int], ...]]:
    def ok(seq: tuple[tuple[str, int], ...]) -> bool:
        at = {e: i for i, e in enumerate(seq)}
        chains = all(at[(a, r)] < at[(b, r)] for r in (1, 2) for a, b in ("IB", "BP", "PV"))
        return chains and all(at[(k, 1)] < at[(k, 2)] for k in "IBPV")

    return [seq for seq in itertools.permutations(EVENTS) if ok(seq)]


class Pipeline:
    """The store, build folder and bucket of one data folder, driven by library calls."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.store = Store(str(data / "store"))
        self.built = 0  # builds made
        self.pending: dict[int, float] = {}  # round → visible_at of its publish (s)
        self.ingests = 0

    def ingest(self) -> None:
        """An article with two new addresses, and one earlier address seen again (a new
        version of its indicator), naming an ATT&CK technique."""
        n = self.ingests = self.ingests + 1
        now = int(time.time())
        article = Article(
            f"{n:016x}", "model", "Model feed", "vendor", f"Report {n}",
            f"https://reports.example/{n}", now - 600 + n, ("c2",), ("T1059",),
        )  # fmt: skip
        values = [f"198.51.{n % 250}.{k}" for k in (1, 2)]
        if n > 1:
            values.append(f"198.51.{(n - 1) % 250}.1")
        rows = [Sighting(article.article_id, "ipv4", v, f"seen {v}", "high") for v in values]
        rows.append(Sighting(article.article_id, "mitre_attack", "T1059", "T1059", "high"))
        self.store.merge([article], rows, as_of=now)

    def build(self) -> None:
        build(self.store, self.data / "build", now=int(time.time()), processes=1)

    def publish(self, round_: int = 0) -> None:
        publish(self.data / "build", open_destination(self.data / "bucket"), taxii_grace=GRACE)
        pointer = json.loads((self.data / "bucket" / layout.POINTER_KEY).read_text())
        self.pending[round_] = pointer["taxii_epochs"][-1][1] / 1e6

    def visible(self, round_: int = 0) -> None:
        """Wait until the round's publish is served, and with it every earlier one."""
        until = self.pending.get(round_, 0.0)
        time.sleep(max(0.0, until - time.time()) + 0.05)
        self.pending = {r: t for r, t in self.pending.items() if t > until}

    def clear_of_visibility(self, margin: float = 0.5) -> None:
        """Wait past a publish about to turn visible (within ``margin`` s), so that none does
        during the polls that follow. (On a slow machine its visible event then comes earlier
        than planned: another order the model allows, not a weaker check.)"""
        due = self.next_visible()
        if due < time.time() + margin:
            time.sleep(max(0.0, due - time.time()) + 0.05)

    def next_visible(self) -> float:
        """When the next publish turns visible (inf: none is waiting)."""
        return min([t for t in self.pending.values() if t > time.time() - 0.05], default=1e18)

    def turned_visible(self, start: float, end: float) -> bool:
        """A publish turned visible between ``start`` and ``end`` (during a set of polls)."""
        return any(start < t <= end for t in self.pending.values())


@dataclass
class OpenCTI:
    """The connector's state between runs: its last run and its filters (kept, as it keeps
    them, including a ``next`` from the previous run)."""

    last_run: int | None = None
    filters: dict = field(default_factory=lambda: {"limit": PAGE})

    def run(self, collection) -> tuple[OpenCTI, list[Version]]:
        """One run of ``process_message`` + ``Taxii2.poll``; the state after it."""
        filters = dict(self.filters)
        now = datetime.now(UTC)
        if self.last_run is not None:
            stamp = datetime.fromtimestamp(self.last_run, tz=UTC)
            filters["added_after"] = stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        else:
            filters["added_after"] = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=24)
        got: list[Version] = []
        response = collection.get_objects(**filters)
        while True:
            got += [(o["id"], o.get("modified", o["created"])) for o in response.get("objects", [])]
            if response.get("more") is not True:
                break
            if "next" in response:
                filters.pop("added_after", None)
                filters["next"] = response["next"]
                response = collection.get_objects(**filters)
        return OpenCTI(int(now.timestamp()), filters), got


@dataclass
class HeaderPoller:
    """taxii2-client's paging with ``added_after`` = the last X-TAXII-Date-Added-Last seen."""

    last: str | None = None

    def run(self, collection, log: list[dict]) -> tuple[HeaderPoller, list[Version]]:
        filters = {} if self.last is None else {"added_after": self.last}
        start = len(log)
        got = [
            (o["id"], o.get("modified", o["created"]))
            for env in as_pages(collection.get_objects, per_request=PAGE, **filters)
            for o in env.get("objects", [])
        ]
        seen = [h["x-taxii-date-added-last"] for h in log[start:] if "x-taxii-date-added-last" in h]
        return HeaderPoller(seen[-1] if seen else self.last), got


def open_collection(url: str, key: str):
    server = Server(url + tc.DISCOVERY, user="opencti", password=key)
    root = server.api_roots[0]
    found = {c.title: c for c in root.collections}
    collection = found["All indicators"]  # as OpenCTI picks it: by title
    log: list[dict] = []
    collection._conn.session.hooks["response"].append(lambda r, *a, **k: log.append(r.headers))
    return collection, log


def served_now(collection) -> set[Version]:
    return {
        (o["id"], o.get("modified", o["created"]))
        for env in as_pages(collection.get_objects, per_request=1000)
        for o in env.get("objects", [])
    }


@dataclass
class Chain:
    """One poller of one kind, polling at some of the positions so far."""

    state: object
    polls: tuple[int, ...] = ()
    got: list[Version] = field(default_factory=list)


def key_of(state: object) -> str:
    return repr(state)


def replay(pipe: Pipeline, collection, log: list[dict], sequence) -> None:
    """Run one interleaving. After each event, every poller (one per subset of positions and
    kind) polls or not; equal states at one position make one real poll, whose answer and new
    state they share (the server does not change within a position)."""
    chains = {"o": [Chain(OpenCTI())], "h": [Chain(HeaderPoller())]}
    steps = {
        "I": lambda r: pipe.ingest(),
        "B": lambda r: pipe.build(),
        "P": pipe.publish,
        "V": pipe.visible,
    }
    positions = len(sequence) + 1
    took = 0.0  # how long the last position's polls took: a busy machine polls slower
    for b in range(positions):
        if b:
            kind, round_ = sequence[b - 1]
            steps[kind](round_)
        pipe.clear_of_visibility(margin=max(0.5, 2 * took))
        started = time.time()
        for kind, alive in chains.items():
            memo: dict[str, tuple[object, list[Version]]] = {}
            polled = []
            for chain in alive:
                k = key_of(chain.state)
                if k not in memo:
                    run = chain.state.run  # type: ignore[attr-defined]
                    memo[k] = run(collection) if kind == "o" else run(collection, log)
                state, got = memo[k]
                polled.append(Chain(state, (*chain.polls, b), chain.got + got))
            alive += polled
        took = time.time() - started
        assert not pipe.turned_visible(started, time.time()), (
            "a publish turned visible during the polls"
        )
    final = served_now(collection)
    for kind, alive in chains.items():
        assert len(alive) == 2**positions
        for chain in alive:
            check(kind, chain, positions, final)


def check(kind: str, chain: Chain, positions: int, final: set[Version]) -> None:
    twice = {v for v in chain.got if chain.got.count(v) > 1}
    assert not twice, f"{kind} polling at {chain.polls} got {sorted(twice)[:3]} twice"
    if chain.polls and chain.polls[-1] == positions - 1:
        missing = final - set(chain.got)
        assert not missing, f"{kind} polling at {chain.polls} never got {sorted(missing)[:3]}"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Pipeline:
    data = tmp_path_factory.mktemp("polling")
    synthetic_store(str(data / "store"), 40, now=int(time.time()) - 3600, days=3)
    pipe = Pipeline(data)
    pipe.build()
    pipe.publish()
    pipe.visible()
    return pipe


@pytest.fixture(scope="module")
def server(pipeline, tmp_path_factory):
    yield from serving(pipeline.data, tmp_path_factory, *SCALE)


@pytest.fixture(scope="module")
def key(pipeline) -> str:
    return new_key(pipeline.data, "enterprise")


@pytest.mark.parametrize(
    "sequence", interleavings(), ids=lambda s: "".join(f"{k}{r}" for k, r in s)
)
def test_no_poller_misses_an_object_or_gets_one_twice(pipeline, server, key, sequence):
    collection, log = open_collection(server.url, key)
    replay(pipeline, collection, log, sequence)
