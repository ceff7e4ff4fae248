"""MISP attributes, one per record, each followed by a comma (the event envelope is in
``worker/contract/misp_event.py``).

Type and category pairs are MISP's own defaults (``describeTypes.json``); ATT&CK techniques
have no attribute type, so a ``mitre_attack`` record is a ``text`` attribute in *External
analysis* carrying the technique's galaxy tag. The attribute ``uuid`` is the record's ``id``,
the same in every format.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson

from exports.attack import technique_names
from exports.model import ACTIVE, IOCRecord, state_time
from exports.timefmt import iso_z
from worker.contract.misp_event import tlp_tag_bytes
from worker.contract.stix_common import TLP_LEVELS

# our type → (MISP type, category, to_ids by default)
MISP_TYPES: dict[str, tuple[str, str, bool]] = {
    "ipv4": ("ip-dst", "Network activity", True),
    "ipv6": ("ip-dst", "Network activity", True),
    "domain": ("domain", "Network activity", True),
    "url": ("url", "Network activity", True),
    "md5": ("md5", "Payload delivery", True),
    "sha1": ("sha1", "Payload delivery", True),
    "sha256": ("sha256", "Payload delivery", True),
    "sha512": ("sha512", "Payload delivery", True),
    "email": ("email-src", "Payload delivery", True),
    "cve": ("vulnerability", "External analysis", False),
    "mitre_attack": ("text", "External analysis", False),
}
# The estimative-language taxonomy's words for our confidence levels.
CONFIDENCE_TAG = {
    level: f'estimative-language:confidence-in-analytic-judgment="{word}"'
    for level, word in (("high", "high"), ("medium", "moderate"), ("low", "low"))
}
TLP_TAG = {level: orjson.loads(tlp_tag_bytes(level)) for level in TLP_LEVELS}


@lru_cache(maxsize=4096)
def galaxy_tag(technique: str) -> str | None:
    """``misp-galaxy:mitre-attack-pattern="<name> - <id>"``, when the id has a known name."""
    name = technique_names().get(technique)
    return None if name is None else f'misp-galaxy:mitre-attack-pattern="{name} - {technique}"'


def techniques_of(r: IOCRecord) -> tuple[str, ...]:
    if r.type == "mitre_attack" and r.value not in r.mitre_techniques:
        return (*r.mitre_techniques, r.value)
    return r.mitre_techniques


@lru_cache(maxsize=4096)
def _tags(
    tlp: str, confidence: str, own: tuple[str, ...], techniques: tuple[str, ...]
) -> tuple[dict, ...]:
    names = [TLP_TAG[tlp]["name"], CONFIDENCE_TAG[confidence]]
    names += [tag for tag in own if tag.strip() and not tag.startswith("tlp:")]
    names += [g for g in map(galaxy_tag, techniques) if g is not None]
    return tuple({"name": name} for name in dict.fromkeys(names))


def tags(r: IOCRecord) -> tuple[dict, ...]:
    """TLP (its source's), confidence, the record's own tags and its techniques' galaxy tags,
    each once."""
    return _tags(r.tlp, r.confidence, r.tags, techniques_of(r))


@lru_cache(maxsize=4096)
def _source(feed: str, title: str, url: str) -> str:
    return f"{feed}: {title} <{url}>"


def comment(r: IOCRecord) -> str:
    source = _source(r.feed_name, r.article_title, r.article_url)
    return f"{source}\n{r.context}" if r.context else source


def attribute(r: IOCRecord) -> dict[str, Any]:
    misp_type, category, to_ids = MISP_TYPES[r.type]
    return {
        "uuid": r.id,
        "type": misp_type,
        "category": category,
        "value": r.value,
        "to_ids": to_ids and r.confidence != "low" and r.status == ACTIVE,
        "comment": comment(r),
        "timestamp": str(state_time(r)),
        "first_seen": iso_z(r.first_seen),
        "last_seen": iso_z(r.last_seen),
        "disable_correlation": False,
        "deleted": False,
        "Tag": tags(r),
    }


def render_line(r: IOCRecord) -> bytes:
    return orjson.dumps(attribute(r)) + b","
