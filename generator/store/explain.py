"""``socdef explain VALUE``: an indicator's whole story from the store (docs/lifecycle.md).

Its sightings (article, feed, time, confidence, context), the record the build makes of them,
the warninglists it is on with each list's action and reason, its state as of the build time
and why. Library first: :func:`explain` answers :class:`Story` objects, the CLI prints them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from exports.model import IOCRecord
from generator.errors import SocdefError
from generator.extract.warninglists import ALLOW_LIST, BLOCK_LIST, SUPPRESS, Warninglists
from generator.store.generations import Store
from generator.store.lifecycle import RETRACTED, Expiry, Lifecycle, Retraction, retracted_articles
from generator.store.records import iter_records
from worker.contract.ioc_norm import normalise


class NotInStore(SocdefError, LookupError):
    """No indicator of that value in the store."""


@dataclass(frozen=True, slots=True)
class Sighting:
    published: int
    feed: str
    title: str
    url: str
    confidence: str
    context: str


@dataclass(frozen=True, slots=True)
class Story:
    record: IOCRecord
    sightings: list[Sighting]
    lists: list[tuple[str, str, str]]  # (list, its action, its reason)
    why: str
    now: int


def explain(
    store: Store,
    value: str,
    lists: Warninglists,
    expiry: Expiry,
    now: int | None = None,
    retractions: Sequence[Retraction] = (),
) -> list[Story]:
    """The story of every indicator whose value normalises like ``value`` (one per type)."""
    normal = normalise(value)
    sightings = store.sightings()
    mine = sightings.filter(pc.equal(sightings["value"], pa.scalar(normal, pa.string())))
    if not len(mine):
        raise NotInStore(f"no indicator {normal!r} in the store")
    articles = store.articles()
    articles = articles.filter(pc.is_in(articles["article_id"], value_set=mine["article_id"]))
    at = now if now is not None else store.state().get("as_of") or int(time.time())
    check = Lifecycle(lists, expiry, at, retracted_articles(retractions, store.articles()))
    records = list(iter_records(articles, mine, check)[1])
    by_id = {a["article_id"]: a for a in articles.to_pylist()}
    return [_story(r, mine.to_pylist(), by_id, lists, expiry, at) for r in records]


def _story(
    r: IOCRecord, rows: list[dict], articles: dict, lists: Warninglists, expiry: Expiry, now: int
) -> Story:
    seen = sorted(
        (
            Sighting(
                articles[s["article_id"]]["published"],
                articles[s["article_id"]]["feed_name"],
                articles[s["article_id"]]["title"],
                articles[s["article_id"]]["url"],
                s["confidence"],
                s["context"],
            )
            for s in rows
            if s["type"] == r.type and s["article_id"] in articles
        ),
        key=lambda s: s.published,
    )
    named = [(n, _action(n, lists), _reason(n, lists)) for n in r.warnings]
    return Story(r, seen, named, _why(r, named, expiry, now), now)


def _action(name: str, lists: Warninglists) -> str:
    if name in (ALLOW_LIST, BLOCK_LIST):
        return name.removeprefix("operator-")
    if name == RETRACTED:
        return "withdraw"
    return lists.policies[name].action


def _reason(name: str, lists: Warninglists) -> str:
    if name == RETRACTED:
        return "every article that reported it was retracted by its source (retractions.txt)"
    return lists.policies[name].reason


def _why(r: IOCRecord, named: list[tuple[str, str, str]], expiry: Expiry, now: int) -> str:
    days = expiry.lifetime(r.type, r.confidence)
    if r.status == "withdrawn" and RETRACTED in r.warnings and BLOCK_LIST not in r.warnings:
        return f"retracted by its source: every article that reported it was retracted ({_iso(r.changed_at)})"
    if r.status == "withdrawn":
        return "an operator's block entry in the overrides file names it"
    if r.status == "suppressed":
        hits = ", ".join(n for n, action, _ in named if action == SUPPRESS)
        return f"on a suppressing warninglist ({hits}) and no allow entry names it"
    life = f"last seen {_iso(r.last_seen)} + {days} days ({r.type}, {r.confidence} confidence)"
    if r.status == "expired":
        return f"valid until {_iso(r.valid_until)}: {life}, before {_iso(now)}"
    allowed = " (an allow entry keeps it from being suppressed)" if ALLOW_LIST in r.warnings else ""
    return f"valid until {_iso(r.valid_until)}: {life}; a new sighting renews it{allowed}"


def _iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def render(story: Story) -> str:
    """The story as the CLI prints it."""
    r = story.record
    lines = [
        f"{r.type} {r.value}: {r.status}",
        f"  why: {story.why}",
        f"  confidence: {r.confidence}; first seen {_iso(r.first_seen)}; last seen "
        f"{_iso(r.last_seen)}; {r.sightings} article(s); state as of {_iso(story.now)}",
        f"  valid until: {_iso(r.valid_until)}",
    ]
    for name, action, reason in story.lists:
        lines.append(f"  warninglist {name} ({action}): {reason}")
    lines.append("  sightings:")
    for s in story.sightings:
        context = f" — {s.context}" if s.context else ""
        lines.append(f"    {_iso(s.published)} {s.feed}: {s.title} <{s.url}> [{s.confidence}]")
        if context:
            lines.append(f"      {context[3:]}")
    return "\n".join(lines)
