"""MISP facts shared by the build (``exports/misp.py``, ``generator/build/misp_feed.py``) and the edge.

Every MISP event socdef publishes, the API answer and each feed event alike, is the same
envelope around precomputed attributes: :func:`event_bytes` = the event's fields, ``Orgc``,
``Tag``, then ``"Attribute": [...]`` holding attribute objects rendered at build time, each
followed by a comma. Key order and JSON types follow what ``pymisp``'s ``MISPEvent.to_feed()``
writes (all scalars strings except booleans). Standard library only: the worker imports it.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

# Our namespace for UUIDv5 ids of MISP events and of the publishing organisation.
MISP_NAMESPACE = uuid.UUID("2738a5fc-bec8-45a0-859e-afd75848850b")
THREAT_LEVEL = "4"  # Undefined: the feed reports what articles said, not a threat assessment
ANALYSIS = "2"  # Completed: a build never changes
# TLP levels the records carry (their source's, see sources.toml), least restrictive first.
TLP_ORDER = ("clear", "green", "amber", "amber+strict", "red")
INFO_MAX = 256  # MISP: info SHOULD be at most 256 characters, on one line


@dataclass(frozen=True, slots=True)
class EventMeta:
    uuid: str
    info: str
    date: str  # YYYY-MM-DD
    timestamp: int
    tags: tuple[str, ...]


def event_uuid(name: str) -> str:
    return str(uuid.uuid5(MISP_NAMESPACE, f"event:{name}"))


def orgc(source_name: str) -> dict[str, str]:
    return {"name": source_name, "uuid": str(uuid.uuid5(MISP_NAMESPACE, f"org:{source_name}"))}


def one_line(text: str, limit: int = INFO_MAX) -> str:
    """An event ``info``: whitespace runs (newlines included) folded, at most ``limit`` chars."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def day_of(ts: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def tlp_tag_bytes(level: str) -> bytes:
    """How a rendered attribute carries its TLP: the scan in :func:`strongest_tlp` relies on it."""
    return b'{"name":"tlp:' + level.encode() + b'"}'


def strongest_tlp(attributes: bytes) -> str:
    """The most restrictive TLP among precomputed attributes (a byte scan, nothing parsed)."""
    for level in reversed(TLP_ORDER):
        if tlp_tag_bytes(level) in attributes:
            return level
    return TLP_ORDER[0]


def _tags(names: tuple[str, ...]) -> list[dict[str, str]]:
    return [{"name": name} for name in names]


def event_head(meta: EventMeta, source_name: str) -> bytes:
    event = {
        "analysis": ANALYSIS,
        "date": meta.date,
        "info": meta.info,
        "publish_timestamp": str(meta.timestamp),
        "published": True,
        "threat_level_id": THREAT_LEVEL,
        "timestamp": str(meta.timestamp),
        "uuid": meta.uuid,
        "Orgc": orgc(source_name),
        "Tag": _tags(meta.tags),
    }
    body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
    return b'{"Event":' + body[:-1] + b',"Attribute":['


def event_bytes(meta: EventMeta, source_name: str, attributes: bytes) -> bytes:
    """A whole event around attributes rendered at build time (each followed by a comma)."""
    return event_head(meta, source_name) + attributes.removesuffix(b",") + b"]}}"


def manifest_entry(meta: EventMeta, source_name: str) -> dict[str, Any]:
    """The event's entry in a feed's ``manifest.json``, as ``MISPEvent.manifest`` writes it."""
    return {
        "Orgc": orgc(source_name),
        "Tag": _tags(meta.tags),
        "info": meta.info,
        "date": meta.date,
        "analysis": int(ANALYSIS),
        "threat_level_id": int(THREAT_LEVEL),
        "timestamp": meta.timestamp,
    }
