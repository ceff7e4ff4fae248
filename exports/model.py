"""The indicator record every list format renders."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IOCRecord:
    id: str
    type: str
    value: str
    confidence: str
    first_seen: int
    last_seen: int
    sightings: int
    article_id: str
    article_title: str
    article_url: str
    feed_name: str
    category: str
    context: str
    tags: tuple[str, ...]
    mitre_techniques: tuple[str, ...]
