"""Ingest: read each source's feed, extract indicators from every article, merge into the store.

A source that fails (unreachable, malformed) is recorded in the store's source state and
skipped; it never aborts the run nor removes what the store already holds from it. Ingesting the
same feed twice leaves the same articles and sightings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from generator.errors import SocdefError
from generator.extract.htmltext import html_to_text
from generator.extract.indicators import extract
from generator.extract.tags import find_tags
from generator.ingest.fetching import Outcome, fetch_all
from generator.sources.catalog import Source
from generator.sources.feeds import FeedItem
from generator.sources.fetch import FetchResult, Validators
from generator.sources.state import Backoff, SourceState
from generator.store.generations import Article, MergeStats, Sighting, Store

Fetch = Callable[[Source, Validators], FetchResult]
Progress = Callable[[str, int, int], None]


class IngestError(SocdefError, RuntimeError):
    """Nothing could be ingested (for example, an offline folder with no feed files).

    ``report`` holds what was recorded: when every source failed, their failures are
    committed to the store's source state (articles unchanged) before this is raised.
    """

    def __init__(self, message: str, report: IngestReport | None = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass(slots=True)
class SourceReport:
    source: str
    status: str
    items: int = 0
    iocs: int = 0
    error: str = ""


@dataclass(slots=True)
class IngestReport:
    sources: list[SourceReport] = field(default_factory=list)
    merge: MergeStats | None = None
    shift_seconds: int = 0

    @property
    def failed(self) -> list[SourceReport]:
        return [s for s in self.sources if s.status == "error"]


def offline_reader(folder: Path) -> Fetch:
    folder = Path(folder).absolute()  # a relative folder has no file URI

    def read(source: Source, validators: Validators | None = None) -> FetchResult:
        for suffix in (".xml", ".rss", ".atom"):
            path = folder / f"{source.id}{suffix}"
            if path.is_file():
                return FetchResult(path.read_bytes(), 200, path.as_uri())
        raise FileNotFoundError(f"no saved feed {source.id}.xml in {folder}")

    return read


def article_id(source: Source, item: FeedItem) -> str:
    return hashlib.sha256(f"{source.id}\0{item.guid}".encode()).hexdigest()[:16]


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def read_article(source: Source, item: FeedItem, published: int) -> tuple[Article, list[Sighting]]:
    text = f"{item.title}\n\n{html_to_text(item.html)}"
    own = tuple(d for d in (source.site, _host(source.url), _host(item.link)) if d)
    found = extract(text, exclude_domains=own)
    aid = article_id(source, item)
    techniques = tuple(sorted({i.value for i in found if i.type == "mitre_attack"}))
    tags = tuple(find_tags(text))  # families, actors and tools named, never feed categories
    categories = tuple(sorted({c.strip() for c in item.tags if c.strip()}))
    article = Article(
        aid,
        source.id,
        source.name,
        source.category,
        item.title,
        item.link,
        published,
        tags,
        techniques,
        categories,
        source.tlp,
    )
    sightings = [Sighting(aid, i.type, i.value, i.context, i.confidence, i.defanged) for i in found]
    return article, sightings


def ingest(
    store: Store,
    sources: list[Source],
    fetch: Fetch,
    *,
    now: int,
    shift_dates: bool = False,
    progress: Progress | None = None,
    backoff: Backoff | None = None,
    workers: int = 8,
) -> IngestReport:
    """Fetch and parse every source (``workers`` at once), extract, commit one generation.

    With ``backoff`` (network runs), a source that failed is not fetched again before its
    ``next_attempt_at`` and each failure sets the next one; without it (saved feeds), every
    source is read every time.
    """
    report = IngestReport()
    previous = {k: SourceState.from_dict(v) for k, v in store.state()["sources"].items()}
    outcomes = fetch_all(
        sources,
        fetch,
        previous,
        now=now,
        honour_backoff=backoff is not None,
        workers=workers,
        progress=progress,
    )
    parsed = [o for o in outcomes if o.items is not None]
    stamps = [int(i.published.timestamp()) for o in parsed for i in o.items or () if i.published]
    report.shift_seconds = now - max(stamps) if shift_dates and stamps else 0
    known = _stored_dates(store) if parsed else {}
    articles: list[Article] = []
    sightings: list[Sighting] = []
    states: dict[str, dict[str, object]] = {}
    for outcome in outcomes:
        prev = previous.get(outcome.source.id, SourceState())
        line, state = _settle(
            outcome, prev, now, report.shift_seconds, backoff, known, (articles, sightings)
        )
        report.sources.append(line)
        if state is not None:
            states[outcome.source.id] = state.to_dict()
    if not states and not any(s.status == "deferred" for s in report.sources):
        raise IngestError("no source could be read; nothing was changed", report)
    if states:
        report.merge = store.merge(articles, sightings, as_of=now, sources_state=states)
    if states and not any(s.status in ("ok", "not_modified") for s in report.sources):
        why = "; ".join(f"{s.source}: {s.error}" for s in report.failed[:3])
        raise IngestError(
            f"no source could be read ({why}); their failures were recorded, no article changed",
            report,
        )
    return report


def _stored_dates(store: Store) -> dict[str, int]:
    table = store.articles()
    return dict(zip(table["article_id"].to_pylist(), table["published"].to_pylist(), strict=True))


def _published(item: FeedItem, aid: str, now: int, shift: int, known: dict[str, int]) -> int:
    """The item's date; an undated or future item keeps the date it was first stored with."""
    stamp = int(item.published.timestamp()) + shift if item.published else None
    if stamp is None or stamp > now:
        return min(known.get(aid, now), now)
    return stamp


def _settle(
    o: Outcome,
    prev: SourceState,
    now: int,
    shift: int,
    backoff: Backoff | None,
    known: dict[str, int],
    out: tuple[list[Article], list[Sighting]],
) -> tuple[SourceReport, SourceState | None]:
    """Turn one source's outcome into its report line and new state (None: unchanged)."""
    sid = o.source.id
    if o.skipped:
        return SourceReport(sid, "skipped", error="no saved feed"), None
    if o.deferred:
        return SourceReport(
            sid, "deferred", prev.items, prev.iocs, error=f"retrying after {prev.next_attempt_at}"
        ), None
    if o.error is not None:
        state = prev.failed(
            now, o.error, http_status=o.http_status, retry_after=o.retry_after, backoff=backoff
        )
        return SourceReport(sid, "error", error=state.error), state
    assert o.result is not None
    if o.items is None:
        return (
            SourceReport(sid, "not_modified", prev.items, prev.iocs),
            prev.not_modified(now, url=o.result.url),
        )
    found = 0
    for item in o.items:
        published = _published(item, article_id(o.source, item), now, shift, known)
        article, seen = read_article(o.source, item, published)
        out[0].append(article)
        out[1].extend(seen)
        found += len(seen)
    v = o.result.validators
    state = prev.fetched(
        now,
        status=o.result.status,
        url=o.result.url,
        etag=v.etag,
        last_modified=v.last_modified,
        items=len(o.items),
        iocs=found,
    )
    return SourceReport(sid, "ok", len(o.items), found), state
