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

from generator.extract import extract
from generator.feeds import FeedError, FeedItem, parse_feed
from generator.htmltext import html_to_text
from generator.sources import Source
from generator.store import Article, MergeStats, Sighting, Store
from generator.tags import find_tags

Fetch = Callable[[Source], bytes]
Progress = Callable[[str, int, int], None]


class IngestError(RuntimeError):
    """Nothing could be ingested (for example, an offline folder with no feed files)."""


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
    def read(source: Source) -> bytes:
        for suffix in (".xml", ".rss", ".atom"):
            path = folder / f"{source.id}{suffix}"
            if path.is_file():
                return path.read_bytes()
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
    tags = tuple(sorted(set(item.tags) | set(find_tags(text))))
    article = Article(aid, source.id, source.name, source.category, item.title, item.link,
                      published, tags, techniques)
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
) -> IngestReport:
    """Fetch, parse and extract every source, then commit one new store generation."""
    report = IngestReport()
    parsed: list[tuple[Source, list[FeedItem]]] = []
    for done, source in enumerate(sources, 1):
        try:
            items = list(parse_feed(fetch(source)).items)
        except FileNotFoundError:
            report.sources.append(SourceReport(source.id, "skipped", error="no saved feed"))
        except (OSError, FeedError) as exc:
            report.sources.append(SourceReport(source.id, "error", error=str(exc)[:300]))
        else:
            parsed.append((source, items))
        if progress:
            progress("sources", done, len(sources))
    if not parsed:
        raise IngestError("no source could be read; nothing was changed")
    stamps = [int(i.published.timestamp()) for _, items in parsed for i in items if i.published]
    shift = now - max(stamps) if shift_dates and stamps else 0
    report.shift_seconds = shift
    articles: list[Article] = []
    sightings: list[Sighting] = []
    for source, items in parsed:
        found = 0
        for item in items:
            published = int(item.published.timestamp()) + shift if item.published else now
            article, seen = read_article(source, item, min(published, now))
            articles.append(article)
            sightings.extend(seen)
            found += len(seen)
        report.sources.append(SourceReport(source.id, "ok", len(items), found))
    state = {s.source: _state(s, now) for s in report.sources if s.status != "skipped"}
    report.merge = store.merge(articles, sightings, as_of=now, sources_state=state)
    return report


def _state(s: SourceReport, now: int) -> dict[str, object]:
    return {"last_fetch": now, "status": s.status, "items": s.items, "iocs": s.iocs,
            "error": s.error}
