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
    article_ids: tuple[str, ...] = ()  # every article that reported it, sorted
    ingested_at: int = 0  # when the store first saw it (its earliest sighting's ingest)
    version_times: tuple[int, ...] = ()  # ingests at which last_seen rose, ascending
    technique_times: tuple[int, ...] = ()  # per mitre_techniques entry: when it joined
    status: str = (
        "active"  # active | expired | suppressed | withdrawn (generator/store/lifecycle.py)
    )
    valid_until: int = 0  # when it stops being active (0: no expiry decided)
    warnings: tuple[str, ...] = ()  # the warninglists it is on, sorted
    changed_at: int = 0  # when it entered its state (0: last_seen); see state_time
    categories: tuple[str, ...] = ()  # its articles' feed categories, sorted union
    tlp: str = "clear"  # the most restrictive TLP 2.0 level of its articles' sources


ACTIVE, EXPIRED = "active", "expired"  # the states of generator/store/lifecycle.py


def state_time(r: IOCRecord) -> int:
    """When the record entered its state, the time of its latest version in every format
    (``generator/store/lifecycle.py`` sets it): ``last_seen`` while active, ``valid_until`` once
    expired, after its last version when suppressed, the build's time when withdrawn."""
    return r.changed_at or r.last_seen


def taken_back(r: IOCRecord) -> bool:
    """Suppressed or withdrawn: consumers are told to drop it (STIX ``revoked``)."""
    return r.status not in (ACTIVE, EXPIRED)
